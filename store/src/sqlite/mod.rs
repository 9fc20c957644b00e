//! The store in SQLite (`$HERMES_HOME/gateway.db`), in WAL mode, checkpointed on a thread of
//! its own.
use crate::store::StoreError;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use platform_api::{Accepted, Inbound, Part};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{
    MessageStore, Millis, OutboxPart, PartClaim, PartState, Result, StoredInbound, TurnCommit,
    control_str, journal, now_ms, parse_control, to_ms,
};

mod cron;
mod delivery;
mod pairing;
mod replicas;
mod shared;

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE inbound (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    chat TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',
    control TEXT,
    received_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (platform, provider_id)
);
CREATE INDEX inbound_pending ON inbound (id) WHERE state = 'pending';
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX conversations_active ON conversations (platform, chat) WHERE active = 1;
CREATE TABLE turns (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX turns_by_conversation ON turns (conversation_id, id);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    body TEXT NOT NULL,
    encoding TEXT,
    segments INTEGER NOT NULL DEFAULT 1,
    part_index INTEGER NOT NULL,
    part_count INTEGER NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    claimed_by INTEGER,
    provider_id TEXT,
    error TEXT,
    error_code INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX outbox_open ON outbox (platform, chat, id) WHERE state IN ('pending', 'sending');
CREATE TABLE suppressions (
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (platform, chat)
);
CREATE TABLE pairing (
    platform TEXT NOT NULL,
    sender TEXT NOT NULL,
    code TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    approved_at INTEGER,
    PRIMARY KEY (platform, sender)
);
"#,
    // Cron jobs and their runs (SPEC section 7).
    r#"
CREATE TABLE cron_jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    schedule TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    deliver TEXT NOT NULL,
    origin_platform TEXT,
    origin_chat TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    next_run_at INTEGER,
    last_status TEXT,
    last_run_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX cron_jobs_due ON cron_jobs (next_run_at) WHERE paused = 0 AND done = 0;
CREATE TABLE cron_runs (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES cron_jobs (id),
    trigger TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    status TEXT,
    output TEXT,
    deliveries TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX cron_runs_by_job ON cron_runs (job_id, id);
"#,
    // How far the inbound journal is imported (journal.rs).
    r#"
CREATE TABLE inbound_journal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    offset INTEGER NOT NULL
);
INSERT INTO inbound_journal (id, generation, offset) VALUES (1, 0, 0);
"#,
    // Delivery: reconciliation of unknown outcomes and the provider's delivery statuses
    // (SPEC section 8).
    r#"
ALTER TABLE outbox ADD COLUMN attempted_at INTEGER;
ALTER TABLE outbox ADD COLUMN reconcile_at INTEGER;
DROP INDEX outbox_open;
CREATE INDEX outbox_open ON outbox (platform, chat, id) WHERE state IN ('pending', 'sending', 'ambiguous');
CREATE INDEX outbox_reconcile ON outbox (reconcile_at) WHERE state = 'ambiguous';
CREATE INDEX outbox_provider ON outbox (platform, provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX outbox_recent ON outbox (created_at);
CREATE TABLE delivery_status (
    platform TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    status TEXT NOT NULL,
    rank INTEGER NOT NULL,
    error_code INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (platform, provider_id)
);
"#,
    // A turn takes everything waiting in its chat (MessageStore::pending_inbound_of).
    r#"
CREATE INDEX inbound_pending_chat ON inbound (platform, chat, id) WHERE state = 'pending';
"#,
    // Where a polled platform's receive loop resumes (SharedStore::receive_cursor).
    r#"
CREATE TABLE receive_cursors (
    platform TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#,
];

/// A stored inbound message from the columns id, platform, chat, sender, text, attachments,
/// control.
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
    })
}

