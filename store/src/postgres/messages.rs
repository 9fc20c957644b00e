//! Inbound messages, the journal's import position, conversations, the outbox and the
//! suppression list, in PostgreSQL.
use crate::StoreError;
use platform_api::{Accepted, Inbound, Part};
use tokio_postgres::Row;

use std::time::Duration;

use super::PgStore;
use super::clock::db_now;
use crate::{
    Conversation, MessageStore, Millis, OutboxPart, PartClaim, PartState, REPLICA_STALE_MS, Result,
    StoredInbound, TurnCommit, control_str, journal, media_json, parse_control, parse_media,
    refusals, to_ms, to_send,
};

/// The gateways alive, on the server's clock: their last heartbeat within `$n` ms
/// ([`REPLICA_STALE_MS`]) of now. A macro, so that statements stay string literals.
macro_rules! alive {
    ($n:literal) => {
        concat!(
            "(SELECT name FROM replicas WHERE seen_at >= ",
            $crate::postgres::clock::db_now!(),
            " - ",
            $n,
            ")"
        )
    };
}
pub(super) use alive;

/// `update` of an outgoing part, made only while the claim it names (`$1` the part, `$2` the
/// attempt, `$3` this gateway) still holds it: a sender that lost the part changes nothing.
macro_rules! held {
    ($update:literal) => {
        concat!(
            $update,
            " WHERE id = $1 AND state = 'sending' AND attempts = $2 AND claimed_by = $3"
        )
    };
}
pub(super) use held;

/// Inserts one inbound message; a second with the same platform and provider id changes
/// nothing.
/// A message's attachments as stored.
fn attachments_json(inbound: &Inbound) -> String {
    if inbound.attachments.is_empty() {
        "[]".into()
    } else {
        serde_json::to_string(&inbound.attachments).unwrap_or_else(|_| "[]".into())
    }
}

async fn insert_one(
    client: &impl deadpool_postgres::GenericClient,
    inbound: &Inbound,
) -> Result<Accepted> {
    let attachments = attachments_json(inbound);
    let control = inbound.control.map(control_str);
    let changed = client
        .execute(
            "INSERT INTO inbound (platform, provider_id, chat, sender, text, attachments, control, received_at, sender_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (platform, provider_id) DO NOTHING",
            &[
                &inbound.platform,
                &inbound.provider_id,
                &inbound.chat,
                &inbound.sender,
                &inbound.text,
                &attachments,
                &control,
                &to_ms(inbound.received_at),
                &inbound.sender_name,
            ],
        )
        .await?;
    if changed != 1 {
        return Ok(Accepted::Duplicate);
    }
    client
        .execute(
            concat!(
                "INSERT INTO chat_windows (platform, chat, last_inbound_at, display_name) VALUES ($1, $2, ",
                db_now!(),
                ", $3) ON CONFLICT (platform, chat) DO UPDATE
                   SET last_inbound_at = GREATEST(chat_windows.last_inbound_at, EXCLUDED.last_inbound_at),
                       display_name = COALESCE(EXCLUDED.display_name, chat_windows.display_name)"
            ),
            &[&inbound.platform, &inbound.chat, &inbound.sender_name],
        )
        .await?;
    Ok(Accepted::Stored)
}

