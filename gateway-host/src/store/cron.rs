//! Cron jobs and their runs, and the outcome of delivered parts for delivery reports.
use rusqlite::{OptionalExtension, Row, params};

use super::{Millis, PartState, Result, Store, now_ms};

/// What a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// A prompt answered by the configured agent.
    Prompt,
    /// A shell command whose stdout is the message.
    Command,
}

impl JobKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Prompt => "prompt",
            JobKind::Command => "command",
        }
    }

    fn parse(s: &str) -> JobKind {
        match s {
            "command" => JobKind::Command,
            _ => JobKind::Prompt,
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Output was produced and handed to delivery.
    Ok,
    /// The agent or command failed; nothing was delivered.
    Failed,
    /// The output started with `[SILENT]`: recorded, not delivered.
    Silent,
    /// There was no output: nothing delivered.
    Empty,
    /// The gateway stopped while the job was running.
    Interrupted,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Silent => "silent",
            RunStatus::Empty => "empty",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A job to add.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// Display name.
    pub name: &'a str,
    /// The schedule as displayed (`every 30m`).
    pub schedule: &'a str,
    /// Prompt or command.
    pub kind: JobKind,
    /// The prompt text or the command line.
    pub payload: &'a str,
    /// Delivery targets as displayed (`sms,origin`).
    pub deliver: &'a str,
    /// The chat that created it, as (platform, chat), when created from a chat.
    pub origin: Option<(&'a str, &'a str)>,
    /// When it first runs.
    pub next_run_at: Millis,
}

/// A stored job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Its id, as users name it.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// The schedule as displayed.
    pub schedule: String,
    /// Prompt or command.
    pub kind: JobKind,
    /// The prompt text or the command line.
    pub payload: String,
    /// Delivery targets as displayed.
    pub deliver: String,
    /// Platform of the chat that created it.
    pub origin_platform: Option<String>,
    /// The chat that created it.
    pub origin_chat: Option<String>,
    /// Paused jobs do not run on schedule.
    pub paused: bool,
    /// A one-shot job that has run.
    pub done: bool,
    /// When it runs next; `None` once done.
    pub next_run_at: Option<Millis>,
    /// Status of its latest run.
    pub last_status: Option<String>,
    /// When its latest run started.
    pub last_run_at: Option<Millis>,
    /// When it was added.
    pub created_at: Millis,
}

impl Job {
    /// The (platform, chat) that created it, when created from a chat.
    pub fn origin(&self) -> Option<(&str, &str)> {
        Some((
            self.origin_platform.as_deref()?,
            self.origin_chat.as_deref()?,
        ))
    }
}

/// What became of one outgoing part, for delivery reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartOutcome {
    /// Its state.
    pub state: PartState,
    /// The provider's id once sent.
    pub provider_id: Option<String>,
    /// The last error, when it failed or is being retried.
    pub error: Option<String>,
}

const JOB_COLUMNS: &str =
    "id, name, schedule, kind, payload, deliver, origin_platform, origin_chat,
     paused, done, next_run_at, last_status, last_run_at, created_at";

fn job_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let kind: String = r.get(3)?;
    Ok(Job {
        id: r.get(0)?,
        name: r.get(1)?,
        schedule: r.get(2)?,
        kind: JobKind::parse(&kind),
        payload: r.get(4)?,
        deliver: r.get(5)?,
        origin_platform: r.get(6)?,
        origin_chat: r.get(7)?,
        paused: r.get(8)?,
        done: r.get(9)?,
        next_run_at: r.get(10)?,
        last_status: r.get(11)?,
        last_run_at: r.get(12)?,
        created_at: r.get(13)?,
    })
}

impl Store {
    /// Adds a job; returns its id.
    pub fn add_job(&self, job: &NewJob<'_>) -> Result<i64> {
        let conn = self.conn();
        conn.prepare_cached("INSERT INTO cron_jobs (name, schedule, kind, payload, deliver, origin_platform, origin_chat,
                                    next_run_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(params![
                job.name,
                job.schedule,
                job.kind.as_str(),
                job.payload,
                job.deliver,
                job.origin.map(|o| o.0),
                job.origin.map(|o| o.1),
                job.next_run_at,
                now_ms(),
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The job with this id.
    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, params![id], job_row)
            .optional()?)
    }

    /// Every job, by id.
    pub fn jobs(&self) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs ORDER BY id"))?;
        let rows = stmt.query_map([], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Active jobs due at `now`, most overdue first.
    pub fn due_jobs(&self, now: Millis) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM cron_jobs
             WHERE paused = 0 AND done = 0 AND next_run_at <= ?1 ORDER BY next_run_at, id"
        ))?;
        let rows = stmt.query_map(params![now], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Takes a due run of a job: moves its next run to `next` (a one-shot without one is
    /// done). False when another scheduler took it first or the job changed meanwhile.
    pub fn claim_job_run(&self, id: i64, due: Millis, next: Option<Millis>) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE cron_jobs SET next_run_at = ?3, done = (?3 IS NULL)
             WHERE id = ?1 AND next_run_at = ?2 AND paused = 0 AND done = 0",
            )?
            .execute(params![id, due, next])?;
        Ok(changed == 1)
    }

