//! `/stop`: cancel the running turn.
use super::Context;

/// Stops the chat's running turn; its messages are left unanswered.
pub fn apply(cx: &Context<'_>) -> anyhow::Result<String> {
    Ok(match cx.turns.cancel(cx.key) {
        Some(_) => "Stopped.".to_string(),
        None => "Nothing to stop: no reply is being written.".to_string(),
    })
}
