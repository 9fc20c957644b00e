//! Chat commands, handled by the host without the agent: one file per command, each with an
//! `apply` that answers it; [`parse`] recognises them and [`ChatCommand::apply`] runs one.
//!
//! [`new`] (`/new`, `/reset`), [`stop`], [`status`], [`help`], [`sethome`] and [`cron`]
//! (`/cron`, which manages the chat's scheduled jobs). The gateway's dispatcher runs them in
//! the order messages came, and queues each answer in the outbox.
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_api::Platform;

use crate::agent::Agent;
use crate::chat_key::ChatKey;
use crate::services::Services;

pub mod cron;
pub mod help;
pub mod new;
pub mod sethome;
pub mod status;
pub mod stop;

/// A chat command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatCommand {
    /// `/new` or `/reset`: start a fresh conversation.
    New,
    /// `/stop`: cancel the running turn.
    Stop,
    /// `/status`: the conversation's state.
    Status,
    /// `/help`: the commands.
    Help,
    /// `/sethome`: make this chat the platform's home channel.
    SetHome,
    /// `/cron …`: manage this chat's scheduled jobs; holds the text after `/cron`.
    Cron(String),
}

/// Recognises a chat command: the whole message is one known `/word` (any case), or `/cron`
/// followed by its arguments.
pub fn parse(text: &str) -> Option<ChatCommand> {
    let text = text.trim();
    let word = text.strip_prefix('/')?;
    let (head, args) = word.split_at(word.find(char::is_whitespace).unwrap_or(word.len()));
    if head.eq_ignore_ascii_case("cron") {
        return Some(ChatCommand::Cron(args.trim().to_string()));
    }
    if word.contains(char::is_whitespace) {
        return None;
    }
    match word.to_ascii_lowercase().as_str() {
        "new" | "reset" => Some(ChatCommand::New),
        "stop" => Some(ChatCommand::Stop),
        "status" => Some(ChatCommand::Status),
        "help" => Some(ChatCommand::Help),
        "sethome" => Some(ChatCommand::SetHome),
        _ => None,
    }
}

impl ChatCommand {
    /// Carries out the command for the chat of `cx`; returns the answer to send back.
    pub fn apply(&self, cx: &Context<'_>) -> anyhow::Result<String> {
        match self {
            ChatCommand::New => new::apply(cx),
            ChatCommand::Stop => stop::apply(cx),
            ChatCommand::Status => status::apply(cx),
            ChatCommand::Help => help::apply(cx),
            ChatCommand::SetHome => sethome::apply(cx),
            ChatCommand::Cron(args) => cron::apply(cx, args),
        }
    }
}

/// What a command acts on: the chat it came from, and the parts of the host it may use.
pub struct Context<'a> {
    /// The store, platforms and settings.
    pub services: &'a Services,
    /// The chat the command came from.
    pub key: &'a ChatKey,
    /// That chat's platform.
    pub platform: &'a Arc<dyn Platform>,
    /// The agent turns running in this gateway.
    pub turns: &'a dyn Turns,
    /// The agent that jobs started with `/cron run` ask.
    pub agent: &'a Rc<dyn Agent>,
    /// How long such a job may take.
    pub timeout: Duration,
}

/// The agent turns running in this gateway, as `/new`, `/stop` and `/status` see them.
pub trait Turns {
    /// Stops the chat's running turn, if one runs; returns the messages it was answering.
    fn cancel(&self, key: &ChatKey) -> Option<Vec<i64>>;
    /// When the chat's running turn started, if one runs.
    fn started(&self, key: &ChatKey) -> Option<Instant>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_commands_only() {
        assert_eq!(parse("/new"), Some(ChatCommand::New));
        assert_eq!(parse(" /RESET "), Some(ChatCommand::New));
        assert_eq!(parse("/stop"), Some(ChatCommand::Stop));
        assert_eq!(parse("/status"), Some(ChatCommand::Status));
        assert_eq!(parse("/help"), Some(ChatCommand::Help));
        assert_eq!(parse("/sethome"), Some(ChatCommand::SetHome));
        assert_eq!(parse("/unknown"), None);
        assert_eq!(parse("stop"), None);
        assert_eq!(parse("/new please"), None);
        assert_eq!(parse("/cron"), Some(ChatCommand::Cron(String::new())));
        assert_eq!(
            parse(" /Cron add every 2h | drink water "),
            Some(ChatCommand::Cron("add every 2h | drink water".into()))
        );
        assert_eq!(parse("/crontab"), None);
    }
}
