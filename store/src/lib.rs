//! The gateway's state behind one contract: inbound messages, conversations, the outbox,
//! delivery, media, opt-out suppression, pairing and cron jobs. The contract is a set of
//! traits, one per concern ([`MessageStore`], [`DeliveryStore`], [`MediaStore`],
//! [`PairingStore`], [`CronStore`]); a backend implements them all ([`Backend`]), and [`Store`]
//! is the handle the rest of the gateway holds. All SQL lives in the backends: SQLite in
//! `$HERMES_HOME/gateway.db` ([`sqlite`]), the default for one machine, and PostgreSQL
//! ([`postgres`]) for several gateways sharing one database. The store's own test suite
//! ([`suite`]) runs against both.
//!
//! One file per subject, the same name in the contract and in each of `sqlite/`, `postgres/`
//! and `suite/`: `messages` (inbound, conversations, the outbox), `delivery` (look-ups and
//! delivery statuses), `media` (the bytes of files both ways), `cron`, `pairing`, `replicas`
//! (the gateways sharing a database, and its clock) and `shared` (pacing, rate windows, home
//! channels, receive positions); a fix in one backend points at its twin. Beside them: the
//! inbound [`journal`] a single machine writes before it acknowledges, and [`migrate`] (a
//! single-node home into PostgreSQL). The gateway matches [`StoreError`] kinds, never a
//! driver's errors.
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

mod cron;
mod delivery;
pub mod journal;
mod media;
mod messages;
pub mod migrate;
mod pairing;
pub mod postgres;
mod replicas;
mod shared;
pub mod sqlite;
#[cfg(any(test, feature = "suite"))]
pub mod suite;
pub use cron::{CronStore, Job, JobKind, NewJob, PartOutcome, RunStatus};
pub use delivery::{
    DeliveryStore, DeliverySummary, OutboxFilter, OutboxRow, Reconcilable, Retried,
};
pub(crate) use media::stored_size;
pub use media::{InboundFile, MediaMeta, MediaState, MediaStore, OutboundFile};
pub use messages::{
    Conversation, MessageStore, OutboxPart, PartClaim, PartState, StoredInbound, TurnCommit,
};
pub(crate) use messages::{
    control_str, media_json, media_names, parse_control, parse_media, refusals, to_send,
};
pub use pairing::{PairingEntry, PairingRequest, PairingStore};
pub use replicas::{Checks, REPLICA_STALE_MS, Replica, ReplicaStore, Transport};
pub use shared::{RateHit, SharedStore};

/// Milliseconds since the Unix epoch: every timestamp in the store.
pub type Millis = i64;

/// Now by this machine's clock, in store time. A database shared by several gateways keeps its
/// own time ([`ReplicaStore::now`]), which is what their schedules, leases and claims are
/// measured on; this is for a database only this machine uses (SQLite) and for what is never
/// compared across machines.
pub fn now_ms() -> Millis {
    to_ms(SystemTime::now())
}

/// Now by this machine's clock, in microseconds since the epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A system time in store time.
pub fn to_ms(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Store failures, by what the caller can do about them; no variant names a driver, so the
/// gateway handles a failure alike whichever database it runs on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached (its own message, never the connection
    /// settings); trying again later may succeed.
    #[error("database: {0}")]
    Database(String),
    /// The database cannot be used as configured.
    #[error("database: {0}")]
    Config(String),
    /// The database's schema is not one this binary can use.
    #[error("database: {0}")]
    Schema(String),
    /// The change was not made: what it depends on changed meanwhile (another gateway sharing
    /// the database got there first).
    #[error("not recorded: {0}")]
    Conflict(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// The message already says what the client error and its cause say.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Database(postgres_message(&e))
    }
}

/// What PostgreSQL said, or what went wrong on the way; never the connection settings.
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let text = e.to_string();
            match std::error::Error::source(e).map(ToString::to_string) {
                Some(cause) if !text.contains(&cause) => format!("{text}: {cause}"),
                _ => text,
            }
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Everything a backend stores: the gateway holds one behind a [`Store`].
pub trait Backend:
    MessageStore
    + DeliveryStore
    + MediaStore
    + PairingStore
    + CronStore
    + ReplicaStore
    + SharedStore
    + Send
    + Sync
{
}

impl<T> Backend for T where
    T: MessageStore
        + DeliveryStore
        + MediaStore
        + PairingStore
        + CronStore
        + ReplicaStore
        + SharedStore
        + Send
        + Sync
{
}

/// Handle to the store; cheap to clone, safe to share between threads. Every method of the
/// contract is called on it directly (it dereferences to the backend).
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    shared: bool,
}

impl Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        Ok(Store {
            backend: Arc::new(sqlite::SqliteStore::open(path)?),
            shared: false,
        })
    }

    /// Connects to the PostgreSQL database at `url` (migrating it as needed); `home` names this
    /// gateway's `HERMES_HOME` among those sharing the database, `replica` this process.
    pub fn postgres(url: &str, home: &str, replica: &str) -> Result<Store> {
        Ok(Store {
            backend: Arc::new(postgres::PgStore::connect(url, home, replica)?),
            shared: true,
        })
    }

    /// Whether the database lives beyond this machine and may be shared by several gateways
    /// (PostgreSQL): a webhook is then acknowledged once committed there, not only once in
    /// the local journal, so that losing this machine loses nothing acknowledged.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// How far the inbound journal of the SQLite database at `path` is imported, read without
    /// changing anything (the gateway may be running); `None` when there is no such database
    /// (or it predates the journal).
    pub fn read_journal_position(path: &Path) -> Result<Option<journal::Position>> {
        sqlite::SqliteStore::read_journal_position(path)
    }
}
