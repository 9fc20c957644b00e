//! Pairing codes: unknown senders admitted by the owner.
use rusqlite::{OptionalExtension, params};

use super::{Millis, Result, Store};

/// A sender known to pairing: waiting with a code, or approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingEntry {
    /// Platform name.
    pub platform: String,
    /// The sender, in the platform's form.
    pub sender: String,
    /// The one-time code.
    pub code: String,
    /// When the code stops being valid.
    pub expires_at: Millis,
    /// When the owner approved, if they did.
    pub approved_at: Option<Millis>,
}

/// The outcome of asking for a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingRequest {
    /// A new code was issued; tell the sender.
    Issued(String),
    /// The sender already holds a valid code; say nothing more.
    AlreadyIssued,
    /// Too many codes were issued lately; say nothing.
    Limited,
}

impl Store {
    /// Whether a sender was admitted by pairing.
    pub fn is_approved(&self, platform: &str, sender: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM pairing WHERE platform = ?1 AND sender = ?2 AND approved_at IS NOT NULL")?.query_row(params![platform, sender],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Issues `code` to a sender unless they hold a valid one, or more than `max_per_hour`
    /// codes were issued on the platform in the last hour.
    pub fn request_pairing(
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

    /// Approves the sender holding a valid `code`; returns who it was.
    pub fn approve_pairing(
        &self,
        platform: &str,
        code: &str,
        now: Millis,
    ) -> Result<Option<String>> {
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

    /// Removes a sender (or a pending code) from pairing; returns whether anything was removed.
    pub fn revoke_pairing(&self, platform: &str, sender_or_code: &str) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "DELETE FROM pairing WHERE platform = ?1 AND (sender = ?2 OR code = upper(?2))",
            )?
            .execute(params![platform, sender_or_code.trim()])?;
        Ok(changed > 0)
    }

    /// Every pairing entry, approved ones first.
    pub fn pairing_entries(&self) -> Result<Vec<PairingEntry>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_limited_approved_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("gateway.db")).unwrap();
        let hour = 3_600_000;
        let req = |sender: &str, code: &str, now| {
            store
                .request_pairing("sms", sender, code, now, hour, 2)
                .unwrap()
        };
        assert_eq!(
            req("+15550000001", "ABCD2345", 0),
            PairingRequest::Issued("ABCD2345".into())
        );
        assert_eq!(
            req("+15550000001", "ZZZZ2345", 10),
            PairingRequest::AlreadyIssued
        );
        assert_eq!(
            req("+15550000002", "BBBB2345", 20),
            PairingRequest::Issued("BBBB2345".into())
        );
        assert_eq!(req("+15550000003", "CCCC2345", 30), PairingRequest::Limited);
        assert!(!store.is_approved("sms", "+15550000001").unwrap());
        assert_eq!(
            store
                .approve_pairing("sms", "abcd2345", 40)
                .unwrap()
                .as_deref(),
            Some("+15550000001")
        );
        assert!(store.is_approved("sms", "+15550000001").unwrap());
        assert_eq!(
            store.approve_pairing("sms", "BBBB2345", hour + 21).unwrap(),
            None,
            "expired"
        );
        assert!(store.revoke_pairing("sms", "+15550000001").unwrap());
        assert!(!store.is_approved("sms", "+15550000001").unwrap());
    }
}
