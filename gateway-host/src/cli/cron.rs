//! `hermes cron`: add, list, pause, resume, remove and run jobs.
use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use hermes_config::Config;

use super::send::{check_cli_targets, finish};
use crate::cron::jobs::{self, JobSpec, next_run_text};
use crate::cron::runner::Runner;
use crate::cron::schedule::local_time;
use crate::services::{Services, build_platforms};
use crate::store::{Job, JobKind, RunStatus};

/// `hermes cron`.
#[derive(Args, Debug)]
pub struct CronArgs {
    #[command(subcommand)]
    action: CronAction,
}

#[derive(Subcommand, Debug)]
enum CronAction {
    /// Add a job; prints its id first.
    Add(AddArgs),
    /// List jobs: id, name, schedule, next run, last status, targets, paused.
    List,
    /// Stop a job from running on schedule (it is kept).
    Pause {
        /// The job's id (see `hermes cron list`).
        id: i64,
    },
    /// Let a paused job run on schedule again, counting from now.
    Resume {
        /// The job's id.
        id: i64,
    },
    /// Delete a job and its run history.
    Remove {
        /// The job's id.
        id: i64,
    },
    /// Run a job now and deliver its output, waiting until it is sent.
    Run {
        /// The job's id.
        id: i64,
    },
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("work").required(true).args(["prompt", "command"])))]
struct AddArgs {
    /// When it runs: `0 9 * * 1-5`, `every 30m`, `30m` (once, from now), or an RFC 3339 time.
    #[arg(long)]
    schedule: String,
    /// A prompt for the agent; its answer is the message.
    #[arg(long)]
    prompt: Option<String>,
    /// A shell command (run with `sh -c`); its stdout is the message.
    #[arg(long)]
    command: Option<String>,
    /// Where the output goes: `local`, `sms` (its home channel), `sms:+15551234567`, or a
    /// comma-separated list.
    #[arg(long, value_name = "TARGETS", default_value = "local")]
    deliver: String,
    /// A name to recognise it by; default the start of the prompt or command.
    #[arg(long)]
    name: Option<String>,
}

/// Runs `hermes cron`.
pub fn run(config: &Config, args: CronArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        CronAction::Add(args) => add(config, args),
        CronAction::List => {
            let services = Services::from_config(config, BTreeMap::new())?;
            print!("{}", table(&services, &services.store.jobs()?));
            Ok(ExitCode::SUCCESS)
        }
        CronAction::Pause { id } => {
            let services = Services::from_config(config, BTreeMap::new())?;
            let job = jobs::pause(&services, id)?;
            println!("{} paused ({})", job.id, job.name);
            Ok(ExitCode::SUCCESS)
        }
        CronAction::Resume { id } => {
            let services = Services::from_config(config, BTreeMap::new())?;
            let job = jobs::resume(&services, id)?;
            println!(
                "{} resumed: next run {} ({})",
                job.id,
                next_run_text(&job, services.timezone),
                services.timezone
            );
            Ok(ExitCode::SUCCESS)
        }
        CronAction::Remove { id } => {
            let services = Services::from_config(config, BTreeMap::new())?;
            let job = jobs::remove(&services, id)?;
            println!("{} removed ({})", job.id, job.name);
            Ok(ExitCode::SUCCESS)
        }
        CronAction::Run { id } => run_now(config, id),
    }
}

fn add(config: &Config, args: AddArgs) -> anyhow::Result<ExitCode> {
    let services = Services::from_config(config, build_platforms(config))?;
    let targets = check_cli_targets(config, &services, &args.deliver)?;
    let (kind, payload) = match (&args.prompt, &args.command) {
        (Some(prompt), _) => (JobKind::Prompt, prompt.as_str()),
        (None, Some(command)) => (JobKind::Command, command.as_str()),
        (None, None) => anyhow::bail!("say what the job runs: --prompt TEXT or --command CMD"),
    };
    let added = jobs::add(
        &services,
        &JobSpec {
            name: args.name.as_deref(),
            schedule: &args.schedule,
            kind,
            payload,
            deliver: &targets,
            origin: None,
        },
    )?;
    println!(
        "{} added: next run {} ({})",
        added.id,
        local_time(added.next_run, services.timezone),
        services.timezone
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs a job now, with or without a gateway running, and waits for its delivery.
fn run_now(config: &Config, id: i64) -> anyhow::Result<ExitCode> {
    crate::install_crypto();
    let services = Services::from_config(config, build_platforms(config))?;
    let job = jobs::get(&services, id)?;
    let runner = Runner::from_config(config, services.clone())?;
    let report = actix_rt::System::new().block_on(runner.run(&job, "manual"))?;
    println!("job {} ({}): {}", job.id, job.name, report.status.as_str());
    if !report.output.trim().is_empty() {
        println!("{}", report.output.trim_end());
    }
    match report.status {
        // Delivered to some targets, refused by others: each says what became of it.
        RunStatus::Failed if !report.deliveries.is_empty() => {
            finish(&services, &report.deliveries)?;
            Ok(ExitCode::from(1))
        }
        RunStatus::Failed => Ok(ExitCode::from(1)),
        RunStatus::Ok => finish(&services, &report.deliveries),
        _ => {
            println!("nothing delivered");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The `hermes cron list` table.
fn table(services: &Services, jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "no jobs: add one with `hermes cron add --schedule SPEC --prompt TEXT`\n"
            .to_string();
    }
    let zone = services.timezone;
    let mut rows = vec![[
        "ID".to_string(),
        "NAME".to_string(),
        "SCHEDULE".to_string(),
        format!("NEXT RUN ({zone})"),
        "LAST".to_string(),
        "DELIVER".to_string(),
        "PAUSED".to_string(),
    ]];
    for job in jobs {
        rows.push([
            job.id.to_string(),
            job.name.clone(),
            job.schedule.clone(),
            next_run_text(job, zone),
            job.last_status.clone().unwrap_or_else(|| "-".to_string()),
            job.deliver.clone(),
            if job.paused { "yes" } else { "no" }.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
