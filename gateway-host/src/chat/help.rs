//! `/help`: the commands.
use super::Context;

/// The answer to `/help`.
pub const HELP: &str = "Commands:\n/new or /reset - start a new conversation\n/stop - stop the reply being written\n/status - what is going on\n/sethome - deliver scheduled messages to this chat\n/cron - scheduled jobs (/cron add every 2h | <prompt>)\n/help - this list";

/// Answers `/help`.
pub fn apply(_cx: &Context<'_>) -> anyhow::Result<String> {
    Ok(HELP.to_string())
}
