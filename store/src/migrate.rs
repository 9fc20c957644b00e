//! Copying a single-node home's SQLite database into PostgreSQL (`hermes migrate`): the step
//! from one gateway to several sharing one database, without losing a conversation, a queued
//! part or a job.
//!
//! The copy is one PostgreSQL transaction, so it lands whole or not at all: a failure halfway
//! leaves the target as empty as it was, and the operator can simply run it again. Ids are kept
//! (turns point at their conversation and runs at their job, and `hermes outbox list` keeps
//! naming the parts it named before), and every id sequence is moved past the copied ids so that
//! the rows a gateway adds next do not collide with them. The source is read in one read
//! transaction of a read-only connection: a consistent snapshot, and nothing in it changes.
//!
//! What exists only to coordinate gateways sharing PostgreSQL (replicas, conversation claims,
//! journal positions) is not copied: a single-node home has none of it, and SQLite's journal
//! position describes one file in one home, not the shared database.
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::{Millis, StoreError, now_ms};

/// Rows sent to PostgreSQL per statement: few round trips for a large home, while one batch
/// of long turns still fits comfortably in memory.
const BATCH: usize = 5_000;

/// File bytes sent to PostgreSQL per statement at most (beyond one file): a batch of media
/// rows is cut short well before [`BATCH`] files.
const BATCH_BYTES: usize = 64 * 1024 * 1024;

/// How long the copy waits for the tables it locks: a gateway already writing to the target
/// makes it fail with a message rather than wait without end.
const LOCK_TIMEOUT: &str = "10s";

/// What a part caught mid-send is recorded with: its outcome is unknown.
const INTERRUPTED: &str = "interrupted while sending: outcome unknown";

/// How a column's values travel: SQLite stores every integer as a 64-bit integer and booleans
/// as 0/1, PostgreSQL has `BIGINT` and `BOOLEAN`; a file's bytes are a `BLOB` in one and a
/// `BYTEA` in the other.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bool,
    Bytes,
}

/// One column copied: its name in both databases, and what is read from SQLite for it when
/// that is not the column as it stands.
struct Column {
    name: &'static str,
    kind: Kind,
    source: Option<&'static str>,
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
        source: None,
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
        source: None,
    }
}

const fn bytes(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Bytes,
        source: None,
    }
}

const fn boolean(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Bool,
        source: None,
    }
}

/// A column whose value is computed from the SQLite row (`:now` is the time of the copy).
const fn computed(name: &'static str, kind: Kind, source: &'static str) -> Column {
    Column {
        name,
        kind,
        source: Some(source),
    }
}

/// One table copied.
struct Table {
    name: &'static str,
    /// Whether its `id` is a `BIGSERIAL` whose sequence must move past the copied ids.
    serial: bool,
    columns: &'static [Column],
}

