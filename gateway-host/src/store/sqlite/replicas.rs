//! One gateway per SQLite database: no heartbeats to keep.
use super::SqliteStore;
use crate::store::{Millis, Replica, ReplicaStore, Result, Transport};

impl ReplicaStore for SqliteStore {
    fn heartbeat(&self, _now: Millis) -> Result<()> {
        Ok(())
    }

    fn replicas(&self, _since: Millis) -> Result<Vec<Replica>> {
        Ok(Vec::new())
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