    /// Pauses or resumes a job; a resumed job runs next at `next_run_at`. False when there is
    /// no such job.
    pub fn set_job_paused(
        &self,
        id: i64,
        paused: bool,
        next_run_at: Option<Millis>,
    ) -> Result<bool> {
        let changed = self.conn().prepare_cached("UPDATE cron_jobs SET paused = ?2, next_run_at = COALESCE(?3, next_run_at) WHERE id = ?1")?.execute(params![id, paused, next_run_at],
        )?;
        Ok(changed == 1)
    }

    /// Removes a job and its runs. False when there is no such job.
    pub fn remove_job(&self, id: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached("DELETE FROM cron_runs WHERE job_id = ?1")?
            .execute(params![id])?;
        let changed = tx
            .prepare_cached("DELETE FROM cron_jobs WHERE id = ?1")?
            .execute(params![id])?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Records that a run started (`trigger`: `schedule` or `manual`); returns the run's id.
    pub fn start_job_run(&self, job_id: i64, trigger: &str) -> Result<i64> {
        let conn = self.conn();
        let now = now_ms();
        conn.prepare_cached(
            "INSERT INTO cron_runs (job_id, trigger, started_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![job_id, trigger, now])?;
        let run = conn.last_insert_rowid();
        conn.prepare_cached("UPDATE cron_jobs SET last_run_at = ?2 WHERE id = ?1")?
            .execute(params![job_id, now])?;
        Ok(run)
    }

    /// Records how a run ended, with its output and deliveries (JSON).
    pub fn finish_job_run(
        &self,
        run_id: i64,
        status: RunStatus,
        output: &str,
        deliveries: &str,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached("UPDATE cron_runs SET ended_at = ?2, status = ?3, output = ?4, deliveries = ?5 WHERE id = ?1")?.execute(params![run_id, now_ms(), status.as_str(), output, deliveries],
        )?;
        tx.prepare_cached(
            "UPDATE cron_jobs SET last_status = ?2
             WHERE id = (SELECT job_id FROM cron_runs WHERE id = ?1)",
        )?
        .execute(params![run_id, status.as_str()])?;
        tx.commit()?;
        Ok(())
    }

    /// Marks runs that never ended (the gateway stopped mid-run) as interrupted; returns how
    /// many.
    pub fn interrupt_unfinished_runs(&self) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "UPDATE cron_jobs SET last_status = 'interrupted'
             WHERE id IN (SELECT job_id FROM cron_runs WHERE ended_at IS NULL)",
        )?
        .execute([])?;
        let n = tx
            .prepare_cached(
                "UPDATE cron_runs SET ended_at = ?1, status = 'interrupted' WHERE ended_at IS NULL",
            )?
            .execute(params![now_ms()])?;
        tx.commit()?;
        Ok(n)
    }

    /// What became of an outgoing part.
    pub fn part_outcome(&self, id: i64) -> Result<Option<PartOutcome>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT state, provider_id, error FROM outbox WHERE id = ?1")?
            .query_row(params![id], |r| {
                let state: String = r.get(0)?;
                Ok(PartOutcome {
                    state: PartState::parse(&state),
                    provider_id: r.get(1)?,
                    error: r.get(2)?,
                })
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_api::Part;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("gateway.db")).unwrap();
        (dir, store)
    }

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
        let (_dir, store) = store();
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

    #[test]
    fn cron_runs_are_recorded_paused_jobs_wait_and_removal_cascades() {
        let (_dir, store) = store();
        let id = store.add_job(&job(1_000)).unwrap();
        assert!(store.set_job_paused(id, true, None).unwrap());
        assert!(store.due_jobs(i64::MAX).unwrap().is_empty());
        assert!(store.set_job_paused(id, false, Some(7_000)).unwrap());
        assert_eq!(store.job(id).unwrap().unwrap().next_run_at, Some(7_000));
        assert!(!store.set_job_paused(id + 1, true, None).unwrap());

        let run = store.start_job_run(id, "manual").unwrap();
        store
            .finish_job_run(run, RunStatus::Silent, "[SILENT] nothing new", "[]")
            .unwrap();
        let unfinished = store.start_job_run(id, "schedule").unwrap();
        assert_eq!(store.interrupt_unfinished_runs().unwrap(), 1);
        let job = store.job(id).unwrap().unwrap();
        assert_eq!(job.last_status.as_deref(), Some("interrupted"));
        assert!(unfinished > run);
        assert!(store.remove_job(id).unwrap());
        assert!(!store.remove_job(id).unwrap());
        assert!(store.jobs().unwrap().is_empty());
    }

    #[test]
    fn part_outcomes_report_provider_ids() {
        let (_dir, store) = store();
        let ids = store
            .enqueue("sms", "+15550001111", &[Part::plain("x")], "cron")
            .unwrap();
        let pending = store.part_outcome(ids[0]).unwrap().unwrap();
        assert_eq!(pending.state, PartState::Pending);
        store.mark_sent(ids[0], "SM1", Some(1)).unwrap();
        let sent = store.part_outcome(ids[0]).unwrap().unwrap();
        assert_eq!(sent.provider_id.as_deref(), Some("SM1"));
        assert_eq!(store.part_outcome(ids[0] + 1).unwrap(), None);
    }
}
