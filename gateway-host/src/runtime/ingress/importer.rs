//! The importer thread: moves journal records into the database, deduplicated, and wakes the
//! dispatcher.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use platform_api::{Accepted, Inbound, Platform};
use tokio::sync::Notify;
use tracing::{error, info};

use super::acks::SharedAcks;
use super::disk::DiskFloor;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::journal::{Journal, Position};

/// Records imported in one transaction at most.
const IMPORT_BATCH: usize = 2000;

/// Size past which the journal starts over (with what is not imported yet).
const RESTART_AT: u64 = 4 << 20;

/// How long the importer sleeps when nothing wakes it.
const IMPORT_IDLE: Duration = Duration::from_secs(1);

/// How long the importer waits before trying again after a failed import.
const IMPORT_RETRY: Duration = Duration::from_millis(250);

/// How long the importer lets records gather after a busy import: one transaction for many of
/// them, and no wake-up for each append.
const IMPORT_GATHER: Duration = Duration::from_millis(1);

/// How often the free space of `$HERMES_HOME`'s file system is measured.
const DISK_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Moves journal records into the database, on a thread of its own.
pub(super) struct Importer {
    /// With a shared database: told what is committed there.
    pub(super) acks: Option<Arc<SharedAcks>>,
    pub(super) journal: Arc<Journal>,
    pub(super) store: Store,
    pub(super) metrics: Arc<Metrics>,
    /// The platforms, for redacting senders in the log.
    pub(super) platforms: BTreeMap<String, Arc<dyn Platform>>,
    /// Wakes the dispatcher.
    pub(super) dispatch: Arc<Notify>,
    pub(super) position: Position,
    /// Records appended and not imported yet.
    pub(super) unimported: Arc<AtomicI64>,
    /// Messages waiting for the dispatcher: raised by what this stores.
    pub(super) pending: Arc<AtomicUsize>,
    /// Measured between imports.
    pub(super) disk: Arc<DiskFloor>,
    pub(super) stop: Arc<AtomicBool>,
}

impl Importer {
    pub(super) fn run(mut self) {
        let mut measured = std::time::Instant::now();
        // Since when imports fail, to log the first failure and the recovery only.
        let mut failing: Option<std::time::Instant> = None;
        loop {
            if measured.elapsed() >= DISK_CHECK_EVERY {
                measured = std::time::Instant::now();
                self.disk.measure();
            }
            // Read before importing: a stop asked for after the last append sees it imported.
            let stopping = self.stop.load(Ordering::Acquire);
            let imported = self.import();
            // Also under sustained load, when the journal is never found drained.
            if let Err(e) = self.restart_journal() {
                error!("starting the inbound journal over: {e:#}");
            }
            if imported.is_ok()
                && let Some(since) = failing.take()
            {
                info!(
                    "inbound messages imported again after {}s",
                    since.elapsed().as_secs()
                );
            }
            match imported {
                Ok(0) => {}
                Ok(1) => continue,
                // Gathering suits SQLite, whose commits cost alike however many they hold;
                // with a shared database webhooks wait for the import, which goes on at once.
                Ok(_) if self.acks.is_some() => continue,
                Ok(_) => {
                    std::thread::sleep(IMPORT_GATHER);
                    continue;
                }
                Err(e) => {
                    if let Some(acks) = &self.acks {
                        acks.unreachable();
                    }
                    if failing.is_none() {
                        failing = Some(std::time::Instant::now());
                        error!(
                            "importing inbound messages: {e:#} (they stay in the journal; trying again every {}ms)",
                            IMPORT_RETRY.as_millis()
                        );
                    }
                    if stopping {
                        return;
                    }
                    // Slept, not parked: appends must not hurry the next try.
                    std::thread::sleep(IMPORT_RETRY);
                    continue;
                }
            }
            if stopping {
                return;
            }
            std::thread::park_timeout(IMPORT_IDLE);
        }
    }

    /// Imports the next records of the journal; returns how many there were.
    fn import(&mut self) -> anyhow::Result<usize> {
        let (batch, end) = self.journal.read(self.position.offset, IMPORT_BATCH)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let to = Position {
            offset: end,
            ..self.position
        };
        let outcomes = self.store.import_inbound(&batch, to)?;
        if let Some(acks) = &self.acks {
            acks.imported(batch.len());
        }
        self.position = to;
        self.unimported
            .fetch_sub(batch.len() as i64, Ordering::AcqRel);
        let stored = outcomes.iter().filter(|o| **o == Accepted::Stored).count();
        self.pending.fetch_add(stored, Ordering::Relaxed);
        for (inbound, outcome) in batch.iter().zip(outcomes) {
            self.report(inbound, outcome);
        }
        self.dispatch.notify_one();
        Ok(batch.len())
    }

    fn report(&self, inbound: &Inbound, outcome: Accepted) {
        let platform = &inbound.platform;
        let from = || match self.platforms.get(platform) {
            Some(p) => p.redact(&inbound.sender),
            None => "a sender".to_string(),
        };
        match outcome {
            Accepted::Stored => {
                if tracing::enabled!(tracing::Level::INFO) {
                    info!(message_id = %inbound.provider_id, "[{platform}] inbound from {} stored", from());
                }
                self.metrics
                    .inc("hermes_inbound_accepted_total", &[("platform", platform)]);
            }
            Accepted::Duplicate => {
                if tracing::enabled!(tracing::Level::INFO) {
                    info!(
                        message_id = %inbound.provider_id,
                        "[{platform}] duplicate message from {} acknowledged, not processed again",
                        from()
                    );
                }
                self.metrics.inc(
                    "hermes_inbound_rejected_total",
                    &[("platform", platform), ("reason", "duplicate")],
                );
            }
        }
    }

    /// Starts the journal over once it has grown, carrying over what is not imported yet.
    fn restart_journal(&mut self) -> anyhow::Result<()> {
        if let Some(to) = self.journal.start_over(self.position.offset, RESTART_AT)? {
            self.position = to;
            self.store.set_journal_position(to)?;
        }
        Ok(())
    }
}
