//! The journal-append path: concurrent webhooks share one write, and each learns whether its
//! message is durable.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;

use platform_api::Inbound;
use tokio::sync::oneshot;

use super::acks::{Committed, SharedAcks};
use crate::store::journal::Journal;

/// Once a message is in the journal: with a shared database, where to learn that it is
/// committed there too; `None` when the journal is all it waits for.
type Appended = Option<oneshot::Receiver<Committed>>;

/// One message waiting for the group commit, with where to report whether it is durable.
type Write = (Inbound, oneshot::Sender<Result<Appended, String>>);

/// Appends inbound messages so that concurrent webhooks share one write.
///
/// The handler that finds nobody writing becomes the leader: once its server thread has
/// polled for I/O (so that the requests read meanwhile, on any thread, have queued theirs), it
/// appends everything waiting, then again while more waits. Other threads only queue and are
/// told the outcome; none blocks, and no thread is woken just to write.
pub(super) struct GroupCommit {
    pub(super) journal: Arc<Journal>,
    /// Woken after each append.
    pub(super) importer: Thread,
    /// Records appended and not imported yet.
    pub(super) unimported: Arc<AtomicI64>,
    /// With a shared database: webhooks wait for their commit there.
    pub(super) acks: Option<Arc<SharedAcks>>,
    pub(super) queue: Mutex<Queue>,
}

#[derive(Default)]
pub(super) struct Queue {
    writes: Vec<Write>,
    /// A leader is scheduled or writing.
    leading: bool,
}

impl GroupCommit {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn submit(
        self: &Arc<Self>,
        inbound: Inbound,
    ) -> oneshot::Receiver<Result<Appended, String>> {
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use futures_util::future::join_all;

    use super::*;
    use crate::store::journal::Position;

    fn inbound(provider_id: &str) -> Inbound {
        Inbound {
            sender_name: None,
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
            Journal::open(
                &dir.path().join(crate::runtime::ingress::JOURNAL_FILE),
                start,
            )
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
