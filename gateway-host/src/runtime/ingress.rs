//! Ingress: inbound messages are made durable before they are acknowledged, then stored.
//!
//! A webhook's message is appended to the inbound journal ([`crate::store::journal`]) before the
//! handler answers, webhooks that arrive together sharing one write (group commit). An importer
//! thread moves journal records into the database, deduplicated on platform and provider id,
//! and wakes the dispatcher. So the thread that answers webhooks never waits for SQLite, and
//! the database work runs beside it.
//!
//! With a shared database (PostgreSQL, [`Store::is_shared`]) a webhook is answered once the
//! importer has committed it there, concurrent webhooks sharing one transaction, so that losing
//! this machine and its disk loses nothing acknowledged. While the database is unreachable (an
//! import fails, or takes longer than [`SHARED_ACK_WITHIN`]) webhooks are answered from the
//! local journal as without one, and imported when the database is back: what was acknowledged
//! in that window lives on this machine's disk only until then.
//!
//! A backlog never refuses a message: however many wait for the dispatcher, they wait on disk
//! (the dispatcher reads them in batches), because a provider such as Twilio does not retry a
//! refused webhook and the text would be lost. The only refusal left is "cannot store": free
//! disk space below `HERMES_MIN_FREE_DISK_MB`, where a full disk would otherwise take the
//! database down with it.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use platform_api::{Accepted, DeliveryStatus, Inbound, InboundSink, Platform, SinkError};
use tokio::sync::{Notify, oneshot};
use tracing::{error, info, warn};

use crate::metrics::Metrics;
use crate::services::Services;
use crate::store::Store;
use crate::store::journal::{Journal, Position};

/// The journal's file name in `$HERMES_HOME`.
pub const JOURNAL_FILE: &str = "inbound.journal";

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

/// Longest a webhook waits for the shared database to commit it before it is answered from
/// the local journal (where it already is): well within Twilio's 15 s webhook timeout.
pub const SHARED_ACK_WITHIN: Duration = Duration::from_secs(5);

/// How often the free space of `$HERMES_HOME`'s file system is measured.
const DISK_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Bytes free for unprivileged writers on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is written by statvfs
    // before it is read, only when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Whether there is room to store more: free space on the home's file system against a floor.
pub struct DiskFloor {
    home: std::path::PathBuf,
    floor: u64,
    /// Free bytes at the last measure, or `u64::MAX` when it could not be measured.
    free: AtomicI64,
}

impl DiskFloor {
    /// A floor of `floor_mb` megabytes on the file system of `home` (0 turns it off).
    pub fn new(home: &std::path::Path, floor_mb: u64) -> Self {
        let floor = DiskFloor {
            home: home.to_path_buf(),
            floor: floor_mb.saturating_mul(1 << 20),
            free: AtomicI64::new(i64::MAX),
        };
        floor.measure();
        floor
    }

    /// Measures the free space again; logs when crossing the floor either way.
    fn measure(&self) {
        if self.floor == 0 {
            return;
        }
        let free = free_bytes(&self.home).map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let before = self.free.swap(free, Ordering::Relaxed);
        let floor = self.floor as i64;
        if free < floor && before >= floor {
            error!(
                "only {} MB free on the file system of {}, below HERMES_MIN_FREE_DISK_MB ({} MB): webhooks are answered 503 until space is freed",
                free >> 20,
                self.home.display(),
                self.floor >> 20
            );
        } else if free >= floor && before < floor {
            info!("disk space is back above HERMES_MIN_FREE_DISK_MB: storing webhooks again");
        }
    }

    /// Why nothing can be stored now, if so.
    fn refusal(&self) -> Option<String> {
        let free = self.free.load(Ordering::Relaxed);
        (self.floor > 0 && free < self.floor as i64).then(|| {
            format!(
                "{} MB free, below HERMES_MIN_FREE_DISK_MB ({} MB)",
                free >> 20,
                self.floor >> 20
            )
        })
    }
}

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

