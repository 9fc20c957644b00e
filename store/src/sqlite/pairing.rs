//! Pairing codes in SQLite.
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::{Millis, PairingEntry, PairingRequest, PairingStore, Result};

impl PairingStore for SqliteStore {
    fn is_approved(&self, platform: &str, sender: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM pairing WHERE platform = ?1 AND sender = ?2 AND approved_at IS NOT NULL")?.query_row(params![platform, sender],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<Millis> = tx
            .prepare_cached("SELECT expires_at FROM pairing WHERE platform = ?1 AND sender = ?2 AND approved_at IS NULL")?.query_row(params![platform, sender],
                |r| r.get(0),
            )
            .optional()?;
        if current.is_some_and(|expires| expires > now) {
            return Ok(PairingRequest::AlreadyIssued);
        }
        let recent: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM pairing WHERE platform = ?1 AND created_at > ?2")?
            .query_row(params![platform, now - 3_600_000], |r| r.get(0))?;
        if recent >= max_per_hour {
            return Ok(PairingRequest::Limited);
        }
        tx.prepare_cached("INSERT OR REPLACE INTO pairing (platform, sender, code, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![platform, sender, code, now, now + valid_for],
        )?;
        tx.commit()?;
        Ok(PairingRequest::Issued(code.to_string()))
    }

    fn approve_pairing(&self, platform: &str, code: &str, now: Millis) -> Result<Option<String>> {
        let conn = self.conn();
        let sender: Option<String> = conn
            .prepare_cached("SELECT sender FROM pairing WHERE platform = ?1 AND code = ?2 AND approved_at IS NULL AND expires_at > ?3")?.query_row(params![platform, code.trim().to_ascii_uppercase(), now],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(sender) = &sender {
            conn.prepare_cached(
                "UPDATE pairing SET approved_at = ?3 WHERE platform = ?1 AND sender = ?2",
            )?
            .execute(params![platform, sender, now])?;
        }
        Ok(sender)
    }

    fn revoke_pairing(&self, platform: &str, sender_or_code: &str) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "DELETE FROM pairing WHERE platform = ?1 AND (sender = ?2 OR code = upper(?2))",
            )?
            .execute(params![platform, sender_or_code.trim()])?;
        Ok(changed > 0)
    }

    fn pairing_entries(&self) -> Result<Vec<PairingEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT platform, sender, code, expires_at, approved_at FROM pairing
             ORDER BY approved_at IS NULL, platform, sender",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PairingEntry {
                platform: r.get(0)?,
                sender: r.get(1)?,
                code: r.get(2)?,
                expires_at: r.get(3)?,
                approved_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
