//! `hermes send --to TARGETS [TEXT]`: delivers a message now through the outbox, as cron output
//! is ([`crate::outbox::deliver`]), waits for it to be sent and reports per target. The target
//! checks and the wait are shared with `hermes cron add` and `hermes cron run` ([`super::cron`]).
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use hermes_config::Config;
use platform_api::registration;

use crate::outbox::deliver::{
    Content, Delivery, SILENT, Target, check_targets, content, deliver, parse_targets, report,
    wait_sent,
};
use crate::services::{Services, build_platforms};

/// How long `hermes send` and `hermes cron run` wait for their parts to be sent.
pub const SEND_WAIT: Duration = Duration::from_secs(60);

/// Why a registered platform is not running under this configuration.
pub fn why_not_running(config: &Config, name: &str) -> Option<String> {
    let reg = registration(name)?;
    let section = config.section(name);
    match (reg.enabled)(&section) {
        Err(why) => Some(format!("the {name} platform is not enabled: {why}")),
        Ok(()) => (reg.build)(&section)
            .err()
            .map(|e| format!("the {name} platform cannot start: {e}")),
    }
}

/// Checks targets for a command line, explaining a platform that is not running.
pub fn check_cli_targets(
    config: &Config,
    services: &Services,
    text: &str,
) -> anyhow::Result<Vec<Target>> {
    let targets = parse_targets(text).map_err(anyhow::Error::msg)?;
    for target in &targets {
        if let Target::Home(name) | Target::Chat { platform: name, .. } = target
            && services.platform(name).is_none()
            && let Some(why) = why_not_running(config, name)
        {
            bail!("cannot deliver to {target}: {why}");
        }
    }
    check_targets(services, &targets, None).map_err(anyhow::Error::msg)
}

/// `hermes send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Where to deliver: `sms` (its home channel), `sms:+15551234567`, `local`, or a
    /// comma-separated list.
    #[arg(long, value_name = "TARGETS")]
    to: String,
    /// The message (Markdown, formatted for each platform); read from stdin when absent or `-`.
    text: Option<String>,
}

/// Runs `hermes send`: delivers now and reports per target; fails when a part failed.
pub fn run(config: &Config, args: SendArgs) -> anyhow::Result<ExitCode> {
    crate::install_crypto();
    let services = Services::from_config(config, build_platforms(config))?;
    let targets = check_cli_targets(config, &services, &args.to)?;
    let text = match args.text.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the message from stdin")?;
            text
        }
        Some(text) => text.to_string(),
    };
    let text = match content(&text) {
        Content::Message(text) => text,
        Content::Empty => bail!("nothing to send: the message is empty"),
        Content::Silent => {
            println!("nothing delivered: the message starts with {SILENT}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let deliveries =
        actix_rt::System::new().block_on(deliver(&services, &targets, None, text, "send"));
    finish(&services, &deliveries)
}

/// Waits for `deliveries` to be sent, prints what happened and picks the exit code.
pub fn finish(services: &Services, deliveries: &[Delivery]) -> anyhow::Result<ExitCode> {
    let parts: Vec<i64> = deliveries.iter().flat_map(|d| d.parts.clone()).collect();
    if !parts.is_empty() {
        actix_rt::System::new().block_on(wait_sent(services, &parts, SEND_WAIT))?;
    }
    let (lines, ok) = report(services, deliveries)?;
    for line in lines {
        println!("{line}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
