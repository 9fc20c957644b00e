//! `hermes agent prompt --platform NAME`: the exact system message a turn on that platform
//! would get now (persona, platform hint, date and time), so that an operator sees what the
//! model sees.
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hermes_config::Config;

use crate::agent::persona::Persona;
use crate::settings::HOST;

/// `hermes agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Subcommand, Debug)]
enum AgentCommand {
    /// Print the system message a turn on the platform would get now.
    Prompt {
        /// Registered platform name (see `hermes platforms`).
        #[arg(long)]
        platform: String,
    },
}

/// Runs `hermes agent`.
pub fn run(config: &Config, args: AgentArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AgentCommand::Prompt { platform } => {
            println!("{}", system_message(config, &platform)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The system message a turn on `platform` would get now under `config`.
pub fn system_message(config: &Config, platform: &str) -> anyhow::Result<String> {
    let registration = super::known_platform(platform)?;
    let timezone = crate::cron::schedule::zone(&config.section(HOST))?;
    let persona = Persona::from_config(config, timezone)?;
    Ok(persona.prompt(registration.name, registration.label).system)
}
