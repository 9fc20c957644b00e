//! Delivery in PostgreSQL.
use platform_api::DeliveryStatus;
use tokio_postgres::Row;

use super::PgStore;
use super::messages::{held, part_row};
use crate::{
    DeliveryStore, DeliverySummary, Millis, OutboxFilter, OutboxRow, PartClaim, PartState,
    Reconcilable, Result, Retried, media_names,
};

const ROW_COLUMNS: &str = "o.id, o.platform, o.chat, o.part_index, o.part_count, o.state, d.status,
     COALESCE(d.error_code, o.error_code), o.error, o.segments, o.provider_id, o.origin, o.attempts,
     o.created_at, o.updated_at, o.media";

fn outbox_row(r: &Row) -> OutboxRow {
    OutboxRow {
        id: r.get(0),
        platform: r.get(1),
        chat: r.get(2),
        part: r.get(3),
        parts: r.get(4),
        state: r.get(5),
        status: r.get(6),
        error_code: r.get(7),
        error: r.get(8),
        segments: r.get(9),
        provider_id: r.get(10),
        origin: r.get(11),
        attempts: r.get(12),
        created_at: r.get(13),
        updated_at: r.get(14),
        media: media_names(r.get::<_, Option<&str>>(15)),
    }
}

fn reconcilable_row(r: &Row) -> Reconcilable {
    Reconcilable {
        part: part_row(r),
        attempted_at: r.get(11),
        reconcile_at: r.get(12),
    }
}

impl DeliveryStore for PgStore {
    fn mark_ambiguous(
        &self,
        claim: PartClaim,
        error: &str,
        reconcile_at: Option<Millis>,
    ) -> Result<bool> {
        let changed = self.exec(
            held!(
                "UPDATE outbox SET state = 'ambiguous', error = $4, error_code = NULL,
                        lease_until = NULL, reconcile_at = $5, updated_at = $6"
            ),
            &[
                &claim.id,
                &claim.attempt,
                &self.replica(),
                &error,
                &reconcile_at,
                &self.server_now(),
            ],
        )?;
        Ok(changed == 1)
    }

