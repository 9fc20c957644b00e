//! Pairing codes in PostgreSQL.
use super::PgStore;
use crate::{Millis, PairingEntry, PairingRequest, PairingStore, Result};

impl PairingStore for PgStore {
    fn is_approved(&self, platform: &str, sender: &str) -> Result<bool> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT 1 FROM pairing
                     WHERE platform = $1 AND sender = $2 AND approved_at IS NOT NULL",
                    &[&platform, &sender],
                )
                .await?
                .is_some())
        })
    }

    fn request_pairing(
        &self,
        platform: &str,
        sender: &str,
        code: &str,
        now: Millis,
        valid_for: Millis,
        max_per_hour: i64,
    ) -> Result<PairingRequest> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // One writer of pairing codes at a time (what SQLite's immediate transaction
            // gives): the hourly count and the code it limits are decided together. Readers
            // (`is_approved`) are not held up.
            tx.batch_execute("LOCK TABLE pairing IN SHARE ROW EXCLUSIVE MODE")
                .await?;
            let current: Option<Millis> = tx
                .query_opt(
                    "SELECT expires_at FROM pairing
                     WHERE platform = $1 AND sender = $2 AND approved_at IS NULL",
                    &[&platform, &sender],
                )
                .await?
                .map(|r| r.get(0));
            if current.is_some_and(|expires| expires > now) {
                return Ok(PairingRequest::AlreadyIssued);
            }
            let recent: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM pairing WHERE platform = $1 AND created_at > $2",
                    &[&platform, &(now - 3_600_000)],
                )
                .await?
                .get(0);
            if recent >= max_per_hour {
                return Ok(PairingRequest::Limited);
            }
            // Replaces whatever the sender held, approval included (SQLite's INSERT OR REPLACE).
            tx.execute(
                "INSERT INTO pairing (platform, sender, code, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (platform, sender) DO UPDATE
                 SET code = EXCLUDED.code, created_at = EXCLUDED.created_at,
                     expires_at = EXCLUDED.expires_at, approved_at = NULL",
                &[&platform, &sender, &code, &now, &(now + valid_for)],
            )
            .await?;
            tx.commit().await?;
            Ok(PairingRequest::Issued(code.to_string()))
        })
    }

    fn approve_pairing(&self, platform: &str, code: &str, now: Millis) -> Result<Option<String>> {
        // Codes are matched as SQLite matches them: the given code trimmed and upper-cased
        // (ASCII only) against the stored code exactly.
        let code = code.trim().to_ascii_uppercase();
        self.block(async {
            let client = self.client().await?;
            // The row is locked as it is found and checked again once locked, so a code
            // replaced or revoked meanwhile approves nobody.
            Ok(client
                .query_opt(
                    "WITH hit AS (
                         SELECT sender FROM pairing
                         WHERE platform = $1 AND code = $2 AND approved_at IS NULL AND expires_at > $3
                         LIMIT 1 FOR UPDATE
                     )
                     UPDATE pairing p SET approved_at = $3 FROM hit
                     WHERE p.platform = $1 AND p.sender = hit.sender
                     RETURNING p.sender",
                    &[&platform, &code, &now],
                )
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn revoke_pairing(&self, platform: &str, sender_or_code: &str) -> Result<bool> {
        let sender = sender_or_code.trim();
        // SQLite's upper() folds ASCII letters only.
        let code = sender.to_ascii_uppercase();
        self.block(async {
            let client = self.client().await?;
            let changed = client
                .execute(
                    "DELETE FROM pairing WHERE platform = $1 AND (sender = $2 OR code = $3)",
                    &[&platform, &sender, &code],
                )
                .await?;
            Ok(changed > 0)
        })
    }

    fn pairing_entries(&self) -> Result<Vec<PairingEntry>> {
        self.block(async {
            let client = self.client().await?;
            // Byte order, as SQLite sorts text.
            let rows = client
                .query(
                    "SELECT platform, sender, code, expires_at, approved_at FROM pairing
                     ORDER BY approved_at IS NULL, platform COLLATE \"C\", sender COLLATE \"C\"",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| PairingEntry {
                    platform: r.get(0),
                    sender: r.get(1),
                    code: r.get(2),
                    expires_at: r.get(3),
                    approved_at: r.get(4),
                })
                .collect())
        })
    }
}
