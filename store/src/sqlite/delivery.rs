//! Delivery in SQLite.
use platform_api::DeliveryStatus;
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::messages::{held, part_row};
use crate::{
    DeliveryStore, DeliverySummary, MessageStore, Millis, OutboxFilter, OutboxRow, PartClaim,
    PartState, Reconcilable, Result, Retried, media_names, now_ms,
};

const ROW_COLUMNS: &str = "o.id, o.platform, o.chat, o.part_index, o.part_count, o.state, d.status,
     COALESCE(d.error_code, o.error_code), o.error, o.segments, o.provider_id, o.origin, o.attempts,
     o.created_at, o.updated_at, o.media";

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
        media: media_names(r.get::<_, Option<String>>(15)?.as_deref()),
    })
}

impl DeliveryStore for SqliteStore {
    fn mark_ambiguous(
        &self,
        claim: PartClaim,
        error: &str,
        reconcile_at: Option<Millis>,
    ) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(&held(
                "UPDATE outbox SET state = 'ambiguous', error = ?4, error_code = NULL,
                        lease_until = NULL, reconcile_at = ?5, updated_at = ?6",
            ))?
            .execute(params![
                claim.id,
                claim.attempt,
                std::process::id(),
                error,
                reconcile_at,
                now_ms()
            ])?;
        Ok(changed == 1)
    }

    fn reconcilable(&self, now: Millis, limit: usize) -> Result<Vec<Reconcilable>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, platform, chat, body, encoding, segments, part_index, part_count, attempts,
                    edit, media, COALESCE(attempted_at, updated_at), reconcile_at
             FROM outbox WHERE state = 'ambiguous' AND reconcile_at <= ?1
             ORDER BY reconcile_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit as i64], |r| {
            Ok(Reconcilable {
                part: part_row(r)?,
                attempted_at: r.get(11)?,
                reconcile_at: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn reschedule_reconcile(&self, id: i64, due: Millis, at: Option<Millis>) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET reconcile_at = ?3, claimed_by = ?4
                 WHERE id = ?1 AND state = 'ambiguous' AND reconcile_at = ?2",
            )?
            .execute(params![id, due, at, i64::from(std::process::id())])?;
        Ok(changed == 1)
    }

    fn provider_id_known(&self, platform: &str, provider_id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM outbox WHERE platform = ?1 AND provider_id = ?2")?
            .query_row(params![platform, provider_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn reconcile_sent(
        &self,
        id: i64,
        held: Millis,
        provider_id: &str,
        segments: Option<u32>,
    ) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'sent', provider_id = ?4, segments = COALESCE(?5, segments),
                 reconcile_at = NULL, error = NULL, updated_at = ?6
                 WHERE id = ?1 AND state = 'ambiguous' AND reconcile_at = ?2 AND claimed_by = ?3",
            )?
            .execute(params![
                id,
                held,
                std::process::id(),
                provider_id,
                segments,
                now_ms()
            ])?;
        Ok(changed == 1)
    }

    fn reconcile_unsent(&self, id: i64, held: Millis) -> Result<bool> {
        let now = now_ms();
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?4, reconcile_at = NULL,
                 error = 'not found at the provider after an unknown outcome: sent again', updated_at = ?4
                 WHERE id = ?1 AND state = 'ambiguous' AND reconcile_at = ?2 AND claimed_by = ?3",
            )?
            .execute(params![id, held, std::process::id(), now])?;
        Ok(changed == 1)
    }

    fn retry_part(&self, id: i64) -> Result<Retried> {
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

    fn record_delivery(&self, status: &DeliveryStatus) -> Result<bool> {
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

    fn chat_of(&self, platform: &str, provider_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT chat FROM outbox WHERE platform = ?1 AND provider_id = ?2")?
            .query_row(params![platform, provider_id], |r| r.get(0))
            .optional()?)
    }

    fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>> {
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

    fn last_reply(&self, platform: &str, chat: &str) -> Result<Option<OutboxRow>> {
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

    fn delivery_summary(&self, since: Millis) -> Result<Vec<DeliverySummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT o.platform, COALESCE(d.status, o.state), COALESCE(d.error_code, o.error_code), COUNT(*),
                    COALESCE(o.encoding = 'MMS', 0)
             FROM outbox o
             LEFT JOIN delivery_status d ON d.platform = o.platform AND d.provider_id = o.provider_id
             WHERE o.created_at >= ?1
             GROUP BY 1, 2, 3, 5 ORDER BY 1, 4 DESC",
        )?;
        let rows = stmt.query_map(params![since], |r| {
            Ok(DeliverySummary {
                platform: r.get(0)?,
                outcome: r.get(1)?,
                code: r.get(2)?,
                count: r.get(3)?,
                mms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