/// An outgoing part from the first nine columns of `r` (id, platform, chat, body, encoding,
/// segments, part index, part count, attempts).
/// `update` of an outgoing part, made only while the claim it names (?1 the part, ?2 the
/// attempt, ?3 this process) still holds it: a sender that lost the part changes nothing.
pub(super) fn held(update: &str) -> String {
    format!("{update} WHERE id = ?1 AND state = 'sending' AND attempts = ?2 AND claimed_by = ?3")
}

pub(super) fn part_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxPart> {
    Ok(OutboxPart {
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
    })
}

/// The SQLite backend: one connection, shared behind a lock.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// What gateways sharing a database would keep in it: this one is alone.
    local: Mutex<crate::store::shared::LocalShared>,
}

/// Size of the write-ahead log past which a checkpoint rewinds it.
const WAL_BOUND: u64 = 256 * 1024 * 1024;

/// How often the write-ahead log is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Size of the write-ahead log past which a checkpoint makes sure it starts over.
const WAL_REUSE: u64 = 8 * 1024 * 1024;

/// Checkpoints the WAL on its own connection while the store is open.
///
/// A checkpoint copies the log's frames into the database without holding anything up. Under
/// sustained writes that is not enough for the log to start over (new frames always follow
/// the copied ones), and a log that only grows makes every commit extend a file, which costs
/// the kernel fresh pages to zero. So once the log is past [`WAL_REUSE`], a second checkpoint
/// holds the store's connection while it copies the few frames written meanwhile: with every
/// frame copied, the next write starts the log over from its beginning.
fn spawn_checkpointer(path: &Path, store: std::sync::Weak<Mutex<Connection>>) {
    let Ok(conn) = Connection::open(path) else {
        return;
    };
    let _ = conn.busy_timeout(Duration::from_secs(1));
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    let checkpoint = move |mode: &str| {
        let _ = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
    };
    let _ = std::thread::Builder::new()
        .name("hermes-checkpoint".to_string())
        .spawn(move || {
            while let Some(shared) = store.upgrade() {
                let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
                // Another process's reader can keep the log from starting over; past a bound,
                // RESTART waits for it to let go.
                checkpoint(if size() > WAL_BOUND {
                    "RESTART"
                } else {
                    "PASSIVE"
                });
                if size() > WAL_REUSE {
                    let _writes = shared.lock().unwrap_or_else(|p| p.into_inner());
                    checkpoint("PASSIVE");
                }
                drop(shared);
                std::thread::sleep(CHECKPOINT_EVERY);
            }
            checkpoint("TRUNCATE");
        });
}

