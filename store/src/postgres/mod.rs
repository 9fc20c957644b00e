//! The store in PostgreSQL, for several gateways sharing one database (`HERMES_DATABASE_URL`).
//!
//! tokio-postgres does the wire protocol and deadpool-postgres pools its connections. The store
//! contract is synchronous (its callers hold no async context of their own: the importer
//! thread, the dispatcher, the CLI), so the client runs on a small runtime of its own
//! ([`PgStore::block`]): a call enters that runtime and waits for its future on the calling
//! thread, which is what a SQLite call does too.
//!
//! Schema changes are versioned ([`MIGRATIONS`]) and applied at start inside a transaction that
//! holds an advisory lock, so two replicas starting together apply each once; a database whose
//! schema is newer than this binary knows is refused.
use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::{Result, StoreError};

mod clock;
mod cron;
mod delivery;
mod media;
mod messages;
mod pairing;
mod replicas;
mod shared;
mod tls;

pub use tls::Checks;
pub(crate) use tls::connection;

/// The advisory lock taken while migrating (any constant shared by every replica).
const MIGRATION_LOCK: i64 = 0x6865_726d_6573; // "hermes"

/// How long a query waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Connections per replica.
const POOL_SIZE: usize = 16;

/// Schema versions, applied in order; `hermes_schema.version` records how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE inbound (
    id BIGSERIAL PRIMARY KEY,
    platform TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    chat TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',
    control TEXT,
    received_at BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (platform, provider_id)
);
CREATE INDEX inbound_pending ON inbound (id) WHERE state = 'pending';
CREATE INDEX inbound_pending_chat ON inbound (platform, chat, id) WHERE state = 'pending';
CREATE TABLE inbound_journal (
    home TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    "offset" BIGINT NOT NULL
);
CREATE TABLE conversations (
    id BIGSERIAL PRIMARY KEY,
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE UNIQUE INDEX conversations_active ON conversations (platform, chat) WHERE active;
CREATE TABLE replicas (
    name TEXT PRIMARY KEY,
    home TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
CREATE TABLE pacing (
    key TEXT PRIMARY KEY,
    next_free_us BIGINT NOT NULL
);
CREATE TABLE rate_windows (
    key TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    count BIGINT NOT NULL,
    noticed BOOLEAN NOT NULL
);
CREATE TABLE home_overrides (
    platform TEXT PRIMARY KEY,
    chat TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE TABLE conversation_claims (
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    replica TEXT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (platform, chat)
);
CREATE TABLE turns (
    id BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX turns_by_conversation ON turns (conversation_id, id);
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    body TEXT NOT NULL,
    encoding TEXT,
    segments BIGINT NOT NULL DEFAULT 1,
    part_index BIGINT NOT NULL,
    part_count BIGINT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    claimed_by TEXT,
    provider_id TEXT,
    error TEXT,
    error_code BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    attempted_at BIGINT,
    reconcile_at BIGINT
);
CREATE INDEX outbox_open ON outbox (platform, chat, id) WHERE state IN ('pending', 'sending', 'ambiguous');
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_reconcile ON outbox (reconcile_at) WHERE state = 'ambiguous';
CREATE INDEX outbox_provider ON outbox (platform, provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX outbox_recent ON outbox (created_at);
CREATE TABLE delivery_status (
    platform TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    status TEXT NOT NULL,
    rank BIGINT NOT NULL,
    error_code BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (platform, provider_id)
);
CREATE TABLE suppressions (
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (platform, chat)
);
CREATE TABLE pairing (
    platform TEXT NOT NULL,
    sender TEXT NOT NULL,
    code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    approved_at BIGINT,
    PRIMARY KEY (platform, sender)
);
CREATE TABLE cron_jobs (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    schedule TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    deliver TEXT NOT NULL,
    origin_platform TEXT,
    origin_chat TEXT,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    next_run_at BIGINT,
    last_status TEXT,
    last_run_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX cron_jobs_due ON cron_jobs (next_run_at) WHERE NOT paused AND NOT done;
CREATE TABLE cron_runs (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES cron_jobs (id) ON DELETE CASCADE,
    trigger TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    status TEXT,
    output TEXT,
    deliveries TEXT NOT NULL DEFAULT '[]',
    replica TEXT
);
CREATE INDEX cron_runs_by_job ON cron_runs (job_id, id);
"#,
    // Where a polled platform's receive loop resumes (SharedStore::receive_cursor).
    r#"
CREATE TABLE receive_cursors (
    platform TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
    // Replies shown while they are written: the message showing a turn's reply, and the
    // message a part edits (SPEC section 11).
    r#"
ALTER TABLE inbound ADD COLUMN live_message TEXT;
ALTER TABLE outbox ADD COLUMN edit TEXT;
"#,
    // Pictures, files and voice both ways: inbound attachments' bytes, the files of replies,
    // and the files a queued part carries (SPEC section 12). The bytes are stored out of line
    // and uncompressed: pictures, voice and most documents are compressed already, and
    // compressing them again would cost every write for nothing.
    r#"
CREATE TABLE media (
    id BIGSERIAL PRIMARY KEY,
    inbound_id BIGINT,
    idx BIGINT NOT NULL DEFAULT 0,
    token TEXT UNIQUE,
    state TEXT NOT NULL,
    content_type TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    transcript TEXT,
    bytes BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    UNIQUE (inbound_id, idx)
);
ALTER TABLE media ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE INDEX media_created ON media (created_at);
ALTER TABLE outbox ADD COLUMN media TEXT;
"#,
    // When each chat last wrote, on the database's clock: WhatsApp lets free-form messages
    // through for 24 hours after it (SPEC section 13), and every gateway must agree when.
    r#"
CREATE TABLE chat_windows (
    platform TEXT NOT NULL,
    chat TEXT NOT NULL,
    last_inbound_at BIGINT NOT NULL,
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

impl Drop for PgStore {
    /// The runtime is let go without waiting for its workers: the store may be dropped on a
    /// thread that runs async code (the gateway's own runtime), where waiting is not allowed.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The PostgreSQL backend: a pool of connections and the runtime that drives them.
pub struct PgStore {
    pool: Pool,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    /// Names this gateway's `HERMES_HOME` (its inbound journal's import position).
    home: String,
    /// Names this process in the leases it takes.
    replica: String,
    /// When this process connected.
    started_at: i64,
    /// The server's clock, as read from here.
    clock: clock::ServerClock,
    /// What is checked of the server's certificate.
    checks: Checks,
    /// Whether the server is on this machine.
    local: bool,
}

impl PgStore {
    /// Connects to `url`, migrating the schema as needed. `home` names the gateway's
    /// `HERMES_HOME` among those sharing the database; `replica` names this process.
    pub fn connect(url: &str, home: &str, replica: &str) -> Result<PgStore> {
        let connection = connection(url)?;
        let connect_timeout = connection.config.get_connect_timeout().copied();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hermes-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("starting the database runtime: {e}")))?;
        let manager = Manager::from_config(
            connection.config,
            connection.tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .create_timeout(connect_timeout)
            .wait_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("building the connection pool: {e}")))?;
        let mut store = PgStore {
            pool,
            runtime: Some(runtime),
            home: home.to_string(),
            replica: replica.to_string(),
            started_at: 0,
            clock: clock::ServerClock::default(),
            checks: connection.checks,
            local: connection.local,
        };
        store.migrate()?;
        store.read_clock()?;
        store.started_at = store.clock.now_us() / 1000;
        Ok(store)
    }

    /// Runs `future` to completion on the calling thread, inside the database runtime (whose
    /// workers drive the connections' I/O).
    pub(crate) fn block<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        let _context = self.runtime.as_ref().map(tokio::runtime::Runtime::enter);
        futures_executor::block_on(future)
    }

    /// Runs one statement that returns nothing of interest; how many rows it changed.
    pub(crate) fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        self.block(async {
            let client = self.client().await?;
            // Prepared once per connection: a statement sent as text is parsed every time,
            // a round trip of its own.
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        })
    }

    /// Runs one statement and returns its rows.
    pub(crate) fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The name of this gateway's `HERMES_HOME`.
    pub(crate) fn home(&self) -> &str {
        &self.home
    }

    /// The name of this process in leases.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// What is checked of the server's certificate.
    pub(crate) fn checks(&self) -> Checks {
        self.checks
    }

    /// Whether the server is on this machine.
    pub(crate) fn local(&self) -> bool {
        self.local
    }

    /// When this process connected.
    pub(crate) fn started_at(&self) -> i64 {
        self.started_at
    }

    /// The server's time now, in store time, as read from here (for what is written, not
    /// for what decides who holds what: that is compared in the statements themselves).
    pub(crate) fn server_now(&self) -> crate::Millis {
        self.clock.now_us() / 1000
    }

    /// The server's clock as read from here.
    pub(crate) fn clock(&self) -> &clock::ServerClock {
        &self.clock
    }

    /// Reads the server's clock, correcting this machine's offset from it.
    pub(crate) fn read_clock(&self) -> Result<()> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(clock::DB_NOW_US).await?;
            let sent = crate::now_us();
            let server: i64 = client.query_one(&statement, &[]).await?.try_get(0)?;
            self.clock.observe(server, sent, crate::now_us());
            Ok(())
        })
    }

    fn migrate(&self) -> Result<()> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                // "already exists, skipping" is expected at every start after the first.
                "SET LOCAL client_min_messages = warning;
                 CREATE TABLE IF NOT EXISTS hermes_schema (
                     id INTEGER PRIMARY KEY CHECK (id = 1),
                     version BIGINT NOT NULL
                 );
                 INSERT INTO hermes_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
            )
            .await?;
            let version: i64 = tx
                .query_one("SELECT version FROM hermes_schema WHERE id = 1", &[])
                .await?
                .get(0);
            let known = MIGRATIONS.len() as i64;
            if version > known {
                return Err(StoreError::Schema(format!(
                    "the database's schema is version {version}, newer than this hermes knows ({known}): upgrade hermes on this machine"
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "UPDATE hermes_schema SET version = $1 WHERE id = 1",
                    &[&(i as i64 + 1)],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// A pool failure, without the connection settings (which hold the password).
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::from(e),
        other => StoreError::Config(format!("database connection pool: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicaStore;
    use crate::suite;

    #[test]
    fn replicas_starting_together_migrate_once() {
        let Some(db) = suite::postgres() else { return };
        let url = db.postgres_url().expect("a PostgreSQL URL");
        let starts: Vec<_> = (0..4)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || {
                    PgStore::connect(&url, "home", &format!("replica-{i}"))
                        .map(|s| s.schema_version())
                })
            })
            .collect();
        for start in starts {
            let version = start
                .join()
                .expect("a start")
                .expect("connects")
                .expect("a version");
            assert_eq!(version, MIGRATIONS.len() as i64);
        }
    }

    #[test]
    fn a_schema_newer_than_this_binary_is_refused() {
        let Some(db) = suite::postgres() else { return };
        let url = db.postgres_url().expect("a PostgreSQL URL");
        PgStore::connect(&url, "home", "replica").expect("migrates");
        suite::execute(&url, "UPDATE hermes_schema SET version = version + 1");
        let refused = PgStore::connect(&url, "home", "replica")
            .err()
            .expect("refused")
            .to_string();
        assert!(
            refused.contains("newer than this hermes knows"),
            "{refused}"
        );
    }

    #[test]
    fn errors_never_show_the_password() {
        let Some(db) = suite::postgres() else { return };
        let url = db.postgres_url().expect("a PostgreSQL URL");
        let wrong = url.replacen(":hermes_test@", ":s3cret-Passw0rd@", 1);
        assert_ne!(wrong, url, "the test URL carries a password");
        let err = PgStore::connect(&wrong, "home", "replica")
            .err()
            .expect("a wrong password is refused")
            .to_string();
        assert!(!err.contains("s3cret-Passw0rd"), "{err}");
        assert!(err.contains("password"), "{err}");
        let err = PgStore::connect("postgres://u:s3cret-Passw0rd@127.0.0.1:1/x", "home", "r")
            .err()
            .expect("nothing listens on port 1")
            .to_string();
        assert!(!err.contains("s3cret-Passw0rd"), "{err}");
    }
}