#[async_trait(?Send)]
impl InboundSink for Ingress {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
        if let Some(why) = self.disk.refusal() {
            self.rejected(&inbound.platform, "disk-full");
            return Err(SinkError::Unavailable(why));
        }
        let platform = inbound.platform.clone();
        let committed = self
            .commits
            .submit(inbound)
            .await
            .map_err(|_| SinkError::Storage("the group commit was dropped".to_string()))?
            .map_err(SinkError::Storage)?;
        if let Some(committed) = committed {
            // In the journal already: answered from it should the database not commit in time.
            if !matches!(
                tokio::time::timeout(SHARED_ACK_WITHIN, committed).await,
                Ok(Ok(Committed::Shared))
            ) {
                self.services.metrics.inc(
                    "hermes_inbound_journal_only_total",
                    &[("platform", &platform)],
                );
            }
        }
        // Whether it was new is known once it is imported; a duplicate is not processed again.
        Ok(Accepted::Stored)
    }

    fn rejected(&self, platform: &str, reason: &'static str) {
        self.services.metrics.inc(
            "hermes_inbound_rejected_total",
            &[("platform", platform), ("reason", reason)],
        );
    }

    async fn cursor(&self, platform: &str) -> Result<Option<String>, SinkError> {
        let platform = platform.to_string();
        self.blocking(move |services| Ok(services.store.receive_cursor(&platform)?))
            .await
    }

    async fn save_cursor(&self, platform: &str, value: &str) -> Result<(), SinkError> {
        let (platform, value) = (platform.to_string(), value.to_string());
        self.blocking(move |services| {
            let now = services.store.now();
            Ok(services.store.save_receive_cursor(&platform, &value, now)?)
        })
        .await
    }

    async fn delivery_status(&self, status: DeliveryStatus) -> Result<(), SinkError> {
        if let Some(why) = self.disk.refusal() {
            return Err(SinkError::Unavailable(why));
        }
        self.blocking(move |services| crate::outbox::delivery_report::record(services, &status))
            .await
    }
}

impl Ingress {
    /// Runs a store call on the blocking pool, so that the server worker or receive loop that
    /// asked never waits on the database itself: a PostgreSQL out of reach holds a call for up
    /// to the pool's wait, and the worker meanwhile serves the other webhooks (those are
    /// acknowledged from the journal).
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Services) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, SinkError> {
        let services = self.services.clone();
        match tokio::task::spawn_blocking(move || call(&services)).await {
            Ok(result) => result.map_err(|e| SinkError::Storage(format!("{e:#}"))),
            Err(e) => Err(SinkError::Storage(format!(
                "the store call did not finish: {e}"
            ))),
        }
    }
}

/// Where a message was committed before its webhook is answered.
#[derive(Debug, PartialEq, Eq)]
enum Committed {
    /// In the shared database.
    Shared,
    /// In the local journal only: the shared database was unreachable.
    JournalOnly,
}

/// Once a message is in the journal: with a shared database, where to learn that it is
/// committed there too; `None` when the journal is all it waits for.
type Appended = Option<oneshot::Receiver<Committed>>;

/// One message waiting for the group commit, with where to report whether it is durable.
type Write = (Inbound, oneshot::Sender<Result<Appended, String>>);

/// Webhooks waiting for the importer to commit their messages in the shared database.
///
/// Journal records are imported in the order they were appended, so the n-th record appended
/// is committed once n records are imported: a count, which the journal starting over (with
/// what is not imported yet) does not disturb.
struct SharedAcks {
    state: Mutex<AckState>,
}

struct AckState {
    /// Records appended to the journal since it was opened (what it held unimported first).
    appended: u64,
    /// Records imported since the journal was opened.
    imported: u64,
    /// The last import failed: webhooks are answered from the journal until one succeeds.
    unreachable: bool,
    /// Record numbers waited for, in order.
    waiting: VecDeque<(u64, oneshot::Sender<Committed>)>,
}

