//! Ingress: inbound messages are made durable before they are acknowledged, then stored.
//!
//! A webhook's message is appended to the inbound journal ([`crate::store::journal`]) before the
//! handler answers, webhooks that arrive together sharing one write (group commit). An importer
//! thread moves journal records into the database, deduplicated on platform and provider id,
//! and wakes the dispatcher. So the thread that answers webhooks never waits for SQLite, and
//! the database work runs beside it.
//!
//! With a shared database (PostgreSQL, [`Store::is_shared`](crate::store::Store::is_shared))
//! a webhook is answered once the importer has committed it there, concurrent webhooks sharing
//! one transaction, so that losing this machine and its disk loses nothing acknowledged. While
//! the database is unreachable (an import fails, or takes longer than [`SHARED_ACK_WITHIN`])
//! webhooks are answered from the local journal as without one, and imported when the
//! database is back: what was acknowledged in that window lives on this machine's disk only
//! until then.
//!
//! A backlog never refuses a message: however many wait for the dispatcher, they wait on disk
//! (the dispatcher reads them in batches), because a provider such as Twilio does not retry a
//! refused webhook and the text would be lost. The only refusal left is "cannot store": free
//! disk space below `HERMES_MIN_FREE_DISK_MB`, where a full disk would otherwise take the
//! database down with it.
//!
//! The files: `group_commit.rs` appends to the journal and answers the webhooks, `acks.rs`
//! holds webhooks until the shared database has their message, `importer.rs` is the thread
//! that moves the journal into the database, `sink.rs` is what platforms' routes and receive
//! loops call (their [`InboundSink`](platform_api::InboundSink)), and `disk.rs` is the
//! free-space floor.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tracing::warn;

use crate::services::Services;
use crate::store::journal::Journal;

mod acks;
mod disk;
mod group_commit;
mod importer;
mod sink;

use acks::SharedAcks;
pub use disk::DiskFloor;
use group_commit::GroupCommit;
use importer::Importer;

/// The journal's file name in `$HERMES_HOME`.
pub const JOURNAL_FILE: &str = "inbound.journal";

/// Longest a webhook waits for the shared database to commit it before it is answered from
/// the local journal (where it already is): well within Twilio's 15 s webhook timeout.
pub const SHARED_ACK_WITHIN: Duration = Duration::from_secs(5);

/// The host side of receive: makes inbound messages durable before they are acknowledged.
pub struct Ingress {
    services: Services,
    /// Messages in the database waiting for the dispatcher (kept exact by it, raised by the
    /// importer in between).
    pending: Arc<AtomicUsize>,
    disk: Arc<DiskFloor>,
    commits: Arc<GroupCommit>,
    importer: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl Ingress {
    /// Opens the inbound journal of `services.home` and starts importing it (what a previous
    /// run left unimported first); answers 503 only while the home's file system has less
    /// than `min_free_mb` megabytes free (0: never).
    pub fn open(services: Services, min_free_mb: u64) -> anyhow::Result<Self> {
        let path = services.home.join(JOURNAL_FILE);
        let imported = services.store.journal_position()?;
        let opened = Journal::open(&path, imported)?;
        if opened.dropped > 0 {
            warn!(
                "{}: the last {} bytes are not a complete record and were moved to {} (a write cut short by a crash, which was never acknowledged, leaves this)",
                path.display(),
                opened.dropped,
                crate::store::journal::dropped_path(&path).display()
            );
        }
        let journal = Arc::new(opened.journal);
        let unimported = services.metrics.live_gauge("hermes_inbound_unimported");
        unimported.store(opened.unimported as i64, Ordering::Release);
        let stop = Arc::new(AtomicBool::new(false));
        let disk = Arc::new(DiskFloor::new(&services.home, min_free_mb));
        let pending = Arc::new(AtomicUsize::new(
            services.store.pending_inbound_count().unwrap_or(0),
        ));
        let acks = services
            .store
            .is_shared()
            .then(|| Arc::new(SharedAcks::new(opened.unimported)));
        let importer = Importer {
            acks: acks.clone(),
            journal: journal.clone(),
            store: services.store.clone(),
            metrics: services.metrics.clone(),
            platforms: services
                .platforms
                .iter()
                .map(|(name, loaded)| (name.clone(), loaded.platform.clone()))
                .collect(),
            dispatch: services.inbound.clone(),
            position: opened.start,
            unimported: unimported.clone(),
            pending: pending.clone(),
            disk: disk.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("hermes-import".to_string())
            .spawn(move || importer.run())
            .context("starting the inbound importer")?;
        let commits = Arc::new(GroupCommit {
            journal,
            importer: thread.thread().clone(),
            unimported,
            acks,
            queue: Default::default(),
        });
        Ok(Ingress {
            services,
            pending,
            disk,
            commits,
            importer: Mutex::new(Some((stop, thread))),
        })
    }

    /// Updates the count of waiting messages (the dispatcher knows it exactly).
    pub fn set_pending(&self, n: usize) {
        self.pending.store(n, Ordering::Relaxed);
        self.services
            .metrics
            .set("hermes_inbound_pending", n as i64);
    }

    /// Imports what the journal holds and stops importing; call once nothing is appended any
    /// more.
    pub fn stop(&self) {
        let importer = self
            .importer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, thread)) = importer {
            stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.stop();
    }
}
