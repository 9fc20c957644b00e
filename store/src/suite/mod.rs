//! The store's own test suite, written against the contract alone: every test runs against
//! every backend [`backends`] can open, so that whatever one backend promises, the others
//! promise too.
//!
//! SQLite always; PostgreSQL when `HERMES_TEST_DATABASE_URL` names a database the tests may
//! create schemas in (each test gets a schema of its own, dropped afterwards). Without it the
//! suite says so and runs SQLite alone, except in CI (`CI` true), where that is a failure.
use std::path::PathBuf;
use std::time::Duration;

use super::{REPLICA_STALE_MS, Store};

#[cfg(test)]
mod cron;
#[cfg(test)]
mod delivery;
#[cfg(test)]
mod media;
#[cfg(test)]
pub(crate) mod messages;
#[cfg(test)]
mod pairing;
#[cfg(test)]
mod replicas;
#[cfg(test)]
mod shared;

/// Where a test's database lives.
enum Place {
    Sqlite {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

/// A fresh, empty database of one backend for one test.
pub struct TestBackend {
    /// The backend's name, for failure messages.
    pub name: &'static str,
    place: Place,
}

impl TestBackend {
    /// Opens the test's database; opening it again gives a new handle on the same data, as a
    /// restarted gateway would have.
    pub fn open(&self) -> Store {
        let opened = match &self.place {
            Place::Sqlite { path, .. } => Store::open(path),
            Place::Postgres { url, schema } => {
                Store::postgres(&with_search_path(url, schema), "test-home", FIRST_REPLICA)
            }
        };
        opened.unwrap_or_else(|e| panic!("opening {}: {e}", self.name))
    }
}

impl TestBackend {
    /// Opens the test's database as another gateway sharing it would (its own home and
    /// name); `None` for a backend only one gateway uses.
    pub fn open_replica(&self, name: &str) -> Option<Store> {
        let url = self.postgres_url()?;
        Some(
            Store::postgres(&url, name, name)
                .unwrap_or_else(|e| panic!("opening {} as {name}: {e}", self.name)),
        )
    }

    /// The URL that opens this test's PostgreSQL schema; `None` for other backends.
    pub fn postgres_url(&self) -> Option<String> {
        match &self.place {
            Place::Postgres { url, schema } => Some(with_search_path(url, schema)),
            Place::Sqlite { .. } => None,
        }
    }
}

/// The name [`TestBackend::open`] gives its gateway among those sharing the database.
pub const FIRST_REPLICA: &str = "test-replica";

/// A sender's lease in the tests: longer than any test.
pub const LEASE: Duration = Duration::from_secs(60);

/// Claims a part and records it sent, as a sender does.
pub fn send(store: &Store, id: i64, provider_id: &str, segments: Option<u32>) {
    let claim = store
        .claim(id, LEASE)
        .unwrap()
        .expect("the part can be claimed");
    assert!(store.mark_sent(claim, provider_id, segments).unwrap());
}

impl TestBackend {
    /// Makes the gateway named `replica` look stopped to the others sharing the database: its
    /// last heartbeat as old as the server's clock counts stale. Nothing for a backend only
    /// one gateway uses.
    pub fn stall(&self, replica: &str) {
        if let Some(url) = self.postgres_url() {
            execute(
                &url,
                &format!(
                    "UPDATE replicas SET seen_at = seen_at - {} WHERE name = '{replica}'",
                    REPLICA_STALE_MS + 1000
                ),
            );
        }
    }
}

/// A fresh PostgreSQL schema, when the tests have a server.
pub fn postgres() -> Option<TestBackend> {
    backends().into_iter().find(|b| b.name == "postgres")
}

/// Runs one statement on the test's own schema.
pub fn execute(url: &str, sql: &str) {
    admin(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let Place::Postgres { url, schema } = &self.place {
            let _ = admin(url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// `url` with every connection's search path set to `schema`.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

/// Runs one statement on a connection of its own.
fn admin(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(sql).await
    })
}

/// A fresh database of every backend available to the tests.
pub fn backends() -> Vec<TestBackend> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut all = vec![TestBackend {
        name: "sqlite",
        place: Place::Sqlite {
            path: dir.path().join("gateway.db"),
            _dir: dir,
        },
    }];
    match std::env::var("HERMES_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("hermes_test_{:016x}", rand::random::<u64>());
            admin(&url, &format!("CREATE SCHEMA {schema}"))
                .unwrap_or_else(|e| panic!("HERMES_TEST_DATABASE_URL: creating a schema: {e}"));
            all.push(TestBackend {
                name: "postgres",
                place: Place::Postgres { url, schema },
            });
        }
        _ if platform_api::testkit::in_ci() => {
            panic!("HERMES_TEST_DATABASE_URL is not set: CI runs the store suite on PostgreSQL too")
        }
        _ => eprintln!("HERMES_TEST_DATABASE_URL is not set: the store suite runs on SQLite only"),
    }
    all
}
