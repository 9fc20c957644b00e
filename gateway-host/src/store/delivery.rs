//! Delivery: parts whose send had an unknown outcome, looked up at the provider; the
//! provider's delivery statuses; what `hermes outbox`, `/metrics`, the doctor and `/status`
//! show of them.
use platform_api::{DeliveryStatus, Part};
use rusqlite::{OptionalExtension, Row, params};

use super::{Millis, OutboxPart, PartState, Result, Store, now_ms};

/// An ambiguous part whose look-up is due.
#[derive(Clone, Debug)]
pub struct Reconcilable {
    /// The part.
    pub part: OutboxPart,
    /// When its last send began.
    pub attempted_at: Millis,
    /// When its look-up was due (its claim on the look-up is checked against it).
    pub reconcile_at: Millis,
}

/// One outbox part as `hermes outbox list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    /// Part id (`hermes outbox retry ID`).
    pub id: i64,
    /// Platform name.
    pub platform: String,
    /// The chat it goes to.
    pub chat: String,
    /// 1-based position in its message.
    pub part: i64,
    /// Parts in its message.
    pub parts: i64,
    /// `pending`, `sending`, `sent`, `failed`, `suppressed` or `ambiguous`.
    pub state: String,
    /// The provider's delivery status (`delivered`, `undelivered`, …), once reported.
    pub status: Option<String>,
    /// The provider's error code: from the delivery report, else from the send.
    pub error_code: Option<i64>,
    /// The last error message of a send, if any.
    pub error: Option<String>,
    /// Billed units.
    pub segments: i64,
    /// The provider's id once sent.
    pub provider_id: Option<String>,
    /// Why it was sent: `reply`, `command`, `cron`, `send`.
    pub origin: String,
    /// Send attempts made.
    pub attempts: i64,
    /// When it was queued (ms since the epoch).
    pub created_at: Millis,
    /// When it last changed (ms since the epoch).
    pub updated_at: Millis,
}

/// Which parts `hermes outbox list` shows.
#[derive(Clone, Debug, Default)]
pub struct OutboxFilter {
    /// Only these chats (the forms one chat may be stored in); empty: every chat.
    pub chats: Vec<String>,
    /// Only parts in this state, or with this delivery status.
    pub state: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// What `hermes outbox retry` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retried {
    /// Queued again.
    Queued,
    /// The part is not failed or ambiguous; its state is given.
    NotRetryable(PartState),
    /// No such part.
    Missing,
}

/// Parts of a time span counted by delivery outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySummary {
    /// Platform name.
    pub platform: String,
    /// The delivery status, or the part's state when none was reported.
    pub outcome: String,
    /// The error code, if any.
    pub code: Option<i64>,
    /// How many parts.
    pub count: i64,
}

const ROW_COLUMNS: &str = "o.id, o.platform, o.chat, o.part_index, o.part_count, o.state, d.status,
     COALESCE(d.error_code, o.error_code), o.error, o.segments, o.provider_id, o.origin, o.attempts,
     o.created_at, o.updated_at";

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        platform: r.get(1)?,
        chat: r.get(2)?,
        part: r.get(3)?,
        parts: r.get(4)?,
        state: r.get(5)?,
        status: r.get(6)?,
        error_code: r.get(7)?,
        error: r.get(8)?,
        segments: r.get(9)?,
        provider_id: r.get(10)?,
        origin: r.get(11)?,
        attempts: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
    })
}