/// Stores a batch of messages and records how far the journal is imported, in one statement
/// (one round trip and one commit, however many messages: the webhooks waiting for them are
/// answered the sooner), in order, each once: a message already stored, or earlier in the
/// batch, is a duplicate.
async fn import_batch(
    client: &deadpool_postgres::Object,
    home: &str,
    batch: &[Inbound],
    to: journal::Position,
) -> Result<Vec<Accepted>> {
    let column = |f: &dyn Fn(&Inbound) -> String| batch.iter().map(f).collect::<Vec<String>>();
    let platforms = column(&|i| i.platform.clone());
    let ids = column(&|i| i.provider_id.clone());
    let chats = column(&|i| i.chat.clone());
    let senders = column(&|i| i.sender.clone());
    let texts = column(&|i| i.text.clone());
    let attachments = column(&|i| attachments_json(i));
    let controls: Vec<Option<&str>> = batch.iter().map(|i| i.control.map(control_str)).collect();
    let received: Vec<i64> = batch.iter().map(|i| to_ms(i.received_at)).collect();
    let names: Vec<Option<&str>> = batch.iter().map(|i| i.sender_name.as_deref()).collect();
    // A data-modifying CTE runs whether or not it is read: both writes commit together.
    let statement = client
        .prepare_cached(concat!(
            "WITH new AS (
               INSERT INTO inbound (platform, provider_id, chat, sender, text, attachments, control, received_at, sender_name)
               SELECT platform, provider_id, chat, sender, text, attachments, control, received_at, sender_name
               FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                           $7::TEXT[], $8::BIGINT[], $12::TEXT[])
                    WITH ORDINALITY
                    AS m (platform, provider_id, chat, sender, text, attachments, control, received_at, sender_name, n)
               ORDER BY n
               ON CONFLICT (platform, provider_id) DO NOTHING
               RETURNING id, platform, provider_id, chat, sender_name
             ), windows AS (
               INSERT INTO chat_windows (platform, chat, last_inbound_at, display_name)
               SELECT DISTINCT ON (platform, chat) platform, chat, ",
            db_now!(),
            ", sender_name FROM new
               ORDER BY platform, chat, sender_name IS NULL, id DESC
               ON CONFLICT (platform, chat) DO UPDATE
                 SET last_inbound_at = GREATEST(chat_windows.last_inbound_at, EXCLUDED.last_inbound_at),
                     display_name = COALESCE(EXCLUDED.display_name, chat_windows.display_name)
             ), position AS (
               INSERT INTO inbound_journal (home, generation, \"offset\") VALUES ($9, $10, $11)
               ON CONFLICT (home) DO UPDATE
                 SET generation = EXCLUDED.generation, \"offset\" = EXCLUDED.\"offset\"
             )
             SELECT platform, provider_id FROM new",
        ))
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &platforms,
                &ids,
                &chats,
                &senders,
                &texts,
                &attachments,
                &controls,
                &received,
                &home,
                &(to.generation as i64),
                &(to.offset as i64),
                &names,
            ],
        )
        .await?;
    let mut stored: std::collections::HashSet<(String, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(batch
        .iter()
        .map(|i| {
            if stored.remove(&(i.platform.clone(), i.provider_id.clone())) {
                Accepted::Stored
            } else {
                Accepted::Duplicate
            }
        })
        .collect())
}

/// Records how far this home's journal is imported.
async fn record_position(
    client: &impl deadpool_postgres::GenericClient,
    home: &str,
    to: journal::Position,
) -> Result<()> {
    client
        .execute(
            "INSERT INTO inbound_journal (home, generation, \"offset\") VALUES ($1, $2, $3)
             ON CONFLICT (home) DO UPDATE SET generation = EXCLUDED.generation, \"offset\" = EXCLUDED.\"offset\"",
            &[&home, &(to.generation as i64), &(to.offset as i64)],
        )
        .await?;
    Ok(())
}

/// The chat's active conversation, started at `now` if there is none (two replicas starting
/// one at once meet on the unique index; the loser reads the winner's).
async fn active_conversation(
    client: &impl deadpool_postgres::GenericClient,
    platform: &str,
    chat: &str,
    now: Millis,
) -> Result<Conversation> {
    client
        .execute(
            "INSERT INTO conversations (platform, chat, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (platform, chat) WHERE active DO NOTHING",
            &[&platform, &chat, &now],
        )
        .await?;
    let row = client
        .query_one(
            "SELECT id, created_at FROM conversations WHERE platform = $1 AND chat = $2 AND active",
            &[&platform, &chat],
        )
        .await?;
    Ok(Conversation {
        id: row.get(0),
        started_at: row.get(1),
    })
}

/// Queues parts for a chat, in order, each with its reason when it is refused (recorded
/// failed, never sent); returns their ids.
async fn insert_parts(
    client: &impl deadpool_postgres::GenericClient,
    platform: &str,
    chat: &str,
    parts: &[(&Part, Option<&str>)],
    origin: &str,
    now: Millis,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(parts.len());
    let count = parts.len() as i64;
    for (i, (part, refused)) in parts.iter().enumerate() {
        let state = if refused.is_some() {
            "failed"
        } else {
            "pending"
        };
        let row = client
            .query_one(
                "INSERT INTO outbox (platform, chat, body, encoding, segments, part_index, part_count, origin,
                                     next_attempt_at, created_at, updated_at, edit, media, state, error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9, $10, $11, $12, $13) RETURNING id",
                &[
                    &platform,
                    &chat,
                    &part.body,
                    &part.encoding,
                    &i64::from(part.segments),
                    &(i as i64 + 1),
                    &count,
                    &origin,
                    &now,
                    &part.edit,
                    &media_json(part),
                    &state,
                    refused,
                ],
            )
            .await?;
        ids.push(row.get(0));
    }
    Ok(ids)
}

