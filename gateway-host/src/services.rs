//! What the parts of a running host share: the store, the platforms, wake-ups and metrics; and
//! how they are opened from a configuration, by the gateway and by the commands that work on
//! the same `$HERMES_HOME` ([`open_store`], [`build_platforms`], [`Services::from_config`]).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use hermes_config::Config;
use platform_api::{HomeChannel, Platform, Registration, registrations};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::agent::persona::Persona;
use crate::media::config::MediaConfig;
use crate::metrics::Metrics;
use crate::settings::{self, HOST};
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
    /// The time zone cron schedules are evaluated in.
    pub timezone: chrono_tz::Tz,
    /// Who the agent is: the system message of every turn.
    pub persona: Arc<Persona>,
    /// How files are fetched, kept, shown to the agent and sent.
    pub media: Arc<MediaConfig>,
}

impl Services {
    /// Shared services of `config`'s home for `platforms`.
    pub fn from_config(
        config: &Config,
        platforms: BTreeMap<String, Loaded>,
    ) -> anyhow::Result<Services> {
        let timezone = crate::cron::schedule::zone(&config.section(HOST))?;
        Ok(Services {
            store: open_store(config)?,
            platforms,
            home: config.home().to_path_buf(),
            inbound: Arc::new(Notify::new()),
            outbox: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            timezone,
            persona: Arc::new(Persona::from_config(config, timezone)?),
            media: Arc::new(MediaConfig::from_section(
                &config.section(HOST),
                config.home(),
            )?),
        })
    }

    /// The named platform, if it was built.
    pub fn platform(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.platforms.get(name).map(|l| &l.platform)
    }

    /// Where scheduled output for the named platform goes, if anywhere: the chat set by
    /// `/sethome` (on any gateway sharing the database) before the configured one.
    pub fn home_channel(&self, name: &str) -> Option<HomeChannel> {
        match self.store.home_override(name) {
            Ok(Some((chat, display))) => {
                return Some(HomeChannel {
                    chat,
                    name: display,
                });
            }
            Ok(None) => {}
            Err(e) => warn!("reading the home channel set by /sethome: {e}"),
        }
        self.platform(name)?.home_channel()
    }

    /// Makes `chat` the named platform's home channel, for every gateway on the database
    /// (the platform itself read its own at start-up).
    pub fn set_home_channel(&self, name: &str, chat: &str) -> anyhow::Result<()> {
        let display = self
            .home_channel(name)
            .map(|h| h.name)
            .unwrap_or_else(|| "Home".to_string());
        self.store.set_home_override(name, chat, &display)?;
        Ok(())
    }
}

/// Builds every enabled platform, reporting (not failing on) those that cannot start.
pub fn build_platforms(config: &Config) -> BTreeMap<String, Loaded> {
    let mut platforms = BTreeMap::new();
    for registration in registrations() {
        let section = config.section(registration.name);
        if let Err(why) = (registration.enabled)(&section) {
            info!("[{}] not enabled: {why}", registration.name);
            continue;
        }
        match (registration.build)(&section) {
            Ok(platform) => {
                if registration.stub {
                    warn!(
                        "[{}] is a stub: receiving and sending are not implemented yet",
                        registration.name
                    );
                }
                platforms.insert(
                    registration.name.to_string(),
                    Loaded {
                        platform,
                        registration,
                    },
                );
            }
            Err(e) => tracing::error!("[{}] {e}", registration.name),
        }
    }
    platforms
}

/// Opens the store of a configuration.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let host = config.section(HOST);
    let Some(url) = host.database_url(settings::DATABASE_URL.env)? else {
        let path = config.home().join("gateway.db");
        return Store::open(&path).with_context(|| format!("opening {}", path.display()));
    };
    let origin = host
        .get(settings::DATABASE_URL.env)
        .map(|v| v.origin.to_string())
        .unwrap_or_default();
    let home = replica_name(config.home())?;
    // Each start is a process of its own in leases and heartbeats: what a killed one held is
    // taken over by the others, this one's next start included.
    let process = format!("{home}#{:06x}", rand::random::<u32>() & 0xff_ffff);
    let shown = platform_api::redact_database_url(&url);
    let store = Store::postgres(&url, &home, &process).with_context(|| {
        format!(
            "{} (from {origin}): opening the PostgreSQL database {shown}",
            settings::DATABASE_URL.env
        )
    })?;
    tracing::debug!("state in PostgreSQL at {shown}, as gateway {home}");
    Ok(store)
}

/// The file in `$HERMES_HOME` naming this gateway among those sharing a database.
pub const REPLICA_FILE: &str = "replica";

/// This gateway's name among those sharing a database: the host name and a random suffix,
/// made once and kept in `$HERMES_HOME` (its journal's import position and the leases it
/// takes are recorded under it, so a restart picks up its own).
pub fn replica_name(home: &Path) -> anyhow::Result<String> {
    let path = home.join(REPLICA_FILE);
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => return Ok(name.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hermes".to_string());
    let name = format!("{host}-{:08x}", rand::random::<u32>());
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    std::fs::write(&path, format!("{name}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(name)
}
