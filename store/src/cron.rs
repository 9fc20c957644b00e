//! Cron jobs and their runs, and the outcome of delivered parts for delivery reports.
use super::{Millis, PartState, Result};

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

    /// The kind stored as `s`.
    pub fn parse(s: &str) -> JobKind {
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
    /// The agent or command failed (nothing was delivered), or a target could not take its
    /// output (the run's deliveries say which, and why).
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

/// Cron jobs, their runs, and what became of the parts a run delivered.
pub trait CronStore {
    /// Adds a job; returns its id.
    fn add_job(&self, job: &NewJob<'_>) -> Result<i64>;

    /// The job with this id.
    fn job(&self, id: i64) -> Result<Option<Job>>;

    /// Every job, by id.
    fn jobs(&self) -> Result<Vec<Job>>;

    /// Active jobs due at `now`, most overdue first.
    fn due_jobs(&self, now: Millis) -> Result<Vec<Job>>;

    /// Takes a due run of a job: moves its next run to `next` (a one-shot without one is
    /// done). False when another scheduler took it first or the job changed meanwhile.
    fn claim_job_run(&self, id: i64, due: Millis, next: Option<Millis>) -> Result<bool>;

    /// Pauses or resumes a job; a resumed job runs next at `next_run_at`. False when there is
    /// no such job.
    fn set_job_paused(&self, id: i64, paused: bool, next_run_at: Option<Millis>) -> Result<bool>;

    /// Removes a job and its runs. False when there is no such job.
    fn remove_job(&self, id: i64) -> Result<bool>;

    /// Records that a run started (`trigger`: `schedule` or `manual`); returns the run's id.
    fn start_job_run(&self, job_id: i64, trigger: &str) -> Result<i64>;

    /// Records how a run ended, with its output and deliveries (JSON); false, changing
    /// nothing, when the run was ended already (another gateway took this one for stopped and
    /// marked its run interrupted).
    fn finish_job_run(
        &self,
        run_id: i64,
        status: RunStatus,
        output: &str,
        deliveries: &str,
    ) -> Result<bool>;

    /// Marks runs that never ended because their gateway stopped mid-run as interrupted;
    /// returns how many. With one gateway per database (SQLite), called at its start, that is
    /// every unfinished run; with several, those of the gateways that stopped.
    fn interrupt_unfinished_runs(&self) -> Result<usize>;

    /// What became of an outgoing part.
    fn part_outcome(&self, id: i64) -> Result<Option<PartOutcome>>;
}
