//! The gateways sharing a database: each running one writes a heartbeat, so that the others
//! know it is alive, take over what a dead one held, and the doctor can list them.
pub use super::postgres::Checks;
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

/// How the connection to a database beyond this machine is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The TLS version the server reports for this connection; `None`: not encrypted.
    pub tls: Option<String>,
    /// What is checked of the server's certificate.
    pub checks: Checks,
    /// Whether the server is on this machine (a loopback address or a Unix socket), where the
    /// connection never crosses a network.
    pub local: bool,
}

impl Transport {
    /// In a few words: `TLSv1.3, server certificate checked …`, or `not encrypted`.
    pub fn summary(&self) -> String {
        match &self.tls {
            Some(version) => format!("{version}, {}", self.checks.describe()),
            None => "not encrypted".to_string(),
        }
    }

    /// Whether it crosses a network without being both encrypted and sure of the server.
    pub fn exposed(&self) -> bool {
        let verified = self.tls.is_some() && self.checks == Checks::ChainAndName;
        !(self.local || verified)
    }
}

/// The gateways sharing a database.
pub trait ReplicaStore {
    /// Records that this gateway is alive now, on the database's clock.
    fn heartbeat(&self) -> Result<()>;

    /// Gateways alive: their last heartbeat is within [`REPLICA_STALE_MS`] of the database's
    /// time; most recently seen first. A database only one gateway uses (SQLite) keeps none:
    /// empty.
    fn replicas(&self) -> Result<Vec<Replica>>;

    /// The database's time now, in store time: what every gateway sharing it measures its
    /// schedules on, whatever its own clock says. SQLite's is this machine's.
    fn now(&self) -> Millis {
        self.now_us() / 1000
    }

    /// The database's time now, in microseconds since the epoch.
    fn now_us(&self) -> i64;

    /// Removes this gateway's heartbeat: it stops, and what it held may be taken at once.
    fn leave(&self) -> Result<()>;

    /// The version of the database's schema (the migrations applied).
    fn schema_version(&self) -> Result<i64>;

    /// How the connection to the database is protected, as the server sees it; `None` for a
    /// database that is a file of this machine (SQLite).
    fn transport(&self) -> Result<Option<Transport>>;
}
