//! `/new` and `/reset`: start a fresh conversation.
use super::Context;

/// Stops the chat's running turn, if any, and forgets the conversation's history.
pub fn apply(cx: &Context<'_>) -> anyhow::Result<String> {
    cx.turns.cancel(cx.key);
    cx.services
        .store
        .reset_conversation(&cx.key.platform, &cx.key.chat)?;
    Ok("Started a new conversation.".to_string())
}
