//! The `/cron` chat command. A chat manages the jobs it created: other chats' jobs (and the
//! shell commands of jobs added with `hermes cron add`) are neither shown nor run from here.
use std::rc::Rc;
use std::time::Duration;

use tracing::error;

use super::Context;
use crate::agent::Agent;
use crate::cron::jobs::{self, JobSpec, next_run_text};
use crate::cron::runner::Runner;
use crate::cron::schedule::{self, local_time};
use crate::outbox::deliver::Target;
use crate::services::Services;
use crate::store::{Job, JobKind};

/// The answer to `/cron` without a known action.
pub const USAGE: &str = "Scheduled jobs:\n/cron list\n/cron add <schedule> | <prompt> (e.g. /cron add every 2h | remind me to drink water)\n/cron pause <id>, /cron resume <id>, /cron remove <id>\n/cron run <id> - run it now\nSchedules: every 30m, 30m (once), 0 9 * * 1-5, 2026-11-24T09:00:00+01:00";

/// Answers `/cron <args>` from the chat of `cx`. `/cron run` starts the job in the
/// background; its output goes through the outbox like any delivery.
pub fn apply(cx: &Context<'_>, args: &str) -> anyhow::Result<String> {
    let (services, agent, timeout) = (cx.services, cx.agent, cx.timeout);
    let (platform, chat) = (cx.key.platform.as_str(), cx.key.chat.as_str());
    let args = args.trim();
    let (action, rest) = args
        .split_once(char::is_whitespace)
        .map(|(a, r)| (a, r.trim()))
        .unwrap_or((args, ""));
    let result = match action.to_ascii_lowercase().as_str() {
        "" | "list" => list(services, platform, chat),
        "add" => add(services, platform, chat, rest),
        "pause" | "resume" | "remove" | "run" => match own_job(services, platform, chat, rest) {
            Err(answer) => Ok(answer),
            Ok(job) => manage(services, agent, timeout, action, job),
        },
        _ => Ok(USAGE.to_string()),
    };
    Ok(result.unwrap_or_else(|e| format!("That did not work: {e:#}")))
}

fn list(services: &Services, platform: &str, chat: &str) -> anyhow::Result<String> {
    let zone = services.timezone;
    let lines: Vec<String> = services
        .store
        .jobs()?
        .iter()
        .filter(|job| job.origin() == Some((platform, chat)))
        .map(|job| {
            let last = job
                .last_status
                .as_deref()
                .map(|s| format!(", last {s}"))
                .unwrap_or_default();
            format!(
                "{}. {} ({}): next {}{last}",
                job.id,
                job.name,
                job.schedule,
                next_run_text(job, zone)
            )
        })
        .collect();
    if lines.is_empty() {
        return Ok(
            "No scheduled jobs. Add one with /cron add every 2h | remind me to drink water"
                .to_string(),
        );
    }
    Ok(format!("Jobs ({zone}):\n{}", lines.join("\n")))
}

fn add(services: &Services, platform: &str, chat: &str, rest: &str) -> anyhow::Result<String> {
    let Some((schedule, prompt)) = rest.split_once('|') else {
        return Ok(format!(
            "Write /cron add <schedule> | <prompt>, e.g. /cron add every 2h | remind me to drink water\n{}",
            schedule::FORMS
        ));
    };
    let added = jobs::add(
        services,
        &JobSpec {
            name: None,
            schedule: schedule.trim(),
            kind: JobKind::Prompt,
            payload: prompt.trim(),
            deliver: &[Target::Origin],
            origin: Some((platform, chat)),
        },
    )?;
    Ok(format!(
        "Added job {}: next run {} ({}). Its answers come to this chat.",
        added.id,
        local_time(added.next_run, services.timezone),
        services.timezone
    ))
}

fn own_job(services: &Services, platform: &str, chat: &str, id: &str) -> Result<Job, String> {
    let Ok(id) = id.trim().trim_start_matches('#').parse::<i64>() else {
        return Err(
            "Say which job by its number, e.g. /cron pause 3 (/cron list shows them).".to_string(),
        );
    };
    match services.store.job(id) {
        Ok(Some(job)) if job.origin() == Some((platform, chat)) => Ok(job),
        Ok(_) => Err(format!(
            "There is no job {id} in this chat (/cron list shows them)."
        )),
        Err(e) => Err(format!("That did not work: {e}")),
    }
}

fn manage(
    services: &Services,
    agent: &Rc<dyn Agent>,
    timeout: Duration,
    action: &str,
    job: Job,
) -> anyhow::Result<String> {
    Ok(match action.to_ascii_lowercase().as_str() {
        "pause" => {
            jobs::pause(services, job.id)?;
            format!("Paused job {} ({}).", job.id, job.name)
        }
        "resume" => {
            let job = jobs::resume(services, job.id)?;
            format!(
                "Resumed job {}: next run {}.",
                job.id,
                next_run_text(&job, services.timezone)
            )
        }
        "remove" => {
            jobs::remove(services, job.id)?;
            format!("Removed job {} ({}).", job.id, job.name)
        }
        _ => {
            let runner = Runner::new(services.clone(), agent.clone(), timeout);
            let id = job.id;
            actix_rt::spawn(async move {
                if let Err(e) = runner.run(&job, "manual").await {
                    error!("[cron] job {}: {e:#}", job.id);
                }
            });
            format!("Running job {id} now.")
        }
    })
}
