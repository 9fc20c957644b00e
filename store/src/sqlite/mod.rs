//! The store in SQLite (`$HERMES_HOME/gateway.db`), in WAL mode, checkpointed on a thread of
//! its own.
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use platform_api::{Accepted, Inbound, Part};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Conversation, Millis, Result, control_str, journal, media_json, now_ms, to_ms};

mod cron;
mod delivery;
mod media;
mod messages;
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
    // Replies shown while they are written: the message showing a turn's reply, and the
    // message a part edits (SPEC section 11).
    r#"
ALTER TABLE inbound ADD COLUMN live_message TEXT;
ALTER TABLE outbox ADD COLUMN edit TEXT;
"#,
    // Pictures, files and voice both ways: inbound attachments' bytes, the files of replies,
    // and the files a queued part carries (SPEC section 12). A file's bytes are the record's
    // last field: SQLite keeps a `zeroblob` as a count only there, and otherwise builds the
    // whole file in memory (twice) to insert it (SqliteStore::put_file).
    r#"
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    inbound_id INTEGER,
    idx INTEGER NOT NULL DEFAULT 0,
    token TEXT UNIQUE,
    state TEXT NOT NULL,
    content_type TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    transcript TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    bytes BLOB,
    UNIQUE (inbound_id, idx)
);
CREATE INDEX media_created ON media (created_at);
ALTER TABLE outbox ADD COLUMN media TEXT;
"#,
    // When each chat last wrote: WhatsApp lets free-form messages through for 24 hours after
    // it (SPEC section 13).
    r#"
CREATE TABLE chat_windows (
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    last_inbound_at INTEGER NOT NULL,
    PRIMARY KEY (platform, chat)
);
INSERT INTO chat_windows (platform, chat, last_inbound_at)
    SELECT platform, chat, MAX(received_at) FROM inbound GROUP BY platform, chat;
"#,
    // The name a sender shows (WhatsApp's profile name), with their message and as the chat's
    // display name (SPEC section 13).
    r#"
ALTER TABLE inbound ADD COLUMN sender_name TEXT;
ALTER TABLE chat_windows ADD COLUMN display_name TEXT;
"#,
];

/// The SQLite backend: one connection, shared behind a lock.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// What gateways sharing a database would keep in it: this one is alone.
    local: Mutex<crate::shared::LocalShared>,
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

    pub(crate) fn local(&self) -> MutexGuard<'_, crate::shared::LocalShared> {
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
            "INSERT OR IGNORE INTO inbound (platform, provider_id, chat, sender, text, attachments, control, received_at, sender_name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
            inbound.sender_name,
        ])?;
        if changed != 1 {
            return Ok(Accepted::Duplicate);
        }
        conn.prepare_cached(
            "INSERT INTO chat_windows (platform, chat, last_inbound_at, display_name)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (platform, chat) DO UPDATE
               SET last_inbound_at = MAX(last_inbound_at, excluded.last_inbound_at),
                   display_name = COALESCE(excluded.display_name, display_name)",
        )?
        .execute(params![
            inbound.platform,
            inbound.chat,
            to_ms(inbound.received_at),
            inbound.sender_name
        ])?;
        Ok(Accepted::Stored)
    }

    /// The chat's active conversation, started now if there is none.
    fn active_conversation(
        conn: &Connection,
        platform: &str,
        chat: &str,
    ) -> rusqlite::Result<Conversation> {
        let existing = conn
            .prepare_cached(
                "SELECT id, created_at FROM conversations WHERE platform = ?1 AND chat = ?2 AND active = 1",
            )?
            .query_row(params![platform, chat], |r| {
                Ok(Conversation {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                })
            })
            .optional()?;
        match existing {
            Some(conversation) => Ok(conversation),
            None => {
                let started_at = now_ms();
                conn.prepare_cached(
                    "INSERT INTO conversations (platform, chat, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![platform, chat, started_at])?;
                Ok(Conversation {
                    id: conn.last_insert_rowid(),
                    started_at,
                })
            }
        }
    }

    /// Queues parts for a chat, in order, each with its reason when it is refused (recorded
    /// failed, never sent); returns their ids.
    fn insert_parts(
        tx: &Connection,
        platform: &str,
        chat: &str,
        parts: &[(&Part, Option<&str>)],
        origin: &str,
        now: Millis,
    ) -> rusqlite::Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(parts.len());
        let count = parts.len() as i64;
        for (i, (part, refused)) in parts.iter().enumerate() {
            let state = if refused.is_some() {
                "failed"
            } else {
                "pending"
            };
            tx.prepare_cached(
                "INSERT INTO outbox (platform, chat, body, encoding, segments, part_index, part_count, origin,
                                     next_attempt_at, created_at, updated_at, edit, media, state, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                platform,
                chat,
                part.body,
                part.encoding,
                part.segments,
                i as i64 + 1,
                count,
                origin,
                now,
                part.edit,
                media_json(part),
                state,
                refused
            ])?;
            ids.push(tx.last_insert_rowid());
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::suite::messages::inbound;

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
