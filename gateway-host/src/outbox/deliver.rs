//! Where output goes, and the one way it gets there.
//!
//! A delivery target is `local` (keep only), a platform's name (its home channel), a platform
//! and chat (`sms:+15551234567`), `origin` (the chat that created a job), or a comma-separated
//! list of these. Cron output and `hermes send` take the same path as replies: the platform
//! formats the text, the parts are stored in the outbox and the [`Sender`] delivers them, so
//! splitting, opt-out suppression, retries and crash safety are the same everywhere.
//!
//! Used by the cron job runner (inside the gateway, and for `/cron run`), and by `hermes send`
//! and `hermes cron run` (which send with their own [`Sender`] through [`wait_sent`]).
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use platform_api::{registration, registrations};
use serde::{Deserialize, Serialize};

use crate::media;
use crate::outbox::sender::{Sender, window_open};
use crate::services::Services;
use crate::store::PartState;

/// Output that starts with this marker is recorded but not delivered.
pub const SILENT: &str = "[SILENT]";

/// One delivery target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Keep the output in the run record only.
    Local,
    /// The home channel of the named platform.
    Home(String),
    /// An explicit chat of a platform.
    Chat {
        /// Platform name.
        platform: String,
        /// The chat, normalised by the platform once checked.
        chat: String,
    },
    /// The chat that created the job.
    Origin,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local => f.write_str("local"),
            Target::Home(platform) => f.write_str(platform),
            Target::Chat { platform, chat } => write!(f, "{platform}:{chat}"),
            Target::Origin => f.write_str("origin"),
        }
    }
}

fn target_forms() -> String {
    let names: Vec<&str> = registrations().iter().map(|r| r.name).collect();
    format!(
        "use local, origin, a platform's name for its home channel ({}), or platform:chat such as sms:+15551234567, separated by commas",
        names.join(", ")
    )
}

/// Parses a comma-separated target list (syntax and platform names only), without duplicates.
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let lower = item.to_ascii_lowercase();
        let target = match lower.as_str() {
            "local" => Target::Local,
            "origin" => Target::Origin,
            _ => {
                let (name, chat) = match item.split_once(':') {
                    Some((name, chat)) => (name.trim().to_ascii_lowercase(), Some(chat.trim())),
                    None => (lower.clone(), None),
                };
                if registration(&name).is_none() {
                    return Err(format!(
                        "unknown delivery target {item:?}: {}",
                        target_forms()
                    ));
                }
                match chat {
                    Some("") => return Err(format!("delivery target {item:?} names no chat")),
                    Some(chat) => Target::Chat {
                        platform: name,
                        chat: chat.to_string(),
                    },
                    None => Target::Home(name),
                }
            }
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() {
        return Err(format!("no delivery target given: {}", target_forms()));
    }
    Ok(targets)
}