impl Store {
    /// Records that a send's outcome is unknown; its look-up is due at `reconcile_at`, or
    /// never (`None`: the platform cannot look messages up, and the part stays ambiguous).
    pub fn mark_ambiguous(&self, id: i64, error: &str, reconcile_at: Option<Millis>) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'ambiguous', error = ?2, error_code = NULL,
                 lease_until = NULL, reconcile_at = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, error, reconcile_at, now_ms()])?;
        Ok(())
    }

    /// Ambiguous parts whose look-up is due at `now`, oldest first.
    pub fn reconcilable(&self, now: Millis, limit: usize) -> Result<Vec<Reconcilable>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, platform, chat, body, encoding, segments, part_index, part_count, attempts,
                    COALESCE(attempted_at, updated_at), reconcile_at
             FROM outbox WHERE state = 'ambiguous' AND reconcile_at <= ?1
             ORDER BY reconcile_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit as i64], |r| {
            Ok(Reconcilable {
                part: OutboxPart {
                    id: r.get(0)?,
                    platform: r.get(1)?,
                    chat: r.get(2)?,
                    part: Part {
                        body: r.get(3)?,
                        encoding: r.get(4)?,
                        segments: r.get(5)?,
                    },
                    index: r.get(6)?,
                    count: r.get(7)?,
                    attempts: r.get(8)?,
                },
                attempted_at: r.get(9)?,
                reconcile_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves an ambiguous part's look-up from `due` to `at` (`None`: never); false when
    /// another process moved it first (it is looking the part up) or the part was settled.
    pub fn reschedule_reconcile(&self, id: i64, due: Millis, at: Option<Millis>) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET reconcile_at = ?3
                 WHERE id = ?1 AND state = 'ambiguous' AND reconcile_at = ?2",
            )?
            .execute(params![id, due, at])?;
        Ok(changed == 1)
    }

    /// Whether a part of this platform is recorded with this provider id.
    pub fn provider_id_known(&self, platform: &str, provider_id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM outbox WHERE platform = ?1 AND provider_id = ?2")?
            .query_row(params![platform, provider_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Records an ambiguous part as sent after all (found at the provider); false when it
    /// was settled meanwhile.
    pub fn reconcile_sent(
        &self,
        id: i64,
        provider_id: &str,
        segments: Option<u32>,
    ) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'sent', provider_id = ?2, segments = COALESCE(?3, segments),
                 reconcile_at = NULL, error = NULL, updated_at = ?4
                 WHERE id = ?1 AND state = 'ambiguous'",
            )?
            .execute(params![id, provider_id, segments, now_ms()])?;
        Ok(changed == 1)
    }

    /// Queues an ambiguous part again (the provider has no such message); false when it was
    /// settled meanwhile.
    pub fn reconcile_unsent(&self, id: i64) -> Result<bool> {
        let now = now_ms();
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, reconcile_at = NULL,
                 error = 'not found at the provider after an unknown outcome: sent again', updated_at = ?2
                 WHERE id = ?1 AND state = 'ambiguous'",
            )?
            .execute(params![id, now])?;
        Ok(changed == 1)
    }

    /// Queues a failed or ambiguous part again: the operator's explicit decision.
    pub fn retry_part(&self, id: i64) -> Result<Retried> {
        let Some(state) = self.part_state(id)? else {
            return Ok(Retried::Missing);
        };
        if !matches!(state, PartState::Failed | PartState::Ambiguous) {
            return Ok(Retried::NotRetryable(state));
        }
        let now = now_ms();
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, reconcile_at = NULL,
                 attempts = 0, error = NULL, error_code = NULL, updated_at = ?2
                 WHERE id = ?1 AND state IN ('failed', 'ambiguous')",
            )?
            .execute(params![id, now])?;
        Ok(if changed == 1 {
            Retried::Queued
        } else {
            Retried::NotRetryable(self.part_state(id)?.unwrap_or(PartState::Failed))
        })
    }

    /// Records a provider's delivery status unless one further along is recorded already.
    /// Returns whether it changed anything: a repeated or late report does not.
    pub fn record_delivery(&self, status: &DeliveryStatus) -> Result<bool> {
        let rank = DeliveryStatus::rank(&status.status);
        let changed = self
            .conn()
            .prepare_cached(
                "INSERT INTO delivery_status (platform, provider_id, status, rank, error_code, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (platform, provider_id) DO UPDATE
                 SET status = excluded.status, rank = excluded.rank,
                     error_code = COALESCE(excluded.error_code, delivery_status.error_code),
                     updated_at = excluded.updated_at
                 WHERE excluded.rank > delivery_status.rank",
            )?
            .execute(params![
                status.platform,
                status.provider_id,
                status.status,
                rank,
                status.error_code,
                now_ms()
            ])?;
        Ok(changed == 1)
    }

    /// The chat a sent part with this provider id went to.
    pub fn chat_of(&self, platform: &str, provider_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT chat FROM outbox WHERE platform = ?1 AND provider_id = ?2")?
            .query_row(params![platform, provider_id], |r| r.get(0))
            .optional()?)
    }

    /// Outbox parts, newest first.
    pub fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM outbox o
             LEFT JOIN delivery_status d ON d.platform = o.platform AND d.provider_id = o.provider_id
             WHERE (?1 IS NULL OR o.chat IN (SELECT value FROM json_each(?1)))
               AND (?2 IS NULL OR o.state = ?2 OR d.status = ?2)
             ORDER BY o.id DESC LIMIT ?3"
        ))?;
        let chats = (!filter.chats.is_empty())
            .then(|| serde_json::to_string(&filter.chats).unwrap_or_else(|_| "[]".to_string()));
        let rows = stmt.query_map(
            params![chats, filter.state, filter.limit.max(1) as i64],
            outbox_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest reply part sent to a chat (what `/status` reports on).
    pub fn last_reply(&self, platform: &str, chat: &str) -> Result<Option<OutboxRow>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM outbox o
                 LEFT JOIN delivery_status d ON d.platform = o.platform AND d.provider_id = o.provider_id
                 WHERE o.platform = ?1 AND o.chat = ?2 AND o.origin = 'reply'
                 ORDER BY o.id DESC LIMIT 1"
            ))?
            .query_row(params![platform, chat], outbox_row)
            .optional()?)
    }

    /// Parts queued since `since`, counted by delivery status (or state) and error code.
    pub fn delivery_summary(&self, since: Millis) -> Result<Vec<DeliverySummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT o.platform, COALESCE(d.status, o.state), COALESCE(d.error_code, o.error_code), COUNT(*)
             FROM outbox o
             LEFT JOIN delivery_status d ON d.platform = o.platform AND d.provider_id = o.provider_id
             WHERE o.created_at >= ?1
             GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC",
        )?;
        let rows = stmt.query_map(params![since], |r| {
            Ok(DeliverySummary {
                platform: r.get(0)?,
                outcome: r.get(1)?,
                code: r.get(2)?,
                count: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("gateway.db")).unwrap();
        (dir, store)
    }

    fn status(sid: &str, word: &str, code: Option<i64>) -> DeliveryStatus {
        DeliveryStatus {
            platform: "sms".into(),
            provider_id: sid.into(),
            status: word.into(),
            error_code: code,
            chat: None,
            opted_out: false,
        }
    }

    #[test]
    fn statuses_only_move_forward_and_repeats_change_nothing() {
        let (_dir, store) = store();
        let ids = store
            .enqueue("sms", "+15550001111", &[Part::plain("x")], "reply")
            .unwrap();
        store.mark_sent(ids[0], "SM1", Some(1)).unwrap();
        assert!(
            store
                .record_delivery(&status("SM1", "queued", None))
                .unwrap()
        );
        assert!(store.record_delivery(&status("SM1", "sent", None)).unwrap());
        assert!(!store.record_delivery(&status("SM1", "sent", None)).unwrap());
        assert!(
            store
                .record_delivery(&status("SM1", "undelivered", Some(30007)))
                .unwrap()
        );
        // Late and repeated reports never move a final status back.
        assert!(!store.record_delivery(&status("SM1", "sent", None)).unwrap());
        assert!(
            !store
                .record_delivery(&status("SM1", "queued", None))
                .unwrap()
        );
        assert!(
            !store
                .record_delivery(&status("SM1", "delivered", None))
                .unwrap()
        );
        let rows = store
            .outbox_list(&OutboxFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows[0].status.as_deref(), Some("undelivered"));
        assert_eq!(rows[0].error_code, Some(30007));
        assert_eq!(rows[0].state, "sent");
        // A report may come before the send's answer is recorded: it waits in the table.
        assert!(
            store
                .record_delivery(&status("SM2", "delivered", None))
                .unwrap()
        );
        let late = store
            .enqueue("sms", "+15550001111", &[Part::plain("y")], "reply")
            .unwrap();
        store.mark_sent(late[0], "SM2", None).unwrap();
        assert_eq!(
            store
                .last_reply("sms", "+15550001111")
                .unwrap()
                .unwrap()
                .status
                .as_deref(),
            Some("delivered")
        );
        let summary = store.delivery_summary(0).unwrap();
        assert!(
            summary
                .iter()
                .any(|s| s.outcome == "undelivered" && s.code == Some(30007) && s.count == 1)
        );
    }

    #[test]
    fn ambiguous_parts_hold_their_chat_until_looked_up_and_settle_once() {
        let (_dir, store) = store();
        let ids = store
            .enqueue(
                "sms",
                "+15550001111",
                &[Part::plain("a"), Part::plain("b")],
                "reply",
            )
            .unwrap();
        assert!(store.claim(ids[0], now_ms() + 60_000).unwrap());
        store
            .mark_ambiguous(ids[0], "timed out", Some(1000))
            .unwrap();
        assert!(
            store.due_parts(now_ms(), 10).unwrap().is_empty(),
            "part 2 waits for part 1"
        );
        let due = store.reconcilable(now_ms(), 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(
            store
                .reschedule_reconcile(ids[0], 1000, Some(now_ms() + 60_000))
                .unwrap()
        );
        assert!(
            !store.reschedule_reconcile(ids[0], 1000, Some(5)).unwrap(),
            "claimed once"
        );
        assert!(store.reconcile_unsent(ids[0]).unwrap());
        assert!(!store.reconcile_unsent(ids[0]).unwrap());
        assert_eq!(store.due_parts(now_ms(), 10).unwrap()[0].id, ids[0]);
        // Ambiguous for good (no look-up possible): the chat goes on.
        assert!(store.claim(ids[0], now_ms() + 60_000).unwrap());
        store.mark_ambiguous(ids[0], "timed out", None).unwrap();
        assert_eq!(store.due_parts(now_ms(), 10).unwrap()[0].id, ids[1]);
        assert_eq!(store.retry_part(ids[0]).unwrap(), Retried::Queued);
        assert_eq!(
            store.retry_part(ids[0]).unwrap(),
            Retried::NotRetryable(PartState::Pending)
        );
        assert_eq!(store.retry_part(999).unwrap(), Retried::Missing);
        assert!(store.claim(ids[0], now_ms() + 60_000).unwrap());
        store.mark_ambiguous(ids[0], "timed out", Some(1)).unwrap();
        assert!(store.reconcile_sent(ids[0], "SM9", Some(1)).unwrap());
        assert!(store.provider_id_known("sms", "SM9").unwrap());
        assert_eq!(store.part_state(ids[0]).unwrap(), Some(PartState::Sent));
    }
}
