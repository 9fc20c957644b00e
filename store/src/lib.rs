//! The gateway's state behind one contract: inbound messages, conversations, the outbox,
//! delivery, opt-out suppression, pairing and cron jobs. The contract is a set of traits, one per
//! concern ([`MessageStore`], [`DeliveryStore`], [`PairingStore`], [`CronStore`]); a backend
//! implements them all ([`Backend`]), and [`Store`] is the handle the rest of the gateway holds.
//! All SQL lives in the backends: SQLite in `$HERMES_HOME/gateway.db` ([`sqlite`]), the
//! default for one machine, and PostgreSQL ([`postgres`]) for several gateways sharing one
//! database. The store's own test suite (`suite/`) runs against both.
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform_api::{Accepted, Attachment, Control, Inbound, Part};

mod cron;
mod delivery;
pub mod journal;
pub mod migrate;
mod pairing;
pub mod postgres;
mod replicas;
mod shared;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod suite;
pub use cron::{CronStore, Job, JobKind, NewJob, PartOutcome, RunStatus};
pub use delivery::{
    DeliveryStore, DeliverySummary, OutboxFilter, OutboxRow, Reconcilable, Retried,
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

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite database failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (the server's own message when it sent one).
    #[error("database: {}", postgres_message(.0))]
    Postgres(tokio_postgres::Error),
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

/// Not `#[from]`: the message already says what the client error and its cause say, and
/// as a source they would be printed again after it.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(e)
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

/// An inbound message as stored, waiting for the dispatcher.
#[derive(Clone, Debug)]
pub struct StoredInbound {
    /// Row id; the order of arrival.
    pub id: i64,
    /// Platform name.
    pub platform: String,
    /// Conversation.
    pub chat: String,
    /// Sender.
    pub sender: String,
    /// Text.
    pub text: String,
    /// Media.
    pub attachments: Vec<Attachment>,
    /// Carrier keyword.
    pub control: Option<Control>,
}

/// A stored outgoing part.
#[derive(Clone, Debug)]
pub struct OutboxPart {
    /// Row id; parts of one chat go out in this order.
    pub id: i64,
    /// Platform name.
    pub platform: String,
    /// Destination chat.
    pub chat: String,
    /// The part as formatted.
    pub part: Part,
    /// 1-based position in its message.
    pub index: i64,
    /// Parts in its message.
    pub count: i64,
    /// Attempts made so far.
    pub attempts: i64,
}

/// A sender's hold on one outgoing part, from [`MessageStore::claim`] until its outcome is
/// recorded. Every write of the outcome names it: a write from a sender that lost the part
/// (its lease ran out and another gateway took the part over) changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartClaim {
    /// The part.
    pub id: i64,
    /// Which attempt this claim is (the part's attempt count once claimed): a later claim of
    /// the same part has another.
    pub attempt: i64,
}

/// What an outgoing part's life ended with (or is waiting for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartState {
    /// Waiting to be sent.
    Pending,
    /// Claimed by a sender.
    Sending,
    /// Accepted by the provider.
    Sent,
    /// Refused for good.
    Failed,
    /// Not sent: the recipient has opted out.
    Suppressed,
    /// The request went out but its outcome is unknown: looked up at the provider (found:
    /// sent; not found: pending again), never re-sent blindly.
    Ambiguous,
}

impl PartState {
    /// The state as stored and shown (`pending`, `sent`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PartState::Pending => "pending",
            PartState::Sending => "sending",
            PartState::Sent => "sent",
            PartState::Failed => "failed",
            PartState::Suppressed => "suppressed",
            PartState::Ambiguous => "ambiguous",
        }
    }

    /// The state stored as `s`.
    pub fn parse(s: &str) -> PartState {
        match s {
            "pending" => PartState::Pending,
            "sending" => PartState::Sending,
            "sent" => PartState::Sent,
            "suppressed" => PartState::Suppressed,
            "ambiguous" => PartState::Ambiguous,
            _ => PartState::Failed,
        }
    }
}

/// Everything a finished turn (or chat command) writes, in one transaction.
#[derive(Debug, Default)]
pub struct TurnCommit<'a> {
    /// Platform of the conversation.
    pub platform: &'a str,
    /// Chat of the conversation.
    pub chat: &'a str,
    /// Inbound messages this answers; marked done.
    pub inbound_ids: &'a [i64],
    /// The user's side of the exchange, recorded in history.
    pub user: Option<&'a str>,
    /// The assistant's side, recorded in history.
    pub assistant: Option<&'a str>,
    /// Formatted reply parts to queue.
    pub parts: &'a [Part],
    /// Why the parts are sent (`reply`, `command`, `cron`, `send`).
    pub origin: &'a str,
}

/// A carrier keyword as stored.
pub(crate) fn control_str(c: Control) -> &'static str {
    match c {
        Control::OptOut => "opt-out",
        Control::OptIn => "opt-in",
        Control::Help => "help",
    }
}

/// The carrier keyword stored as `s`.
pub(crate) fn parse_control(s: &str) -> Option<Control> {
    match s {
        "opt-out" => Some(Control::OptOut),
        "opt-in" => Some(Control::OptIn),
        "help" => Some(Control::Help),
        _ => None,
    }
}

/// Inbound messages, the inbound journal's import position, conversations, the outbox and the
/// suppression list.
pub trait MessageStore {
    /// Stores an inbound message; a second one with the same platform and provider id is a
    /// duplicate and changes nothing.
    fn insert_inbound(&self, inbound: &Inbound) -> Result<Accepted>;