/// Displays a target list as it is stored and parsed back.
pub fn display_targets(targets: &[Target]) -> String {
    targets
        .iter()
        .map(Target::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A chat that output is sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Platform name.
    pub platform: String,
    /// The chat.
    pub chat: String,
    /// How it is shown: `sms (Home)`, `sms:+1555***2222`, `origin`.
    pub label: String,
}

/// Resolves one target to the chat it means now; `None` for `local`, an error saying what to
/// set when it cannot be reached.
pub fn resolve(
    services: &Services,
    target: &Target,
    origin: Option<(&str, &str)>,
) -> Result<Option<Destination>, String> {
    let running = |name: &str| {
        services.platform(name).cloned().ok_or_else(|| {
            format!("the {name} platform is not running (`hermes platforms` tells why)")
        })
    };
    match target {
        Target::Local => Ok(None),
        Target::Origin => {
            let (name, chat) = origin.ok_or(
                "origin is the chat that created a job from a chat, and there is none here: use local, a platform's name or platform:chat",
            )?;
            let platform = running(name)?;
            Ok(Some(Destination {
                platform: name.to_string(),
                chat: chat.to_string(),
                label: format!("origin ({name} {})", platform.redact(chat)),
            }))
        }
        Target::Home(name) => {
            let platform = running(name)?;
            let home = services.home_channel(name).ok_or_else(|| {
                let setting = registration(name)
                    .and_then(|r| r.home_channel_setting)
                    .map(|s| format!("set {s}, or "))
                    .unwrap_or_default();
                format!("{name} has no home channel: {setting}send /sethome from the chat that should receive scheduled messages")
            })?;
            Ok(Some(Destination {
                platform: name.clone(),
                label: format!("{name} ({}, {})", home.name, platform.redact(&home.chat)),
                chat: home.chat,
            }))
        }
        Target::Chat {
            platform: name,
            chat,
        } => {
            let platform = running(name)?;
            let parse = registration(name)
                .map(|r| r.parse_chat)
                .ok_or_else(|| format!("unknown platform {name:?}"))?;
            let chat = parse(chat).map_err(|problem| format!("{name}:{chat}: {problem}"))?;
            Ok(Some(Destination {
                platform: name.clone(),
                label: format!("{name}:{}", platform.redact(&chat)),
                chat,
            }))
        }
    }
}

/// Checks that every target can be delivered to now, as `add` and `send` require, and returns
/// them normalised (explicit chats in the platform's form), without duplicates.
pub fn check_targets(
    services: &Services,
    targets: &[Target],
    origin: Option<(&str, &str)>,
) -> Result<Vec<Target>, String> {
    let mut checked: Vec<Target> = Vec::new();
    for target in targets {
        let target = match (target, resolve(services, target, origin)?) {
            (Target::Chat { platform, .. }, Some(dest)) => Target::Chat {
                platform: platform.clone(),
                chat: dest.chat,
            },
            (target, _) => target.clone(),
        };
        if !checked.contains(&target) {
            checked.push(target);
        }
    }
    Ok(checked)
}

/// What to do with a piece of output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// Deliver this text.
    Message(&'a str),
    /// It starts with `[SILENT]`: record only.
    Silent,
    /// There is nothing to say.
    Empty,
}

/// Classifies output for delivery.
pub fn content(output: &str) -> Content<'_> {
    let text = output.trim();
    if text.is_empty() {
        Content::Empty
    } else if text.starts_with(SILENT) {
        Content::Silent
    } else {
        Content::Message(text)
    }
}

/// Where one target's copy of the output went, as recorded with a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The target as given (`sms`, `origin`, …).
    pub target: String,
    /// How the destination is shown (numbers redacted).
    pub label: String,
    /// Platform name, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The chat, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    /// The outbox parts queued for it.
    #[serde(default)]
    pub parts: Vec<i64>,
    /// Why nothing was queued for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Queues `text` for every target (deduplicated by chat) through the platform's formatter and
/// the outbox, with the files it names ([`media::outbound`]); `why` is stored with the parts
/// (`cron`, `send`). A target that cannot be reached gets an error in its record instead.
pub async fn deliver(
    services: &Services,
    targets: &[Target],
    origin: Option<(&str, &str)>,
    text: &str,
    why: &str,
) -> Vec<Delivery> {
    let mut deliveries: Vec<Delivery> = Vec::new();
    for target in targets {
        let mut delivery = Delivery {
            target: target.to_string(),
            label: target.to_string(),
            ..Delivery::default()
        };
        match resolve(services, target, origin) {
            Err(problem) => delivery.error = Some(problem),
            Ok(None) => delivery.label = "local (kept, not sent)".to_string(),
            Ok(Some(dest)) => {
                let duplicate = deliveries.iter().any(|d| {
                    d.platform.as_deref() == Some(dest.platform.as_str())
                        && d.chat.as_deref() == Some(dest.chat.as_str())
                });
                if duplicate {
                    continue;
                }
                delivery.label = dest.label.clone();
                match enqueue(services, &dest, text, why).await {
                    Ok(parts) => delivery.parts = parts,
                    Err(e) => delivery.error = Some(format!("{e:#}")),
                }
                delivery.platform = Some(dest.platform);
                delivery.chat = Some(dest.chat);
            }
        }
        deliveries.push(delivery);
    }
    deliveries
}

async fn enqueue(
    services: &Services,
    dest: &Destination,
    text: &str,
    why: &str,
) -> anyhow::Result<Vec<i64>> {
    let platform = services
        .platform(&dest.platform)
        .with_context(|| format!("the {} platform is not running", dest.platform))?;
    let composed = media::outbound::compose(services, platform.as_ref(), text).await;
    // What cannot go outside the chat's reply window (WhatsApp without a template) is
    // reported now, not queued to fail.
    if !window_open(services, platform.as_ref(), &dest.chat)? {
        for part in &composed.parts {
            platform
                .check_outside_window(part)
                .map_err(anyhow::Error::msg)?;
        }
    }
    let ids = services
        .store
        .enqueue(&dest.platform, &dest.chat, &composed.parts, why)?;
    if !composed.refused.is_empty() {
        services
            .store
            .record_refused(&dest.platform, &dest.chat, &composed.refused, why)?;
    }
    services.outbox.notify_one();
    Ok(ids)
}

