//! With a shared database: webhooks answered once their message is committed there, or from
//! the journal while the database is unreachable.
use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;
use tracing::{info, warn};

/// Where a message was committed before its webhook is answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Committed {
    /// In the shared database.
    Shared,
    /// In the local journal only: the shared database was unreachable.
    JournalOnly,
}

/// Webhooks waiting for the importer to commit their messages in the shared database.
///
/// Journal records are imported in the order they were appended, so the n-th record appended
/// is committed once n records are imported: a count, which the journal starting over (with
/// what is not imported yet) does not disturb.
pub(super) struct SharedAcks {
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
    pub(super) fn new(unimported: u64) -> Self {
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
    pub(super) fn appended(&self, n: usize) -> Vec<oneshot::Receiver<Committed>> {
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
    pub(super) fn imported(&self, n: usize) {
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
    pub(super) fn unreachable(&self) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
