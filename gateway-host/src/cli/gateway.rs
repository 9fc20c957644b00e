//! `hermes gateway`: run the gateway ([`crate::runtime`]) until a signal, or against a provider
//! emulator with `--sandbox` ([`super::sandbox`]); `setup` and `doctor` are its subcommands.
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{doctor, init_logging, sandbox, setup};
use crate::config::load_config;

/// `hermes gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[command(subcommand)]
    action: Option<GatewayAction>,
    /// Run against a provider emulator on loopback, with this terminal as the user's phone:
    /// the whole loop with no accounts.
    #[arg(long)]
    sandbox: bool,
    /// With --sandbox: the platform to emulate: sms (the default), telegram or discord.
    #[arg(long, requires = "sandbox")]
    platform: Option<String>,
}

#[derive(Subcommand, Debug)]
enum GatewayAction {
    /// Start every enabled platform, the pipeline and the scheduler (the default).
    Run,
    /// Interactive wizard: pick a platform, answer its settings, write $HERMES_HOME/.env.
    Setup(setup::SetupArgs),
    /// Check the configuration and, for SMS, the Twilio account and the number's webhook.
    Doctor(doctor::DoctorArgs),
}

/// Runs a `hermes gateway` command.
pub fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        sandbox::run(args.platform.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    match args.action {
        None | Some(GatewayAction::Run) => {
            let config = load_config()?;
            init_logging(&config)?;
            crate::install_crypto();
            actix_rt::System::new().block_on(crate::runtime::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(GatewayAction::Setup(args)) => setup::run(args),
        Some(GatewayAction::Doctor(args)) => doctor::run(args),
    }
}
