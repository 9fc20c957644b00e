//! The `hermes` command line.
use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use hermes_config::{Config, default_home};
use platform_api::{registration, registrations};

use crate::settings::{self, HOST};

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
    Gateway(GatewayArgs),
    /// List registered platforms and whether they are enabled.
    Platforms(PlatformsArgs),
    /// Show how a platform would send agent Markdown read on stdin.
    Format(FormatArgs),
    /// Deliver a message now (targets as in cron `--deliver`).
    Send(crate::deliver::SendArgs),
    /// Manage scheduled jobs (`add`, `list`, `pause`, `resume`, `remove`, `run`).
    Cron(crate::cron::cli::CronArgs),
    /// Manage users admitted by pairing code (`list`, `approve PLATFORM CODE`, `revoke PLATFORM SENDER`).
    Pairing(crate::pairing::PairingArgs),
    /// Outgoing parts and their delivery (`list`, `retry ID`).
    Outbox(crate::outbox::cli::OutboxArgs),
}

#[derive(Args, Debug)]
struct GatewayArgs {
    #[command(subcommand)]
    action: Option<GatewayAction>,
    /// Run against a provider emulator on loopback, with this terminal as the user's phone:
    /// the whole loop with no accounts.
    #[arg(long)]
    sandbox: bool,
    /// With --sandbox: the platform to emulate (default: the first that has a sandbox).
    #[arg(long, requires = "sandbox")]
    platform: Option<String>,
}

#[derive(Subcommand, Debug)]
enum GatewayAction {
    /// Start every enabled platform, the pipeline and the scheduler (the default).
    Run,
    /// Interactive wizard: pick a platform, answer its settings, write $HERMES_HOME/.env.
    Setup(crate::setup::SetupArgs),
    /// Check the configuration and, for SMS, the Twilio account and the number's webhook.
    Doctor(crate::doctor::DoctorArgs),
}

#[derive(Args, Debug)]
struct PlatformsArgs {
    /// Print every setting (host and platforms) as a Markdown reference table instead.
    #[arg(long)]
    settings: bool,
}

#[derive(Args, Debug)]
struct FormatArgs {
    /// Registered platform name (see `hermes platforms`).
    #[arg(long)]
    platform: String,
    /// Print the parts as a JSON array.
    #[arg(long)]
    json: bool,
}

/// Loads the configuration of `$HERMES_HOME` with the process environment.
pub fn load_config() -> anyhow::Result<Config> {
    let home = default_home();
    Config::load(&home, &settings::schema(), std::env::vars()).map_err(|e| anyhow::anyhow!("{e}"))
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
        Command::Gateway(args) if args.sandbox => {
            crate::sandbox::run(args.platform.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gateway(args) => match args.action {
            None | Some(GatewayAction::Run) => {
                let config = load_config()?;
                init_logging(&config)?;
                crate::install_crypto();
                actix_rt::System::new().block_on(crate::gateway::run(config))?;
                Ok(ExitCode::SUCCESS)
            }
            Some(GatewayAction::Setup(args)) => crate::setup::run(args),
            Some(GatewayAction::Doctor(args)) => crate::doctor::run(args),
        },
        Command::Platforms(args) if args.settings => {
            print!("{}", settings_reference());
            Ok(ExitCode::SUCCESS)
        }
        Command::Platforms(_) => {
            let config = load_config()?;
            print!("{}", platforms_table(&config));
            Ok(ExitCode::SUCCESS)
        }
        Command::Format(args) => format(args),
        Command::Send(args) => crate::deliver::send(&load_config()?, args),
        Command::Cron(args) => crate::cron::cli::run(&load_config()?, args),
        Command::Pairing(args) => crate::pairing::run(args),
        Command::Outbox(args) => crate::outbox::cli::run(&load_config()?, args),
    }
}

/// Every setting as a Markdown table: the README's configuration reference.
pub fn settings_reference() -> String {
    let mut out = String::from(
        "| variable | `config.toml` key | required | default | meaning |\n|---|---|---|---|---|\n",
    );
    for section in settings::schema() {
        for s in section.settings {
            let path = if section.table.is_empty() {
                s.key.to_string()
            } else {
                format!("{}.{}", section.table, s.key)
            };
            let key = match path.rsplit_once('.') {
                Some((table, key)) => format!("[{table}] {key}"),
                None => path,
            };
            let mut flags = if s.required { "yes" } else { "no" }.to_string();
            if s.secret {
                flags.push_str(", secret");
            }
            out.push_str(&format!(
                "| `{}` | `{key}` | {flags} | {} | {} |\n",
                s.env,
                s.default.map(|d| format!("`{d}`")).unwrap_or_default(),
                s.help.replace('|', "\\|")
            ));
        }
    }
    out
}

/// The `hermes platforms` table.
pub fn platforms_table(config: &Config) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "LABEL".to_string(),
        "STATUS".to_string(),
        "DETAIL".to_string(),
    ]];
    for reg in registrations() {
        let section = config.section(reg.name);
        let (status, mut detail) = match (reg.enabled)(&section) {
            Err(why) => ("disabled", why),
            Ok(()) => match (reg.build)(&section) {
                Ok(_) => ("enabled", String::new()),
                Err(e) => ("error", e.to_string()),
            },
        };
        if reg.stub {
            detail = [detail.as_str(), "stub: sending not implemented yet"]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("; ");
        }
        rows.push([
            reg.name.to_string(),
            reg.label.to_string(),
            status.to_string(),
            detail,
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
            .trim_end()
            .to_string()
                + "\n"
        })
        .collect()
}

fn format(args: FormatArgs) -> anyhow::Result<ExitCode> {
    let Some(reg) = registration(&args.platform) else {
        let names: Vec<&str> = registrations().iter().map(|r| r.name).collect();
        bail!(
            "unknown platform {:?}; registered: {}",
            args.platform,
            names.join(", ")
        );
    };
    let mut markdown = String::new();
    std::io::stdin()
        .read_to_string(&mut markdown)
        .context("reading Markdown from stdin")?;
    let parts = (reg.format)(&markdown);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parts)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: u32 = parts.iter().map(|p| p.segments).sum();
    for (i, part) in parts.iter().enumerate() {
        let encoding = part
            .encoding
            .as_deref()
            .map(|e| format!(" · {e}"))
            .unwrap_or_default();
        println!(
            "--- part {}/{}{encoding} · {} segment(s) · {} chars",
            i + 1,
            parts.len(),
            part.segments,
            part.body.chars().count()
        );
        println!("{}", part.body);
    }
    println!("--- {} part(s), {total} segment(s) billed", parts.len());
    Ok(ExitCode::SUCCESS)
}