/// The tables copied, in an order that satisfies the foreign keys (conversations before their
/// turns, jobs before their runs).
const TABLES: &[Table] = &[
    Table {
        name: "inbound",
        serial: true,
        columns: &[
            int("id"),
            text("platform"),
            text("provider_id"),
            text("chat"),
            text("sender"),
            text("text"),
            text("attachments"),
            text("control"),
            int("received_at"),
            text("state"),
            text("live_message"),
            text("sender_name"),
        ],
    },
    Table {
        name: "conversations",
        serial: true,
        columns: &[
            int("id"),
            text("platform"),
            text("chat"),
            int("created_at"),
            boolean("active"),
        ],
    },
    Table {
        name: "turns",
        serial: true,
        columns: &[
            int("id"),
            int("conversation_id"),
            text("role"),
            text("content"),
            int("created_at"),
        ],
    },
    // A part the stopped gateway was sending may or may not have reached the provider: it
    // becomes ambiguous, due for a look-up now, as a gateway taking over a dead one's lease
    // records it. `claimed_by` names a process of the old gateway: it stays NULL.
    Table {
        name: "outbox",
        serial: true,
        columns: &[
            int("id"),
            text("platform"),
            text("chat"),
            text("body"),
            text("encoding"),
            int("segments"),
            int("part_index"),
            int("part_count"),
            text("origin"),
            computed(
                "state",
                Kind::Text,
                "CASE WHEN state = 'sending' THEN 'ambiguous' ELSE state END",
            ),
            int("attempts"),
            int("next_attempt_at"),
            computed(
                "lease_until",
                Kind::Int,
                "CASE WHEN state = 'sending' THEN NULL ELSE lease_until END",
            ),
            text("provider_id"),
            computed(
                "error",
                Kind::Text,
                "CASE WHEN state = 'sending' THEN :interrupted ELSE error END",
            ),
            computed(
                "error_code",
                Kind::Int,
                "CASE WHEN state = 'sending' THEN NULL ELSE error_code END",
            ),
            int("created_at"),
            computed(
                "updated_at",
                Kind::Int,
                "CASE WHEN state = 'sending' THEN :now ELSE updated_at END",
            ),
            int("attempted_at"),
            computed(
                "reconcile_at",
                Kind::Int,
                "CASE WHEN state = 'sending' THEN :now ELSE reconcile_at END",
            ),
            text("edit"),
            text("media"),
        ],
    },
    // Files both ways: inbound attachments' bytes and the files of replies, whose tokens in
    // public URLs and in queued parts keep working.
    Table {
        name: "media",
        serial: true,
        columns: &[
            int("id"),
            int("inbound_id"),
            int("idx"),
            text("token"),
            text("state"),
            text("content_type"),
            text("name"),
            int("size"),
            text("error"),
            text("transcript"),
            bytes("bytes"),
            int("created_at"),
            int("expires_at"),
        ],
    },
    // When each chat last wrote, and its display name: a WhatsApp chat's 24-hour window stays
    // as it was.
    Table {
        name: "chat_windows",
        serial: false,
        columns: &[
            text("platform"),
            text("chat"),
            int("last_inbound_at"),
            text("display_name"),
        ],
    },
    Table {
        name: "delivery_status",
        serial: false,
        columns: &[
            text("platform"),
            text("provider_id"),
            text("status"),
            int("rank"),
            int("error_code"),
            int("updated_at"),
        ],
    },
    Table {
        name: "suppressions",
        serial: false,
        columns: &[
            text("platform"),
            text("chat"),
            text("reason"),
            int("created_at"),
        ],
    },
    Table {
        name: "receive_cursors",
        serial: false,
        columns: &[text("platform"), text("position"), int("updated_at")],
    },
    Table {
        name: "pairing",
        serial: false,
        columns: &[
            text("platform"),
            text("sender"),
            text("code"),
            int("created_at"),
            int("expires_at"),
            int("approved_at"),
        ],
    },
    Table {
        name: "cron_jobs",
        serial: true,
        columns: &[
            int("id"),
            text("name"),
            text("schedule"),
            text("kind"),
            text("payload"),
            text("deliver"),
            text("origin_platform"),
            text("origin_chat"),
            boolean("paused"),
            boolean("done"),
            int("next_run_at"),
            text("last_status"),
            int("last_run_at"),
            int("created_at"),
        ],
    },
    Table {
        name: "cron_runs",
        serial: true,
        columns: &[
            int("id"),
            int("job_id"),
            text("trigger"),
            int("started_at"),
            int("ended_at"),
            text("status"),
            text("output"),
            text("deliveries"),
        ],
    },
];

/// Why a copy was not made.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target already holds a gateway's data (these tables have rows): copying into it
    /// would mix two histories and collide on ids, so nothing was written.
    #[error("the target database already holds data (rows in {})", .0.join(", "))]
    NotEmpty(Vec<&'static str>),
    /// The source lacks a table or column this hermes copies: it was last opened by an older
    /// hermes, which did not upgrade it.
    #[error("gateway.db predates this hermes ({0})")]
    OldSource(String),
    /// Either database failed (PostgreSQL's message never carries the connection settings).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        let message = match &e {
            rusqlite::Error::SqliteFailure(_, Some(message)) => Some(message),
            rusqlite::Error::SqlInputError { msg, .. } => Some(msg),
            _ => None,
        };
        match message {
            Some(message) if message.starts_with("no such ") => {
                MigrateError::OldSource(message.clone())
            }
            _ => MigrateError::Store(e.into()),
        }
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Store(e.into())
    }
}