fn is_final(state: Option<PartState>) -> bool {
    !matches!(state, Some(PartState::Pending | PartState::Sending))
}

/// Sends what is queued and waits until each of `parts` has a final state, for up to `limit`.
/// A gateway running on the same `HERMES_HOME` may send some of them first; each part is sent
/// by whoever claims it.
pub async fn wait_sent(services: &Services, parts: &[i64], limit: Duration) -> anyhow::Result<()> {
    // Parts left mid-send by a sender that died would hold their chat's queue forever; the
    // gateway does the same every few seconds.
    services.store.expire_leases()?;
    let sender = Sender::new(services.clone());
    let deadline = Instant::now() + limit;
    loop {
        let mut done = true;
        for id in parts {
            done &= is_final(services.store.part_state(*id)?);
        }
        if done || Instant::now() >= deadline {
            break;
        }
        if let Err(e) = sender.pump() {
            tracing::warn!("outbox: {e:#}");
        }
        tokio::select! {
            _ = services.outbox.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    // Sends of other queued parts may still be in flight: leaving now would cut them off with
    // their outcome unknown.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sender.busy() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One line per delivery saying what happened; the flag is false when any part failed or its
/// outcome is not known.
pub fn report(services: &Services, deliveries: &[Delivery]) -> anyhow::Result<(Vec<String>, bool)> {
    let mut lines = Vec::new();
    let mut ok = true;
    for d in deliveries {
        if let Some(problem) = &d.error {
            ok = false;
            lines.push(format!("{}: not delivered: {problem}", d.label));
            continue;
        }
        if d.parts.is_empty() {
            lines.push(d.label.clone());
            continue;
        }
        let mut sent = Vec::new();
        let mut problems = Vec::new();
        for id in &d.parts {
            let Some(outcome) = services.store.part_outcome(*id)? else {
                continue;
            };
            let error = outcome.error.unwrap_or_default();
            match outcome.state {
                PartState::Sent => sent.push(outcome.provider_id.unwrap_or_default()),
                PartState::Suppressed => {
                    problems.push("not sent: the recipient has opted out".to_string())
                }
                PartState::Failed => {
                    ok = false;
                    problems.push(format!("failed: {error}"));
                }
                PartState::Ambiguous => {
                    ok = false;
                    problems.push(format!("outcome unknown, not re-sent: {error}"));
                }
                PartState::Pending | PartState::Sending => {
                    ok = false;
                    problems
                        .push("still queued: a running gateway sends it (see its log)".to_string());
                }
            }
        }
        problems.dedup();
        let mut line = format!("{}:", d.label);
        if !sent.is_empty() {
            line.push_str(&format!(
                " sent {}/{} part(s) ({})",
                sent.len(),
                d.parts.len(),
                sent.join(", ")
            ));
        }
        for problem in problems {
            line.push(' ');
            line.push_str(&problem);
        }
        lines.push(line);
    }
    Ok((lines, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_lists_parse_deduplicate_and_display() {
        let targets = parse_targets(" sms, local,SMS ,sms:+1 555 000 2222,origin,local").unwrap();
        assert_eq!(
            targets,
            vec![
                Target::Home("sms".into()),
                Target::Local,
                Target::Chat {
                    platform: "sms".into(),
                    chat: "+1 555 000 2222".into()
                },
                Target::Origin,
            ]
        );
        assert_eq!(
            display_targets(&targets),
            "sms,local,sms:+1 555 000 2222,origin"
        );
        for bad in ["", " , ", "pager", "pager:123", "sms:"] {
            let err = parse_targets(bad).unwrap_err();
            assert!(err.contains("sms") || err.contains("chat"), "{bad}: {err}");
        }
    }

    #[test]
    fn silent_and_empty_output_is_not_delivered() {
        assert_eq!(content("  \n"), Content::Empty);
        assert_eq!(content("\n  [SILENT] nothing new"), Content::Silent);
        assert_eq!(content(" hello\n"), Content::Message("hello"));
        assert_eq!(
            content("news: [SILENT] is a marker"),
            Content::Message("news: [SILENT] is a marker")
        );
    }
}
