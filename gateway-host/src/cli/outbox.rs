//! `hermes outbox`: what became of the parts the gateway sent, and the operator's retry.
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hermes_config::Config;
use platform_api::registrations;
use serde_json::json;

use crate::services::open_store;
use crate::store::{Millis, OutboxFilter, OutboxRow, Retried};

/// Inspect outgoing parts and re-queue failed or ambiguous ones.
#[derive(Args, Debug)]
pub struct OutboxArgs {
    #[command(subcommand)]
    action: OutboxAction,
}

#[derive(Subcommand, Debug)]
enum OutboxAction {
    /// Outgoing parts, newest first, with their state and the provider's delivery status.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        /// Show at most this many parts.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only parts to this chat (for SMS a phone number, in any common form).
        #[arg(long, value_name = "CHAT")]
        chat: Option<String>,
        /// Only parts in this state (queued, pending, sending, sent, failed, suppressed,
        /// ambiguous) or with this delivery status (delivered, undelivered, …).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// Queue a failed or ambiguous part again: it is sent once more (your decision: an
    /// ambiguous part may have reached the phone already).
    Retry {
        /// The part's id, as `hermes outbox list` shows it.
        id: i64,
    },
}

/// Runs a `hermes outbox` command.
pub fn run(config: &Config, args: OutboxArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    match args.action {
        OutboxAction::List {
            json,
            limit,
            chat,
            state,
        } => {
            let state = state.map(|s| match s.to_ascii_lowercase().as_str() {
                // What the issue tracker and operators call a part waiting to be sent.
                "queued" => "pending".to_string(),
                other => other.to_string(),
            });
            let chats = chat.map(|raw| chat_forms(&raw)).unwrap_or_default();
            let rows = store.outbox_list(&OutboxFilter {
                chats,
                state,
                limit,
            })?;
            if json {
                let list: Vec<_> = rows.iter().map(to_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxAction::Retry { id } => match store.retry_part(id)? {
            Retried::Queued => {
                println!(
                    "part {id} queued again: a running gateway sends it (or `hermes send` and `hermes cron run` do)"
                );
                Ok(ExitCode::SUCCESS)
            }
            Retried::NotRetryable(state) => {
                eprintln!(
                    "error: part {id} is {}: only failed or ambiguous parts can be retried",
                    state.as_str()
                );
                Ok(ExitCode::from(1))
            }
            Retried::Missing => {
                eprintln!("error: no outbox part {id} (see `hermes outbox list`)");
                Ok(ExitCode::from(1))
            }
        },
    }
}

/// The forms a chat given on the command line may be stored in: as typed, and as each
/// platform normalises it (`+1 555 000 1111` → `+15550001111`).
fn chat_forms(raw: &str) -> Vec<String> {
    let mut forms = vec![raw.trim().to_string()];
    for registration in registrations() {
        if let Ok(chat) = (registration.parse_chat)(raw)
            && !forms.contains(&chat)
        {
            forms.push(chat);
        }
    }
    forms
}

fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn to_json(row: &OutboxRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "platform": row.platform,
        "chat": row.chat,
        "part": row.part,
        "parts": row.parts,
        "state": row.state,
        "status": row.status,
        "error_code": row.error_code,
        "error": row.error,
        "media": row.media,
        "segments": row.segments,
        "provider_id": row.provider_id,
        "origin": row.origin,
        "attempts": row.attempts,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

fn table(rows: &[OutboxRow]) -> String {
    if rows.is_empty() {
        return "No outgoing parts.\n".to_string();
    }
    let mut lines = vec![
        [
            "ID", "PLATFORM", "CHAT", "PART", "STATE", "STATUS", "CODE", "SEGS", "UPDATED",
        ]
        .map(str::to_string),
    ];
    for r in rows {
        lines.push([
            r.id.to_string(),
            r.platform.clone(),
            r.chat.clone(),
            format!("{}/{}", r.part, r.parts),
            r.state.clone(),
            r.status.clone().unwrap_or_else(|| "-".to_string()),
            r.error_code.map_or("-".to_string(), |c| c.to_string()),
            r.segments.to_string(),
            rfc3339(r.updated_at),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    // The header has no row; every other line is followed by its files, if it carries any.
    let details = std::iter::once(None).chain(rows.iter().map(Some));
    for (line, row) in lines.into_iter().zip(details) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if let Some(row) = row.filter(|r| !r.media.is_empty()) {
            out.push_str(&format!("    files: {}", row.media.join(", ")));
            if let (Some(error), "failed") = (&row.error, row.state.as_str()) {
                out.push_str(&format!(" (not sent: {error})"));
            }
            out.push('\n');
        }
    }
    out
}