fn inbound_row(r: &Row) -> StoredInbound {
    let attachments: String = r.get(5);
    let control: Option<String> = r.get(6);
    StoredInbound {
        id: r.get(0),
        platform: r.get(1),
        chat: r.get(2),
        sender: r.get(3),
        text: r.get(4),
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        control: control.as_deref().and_then(parse_control),
        live_message: r.get(7),
        sender_name: r.get(8),
    }
}

/// An outgoing part from the first eleven columns of `r` (id, platform, chat, body, encoding,
/// segments, part index, part count, attempts, edit, media).
pub(super) fn part_row(r: &Row) -> OutboxPart {
    let segments: i64 = r.get(5);
    OutboxPart {
        id: r.get(0),
        platform: r.get(1),
        chat: r.get(2),
        part: Part {
            body: r.get(3),
            encoding: r.get(4),
            segments: u32::try_from(segments).unwrap_or(1),
            edit: r.get(9),
            media: parse_media(r.get::<_, Option<&str>>(10)),
        },
        index: r.get(6),
        count: r.get(7),
        attempts: r.get(8),
    }
}

impl MessageStore for PgStore {
    fn insert_inbound(&self, inbound: &Inbound) -> Result<Accepted> {
        self.block(async {
            let client = self.client().await?;
            insert_one(&client, inbound).await
        })
    }

    fn import_inbound(&self, batch: &[Inbound], to: journal::Position) -> Result<Vec<Accepted>> {
        self.block(async {
            let client = self.client().await?;
            import_batch(&client, self.home(), batch, to).await
        })
    }

