//! What the gateways sharing PostgreSQL must see alike: each is one conditional statement, so
//! that gateways racing on the same row see each other's effect.
use super::PgStore;
use crate::{Millis, RateHit, Result, SharedStore};

impl SharedStore for PgStore {
    fn reserve_pace(&self, key: &str, cost_us: i64, now_us: i64) -> Result<i64> {
        self.block(async {
            let client = self.client().await?;
            let start: i64 = client
                .query_one(
                    "INSERT INTO pacing (key, next_free_us) VALUES ($1, $2::BIGINT + $3::BIGINT)
                     ON CONFLICT (key) DO UPDATE
                       SET next_free_us = GREATEST(pacing.next_free_us, $2) + $3
                     RETURNING next_free_us - $3",
                    &[&key, &now_us, &cost_us],
                )
                .await?
                .get(0);
            Ok((start - now_us).max(0))
        })
    }

    fn rate_hit(&self, key: &str, window_ms: Millis, limit: u32, now: Millis) -> Result<RateHit> {
        self.block(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "INSERT INTO rate_windows (key, started_at, count, noticed)
                     VALUES ($1, $2::BIGINT, 1, FALSE)
                     ON CONFLICT (key) DO UPDATE SET
                       count = CASE WHEN rate_windows.started_at <= $2 - $3::BIGINT
                                    THEN 1 ELSE rate_windows.count + 1 END,
                       noticed = rate_windows.noticed AND rate_windows.started_at > $2 - $3,
                       started_at = CASE WHEN rate_windows.started_at <= $2 - $3
                                         THEN $2 ELSE rate_windows.started_at END
                     RETURNING count",
                    &[&key, &now, &window_ms],
                )
                .await?;
            let count: i64 = row.get(0);
            let allowed = count <= i64::from(limit);
            let notice = !allowed
                && client
                    .query_opt(
                        "UPDATE rate_windows SET noticed = TRUE
                         WHERE key = $1 AND NOT noticed RETURNING 1",
                        &[&key],
                    )
                    .await?
                    .is_some();
            Ok(RateHit { allowed, notice })
        })
    }

    fn set_home_override(&self, platform: &str, chat: &str, name: &str) -> Result<()> {
        self.exec(
            "INSERT INTO home_overrides (platform, chat, name) VALUES ($1, $2, $3)
             ON CONFLICT (platform) DO UPDATE SET chat = EXCLUDED.chat, name = EXCLUDED.name",
            &[&platform, &chat, &name],
        )?;
        Ok(())
    }

    fn home_override(&self, platform: &str) -> Result<Option<(String, String)>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT chat, name FROM home_overrides WHERE platform = $1",
                    &[&platform],
                )
                .await?
                .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn receive_cursor(&self, platform: &str) -> Result<Option<String>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT position FROM receive_cursors WHERE platform = $1",
                    &[&platform],
                )
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn save_receive_cursor(&self, platform: &str, position: &str, now: Millis) -> Result<()> {
        self.exec(
            "INSERT INTO receive_cursors (platform, position, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (platform) DO UPDATE
               SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at",
            &[&platform, &position, &now],
        )?;
        Ok(())
    }
}
