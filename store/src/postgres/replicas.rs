//! Heartbeats of the gateways sharing the PostgreSQL database.
use super::PgStore;
use super::clock::{db_now, db_now_us};
use crate::{REPLICA_STALE_MS, Replica, ReplicaStore, Result, Transport};

impl ReplicaStore for PgStore {
    /// Also corrects this gateway's reading of the server's clock, every few seconds.
    fn heartbeat(&self) -> Result<()> {
        self.block(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(concat!(
                    "INSERT INTO replicas (name, home, started_at, seen_at)
                     VALUES ($1, $2, $3, ",
                    db_now!(),
                    ")
                     ON CONFLICT (name) DO UPDATE SET seen_at = EXCLUDED.seen_at
                     RETURNING ",
                    db_now_us!()
                ))
                .await?;
            let sent = crate::now_us();
            let server: i64 = client
                .query_one(
                    &statement,
                    &[&self.replica(), &self.home(), &self.started_at()],
                )
                .await?
                .try_get(0)?;
            self.clock().observe(server, sent, crate::now_us());
            Ok(())
        })
    }

    fn replicas(&self) -> Result<Vec<Replica>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    concat!(
                        "SELECT name, home, started_at, seen_at FROM replicas
                         WHERE seen_at >= ",
                        db_now!(),
                        " - $1 ORDER BY seen_at DESC, name"
                    ),
                    &[&REPLICA_STALE_MS],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Replica {
                    name: r.get(0),
                    home: r.get(1),
                    started_at: r.get(2),
                    seen_at: r.get(3),
                })
                .collect())
        })
    }

    fn now_us(&self) -> i64 {
        self.clock().now_us()
    }

    fn leave(&self) -> Result<()> {
        self.exec("DELETE FROM replicas WHERE name = $1", &[&self.replica()])?;
        Ok(())
    }

    fn schema_version(&self) -> Result<i64> {
        self.block(async {
            let client = self.client().await?;
            Ok(client
                .query_one("SELECT version FROM hermes_schema WHERE id = 1", &[])
                .await?
                .get(0))
        })
    }

    fn transport(&self) -> Result<Option<Transport>> {
        self.block(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await?;
            let encrypted: bool = row.get(0);
            Ok(Some(Transport {
                tls: encrypted.then(|| row.get::<_, Option<String>>(1).unwrap_or_default()),
                checks: self.checks(),
                local: self.local(),
            }))
        })
    }
}
