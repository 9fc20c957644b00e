//! Inbound messages, the journal's import position, conversations, the outbox and the
//! suppression list, in SQLite.
use std::time::Duration;

use platform_api::{Accepted, Inbound, Part};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, process_alive};
use crate::{
    Conversation, MessageStore, Millis, OutboxPart, PartClaim, PartState, Result, StoreError,
    StoredInbound, TurnCommit, journal, now_ms, parse_control, parse_media, refusals, to_send,
};

/// A stored inbound message from the columns id, platform, chat, sender, text, attachments,
/// control, live message.
fn inbound_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredInbound> {
    let attachments: String = r.get(5)?;
    let control: Option<String> = r.get(6)?;
    Ok(StoredInbound {
        id: r.get(0)?,
        platform: r.get(1)?,
        chat: r.get(2)?,
        sender: r.get(3)?,
        text: r.get(4)?,
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        control: control.as_deref().and_then(parse_control),
        live_message: r.get(7)?,
        sender_name: r.get(8)?,
    })
}

/// `update` of an outgoing part, made only while the claim it names (?1 the part, ?2 the
/// attempt, ?3 this process) still holds it: a sender that lost the part changes nothing.
pub(super) fn held(update: &str) -> String {
    format!("{update} WHERE id = ?1 AND state = 'sending' AND attempts = ?2 AND claimed_by = ?3")
}

/// An outgoing part from the first eleven columns of `r` (id, platform, chat, body, encoding,
/// segments, part index, part count, attempts, edit, media).
pub(super) fn part_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxPart> {
    Ok(OutboxPart {
        id: r.get(0)?,
        platform: r.get(1)?,
        chat: r.get(2)?,
        part: Part {
            body: r.get(3)?,
            encoding: r.get(4)?,
            segments: r.get(5)?,
            edit: r.get(9)?,
            media: parse_media(r.get::<_, Option<String>>(10)?.as_deref()),
        },
        index: r.get(6)?,
        count: r.get(7)?,
        attempts: r.get(8)?,
    })
}

impl MessageStore for SqliteStore {
    fn insert_inbound(&self, inbound: &Inbound) -> Result<Accepted> {
        Ok(Self::insert_one(&self.conn(), inbound)?)
    }