/// What a copy copied.
#[derive(Debug)]
pub struct Copied {
    /// Rows copied per table, in the order they were copied.
    pub tables: Vec<(&'static str, u64)>,
    /// Parts that were being sent when the gateway stopped, copied as ambiguous: the operator
    /// is told they will be looked up at the provider rather than sent again.
    pub interrupted: u64,
}

/// Copies the SQLite database at `source` into the PostgreSQL database at `url`, whose schema
/// must exist already (opening it as a store creates it) and whose tables must be empty.
///
/// The tables are locked for the copy, and checked for rows inside the same transaction, so
/// that a gateway writing to the target meanwhile cannot slip rows in between check and copy.
pub fn copy(source: &Path, url: &str) -> Result<Copied, MigrateError> {
    let sqlite = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    sqlite.busy_timeout(Duration::from_secs(5))?;
    let snapshot = sqlite.unchecked_transaction()?;

    let target = crate::postgres::connection(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Config(format!("starting the database runtime: {e}")))?;
    runtime.block_on(async {
        let (mut client, connection) = target.config.connect(target.tls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let tx = client.transaction().await?;
        let names: Vec<String> = TABLES.iter().map(|t| quoted(t.name)).collect();
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; LOCK TABLE {} IN EXCLUSIVE MODE",
            names.join(", ")
        ))
        .await?;
        let mut holding = Vec::new();
        for table in TABLES {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(table.name));
            if tx.query_one(&sql, &[]).await?.get::<_, bool>(0) {
                holding.push(table.name);
            }
        }
        if !holding.is_empty() {
            tx.rollback().await?;
            return Err(MigrateError::NotEmpty(holding));
        }

        let interrupted: i64 = snapshot.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'sending'",
            [],
            |r| r.get(0),
        )?;
        let now = now_ms();
        let mut tables = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let rows = copy_table(&snapshot, &tx, table, now).await?;
            if table.serial && rows > 0 {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'), MAX(id)) FROM {} HAVING MAX(id) IS NOT NULL",
                    quoted(table.name)
                );
                tx.execute(&sql, &[&table.name]).await?;
            }
            tables.push((table.name, rows));
        }
        tx.commit().await?;
        Ok(Copied {
            tables,
            interrupted: interrupted as u64,
        })
    })
}

/// A name quoted for SQL (`trigger` and `rank` are key words to one database or the other).
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// Copies one table in batches; how many rows.
async fn copy_table(
    source: &Connection,
    target: &Transaction<'_>,
    table: &Table,
    now: Millis,
) -> Result<u64, MigrateError> {
    let select = format!(
        "SELECT {} FROM {} ORDER BY rowid",
        table
            .columns
            .iter()
            .map(|c| c.source.map_or_else(|| quoted(c.name), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        quoted(table.name)
    );
    let insert = format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({})",
        quoted(table.name),
        table
            .columns
            .iter()
            .map(|c| quoted(c.name))
            .collect::<Vec<_>>()
            .join(", "),
        table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}[]", i + 1, c.kind.sql_type()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let insert = target.prepare(&insert).await?;
    let mut stmt = source.prepare(&select)?;
    if let Some(i) = stmt.parameter_index(":now")? {
        stmt.raw_bind_parameter(i, now)?;
    }
    if let Some(i) = stmt.parameter_index(":interrupted")? {
        stmt.raw_bind_parameter(i, INTERRUPTED)?;
    }
    let mut columns: Vec<Values> = table.columns.iter().map(|c| Values::new(c.kind)).collect();
    let mut pending = 0;
    let mut pending_bytes = 0;
    let mut copied = 0;
    let mut rows = stmt.raw_query();
    loop {
        let row = rows.next()?;
        if let Some(row) = row {
            for (i, values) in columns.iter_mut().enumerate() {
                pending_bytes += values.push(row, i)?;
            }
            pending += 1;
        }
        if pending > 0 && (pending == BATCH || pending_bytes >= BATCH_BYTES || row.is_none()) {
            let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Values::param).collect();
            copied += target.execute(&insert, &params).await?;
            columns.iter_mut().for_each(Values::clear);
            pending = 0;
            pending_bytes = 0;
        }
        if row.is_none() {
            return Ok(copied);
        }
    }
}