/// Whether a process with this id exists (a claim by a dead process can be taken back at once).
fn process_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Every statement is prepared once and kept: there are fewer than this many.
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // With WAL, NORMAL is durable against a crash of the process (kill -9); only a power
        // loss can take back the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoints (copying the WAL into the database, with an fsync) run on a thread of
        // their own instead of inside whichever commit crosses the threshold, so that a webhook
        // never waits for one.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let store = SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            local: Mutex::default(),
        };
        store.migrate()?;
        spawn_checkpointer(path, Arc::downgrade(&store.conn));
        Ok(store)
    }

    pub(crate) fn local(&self) -> MutexGuard<'_, crate::store::shared::LocalShared> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How far the inbound journal of the database at `path` is imported, read without
    /// changing anything (the gateway may be running); `None` when there is no such database
    /// (or it predates the journal).
    pub fn read_journal_position(path: &Path) -> Result<Option<journal::Position>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        match Self::query_journal_position(&conn) {
            Ok(position) => Ok(Some(position)),
            Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn query_journal_position(conn: &Connection) -> rusqlite::Result<journal::Position> {
        let (generation, offset): (i64, i64) = conn.query_row(
            "SELECT generation, offset FROM inbound_journal WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(journal::Position {
            generation: generation as u64,
            offset: offset as u64,
        })
    }

    fn record_journal_position(conn: &Connection, to: journal::Position) -> rusqlite::Result<()> {
        conn.prepare_cached(
            "UPDATE inbound_journal SET generation = ?1, offset = ?2 WHERE id = 1",
        )?
        .execute(params![to.generation as i64, to.offset as i64])?;
        Ok(())
    }

    fn insert_one(conn: &Connection, inbound: &Inbound) -> rusqlite::Result<Accepted> {
        let attachments = if inbound.attachments.is_empty() {
            "[]".into()
        } else {
            serde_json::to_string(&inbound.attachments).unwrap_or_else(|_| "[]".into())
        };
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO inbound (platform, provider_id, chat, sender, text, attachments, control, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let changed = stmt.execute(params![
            inbound.platform,
            inbound.provider_id,
            inbound.chat,
            inbound.sender,
            inbound.text,
            attachments,
            inbound.control.map(control_str),
            to_ms(inbound.received_at),
        ])?;
        Ok(if changed == 1 {
            Accepted::Stored
        } else {
            Accepted::Duplicate
        })
    }

    fn active_conversation(conn: &Connection, platform: &str, chat: &str) -> rusqlite::Result<i64> {
        let existing: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM conversations WHERE platform = ?1 AND chat = ?2 AND active = 1",
            )?
            .query_row(params![platform, chat], |r| r.get(0))
            .optional()?;
        match existing {
            Some(id) => Ok(id),
            None => {
                conn.prepare_cached(
                    "INSERT INTO conversations (platform, chat, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![platform, chat, now_ms()])?;
                Ok(conn.last_insert_rowid())
            }
        }
    }

    fn insert_parts(
        tx: &Connection,
        platform: &str,
        chat: &str,
        parts: &[Part],
        origin: &str,
        now: Millis,
    ) -> rusqlite::Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(parts.len());
        let count = parts.len() as i64;
        for (i, part) in parts.iter().enumerate() {
            tx.prepare_cached("INSERT INTO outbox (platform, chat, body, encoding, segments, part_index, part_count, origin,
                                     next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)")?.execute(params![platform, chat, part.body, part.encoding, part.segments, i as i64 + 1, count, origin, now],
            )?;
            ids.push(tx.last_insert_rowid());
        }
        Ok(ids)
    }
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
            "SELECT id, platform, chat, sender, text, attachments, control FROM inbound
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
            "SELECT id, platform, chat, sender, text, attachments, control FROM inbound
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
            let conversation = Self::active_conversation(&tx, commit.platform, commit.chat)?;
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
            commit.parts,
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
        let ids = Self::insert_parts(&tx, platform, chat, parts, origin, now_ms())?;
        tx.commit()?;
        Ok(ids)
    }

    fn due_parts(&self, now: Millis, limit: usize) -> Result<Vec<OutboxPart>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT o.id, o.platform, o.chat, o.body, o.encoding, o.segments, o.part_index, o.part_count, o.attempts
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::suite::messages::inbound;

    #[test]
    fn the_write_ahead_log_starts_over_under_sustained_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("gateway.db")).unwrap();
        let wal = dir.path().join("gateway.db-wal");
        // Commits back to back for several checkpoint rounds, the log past WAL_REUSE in each.
        let text = "x".repeat(200);
        let started = std::time::Instant::now();
        let mut n = 0;
        while started.elapsed() < CHECKPOINT_EVERY * 6 || n < 10_000 {
            let batch: Vec<Inbound> = (0..4)
                .map(|i| inbound(&format!("SM{n}-{i}"), &text))
                .collect();
            let to = journal::Position {
                generation: 1,
                offset: n,
            };
            store.import_inbound(&batch, to).unwrap();
            n += 1;
        }
        // The log's header counts the times it started over (its checkpoint sequence number,
        // bytes 12..16, big-endian). Without a checkpoint that keeps writes out, a log that is
        // written to without pause never does.
        let header = std::fs::read(&wal).unwrap();
        let restarts = u32::from_be_bytes(header[12..16].try_into().unwrap());
        assert!(
            restarts >= 2,
            "the log started over {restarts} times in {n} commits"
        );
    }
}
