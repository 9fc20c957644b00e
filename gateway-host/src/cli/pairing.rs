//! `hermes pairing`: the owner's side of pairing codes.
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use platform_api::registration;

use crate::services::open_store;

/// Manage users admitted by pairing code.
#[derive(Args, Debug)]
pub struct PairingArgs {
    #[command(subcommand)]
    action: PairingAction,
}

#[derive(Subcommand, Debug)]
enum PairingAction {
    /// Approved users and codes waiting for approval.
    List,
    /// Admit the sender who received CODE.
    Approve {
        /// Platform name (`sms`).
        platform: String,
        /// The code the sender received.
        code: String,
    },
    /// Remove an approved sender (or a pending code).
    Revoke {
        /// Platform name (`sms`).
        platform: String,
        /// The sender (for SMS, the phone number) or a pending code.
        sender: String,
    },
}

fn check_platform(name: &str) -> anyhow::Result<()> {
    if registration(name).is_none() {
        bail!("unknown platform {name:?} (see `hermes platforms`)");
    }
    Ok(())
}

/// Runs a `hermes pairing` command.
pub fn run(args: PairingArgs) -> anyhow::Result<ExitCode> {
    let config = crate::config::load_config()?;
    let store = open_store(&config)?;
    match args.action {
        PairingAction::List => {
            let entries = store.pairing_entries()?;
            if entries.is_empty() {
                println!("No paired users and no pending codes.");
            }
            let now = store.now();
            for e in entries {
                let state = match e.approved_at {
                    Some(_) => "approved".to_string(),
                    None if e.expires_at > now => {
                        format!(
                            "pending, code {} ({} min left)",
                            e.code,
                            (e.expires_at - now) / 60_000
                        )
                    }
                    None => "expired code".to_string(),
                };
                println!("{}\t{}\t{state}", e.platform, e.sender);
            }
            Ok(ExitCode::SUCCESS)
        }
        PairingAction::Approve { platform, code } => {
            check_platform(&platform)?;
            match store.approve_pairing(&platform, &code, store.now())? {
                Some(sender) => {
                    println!(
                        "Approved {sender} on {platform}: their next message reaches the agent."
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!(
                    "no valid pairing code {code:?} on {platform} (codes expire after 1 hour; see `hermes pairing list`)"
                ),
            }
        }
        PairingAction::Revoke { platform, sender } => {
            check_platform(&platform)?;
            let normalised = registration(&platform)
                .and_then(|r| (r.parse_chat)(&sender).ok())
                .unwrap_or_else(|| sender.trim().to_string());
            if store.revoke_pairing(&platform, &normalised)?
                || store.revoke_pairing(&platform, &sender)?
            {
                println!("Revoked {normalised} on {platform}.");
                Ok(ExitCode::SUCCESS)
            } else {
                bail!("{sender:?} is not paired on {platform} (see `hermes pairing list`)")
            }
        }
    }
}