    /// Stores messages read from the inbound journal and records how far it is imported, in
    /// one transaction: each message is stored exactly once however often it is imported.
    fn import_inbound(&self, batch: &[Inbound], to: journal::Position) -> Result<Vec<Accepted>>;

    /// How far the inbound journal is imported.
    fn journal_position(&self) -> Result<journal::Position>;

    /// Records that the inbound journal is imported up to `to`.
    fn set_journal_position(&self, to: journal::Position) -> Result<()>;

    /// Inbound messages not processed yet, oldest first, at most `limit`.
    fn pending_inbound(&self, limit: usize) -> Result<Vec<StoredInbound>>;

    /// One chat's inbound messages not processed yet with an id above `after`, oldest first,
    /// at most `limit`: a turn takes all that waits in its chat, not only what one pass saw.
    fn pending_inbound_of(
        &self,
        platform: &str,
        chat: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredInbound>>;

    /// How many inbound messages wait for the dispatcher.
    fn pending_inbound_count(&self) -> Result<usize>;

    /// Marks inbound messages as handled without a turn (`ignored`, `unauthorized`, …).
    fn mark_inbound(&self, ids: &[i64], state: &str) -> Result<()>;

    /// Records how several inbound messages were handled, in one transaction.
    fn mark_inbound_states(&self, marks: &[(i64, &str)]) -> Result<()>;

    /// The active conversation's history, oldest first, as `(role, content)`; at most `limit`
    /// of the latest turns.
    fn history(&self, platform: &str, chat: &str, limit: usize) -> Result<Vec<(String, String)>>;

    /// Number of turns in the active conversation.
    fn turn_count(&self, platform: &str, chat: &str) -> Result<i64>;

    /// Ends the active conversation; the next message starts a fresh one.
    fn reset_conversation(&self, platform: &str, chat: &str) -> Result<()>;

    /// Records a finished turn atomically: history, queued parts, inbound marked done.
    /// Returns the ids of the queued parts. Nothing is recorded, and the error is
    /// [`StoreError::Conflict`], when one of the inbound messages is no longer pending
    /// (answered or cancelled meanwhile): a message is answered once. With a database several
    /// gateways share, the conversation must be held by this gateway
    /// ([`MessageStore::claim_conversation`]): a commit from one that lost its hold (another
    /// took the conversation over) records nothing either.
    fn commit_turn(&self, commit: &TurnCommit<'_>) -> Result<Vec<i64>>;

    /// Takes a conversation for this gateway for `lease` (on the database's clock), or extends
    /// its own hold; false while another gateway sharing the database holds it. One turn runs
    /// at a time per conversation across gateways. A database only one gateway uses (SQLite)
    /// has nobody to share with: always true.
    fn claim_conversation(&self, platform: &str, chat: &str, lease: Duration) -> Result<bool>;

    /// Gives back a conversation this gateway holds.
    fn release_conversation(&self, platform: &str, chat: &str) -> Result<()>;

    /// Queues formatted parts for a chat (cron output, `hermes send`).
    fn enqueue(&self, platform: &str, chat: &str, parts: &[Part], origin: &str)
    -> Result<Vec<i64>>;

    /// Parts that may be sent at `now` (the store's time, [`ReplicaStore::now`]): pending,
    /// due, and first of their chat among the open ones.
    fn due_parts(&self, now: Millis, limit: usize) -> Result<Vec<OutboxPart>>;

    /// When the next pending part becomes due (the store's time), if any.
    fn next_due(&self) -> Result<Option<Millis>>;

    /// Claims a pending part for sending for `lease` (on the database's clock); `None` if
    /// another sender has it.
    fn claim(&self, id: i64, lease: Duration) -> Result<Option<PartClaim>>;

    /// Records the provider's acceptance of a part; false, changing nothing, when the claim
    /// was lost.
    fn mark_sent(&self, claim: PartClaim, provider_id: &str, segments: Option<u32>)
    -> Result<bool>;

    /// Puts a part back in the queue, due at `next_attempt_at`; false, changing nothing, when
    /// the claim was lost.
    fn mark_retry(
        &self,
        claim: PartClaim,
        next_attempt_at: Millis,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool>;

    /// Ends a part's life without delivery; false, changing nothing, when the claim was lost.
    fn mark_final(
        &self,
        claim: PartClaim,
        state: PartState,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool>;

    /// Parts whose sender died mid-send (its process is gone, or its lease ran out on the
    /// database's clock): their outcome is unknown, so they are marked ambiguous, to be
    /// looked up at the provider, rather than sent again. Returns how many. A look-up whose
    /// holder died the same way is made due at once rather than when its lease would have run
    /// out.
    fn expire_leases(&self) -> Result<usize>;

    /// The state of a part.
    fn part_state(&self, id: i64) -> Result<Option<PartState>>;

    /// Parts waiting to be sent or being sent.
    fn outbox_depth(&self) -> Result<usize>;

    /// Stops all messages to a chat (opt-out).
    fn suppress(&self, platform: &str, chat: &str, reason: &str) -> Result<()>;

    /// Lifts a suppression (opt-in).
    fn unsuppress(&self, platform: &str, chat: &str) -> Result<()>;

    /// Whether messages to a chat are suppressed.
    fn is_suppressed(&self, platform: &str, chat: &str) -> Result<bool>;
}

/// Everything a backend stores: the gateway holds one behind a [`Store`].
pub trait Backend:
    MessageStore + DeliveryStore + PairingStore + CronStore + ReplicaStore + SharedStore + Send + Sync
{
}

impl<T> Backend for T where
    T: MessageStore
        + DeliveryStore
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
