//! What the parts of a running host share: the store, the platforms, wake-ups and metrics.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use platform_api::{Platform, Registration};
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::store::Store;

/// A built platform with its registration.
#[derive(Clone)]
pub struct Loaded {
    /// The adapter.
    pub platform: Arc<dyn Platform>,
    /// Its registration (label, settings, home-channel setting).
    pub registration: &'static Registration,
}

/// Shared handles of a running host; cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The database.
    pub store: Store,
    /// Platforms that were built, by name.
    pub platforms: BTreeMap<String, Loaded>,
    /// `$HERMES_HOME`.
    pub home: PathBuf,
    /// Wakes the dispatcher when inbound messages were stored.
    pub inbound: Arc<Notify>,
    /// Wakes the sender when parts were queued.
    pub outbox: Arc<Notify>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl Services {
    /// The named platform, if it was built.
    pub fn platform(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.platforms.get(name).map(|l| &l.platform)
    }
}
