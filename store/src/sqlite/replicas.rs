//! One gateway per SQLite database: no heartbeats to keep.
use super::SqliteStore;
use crate::{Replica, ReplicaStore, Result, Transport};

impl ReplicaStore for SqliteStore {
    fn heartbeat(&self) -> Result<()> {
        Ok(())
    }

    fn replicas(&self) -> Result<Vec<Replica>> {
        Ok(Vec::new())
    }

    /// The database is a file of this machine: its time is this machine's.
    fn now_us(&self) -> i64 {
        crate::now_us()
    }

    fn leave(&self) -> Result<()> {
        Ok(())
    }

    fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn transport(&self) -> Result<Option<Transport>> {
        Ok(None)
    }
}