    fn journal_position(&self) -> Result<journal::Position> {
        self.block(async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT generation, \"offset\" FROM inbound_journal WHERE home = $1",
                    &[&self.home()],
                )
                .await?;
            Ok(row.map_or(
                journal::Position {
                    generation: 0,
                    offset: 0,
                },
                |r| journal::Position {
                    generation: r.get::<_, i64>(0) as u64,
                    offset: r.get::<_, i64>(1) as u64,
                },
            ))
        })
    }

    fn set_journal_position(&self, to: journal::Position) -> Result<()> {
        self.block(async {
            let client = self.client().await?;
            record_position(&client, self.home(), to).await
        })
    }

    fn pending_inbound(&self, limit: usize) -> Result<Vec<StoredInbound>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, platform, chat, sender, text, attachments, control, live_message, sender_name FROM inbound
                     WHERE state = 'pending' ORDER BY id LIMIT $1",
                    &[&(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(inbound_row).collect())
        })
    }

    fn pending_inbound_of(
        &self,
        platform: &str,
        chat: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredInbound>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, platform, chat, sender, text, attachments, control, live_message, sender_name FROM inbound
                     WHERE platform = $1 AND chat = $2 AND id > $3 AND state = 'pending'
                     ORDER BY id LIMIT $4",
                    &[&platform, &chat, &after, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(inbound_row).collect())
        })
    }

    fn pending_inbound_count(&self) -> Result<usize> {
        self.block(async {
            let client = self.client().await?;
            let n: i64 = client
                .query_one("SELECT COUNT(*) FROM inbound WHERE state = 'pending'", &[])
                .await?
                .get(0);
            Ok(n as usize)
        })
    }

    fn set_live_message(&self, inbound_id: i64, provider_id: &str) -> Result<()> {
        self.exec(
            "UPDATE inbound SET live_message = $2 WHERE id = $1",
            &[&inbound_id, &provider_id],
        )?;
        Ok(())
    }

    fn mark_inbound(&self, ids: &[i64], state: &str) -> Result<()> {
        self.exec(
            "UPDATE inbound SET state = $2 WHERE id = ANY($1)",
            &[&ids, &state],
        )?;
        Ok(())
    }

    fn mark_inbound_states(&self, marks: &[(i64, &str)]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = marks.iter().map(|(id, _)| *id).collect();
        let states: Vec<&str> = marks.iter().map(|(_, state)| *state).collect();
        self.exec(
            "UPDATE inbound SET state = m.state
             FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS m (id, state) WHERE inbound.id = m.id",
            &[&ids, &states],
        )?;
        Ok(())
    }

    fn history(&self, platform: &str, chat: &str, limit: usize) -> Result<Vec<(String, String)>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT role, content FROM turns WHERE conversation_id =
                        (SELECT id FROM conversations WHERE platform = $1 AND chat = $2 AND active)
                     ORDER BY id DESC LIMIT $3",
                    &[&platform, &chat, &(limit as i64)],
                )
                .await?;
            let mut turns: Vec<(String, String)> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            turns.reverse();
            Ok(turns)
        })
    }

    fn turn_count(&self, platform: &str, chat: &str) -> Result<i64> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_one(
                    "SELECT COUNT(*) FROM turns t JOIN conversations c ON c.id = t.conversation_id
                     WHERE c.platform = $1 AND c.chat = $2 AND c.active",
                    &[&platform, &chat],
                )
                .await?
                .get(0))
        })
    }

    fn conversation(&self, platform: &str, chat: &str) -> Result<Conversation> {
        self.block(async {
            let client = self.client().await?;
            active_conversation(&client, platform, chat, self.server_now()).await
        })
    }

    fn reset_conversation(&self, platform: &str, chat: &str) -> Result<()> {
        self.exec(
            "UPDATE conversations SET active = FALSE WHERE platform = $1 AND chat = $2 AND active",
            &[&platform, &chat],
        )?;
        Ok(())
    }

    fn commit_turn(&self, commit: &TurnCommit<'_>) -> Result<Vec<i64>> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let now = self.server_now();
            // Only while this gateway holds the conversation; the share lock keeps another
            // from taking it over until this commits.
            let holds = tx
                .query_opt(
                    "SELECT 1 FROM conversation_claims
                     WHERE platform = $1 AND chat = $2 AND replica = $3 FOR SHARE",
                    &[&commit.platform, &commit.chat, &self.replica()],
                )
                .await?;
            if holds.is_none() {
                return Err(StoreError::Conflict(
                    "this gateway's hold on the conversation lapsed: another gateway took it over"
                        .to_string(),
                ));
            }
            if commit.user.is_some() || commit.assistant.is_some() {
                let conversation = active_conversation(&tx, commit.platform, commit.chat, now)
                    .await?
                    .id;
                for (role, content) in [("user", commit.user), ("assistant", commit.assistant)] {
                    if let Some(content) = content {
                        tx.execute(
                            "INSERT INTO turns (conversation_id, role, content, created_at) VALUES ($1, $2, $3, $4)",
                            &[&conversation, &role, &content, &now],
                        )
                        .await?;
                    }
                }
            }
            let ids = insert_parts(
                &tx,
                commit.platform,
                commit.chat,
                &to_send(commit.parts),
                commit.origin,
                now,
            )
            .await?;
            insert_parts(
                &tx,
                commit.platform,
                commit.chat,
                &refusals(commit.refused),
                commit.origin,
                now,
            )
            .await?;
            let marked = tx
                .execute(
                    "UPDATE inbound SET state = 'done' WHERE id = ANY($1) AND state = 'pending'",
                    &[&commit.inbound_ids],
                )
                .await?;
            if marked as usize != commit.inbound_ids.len() {
                // Dropping the transaction rolls it back.
                return Err(StoreError::Conflict(
                    "an inbound message of the turn is no longer pending".to_string(),
                ));
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    fn claim_conversation(&self, platform: &str, chat: &str, lease: Duration) -> Result<bool> {
        let lease = lease.as_millis() as i64;
        self.block(async {
            let client = self.client().await?;
            // One statement: of gateways racing for a free conversation (or one whose hold
            // lapsed, or whose holder stopped), the row lock lets one win; the holder itself
            // may always extend. Both ends on the server's clock.
            let claimed = client
                .query_opt(
                    concat!(
                        "INSERT INTO conversation_claims (platform, chat, replica, until)
                         VALUES ($1, $2, $3, ",
                        db_now!(),
                        " + $4)
                         ON CONFLICT (platform, chat) DO UPDATE
                           SET replica = EXCLUDED.replica, until = EXCLUDED.until
                           WHERE conversation_claims.replica = EXCLUDED.replica
                              OR conversation_claims.until < ",
                        db_now!(),
                        " OR conversation_claims.replica NOT IN ",
                        alive!("$5"),
                        " RETURNING 1"
                    ),
                    &[&platform, &chat, &self.replica(), &lease, &REPLICA_STALE_MS],
                )
                .await?;
            Ok(claimed.is_some())
        })
    }

    fn release_conversation(&self, platform: &str, chat: &str) -> Result<()> {
        self.exec(
            "DELETE FROM conversation_claims WHERE platform = $1 AND chat = $2 AND replica = $3",
            &[&platform, &chat, &self.replica()],
        )?;
        Ok(())
    }

    fn enqueue(
        &self,
        platform: &str,
        chat: &str,
        parts: &[Part],
        origin: &str,
    ) -> Result<Vec<i64>> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let ids = insert_parts(
                &tx,
                platform,
                chat,
                &to_send(parts),
                origin,
                self.server_now(),
            )
            .await?;
            tx.commit().await?;
            Ok(ids)
        })
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
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let refused = refusals(refused);
            insert_parts(&tx, platform, chat, &refused, origin, self.server_now()).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn due_parts(&self, now: Millis, limit: usize) -> Result<Vec<OutboxPart>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT o.id, o.platform, o.chat, o.body, o.encoding, o.segments, o.part_index, o.part_count, o.attempts, o.edit,
                            o.media
                     FROM outbox o
                     WHERE o.state = 'pending' AND o.next_attempt_at <= $1
                       AND NOT EXISTS (SELECT 1 FROM outbox p
                                       WHERE p.platform = o.platform AND p.chat = o.chat AND p.id < o.id
                                         AND p.state IN ('pending', 'sending', 'ambiguous')
                                         AND (p.state != 'ambiguous' OR p.reconcile_at IS NOT NULL))
                     ORDER BY o.id LIMIT $2",
                    &[&now, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(part_row).collect())
        })
    }

    fn next_due(&self) -> Result<Option<Millis>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_one(
                    "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                    &[],
                )
                .await?
                .get(0))
        })
    }

    fn claim(&self, id: i64, lease: Duration) -> Result<Option<PartClaim>> {
        let lease = lease.as_millis() as i64;
        // A part another gateway is claiming is skipped, not waited for (SKIP LOCKED); and it
        // is claimed only while it is still its chat's first open part, so that parts go out
        // in order per chat whichever gateway sends them.
        self.block(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(concat!(
                    "UPDATE outbox SET state = 'sending', lease_until = ",
                    db_now!(),
                    " + $2, claimed_by = $3, attempts = attempts + 1,
                            updated_at = ",
                    db_now!(),
                    ", attempted_at = ",
                    db_now!(),
                    " WHERE id = (SELECT o.id FROM outbox o
                                 WHERE o.id = $1 AND o.state = 'pending'
                                   AND NOT EXISTS (SELECT 1 FROM outbox p
                                                   WHERE p.platform = o.platform AND p.chat = o.chat
                                                     AND p.id < o.id
                                                     AND p.state IN ('pending', 'sending', 'ambiguous'))
                                 FOR UPDATE SKIP LOCKED)
                     RETURNING attempts"
                ))
                .await?;
            let claimed = client
                .query_opt(&statement, &[&id, &lease, &self.replica()])
                .await?;
            Ok(claimed.map(|row| PartClaim {
                id,
                attempt: row.get(0),
            }))
        })
    }

    fn mark_sent(
        &self,
        claim: PartClaim,
        provider_id: &str,
        segments: Option<u32>,
    ) -> Result<bool> {
        let segments = segments.map(i64::from);
        let changed = self.exec(
            held!(
                "UPDATE outbox SET state = 'sent', provider_id = $4, segments = COALESCE($5, segments),
                        lease_until = NULL, error = NULL, updated_at = $6"
            ),
            &[
                &claim.id,
                &claim.attempt,
                &self.replica(),
                &provider_id,
                &segments,
                &self.server_now(),
            ],
        )?;
        Ok(changed == 1)
    }

    fn mark_retry(
        &self,
        claim: PartClaim,
        next_attempt_at: Millis,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool> {
        let changed = self.exec(
            held!(
                "UPDATE outbox SET state = 'pending', next_attempt_at = $4, error = $5,
                        error_code = $6, lease_until = NULL, updated_at = $7"
            ),
            &[
                &claim.id,
                &claim.attempt,
                &self.replica(),
                &next_attempt_at,
                &error,
                &code,
                &self.server_now(),
            ],
        )?;
        Ok(changed == 1)
    }

    fn mark_final(
        &self,
        claim: PartClaim,
        state: PartState,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool> {
        let changed = self.exec(
            held!(
                "UPDATE outbox SET state = $4, error = $5, error_code = $6, lease_until = NULL,
                        updated_at = $7"
            ),
            &[
                &claim.id,
                &claim.attempt,
                &self.replica(),
                &state.as_str(),
                &error,
                &code,
                &self.server_now(),
            ],
        )?;
        Ok(changed == 1)
    }

    fn expire_leases(&self) -> Result<usize> {
        // A part is taken back when its lease ran out, or when the gateway holding it stopped
        // (no heartbeat for a while): a gateway killed mid-send is noticed in seconds. Both
        // on the server's clock.
        let expired = self.exec(
            concat!(
                "UPDATE outbox SET state = 'ambiguous', lease_until = NULL, updated_at = ",
                db_now!(),
                ", reconcile_at = ",
                db_now!(),
                ", error = 'interrupted while sending: outcome unknown'
                 WHERE state = 'sending'
                   AND (lease_until IS NULL OR lease_until < ",
                db_now!(),
                " OR claimed_by IS NULL
                        OR (claimed_by <> $1 AND claimed_by NOT IN ",
                alive!("$2"),
                "))"
            ),
            &[&self.replica(), &REPLICA_STALE_MS],
        )?;
        // A look-up put off by a gateway that stopped while it held it is due at once.
        self.exec(
            concat!(
                "UPDATE outbox SET reconcile_at = ",
                db_now!(),
                ", claimed_by = NULL
                 WHERE state = 'ambiguous' AND reconcile_at > ",
                db_now!(),
                " AND claimed_by IS NOT NULL AND claimed_by <> $1
                   AND claimed_by NOT IN ",
                alive!("$2")
            ),
            &[&self.replica(), &REPLICA_STALE_MS],
        )?;
        Ok(expired as usize)
    }

    fn part_state(&self, id: i64) -> Result<Option<PartState>> {
        self.block(async {
            let client = self.client().await?;
            let state: Option<String> = client
                .query_opt("SELECT state FROM outbox WHERE id = $1", &[&id])
                .await?
                .map(|r| r.get(0));
            Ok(state.as_deref().map(PartState::parse))
        })
    }

    fn outbox_depth(&self) -> Result<usize> {
        self.block(async {
            let client = self.client().await?;
            let n: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')",
                    &[],
                )
                .await?
                .get(0);
            Ok(n as usize)
        })
    }

    fn suppress(&self, platform: &str, chat: &str, reason: &str) -> Result<()> {
        self.exec(
            "INSERT INTO suppressions (platform, chat, reason, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (platform, chat) DO UPDATE SET reason = EXCLUDED.reason, created_at = EXCLUDED.created_at",
            &[&platform, &chat, &reason, &self.server_now()],
        )?;
        Ok(())
    }

    fn unsuppress(&self, platform: &str, chat: &str) -> Result<()> {
        self.exec(
            "DELETE FROM suppressions WHERE platform = $1 AND chat = $2",
            &[&platform, &chat],
        )?;
        Ok(())
    }

    fn is_suppressed(&self, platform: &str, chat: &str) -> Result<bool> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT 1 FROM suppressions WHERE platform = $1 AND chat = $2",
                    &[&platform, &chat],
                )
                .await?
                .is_some())
        })
    }

    fn last_inbound_at(&self, platform: &str, chat: &str) -> Result<Option<Millis>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT last_inbound_at FROM chat_windows WHERE platform = $1 AND chat = $2",
                    &[&platform, &chat],
                )
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn chat_name(&self, platform: &str, chat: &str) -> Result<Option<String>> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(
                    "SELECT display_name FROM chat_windows WHERE platform = $1 AND chat = $2",
                    &[&platform, &chat],
                )
                .await?
                .and_then(|r| r.get(0)))
        })
    }
}
