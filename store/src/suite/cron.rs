//! Cron jobs, runs and part outcomes, against every backend.
use platform_api::Part;

use super::backends;
use crate::*;

fn job(next_run_at: Millis) -> NewJob<'static> {
    NewJob {
        name: "water",
        schedule: "every 2h",
        kind: JobKind::Prompt,
        payload: "remind me to drink water",
        deliver: "origin",
        origin: Some(("sms", "+15550001111")),
        next_run_at,
    }
}

#[test]
fn cron_jobs_are_claimed_once_per_due_run() {
    for backend in backends() {
        let store = backend.open();
        let id = store.add_job(&job(1_000)).unwrap();
        let stored = store.job(id).unwrap().unwrap();
        assert_eq!(stored.origin(), Some(("sms", "+15550001111")));
        assert_eq!(store.due_jobs(999).unwrap().len(), 0);
        assert_eq!(store.due_jobs(1_000).unwrap()[0].id, id);
        assert!(store.claim_job_run(id, 1_000, Some(5_000)).unwrap());
        assert!(
            !store.claim_job_run(id, 1_000, Some(5_000)).unwrap(),
            "taken once"
        );
        assert!(store.due_jobs(4_999).unwrap().is_empty());
        // A one-shot claimed without a next run is done.
        assert!(store.claim_job_run(id, 5_000, None).unwrap());
        assert!(store.job(id).unwrap().unwrap().done);
        assert!(store.due_jobs(i64::MAX).unwrap().is_empty());
    }
}

#[test]
fn cron_runs_are_recorded_paused_jobs_wait_and_removal_cascades() {
    for backend in backends() {
        let store = backend.open();
        let id = store.add_job(&job(1_000)).unwrap();
        assert!(store.set_job_paused(id, true, None).unwrap());
        assert!(store.due_jobs(i64::MAX).unwrap().is_empty());
        assert!(store.set_job_paused(id, false, Some(7_000)).unwrap());
        assert_eq!(store.job(id).unwrap().unwrap().next_run_at, Some(7_000));
        assert!(!store.set_job_paused(id + 1, true, None).unwrap());

        let run = store.start_job_run(id, "manual").unwrap();
        assert!(
            store
                .finish_job_run(run, RunStatus::Silent, "[SILENT] nothing new", "[]")
                .unwrap()
        );
        store.heartbeat().unwrap();
        let unfinished = store.start_job_run(id, "schedule").unwrap();
        if let Some(other) = backend.open_replica("replica-b") {
            // The gateway running it is alive: its run is its own to end.
            assert_eq!(other.interrupt_unfinished_runs().unwrap(), 0);
        }
        // It stops without a word: once its heartbeat is stale its run was cut off.
        backend.stall(super::FIRST_REPLICA);
        assert_eq!(store.interrupt_unfinished_runs().unwrap(), 1);
        // When it finishes after all, the run stays as the others left it.
        assert!(
            !store
                .finish_job_run(unfinished, RunStatus::Ok, "late", "[]")
                .unwrap()
        );
        let job = store.job(id).unwrap().unwrap();
        assert_eq!(job.last_status.as_deref(), Some("interrupted"));
        assert!(unfinished > run);
        assert!(store.remove_job(id).unwrap());
        assert!(!store.remove_job(id).unwrap());
        assert!(store.jobs().unwrap().is_empty());
    }
}

#[test]
fn part_outcomes_report_provider_ids() {
    for backend in backends() {
        let store = backend.open();
        let ids = store
            .enqueue("sms", "+15550001111", &[Part::plain("x")], "cron")
            .unwrap();
        let pending = store.part_outcome(ids[0]).unwrap().unwrap();
        assert_eq!(pending.state, PartState::Pending);
        super::send(&store, ids[0], "SM1", Some(1));
        let sent = store.part_outcome(ids[0]).unwrap().unwrap();
        assert_eq!(sent.provider_id.as_deref(), Some("SM1"));
        assert_eq!(store.part_outcome(ids[0] + 1).unwrap(), None);
    }
}