    fn import_inbound(&self, batch: &[Inbound], to: journal::Position) -> Result<Vec<Accepted>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let outcomes = batch
            .iter()
            .map(|inbound| Self::insert_one(&tx, inbound))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Self::record_journal_position(&tx, to)?;
        tx.commit()?;
        Ok(outcomes)
    }

    fn journal_position(&self) -> Result<journal::Position> {
        Ok(Self::query_journal_position(&self.conn())?)
    }

    fn set_journal_position(&self, to: journal::Position) -> Result<()> {
        Ok(Self::record_journal_position(&self.conn(), to)?)
    }

    fn pending_inbound(&self, limit: usize) -> Result<Vec<StoredInbound>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, platform, chat, sender, text, attachments, control, live_message, sender_name FROM inbound
             WHERE state = 'pending' ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], inbound_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn pending_inbound_of(
        &self,
        platform: &str,
        chat: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredInbound>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, platform, chat, sender, text, attachments, control, live_message, sender_name FROM inbound
             WHERE platform = ?1 AND chat = ?2 AND id > ?3 AND state = 'pending'
             ORDER BY id LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![platform, chat, after, limit as i64], inbound_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn pending_inbound_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM inbound WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?;
        Ok(n as usize)
    }

    fn set_live_message(&self, inbound_id: i64, provider_id: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE inbound SET live_message = ?2 WHERE id = ?1")?
            .execute(params![inbound_id, provider_id])?;
        Ok(())
    }

    fn mark_inbound(&self, ids: &[i64], state: &str) -> Result<()> {
        let marks: Vec<(i64, &str)> = ids.iter().map(|id| (*id, state)).collect();
        self.mark_inbound_states(&marks)
    }

    fn mark_inbound_states(&self, marks: &[(i64, &str)]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("UPDATE inbound SET state = ?2 WHERE id = ?1")?;
            for (id, state) in marks {
                stmt.execute(params![id, state])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn history(&self, platform: &str, chat: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT role, content FROM turns WHERE conversation_id =
                (SELECT id FROM conversations WHERE platform = ?1 AND chat = ?2 AND active = 1)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let mut rows: Vec<(String, String)> = stmt
            .query_map(params![platform, chat, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.reverse();
        Ok(rows)
    }

    fn turn_count(&self, platform: &str, chat: &str) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT COUNT(*) FROM turns t JOIN conversations c ON c.id = t.conversation_id
             WHERE c.platform = ?1 AND c.chat = ?2 AND c.active = 1",
            )?
            .query_row(params![platform, chat], |r| r.get(0))?)
    }

    fn conversation(&self, platform: &str, chat: &str) -> Result<Conversation> {
        let mut conn = self.conn();
        // Looked up and started in one write transaction: two callers never start two.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let conversation = Self::active_conversation(&tx, platform, chat)?;
        tx.commit()?;
        Ok(conversation)
    }

    fn reset_conversation(&self, platform: &str, chat: &str) -> Result<()> {
        self.conn().prepare_cached("UPDATE conversations SET active = 0 WHERE platform = ?1 AND chat = ?2 AND active = 1")?.execute(params![platform, chat],
        )?;
        Ok(())
    }

    fn commit_turn(&self, commit: &TurnCommit<'_>) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        if commit.user.is_some() || commit.assistant.is_some() {
            let conversation = Self::active_conversation(&tx, commit.platform, commit.chat)?.id;
            for (role, content) in [("user", commit.user), ("assistant", commit.assistant)] {
                if let Some(content) = content {
                    tx.prepare_cached("INSERT INTO turns (conversation_id, role, content, created_at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![conversation, role, content, now],
                    )?;
                }
            }
        }
        let ids = Self::insert_parts(
            &tx,
            commit.platform,
            commit.chat,
            &to_send(commit.parts),
            commit.origin,
            now,
        )?;
        Self::insert_parts(
            &tx,
            commit.platform,
            commit.chat,
            &refusals(commit.refused),
            commit.origin,
            now,
        )?;
        for id in commit.inbound_ids {
            let marked = tx
                .prepare_cached(
                    "UPDATE inbound SET state = 'done' WHERE id = ?1 AND state = 'pending'",
                )?
                .execute(params![id])?;
            if marked == 0 {
                return Err(StoreError::Conflict(format!(
                    "inbound message {id} is no longer pending"
                )));
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// One gateway per SQLite database: its dispatcher alone runs the turns.
    fn claim_conversation(&self, _platform: &str, _chat: &str, _lease: Duration) -> Result<bool> {
        Ok(true)
    }

    fn release_conversation(&self, _platform: &str, _chat: &str) -> Result<()> {
        Ok(())
    }

    fn enqueue(
        &self,
        platform: &str,
        chat: &str,
        parts: &[Part],
        origin: &str,
    ) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids = Self::insert_parts(&tx, platform, chat, &to_send(parts), origin, now_ms())?;
        tx.commit()?;
        Ok(ids)
    }

    fn record_refused(
        &self,
        platform: &str,
        chat: &str,
        refused: &[(Part, String)],
        origin: &str,
    ) -> Result<()> {
        if refused.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Self::insert_parts(&tx, platform, chat, &refusals(refused), origin, now_ms())?;
        tx.commit()?;
        Ok(())
    }

    fn due_parts(&self, now: Millis, limit: usize) -> Result<Vec<OutboxPart>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT o.id, o.platform, o.chat, o.body, o.encoding, o.segments, o.part_index, o.part_count, o.attempts, o.edit,
                    o.media
             FROM outbox o
             WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM outbox p
                               WHERE p.platform = o.platform AND p.chat = o.chat AND p.id < o.id
                                 AND p.state IN ('pending', 'sending', 'ambiguous')
                                 AND (p.state != 'ambiguous' OR p.reconcile_at IS NOT NULL))
             ORDER BY o.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit as i64], part_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn next_due(&self) -> Result<Option<Millis>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?)
    }

    fn claim(&self, id: i64, lease: Duration) -> Result<Option<PartClaim>> {
        let now = now_ms();
        let lease_until = now + lease.as_millis() as i64;
        let attempt: Option<i64> = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'sending', lease_until = ?2, claimed_by = ?3,
                        attempts = attempts + 1, updated_at = ?4, attempted_at = ?4
                 WHERE id = ?1 AND state = 'pending' RETURNING attempts",
            )?
            .query_row(params![id, lease_until, std::process::id(), now], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(attempt.map(|attempt| PartClaim { id, attempt }))
    }

    fn mark_sent(
        &self,
        claim: PartClaim,
        provider_id: &str,
        segments: Option<u32>,
    ) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(&held(
                "UPDATE outbox SET state = 'sent', provider_id = ?4, segments = COALESCE(?5, segments),
                        lease_until = NULL, error = NULL, updated_at = ?6",
            ))?
            .execute(params![
                claim.id,
                claim.attempt,
                std::process::id(),
                provider_id,
                segments,
                now_ms()
            ])?;
        Ok(changed == 1)
    }

    fn mark_retry(
        &self,
        claim: PartClaim,
        next_attempt_at: Millis,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(&held(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?4, error = ?5, error_code = ?6,
                        lease_until = NULL, updated_at = ?7",
            ))?
            .execute(params![
                claim.id,
                claim.attempt,
                std::process::id(),
                next_attempt_at,
                error,
                code,
                now_ms()
            ])?;
        Ok(changed == 1)
    }

    fn mark_final(
        &self,
        claim: PartClaim,
        state: PartState,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(&held(
                "UPDATE outbox SET state = ?4, error = ?5, error_code = ?6, lease_until = NULL,
                        updated_at = ?7",
            ))?
            .execute(params![
                claim.id,
                claim.attempt,
                std::process::id(),
                state.as_str(),
                error,
                code,
                now_ms()
            ])?;
        Ok(changed == 1)
    }

    fn expire_leases(&self) -> Result<usize> {
        let now = now_ms();
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, claimed_by, lease_until FROM outbox WHERE state = 'sending'",
        )?;
        let rows: Vec<(i64, Option<i64>, Option<i64>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let ours = i64::from(std::process::id());
        let mut expired = 0;
        for (id, claimed_by, lease_until) in rows {
            let lease_over = lease_until.is_none_or(|t| t < now);
            let owner_gone = claimed_by.is_none_or(|pid| pid != ours && !process_alive(pid));
            if lease_over || owner_gone {
                expired += conn.prepare_cached("UPDATE outbox SET state = 'ambiguous', lease_until = NULL, updated_at = ?2,
                            reconcile_at = ?2, error = 'interrupted while sending: outcome unknown'
                     WHERE id = ?1 AND state = 'sending'")?.execute(params![id, now],
                )?;
            }
        }
        // A look-up put off by a process that died while it held it is due at once.
        let mut stmt = conn.prepare_cached(
            "SELECT id, claimed_by FROM outbox
             WHERE state = 'ambiguous' AND reconcile_at > ?1 AND claimed_by IS NOT NULL",
        )?;
        let held: Vec<(i64, i64)> = stmt
            .query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, pid) in held {
            if pid != ours && !process_alive(pid) {
                conn.prepare_cached(
                    "UPDATE outbox SET reconcile_at = ?2, claimed_by = NULL
                     WHERE id = ?1 AND state = 'ambiguous' AND claimed_by = ?3",
                )?
                .execute(params![id, now, pid])?;
            }
        }
        Ok(expired)
    }

    fn part_state(&self, id: i64) -> Result<Option<PartState>> {
        let state: Option<String> = self
            .conn()
            .prepare_cached("SELECT state FROM outbox WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        Ok(state.as_deref().map(PartState::parse))
    }

    fn outbox_depth(&self) -> Result<usize> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')")?
            .query_row([], |r| r.get(0))?;
        Ok(n as usize)
    }

    fn suppress(&self, platform: &str, chat: &str, reason: &str) -> Result<()> {
        self.conn().prepare_cached("INSERT OR REPLACE INTO suppressions (platform, chat, reason, created_at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![platform, chat, reason, now_ms()],
        )?;
        Ok(())
    }

    fn unsuppress(&self, platform: &str, chat: &str) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM suppressions WHERE platform = ?1 AND chat = ?2")?
            .execute(params![platform, chat])?;
        Ok(())
    }

    fn is_suppressed(&self, platform: &str, chat: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM suppressions WHERE platform = ?1 AND chat = ?2")?
            .query_row(params![platform, chat], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn last_inbound_at(&self, platform: &str, chat: &str) -> Result<Option<Millis>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT last_inbound_at FROM chat_windows WHERE platform = ?1 AND chat = ?2",
            )?
            .query_row(params![platform, chat], |r| r.get(0))
            .optional()?)
    }

    fn chat_name(&self, platform: &str, chat: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT display_name FROM chat_windows WHERE platform = ?1 AND chat = ?2",
            )?
            .query_row(params![platform, chat], |r| r.get(0))
            .optional()?
            .flatten())
    }
}
