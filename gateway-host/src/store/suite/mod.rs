//! The store's own test suite, written against the contract alone: every test runs against
//! every backend [`backends`] can open, so that whatever one backend promises, the others
//! promise too.
use std::path::PathBuf;

use super::Store;

mod cron;
mod delivery;
mod messages;
mod pairing;

/// A fresh, empty database of one backend for one test.
pub(crate) struct TestBackend {
    /// The backend's name, for failure messages.
    pub name: &'static str,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestBackend {
    /// Opens the test's database; opening it again gives a new handle on the same data, as a
    /// restarted gateway would have.
    pub fn open(&self) -> Store {
        Store::open(&self.path).unwrap_or_else(|e| panic!("opening {}: {e}", self.name))
    }
}

/// A fresh database of every backend available to the tests.
pub(crate) fn backends() -> Vec<TestBackend> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    vec![TestBackend {
        name: "sqlite",
        path: dir.path().join("gateway.db"),
        _dir: dir,
    }]
}
