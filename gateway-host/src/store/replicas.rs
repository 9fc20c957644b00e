//! The gateways sharing a database: each running one writes a heartbeat, so that the others
//! know it is alive, take over what a dead one held, and the doctor can list them.
use super::{Millis, Result};

/// How long after its last heartbeat a gateway counts as gone.
pub const REPLICA_STALE_MS: Millis = 15_000;

/// A gateway sharing the database, as its last heartbeat left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// The process's name (its `HERMES_HOME`'s name and a suffix per start).
    pub name: String,
    /// The name of its `HERMES_HOME`.
    pub home: String,
    /// When the process started.
    pub started_at: Millis,
    /// Its last heartbeat.
    pub seen_at: Millis,
}

/// The gateways sharing a database.
pub trait ReplicaStore {
    /// Records that this gateway is alive at `now`.
    fn heartbeat(&self, now: Millis) -> Result<()>;

    /// Gateways whose last heartbeat is at or after `since`, most recently seen first. A
    /// database only one gateway uses (SQLite) keeps none: empty.
    fn replicas(&self, since: Millis) -> Result<Vec<Replica>>;

    /// Removes this gateway's heartbeat: it stops, and what it held may be taken at once.
    fn leave(&self) -> Result<()>;

    /// The version of the database's schema (the migrations applied).
    fn schema_version(&self) -> Result<i64>;
}