impl Kind {
    fn sql_type(self) -> &'static str {
        match self {
            Kind::Int => "BIGINT",
            Kind::Text => "TEXT",
            Kind::Bool => "BOOLEAN",
            Kind::Bytes => "BYTEA",
        }
    }
}

/// One column of a batch, as the array PostgreSQL unnests.
enum Values {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Values {
    fn new(kind: Kind) -> Values {
        match kind {
            Kind::Int => Values::Int(Vec::with_capacity(BATCH)),
            Kind::Text => Values::Text(Vec::with_capacity(BATCH)),
            Kind::Bool => Values::Bool(Vec::with_capacity(BATCH)),
            Kind::Bytes => Values::Bytes(Vec::new()),
        }
    }

    /// Adds column `i` of `row`; how many bytes of files that holds ([`BATCH_BYTES`]).
    fn push(&mut self, row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<usize> {
        match self {
            Values::Int(v) => v.push(row.get(i)?),
            Values::Text(v) => v.push(row.get(i)?),
            Values::Bool(v) => v.push(row.get::<_, Option<i64>>(i)?.map(|b| b != 0)),
            Values::Bytes(v) => {
                let bytes: Option<Vec<u8>> = row.get(i)?;
                let len = bytes.as_ref().map_or(0, Vec::len);
                v.push(bytes);
                return Ok(len);
            }
        }
        Ok(0)
    }

    fn clear(&mut self) {
        match self {
            Values::Int(v) => v.clear(),
            Values::Text(v) => v.clear(),
            Values::Bool(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Values::Int(v) => v,
            Values::Text(v) => v,
            Values::Bool(v) => v,
            Values::Bytes(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, suite};

    /// SQLite tables left behind on purpose: the journal position describes one file in one
    /// home.
    const NOT_COPIED: &[&str] = &["inbound_journal"];

    /// SQLite columns left behind on purpose: a process id of the stopped gateway.
    const NOT_COPIED_COLUMNS: &[(&str, &str)] = &[("outbox", "claimed_by")];

    /// A fresh SQLite database with the current schema, and the directory holding it.
    fn sqlite() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("gateway.db");
        drop(Store::open(&path).expect("creates the schema"));
        (dir, path)
    }

    fn names(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(sql).expect(sql);
        let mut names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect(sql)
            .collect::<rusqlite::Result<_>>()
            .expect(sql);
        names.sort();
        names
    }

    #[test]
    fn every_sqlite_table_and_column_is_copied_or_left_on_purpose() {
        let (_dir, path) = sqlite();
        let conn = Connection::open(&path).expect("opens");
        let tables = names(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        );
        for table in &tables {
            if NOT_COPIED.contains(&table.as_str()) {
                continue;
            }
            let spec = TABLES
                .iter()
                .find(|t| t.name == table)
                .unwrap_or_else(|| panic!("{table} is neither copied nor left on purpose"));
            let mut copied: Vec<String> = spec.columns.iter().map(|c| c.name.to_string()).collect();
            copied.extend(
                NOT_COPIED_COLUMNS
                    .iter()
                    .filter(|(t, _)| t == table)
                    .map(|(_, c)| c.to_string()),
            );
            copied.sort();
            let columns = names(
                &conn,
                &format!("SELECT name FROM pragma_table_info('{table}')"),
            );
            assert_eq!(copied, columns, "{table}");
        }
        for spec in TABLES {
            assert!(
                tables.iter().any(|t| t == spec.name),
                "{} in SQLite",
                spec.name
            );
        }
    }

    #[test]
    fn an_empty_home_copies_and_every_column_fits_postgresql() {
        let Some(db) = suite::postgres() else { return };
        let url = db.postgres_url().expect("a PostgreSQL URL");
        drop(Store::postgres(&url, "home", "replica").expect("creates the schema"));
        let (_dir, path) = sqlite();
        // Each table's insert is prepared even without rows: PostgreSQL checks every column's
        // name and type.
        let copied = copy(&path, &url).expect("copies");
        assert_eq!(copied.tables.len(), TABLES.len());
        assert!(copied.tables.iter().all(|(_, rows)| *rows == 0));
        assert_eq!(copied.interrupted, 0);
    }

    #[test]
    fn files_and_the_parts_carrying_them_are_copied() {
        use crate::{InboundFile, MediaState, OutboundFile};
        use platform_api::{Part, PartMedia, SendAs};

        let Some(db) = suite::postgres() else { return };
        let url = db.postgres_url().expect("a PostgreSQL URL");
        drop(Store::postgres(&url, "home", "replica").expect("creates the schema"));
        let (_dir, path) = sqlite();
        let home = Store::open(&path).expect("opens");
        let picture: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let inbound = home
            .put_inbound_media(&InboundFile {
                inbound_id: 4,
                index: 0,
                content_type: "image/jpeg",
                name: "photo.jpg",
                bytes: &picture,
            })
            .expect("keeps");
        home.set_transcript(inbound, "a cat").expect("transcribes");
        home.inbound_media_failed(4, 1, "audio/ogg", "voice.ogg", "gone")
            .expect("records");
        home.put_outbound_media(&OutboundFile {
            token: "tok-1",
            content_type: "application/pdf",
            name: "report.pdf",
            bytes: b"%PDF-1.7",
            expires_at: 4_000_000_000_000,
        })
        .expect("keeps");
        let media = PartMedia {
            token: "tok-1".into(),
            name: "report.pdf".into(),
            content_type: "application/pdf".into(),
            size: 8,
            send_as: SendAs::Document,
            bytes: None,
            url: None,
        };
        let part = Part {
            media: vec![media.clone()],
            ..Part::plain("your report")
        };
        home.enqueue("sms", "+15550001111", &[part], "send")
            .expect("queues");
        drop(home);

        let copied = copy(&path, &url).expect("copies");
        assert!(copied.tables.contains(&("media", 3)), "{:?}", copied.tables);
        let target = Store::postgres(&url, "home", "replica").expect("opens");
        let kept = target.inbound_media(&[4]).expect("reads");
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].id, inbound);
        assert_eq!(kept[0].transcript.as_deref(), Some("a cat"));
        assert_eq!(kept[1].state, MediaState::Failed);
        assert_eq!(kept[1].error.as_deref(), Some("gone"));
        assert!(target.media_bytes(inbound).expect("reads") == Some(picture));
        let (meta, bytes) = target
            .outbound_media("tok-1")
            .expect("reads")
            .expect("kept");
        assert_eq!(bytes, b"%PDF-1.7");
        assert_eq!(meta.expires_at, Some(4_000_000_000_000));
        let due = target.due_parts(target.now() + 1, 10).expect("reads");
        assert_eq!(due[0].part.media, [media]);
        // New files get ids past the copied ones.
        let next = target
            .put_outbound_media(&OutboundFile {
                token: "tok-2",
                content_type: "text/plain",
                name: "a.txt",
                bytes: b"a",
                expires_at: 0,
            })
            .expect("keeps");
        assert!(next > meta.id);
    }

    #[test]
    fn a_target_with_data_is_refused_and_left_alone() {
        let Some(db) = suite::postgres() else { return };
        let url = db.postgres_url().expect("a PostgreSQL URL");
        let target = Store::postgres(&url, "home", "replica").expect("creates the schema");
        let id = target
            .enqueue(
                "sms",
                "+15550001111",
                &[platform_api::Part::plain("hi")],
                "send",
            )
            .expect("queues");
        let (_dir, path) = sqlite();
        let refused = copy(&path, &url).expect_err("refused");
        assert!(
            matches!(&refused, MigrateError::NotEmpty(tables) if tables == &["outbox"]),
            "{refused}"
        );
        assert!(target.part_state(id[0]).expect("reads").is_some());
    }
}
