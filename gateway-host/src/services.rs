//! What the parts of a running host share: the store, the platforms, wake-ups and metrics.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use platform_api::{HomeChannel, Platform, Registration};
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
    /// Home channels set by `/sethome` while running, by platform: a platform reads its own
    /// only at start-up.
    pub home_overrides: Arc<Mutex<HashMap<String, HomeChannel>>>,
    /// The time zone cron schedules are evaluated in.
    pub timezone: chrono_tz::Tz,
}

impl Services {
    /// The named platform, if it was built.
    pub fn platform(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.platforms.get(name).map(|l| &l.platform)
    }

    /// Where scheduled output for the named platform goes, if anywhere.
    pub fn home_channel(&self, name: &str) -> Option<HomeChannel> {
        let overrides = self
            .home_overrides
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        overrides
            .get(name)
            .cloned()
            .or_else(|| self.platform(name)?.home_channel())
    }

    /// Makes `chat` the named platform's home channel for the rest of this run.
    pub fn set_home_channel(&self, name: &str, chat: &str) {
        let display = self
            .home_channel(name)
            .map(|h| h.name)
            .unwrap_or_else(|| "Home".to_string());
        self.home_overrides
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(
                name.to_string(),
                HomeChannel {
                    chat: chat.to_string(),
                    name: display,
                },
            );
    }
}
