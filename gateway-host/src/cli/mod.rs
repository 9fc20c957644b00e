//! The `hermes` command line: the clap definitions, logging set-up and dispatch. Each
//! subcommand has its own file: [`gateway`] (run, and [`sandbox`] for `--sandbox`) with
//! [`setup`] and [`doctor`] below it, [`platforms`], [`format`](mod@format), [`send`],
//! [`cron`], [`pairing`], [`outbox`], [`migrate`] and [`agent`].
//!
//! Nothing outside this module uses it: the commands call into the rest of the crate
//! ([`crate::runtime`] for `hermes gateway`, [`crate::outbox::deliver`] for what is sent,
//! [`crate::config`] for the configuration).
use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};
use hermes_config::Config;
use platform_api::{Registration, registration, registrations};

use crate::config::load_config;
use crate::settings::{self, HOST};

pub mod agent;
pub mod cron;
pub mod doctor;
pub mod format;
pub mod gateway;
pub mod migrate;
pub mod outbox;
pub mod pairing;
pub mod platforms;
pub mod sandbox;
pub mod send;
pub mod setup;

/// hermes: an AI agent on your phone, by SMS and other messaging platforms.
#[derive(Parser, Debug)]
#[command(name = "hermes", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the messaging gateway (also: `hermes gateway run`).
    Gateway(gateway::GatewayArgs),
    /// List registered platforms and whether they are enabled.
    Platforms(platforms::PlatformsArgs),
    /// Show how a platform would send agent Markdown read on stdin.
    Format(format::FormatArgs),
    /// Deliver a message now (targets as in cron `--deliver`).
    Send(send::SendArgs),
    /// Manage scheduled jobs (`add`, `list`, `pause`, `resume`, `remove`, `run`).
    Cron(cron::CronArgs),
    /// Manage users admitted by pairing code (`list`, `approve PLATFORM CODE`, `revoke PLATFORM SENDER`).
    Pairing(pairing::PairingArgs),
    /// Outgoing parts and their delivery (`list`, `retry ID`).
    Outbox(outbox::OutboxArgs),
    /// What the agent is told (`prompt --platform NAME`: the system message of a turn).
    Agent(agent::AgentArgs),
    /// Copy this home's SQLite database into an empty PostgreSQL database (`--to URL`).
    Migrate(migrate::MigrateArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let format = config
        .section(HOST)
        .choice(settings::LOG_FORMAT.env, &["text", "json"])?;
    crate::logging::init(format.as_deref() == Some("json"));
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Gateway(args) => gateway::run(args),
        Command::Platforms(args) => platforms::run(args),
        Command::Format(args) => format::run(args),
        Command::Send(args) => send::run(&load_config()?, args),
        Command::Cron(args) => cron::run(&load_config()?, args),
        Command::Pairing(args) => pairing::run(args),
        Command::Outbox(args) => outbox::run(&load_config()?, args),
        Command::Migrate(args) => migrate::run(&load_config()?, args),
        Command::Agent(args) => agent::run(&load_config()?, args),
    }
}

/// The registration of the platform named on the command line, or an error listing the
/// registered ones.
fn known_platform(name: &str) -> anyhow::Result<&'static Registration> {
    match registration(name) {
        Some(registration) => Ok(registration),
        None => {
            let names: Vec<&str> = registrations().iter().map(|r| r.name).collect();
            bail!(
                "unknown platform {name:?}; registered: {}",
                names.join(", ")
            )
        }
    }
}
