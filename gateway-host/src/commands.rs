//! Chat commands, handled by the host without the agent.

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

/// The answer to `/help`.
pub const HELP: &str = "Commands:\n/new or /reset - start a new conversation\n/stop - stop the reply being written\n/status - what is going on\n/sethome - deliver scheduled messages to this chat\n/cron - scheduled jobs (/cron add every 2h | <prompt>)\n/help - this list";

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