impl SharedAcks {
    fn new(unimported: u64) -> Self {
        SharedAcks {
            state: Mutex::new(AckState {
                appended: unimported,
                imported: 0,
                unreachable: false,
                waiting: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `n` messages were appended; one receiver for each, told once it is
    /// committed in the database (or at once, while the database is unreachable).
    fn appended(&self, n: usize) -> Vec<oneshot::Receiver<Committed>> {
        let mut state = self.state();
        (0..n)
            .map(|_| {
                let (tell, told) = oneshot::channel();
                state.appended += 1;
                let record = state.appended;
                if state.unreachable {
                    let _ = tell.send(Committed::JournalOnly);
                } else if record <= state.imported {
                    // The importer, awake already, read it from the journal and committed it
                    // before this append was counted.
                    let _ = tell.send(Committed::Shared);
                } else {
                    state.waiting.push_back((record, tell));
                }
                told
            })
            .collect()
    }

    /// Records that `n` more records were committed in the database.
    fn imported(&self, n: usize) {
        let mut state = self.state();
        state.imported += n as u64;
        if std::mem::replace(&mut state.unreachable, false) {
            info!(
                "the database is reachable again: webhooks are acknowledged once committed there"
            );
        }
        while state
            .waiting
            .front()
            .is_some_and(|(record, _)| *record <= state.imported)
        {
            if let Some((_, tell)) = state.waiting.pop_front() {
                let _ = tell.send(Committed::Shared);
            }
        }
    }

    /// An import failed: what waits is answered from the journal, and so is what comes until
    /// an import succeeds.
    fn unreachable(&self) {
        let mut state = self.state();
        if !std::mem::replace(&mut state.unreachable, true) {
            warn!(
                "the database is unreachable: webhooks are acknowledged from this gateway's inbound journal and imported when it is back (until then they live on this machine only)"
            );
        }
        for (_, tell) in state.waiting.drain(..) {
            let _ = tell.send(Committed::JournalOnly);
        }
    }
}

/// Appends inbound messages so that concurrent webhooks share one write.
///
/// The handler that finds nobody writing becomes the leader: once its server thread has
/// polled for I/O (so that the requests read meanwhile, on any thread, have queued theirs), it
/// appends everything waiting, then again while more waits. Other threads only queue and are
/// told the outcome; none blocks, and no thread is woken just to write.
struct GroupCommit {
    journal: Arc<Journal>,
    /// Woken after each append.
    importer: Thread,
    /// Records appended and not imported yet.
    unimported: Arc<AtomicI64>,
    /// With a shared database: webhooks wait for their commit there.
    acks: Option<Arc<SharedAcks>>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    writes: Vec<Write>,
    /// A leader is scheduled or writing.
    leading: bool,
}

impl GroupCommit {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(self: &Arc<Self>, inbound: Inbound) -> oneshot::Receiver<Result<Appended, String>> {
        let (reply, outcome) = oneshot::channel();
        let lead = {
            let mut queue = self.queue();
            queue.writes.push((inbound, reply));
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            self.lead();
        }
        outcome
    }

    /// Appends what waits once this thread has polled for I/O, and again (as a task of its
    /// own, so that this thread's connections are served in between) while more waits.
    fn lead(self: &Arc<Self>) {
        let leader = Leader(Some(self.clone()));
        actix_rt::spawn(async move {
            tokio::task::yield_now().await;
            leader.commit_round();
        });
    }

    /// Appends everything waiting; returns whether more came meanwhile (leadership is kept
    /// then), or gives leadership up.
    fn commit_waiting(&self) -> bool {
        let writes = std::mem::take(&mut self.queue().writes);
        self.commit(writes);
        let mut queue = self.queue();
        queue.leading = !queue.writes.is_empty();
        queue.leading
    }

    fn commit(&self, writes: Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        let outcome = self
            .journal
            .append(writes.iter().map(|(inbound, _)| inbound))
            .map_err(|e| format!("appending to {}: {e}", self.journal.path().display()));
        let mut committed = Vec::new();
        if outcome.is_ok() {
            self.unimported
                .fetch_add(writes.len() as i64, Ordering::AcqRel);
            if let Some(acks) = &self.acks {
                committed = acks.appended(writes.len());
            }
            self.importer.unpark();
        }
        let mut committed = committed.into_iter();
        for (_, reply) in writes {
            let _ = reply.send(outcome.clone().map(|()| committed.next()));
        }
    }
}

/// The scheduled leader of a [`GroupCommit`]. Should its task be dropped before it runs (its
/// server thread stopping), it appends what waits there and then, so that no handler on
/// another thread is left waiting for a leader that will never come.
struct Leader(Option<Arc<GroupCommit>>);

impl Leader {
    fn commit_round(mut self) {
        if let Some(commits) = self.0.take()
            && commits.commit_waiting()
        {
            commits.lead();
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(commits) = self.0.take() {
            while commits.commit_waiting() {}
        }
    }
}

/// Moves journal records into the database, on a thread of its own.
struct Importer {
    /// With a shared database: told what is committed there.
    acks: Option<Arc<SharedAcks>>,
    journal: Arc<Journal>,
    store: Store,
    metrics: Arc<Metrics>,
    /// The platforms, for redacting senders in the log.
    platforms: BTreeMap<String, Arc<dyn Platform>>,
    /// Wakes the dispatcher.
    dispatch: Arc<Notify>,
    position: Position,
    /// Records appended and not imported yet.
    unimported: Arc<AtomicI64>,
    /// Messages waiting for the dispatcher: raised by what this stores.
    pending: Arc<AtomicUsize>,
    /// Measured between imports.
    disk: Arc<DiskFloor>,
    stop: Arc<AtomicBool>,
}

impl Importer {
    fn run(mut self) {
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use futures_util::future::join_all;

    use super::*;

    fn inbound(provider_id: &str) -> Inbound {
        Inbound {
            platform: "sms".into(),
            chat: "+15550001111".into(),
            sender: "+15550001111".into(),
            text: format!("message {provider_id}"),
            attachments: vec![],
            provider_id: provider_id.into(),
            received_at: SystemTime::now(),
            control: None,
        }
    }

    fn group_commit() -> (tempfile::TempDir, Arc<Journal>, Arc<GroupCommit>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let start = Position {
            generation: 0,
            offset: 0,
        };
        let journal = Arc::new(
            Journal::open(&dir.path().join(JOURNAL_FILE), start)
                .expect("journal")
                .journal,
        );
        let commits = Arc::new(GroupCommit {
            journal: journal.clone(),
            importer: std::thread::current(),
            unimported: Arc::default(),
            acks: None,
            queue: Default::default(),
        });
        (dir, journal, commits)
    }

    fn appended(journal: &Journal) -> Vec<String> {
        let (records, _) = journal
            .read(crate::store::journal::HEADER, 1000)
            .expect("read");
        records.into_iter().map(|r| r.provider_id).collect()
    }

    #[actix_rt::test]
    async fn concurrent_messages_share_writes_and_each_learns_its_outcome() {
        let (_dir, journal, commits) = group_commit();
        let ids: Vec<String> = (0..40).map(|i| format!("SM{i}")).collect();
        let outcomes = join_all(ids.iter().map(|id| commits.submit(inbound(id)))).await;
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Ok(None)))));
        assert_eq!(appended(&journal), ids);
        assert_eq!(commits.unimported.load(Ordering::Acquire), 40);
        assert!(!commits.queue().leading, "leadership is given up once idle");
        // Later messages find no leader and elect one again.
        let late = commits.submit(inbound("SM-late")).await;
        assert!(matches!(late, Ok(Ok(None))));
        assert_eq!(appended(&journal).len(), 41);
    }

    #[test]
    fn with_a_shared_database_webhooks_wait_for_their_own_commit() {
        // Two records were in the journal, unimported, when it was opened.
        let acks = SharedAcks::new(2);
        let mut first = acks.appended(2);
        acks.imported(3);
        assert_eq!(first[0].try_recv(), Ok(Committed::Shared));
        assert!(
            first[1].try_recv().is_err(),
            "the fourth record is not imported yet"
        );
        acks.imported(1);
        assert_eq!(first[1].try_recv(), Ok(Committed::Shared));
        // The database goes away: what waits and what comes is answered from the journal.
        let mut waiting = acks.appended(1);
        acks.unreachable();
        assert_eq!(waiting[0].try_recv(), Ok(Committed::JournalOnly));
        let mut meanwhile = acks.appended(1);
        assert_eq!(meanwhile[0].try_recv(), Ok(Committed::JournalOnly));
        // Back: both are imported, and webhooks wait for their commit again.
        acks.imported(2);
        let mut after = acks.appended(1);
        assert!(after[0].try_recv().is_err());
        acks.imported(1);
        assert_eq!(after[0].try_recv(), Ok(Committed::Shared));
        // The importer may read and commit a record before its append is counted here.
        acks.imported(1);
        let mut early = acks.appended(2);
        assert_eq!(early[0].try_recv(), Ok(Committed::Shared));
        assert!(early[1].try_recv().is_err());
    }

    #[test]
    fn a_leader_dropped_before_it_runs_still_appends() {
        let (_dir, journal, commits) = group_commit();
        let (reply, mut outcome) = oneshot::channel();
        {
            let mut queue = commits.queue();
            queue.writes.push((inbound("SM1"), reply));
            queue.leading = true;
        }
        drop(Leader(Some(commits.clone())));
        assert!(matches!(outcome.try_recv(), Ok(Ok(None))));
        assert_eq!(appended(&journal), ["SM1"]);
        assert!(!commits.queue().leading);
    }
}