    fn reconcilable(&self, now: Millis, limit: usize) -> Result<Vec<Reconcilable>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, platform, chat, body, encoding, segments, part_index, part_count, attempts,
                            edit, media, COALESCE(attempted_at, updated_at), reconcile_at
                     FROM outbox WHERE state = 'ambiguous' AND reconcile_at <= $1
                     ORDER BY reconcile_at, id LIMIT $2",
                    &[&now, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(reconcilable_row).collect())
        })
    }

    fn reschedule_reconcile(&self, id: i64, due: Millis, at: Option<Millis>) -> Result<bool> {
        self.block(async {
            let client = self.client().await?;
            let changed = client
                .execute(
                    "UPDATE outbox SET reconcile_at = $3, claimed_by = $4
                     WHERE id = $1 AND state = 'ambiguous' AND reconcile_at = $2",
                    &[&id, &due, &at, &self.replica()],
                )
                .await?;
            Ok(changed == 1)
        })
    }

    fn provider_id_known(&self, platform: &str, provider_id: &str) -> Result<bool> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT 1 FROM outbox WHERE platform = $1 AND provider_id = $2 LIMIT 1",
                    &[&platform, &provider_id],
                )
                .await?
                .is_some())
        })
    }

    fn reconcile_sent(
        &self,
        id: i64,
        held: Millis,
        provider_id: &str,
        segments: Option<u32>,
    ) -> Result<bool> {
        let segments = segments.map(i64::from);
        let changed = self.exec(
            "UPDATE outbox SET state = 'sent', provider_id = $4, segments = COALESCE($5, segments),
                    reconcile_at = NULL, error = NULL, updated_at = $6
             WHERE id = $1 AND state = 'ambiguous' AND reconcile_at = $2 AND claimed_by = $3",
            &[
                &id,
                &held,
                &self.replica(),
                &provider_id,
                &segments,
                &self.server_now(),
            ],
        )?;
        Ok(changed == 1)
    }

    fn reconcile_unsent(&self, id: i64, held: Millis) -> Result<bool> {
        let changed = self.exec(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $4, reconcile_at = NULL,
                    error = 'not found at the provider after an unknown outcome: sent again',
                    updated_at = $4
             WHERE id = $1 AND state = 'ambiguous' AND reconcile_at = $2 AND claimed_by = $3",
            &[&id, &held, &self.replica(), &self.server_now()],
        )?;
        Ok(changed == 1)
    }

    fn retry_part(&self, id: i64) -> Result<Retried> {
        let now = self.server_now();
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // The part is locked while its state is judged, so the state reported is the one
            // the decision was made on.
            let Some(row) = tx
                .query_opt("SELECT state FROM outbox WHERE id = $1 FOR UPDATE", &[&id])
                .await?
            else {
                return Ok(Retried::Missing);
            };
            let state = PartState::parse(row.get(0));
            if !matches!(state, PartState::Failed | PartState::Ambiguous) {
                return Ok(Retried::NotRetryable(state));
            }
            tx.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = $2, reconcile_at = NULL,
                 attempts = 0, error = NULL, error_code = NULL, updated_at = $2
                 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(Retried::Queued)
        })
    }

    fn record_delivery(&self, status: &DeliveryStatus) -> Result<bool> {
        let rank = i64::from(DeliveryStatus::rank(&status.status));
        self.block(async {
            let client = self.client().await?;
            // One statement: a concurrent report for the same message either lands first (and
            // this one is judged against it) or after.
            let changed = client
                .execute(
                    "INSERT INTO delivery_status (platform, provider_id, status, rank, error_code, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (platform, provider_id) DO UPDATE
                     SET status = EXCLUDED.status, rank = EXCLUDED.rank,
                         error_code = COALESCE(EXCLUDED.error_code, delivery_status.error_code),
                         updated_at = EXCLUDED.updated_at
                     WHERE delivery_status.rank < EXCLUDED.rank",
                    &[
                        &status.platform,
                        &status.provider_id,
                        &status.status,
                        &rank,
                        &status.error_code,
                        &self.server_now(),
                    ],
                )
                .await?;
            Ok(changed == 1)
        })
    }

    fn chat_of(&self, platform: &str, provider_id: &str) -> Result<Option<String>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT chat FROM outbox WHERE platform = $1 AND provider_id = $2
                     ORDER BY id LIMIT 1",
                    &[&platform, &provider_id],
                )
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>> {
        let chats = (!filter.chats.is_empty()).then_some(&filter.chats);
        let limit = filter.limit.max(1) as i64;
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {ROW_COLUMNS} FROM outbox o
                         LEFT JOIN delivery_status d
                           ON d.platform = o.platform AND d.provider_id = o.provider_id
                         WHERE ($1::text[] IS NULL OR o.chat = ANY($1))
                           AND ($2::text IS NULL OR o.state = $2 OR d.status = $2)
                         ORDER BY o.id DESC LIMIT $3"
                    ),
                    &[&chats, &filter.state, &limit],
                )
                .await?;
            Ok(rows.iter().map(outbox_row).collect())
        })
    }

    fn last_reply(&self, platform: &str, chat: &str) -> Result<Option<OutboxRow>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    &format!(
                        "SELECT {ROW_COLUMNS} FROM outbox o
                         LEFT JOIN delivery_status d
                           ON d.platform = o.platform AND d.provider_id = o.provider_id
                         WHERE o.platform = $1 AND o.chat = $2 AND o.origin = 'reply'
                         ORDER BY o.id DESC LIMIT 1"
                    ),
                    &[&platform, &chat],
                )
                .await?
                .as_ref()
                .map(outbox_row))
        })
    }

    fn delivery_summary(&self, since: Millis) -> Result<Vec<DeliverySummary>> {
        self.block(async {
            let client = self.client().await?;
            // Platforms in byte order, as SQLite sorts text; ties in the order SQLite's grouping
            // leaves them (outcome, then code, no code first).
            let rows = client
                .query(
                    "SELECT o.platform, COALESCE(d.status, o.state), COALESCE(d.error_code, o.error_code),
                            COUNT(*), COALESCE(o.encoding = 'MMS', false)
                     FROM outbox o
                     LEFT JOIN delivery_status d
                       ON d.platform = o.platform AND d.provider_id = o.provider_id
                     WHERE o.created_at >= $1
                     GROUP BY 1, 2, 3, 5
                     ORDER BY o.platform COLLATE \"C\", 4 DESC, COALESCE(d.status, o.state) COLLATE \"C\",
                              COALESCE(d.error_code, o.error_code) NULLS FIRST, 5",
                    &[&since],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| DeliverySummary {
                    platform: r.get(0),
                    outcome: r.get(1),
                    code: r.get(2),
                    count: r.get(3),
                    mms: r.get(4),
                })
                .collect())
        })
    }
}
