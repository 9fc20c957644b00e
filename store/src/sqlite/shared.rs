//! One gateway per SQLite database: what gateways would share lives in its memory, but for the
//! receive positions, which a restart needs.
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::{Millis, RateHit, Result, SharedStore};

impl SharedStore for SqliteStore {
    fn reserve_pace(&self, key: &str, cost_us: i64, now_us: i64) -> Result<i64> {
        Ok(self.local().reserve_pace(key, cost_us, now_us))
    }

    fn rate_hit(&self, key: &str, window_ms: Millis, limit: u32, now: Millis) -> Result<RateHit> {
        Ok(self.local().rate_hit(key, window_ms, limit, now))
    }

    fn set_home_override(&self, platform: &str, chat: &str, name: &str) -> Result<()> {
        self.local().set_home_override(platform, chat, name);
        Ok(())
    }

    fn home_override(&self, platform: &str) -> Result<Option<(String, String)>> {
        Ok(self.local().home_override(platform))
    }

    fn receive_cursor(&self, platform: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT position FROM receive_cursors WHERE platform = ?1")?
            .query_row(params![platform], |r| r.get(0))
            .optional()?)
    }

    fn save_receive_cursor(&self, platform: &str, position: &str, now: Millis) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO receive_cursors (platform, position, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (platform) DO UPDATE
                   SET position = excluded.position, updated_at = excluded.updated_at",
            )?
            .execute(params![platform, position, now])?;
        Ok(())
    }
}
