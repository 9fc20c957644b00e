//! Operations on jobs shared by `hermes cron` and the `/cron` chat command.
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::schedule::{Schedule, local_time};
use crate::outbox::deliver::{Target, display_targets};
use crate::services::Services;
use crate::store::{Job, JobKind, Millis, NewJob};

/// Longest default name, in characters, taken from the prompt or command.
const NAME_CHARS: usize = 40;

/// A job as a user asks for it.
#[derive(Clone, Debug)]
pub struct JobSpec<'a> {
    /// Display name; derived from the payload when absent.
    pub name: Option<&'a str>,
    /// The schedule as written.
    pub schedule: &'a str,
    /// Prompt or command.
    pub kind: JobKind,
    /// The prompt text or the command line.
    pub payload: &'a str,
    /// Checked delivery targets.
    pub deliver: &'a [Target],
    /// The chat that asked for it, as (platform, chat).
    pub origin: Option<(&'a str, &'a str)>,
}

/// A job that was added.
#[derive(Clone, Debug)]
pub struct Added {
    /// Its id.
    pub id: i64,
    /// When it first runs.
    pub next_run: DateTime<Utc>,
}

/// Store time as a UTC time.
pub fn from_ms(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Adds a job after checking its schedule and payload.
pub fn add(services: &Services, spec: &JobSpec<'_>) -> anyhow::Result<Added> {
    let schedule: Schedule = spec.schedule.parse()?;
    let payload = spec.payload.trim();
    if payload.is_empty() {
        bail!(
            "the job has no {}: say what it should run",
            spec.kind.as_str()
        );
    }
    let next_run = schedule.first_run(from_ms(services.store.now()), services.timezone)?;
    let name = match spec.name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => name.to_string(),
        None => default_name(payload),
    };
    let schedule_text = schedule.to_string();
    let deliver = display_targets(spec.deliver);
    let id = services.store.add_job(&NewJob {
        name: &name,
        schedule: &schedule_text,
        kind: spec.kind,
        payload,
        deliver: &deliver,
        origin: spec.origin,
        next_run_at: next_run.timestamp_millis(),
    })?;
    Ok(Added { id, next_run })
}

fn default_name(payload: &str) -> String {
    let line = payload.lines().next().unwrap_or_default().trim();
    let mut name: String = line.chars().take(NAME_CHARS).collect();
    if line.chars().count() > NAME_CHARS {
        name.push('…');
    }
    name
}

/// The job with this id, or an error saying how to find one.
pub fn get(services: &Services, id: i64) -> anyhow::Result<Job> {
    services
        .store
        .job(id)?
        .with_context(|| format!("there is no job {id}: `hermes cron list` shows the jobs"))
}

/// Pauses a job: it stays stored but does not run on schedule.
pub fn pause(services: &Services, id: i64) -> anyhow::Result<Job> {
    get(services, id)?;
    services.store.set_job_paused(id, true, None)?;
    get(services, id)
}

/// Resumes a job. A repeating job counts its next run from now, so the runs it missed while
/// paused are not made up; a one-shot keeps its time (and runs at once if that has passed).
pub fn resume(services: &Services, id: i64) -> anyhow::Result<Job> {
    let job = get(services, id)?;
    let schedule: Schedule = job.schedule.parse()?;
    let next = if schedule.is_one_shot() {
        None
    } else {
        Some(
            schedule
                .first_run(from_ms(services.store.now()), services.timezone)?
                .timestamp_millis(),
        )
    };
    services.store.set_job_paused(id, false, next)?;
    get(services, id)
}

/// Removes a job and its run history.
pub fn remove(services: &Services, id: i64) -> anyhow::Result<Job> {
    let job = get(services, id)?;
    services.store.remove_job(id)?;
    Ok(job)
}

/// When a job runs next, as people read it.
pub fn next_run_text(job: &Job, zone: Tz) -> String {
    match job.next_run_at {
        _ if job.done => "done".to_string(),
        Some(_) if job.paused => "paused".to_string(),
        Some(at) => local_time(from_ms(at), zone),
        None => "never".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_the_first_line_cut_short() {
        assert_eq!(default_name("remind me\nto drink"), "remind me");
        let long = "x".repeat(50);
        assert_eq!(default_name(&long).chars().count(), NAME_CHARS + 1);
    }
}
