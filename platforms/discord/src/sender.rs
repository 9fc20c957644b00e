//! Sending: one part as one message (`POST /channels/{id}/messages`), or as an edit of the
//! message that showed the reply while it was written (`PATCH …/messages/{id}`); that message
//! posted and edited as the reply grows ([`show_live`]); the typing indicator; and the look-up
//! of a message whose send had an unknown outcome.
use std::time::{Duration, SystemTime};

use platform_api::http::transport_error;
use platform_api::{LiveView, Lookup, Part, Receipt, SendError};
use serde::Serialize;
use tracing::debug;

use crate::client::{CallError, MAX_INLINE_WAIT, Rest, Route};
use crate::error::{UNKNOWN_MESSAGE, classify};
use crate::settings::parse_chat;
use crate::types::{Message, snowflake_at};

/// How long to wait for Discord's answer; past it the message may exist, so it is not re-sent.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How far before the attempt a look-up starts, for clocks that disagree.
pub const LOOKUP_MARGIN: Duration = Duration::from_secs(30);
/// Messages read per look-up (Discord's maximum is 100).
pub const LOOKUP_LIMIT: u8 = 50;
/// The least time between two updates of a reply shown while it is written: Discord lets a
/// channel's messages be edited about five times in five seconds, and the route's bucket
/// ([`crate::client`]) is kept besides.
pub const LIVE_EVERY: Duration = Duration::from_secs(1);

/// The JSON body of a new message, or of an edit.
#[derive(Debug, Serialize)]
pub struct NewMessage<'a> {
    /// The text, Markdown included.
    pub content: &'a str,
    /// Which mentions in the text notify: users only, never `@everyone` or roles, whatever the
    /// agent wrote.
    pub allowed_mentions: AllowedMentions,
    /// With `enforce_nonce`, Discord answers a second creation with the same nonce (within a
    /// few minutes) with the message the first created, instead of a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Whether the nonce makes the creation idempotent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub enforce_nonce: bool,
}

/// Discord's `allowed_mentions` object.
#[derive(Debug, Serialize)]
pub struct AllowedMentions {
    /// The kinds of mention parsed from the text (`users`, `roles`, `everyone`).
    pub parse: &'static [&'static str],
}

fn channel_of(chat: &str) -> Result<String, SendError> {
    parse_chat(chat).map_err(|problem| SendError::Permanent {
        code: None,
        message: format!("not a Discord channel id: {problem}"),
    })
}

/// Sends one part to one channel.
pub async fn send_part(rest: &Rest, chat: &str, part: &Part) -> Result<Receipt, SendError> {
    send_part_within(rest, chat, part, REQUEST_TIMEOUT).await
}

/// [`send_part`], giving Discord `timeout` to answer. A part that edits a message
/// ([`Part::edit`]) replaces its text; when that message was deleted meanwhile, the part is
/// posted as a new message instead.
pub async fn send_part_within(
    rest: &Rest,
    chat: &str,
    part: &Part,
    timeout: Duration,
) -> Result<Receipt, SendError> {
    let channel = channel_of(chat)?;
    if let Some(message) = &part.edit {
        let route = Route::edit_message(&channel, message);
        match write(rest, &route, &part.body, None, timeout, MAX_INLINE_WAIT).await {
            Err(SendError::Permanent {
                code: Some(UNKNOWN_MESSAGE),
                ..
            }) => {
                debug!("[discord] message {message} to edit is gone; posting the part anew");
            }
            written => {
                return written.map(|provider_id| Receipt {
                    provider_id,
                    segments: None,
                });
            }
        }
    }
    let route = Route::create_message(&channel);
    let provider_id = write(rest, &route, &part.body, None, timeout, MAX_INLINE_WAIT).await?;
    Ok(Receipt {
        provider_id,
        segments: None,
    })
}

/// Shows `body` as the reply being written in `chat`: posts it the first time (its id goes
/// into `view`), edits that message afterwards. Never waits for a rate limit: an empty
/// bucket is a retry after its refill, by when the host has newer text to show.
pub async fn show_live(
    rest: &Rest,
    chat: &str,
    view: &mut LiveView,
    body: &str,
) -> Result<(), SendError> {
    let channel = channel_of(chat)?;
    match &view.message {
        Some(message) => {
            let route = Route::edit_message(&channel, message);
            write(rest, &route, body, None, REQUEST_TIMEOUT, Duration::ZERO).await?;
        }
        None => {
            let route = Route::create_message(&channel);
            // The turn's nonce: a turn run again after a crash that came between the post and
            // its record gets the message it posted, not a second one.
            let nonce = Some(format!("live{}", view.draft_id));
            let id = write(rest, &route, body, nonce, REQUEST_TIMEOUT, Duration::ZERO).await?;
            view.message = Some(id);
        }
    }
    Ok(())
}

/// Creates or edits a message (`route`) with `content` (a creation made idempotent by `nonce`
/// when given), waiting at most `max_wait` for the route's rate limit; returns the message's id.
async fn write(
    rest: &Rest,
    route: &Route,
    content: &str,
    nonce: Option<String>,
    timeout: Duration,
    max_wait: Duration,
) -> Result<String, SendError> {
    let body = NewMessage {
        content,
        allowed_mentions: AllowedMentions { parse: &["users"] },
        enforce_nonce: nonce.is_some(),
        nonce,
    };
    let answer = match rest
        .call_waiting(route, Some(&body), timeout, max_wait)
        .await
    {
        Ok(answer) => answer,
        Err(CallError::Limited { after }) => {
            return Err(SendError::Retry {
                after: Some(after),
                code: None,
                message: format!(
                    "Discord's rate limit for channel {} refills in {:.1}s",
                    route.major,
                    after.as_secs_f64()
                ),
            });
        }
        Err(CallError::Transport(err)) => {
            return Err(transport_error(err, "Discord", timeout));
        }
    };
    if !answer.is_success() {
        return Err(classify(
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
        ));
    }
    // A 2xx means the message exists; an unreadable answer only costs us its id.
    Ok(serde_json::from_slice::<Message>(&answer.body)
        .map(|message| message.id)
        .unwrap_or_else(|_| format!("discord-{:016x}", rand::random::<u64>())))
}

/// Shows the typing indicator in a channel (Discord shows it for about ten seconds). A failure
/// is only logged: it changes nothing else.
pub async fn typing(rest: &Rest, chat: &str) {
    let Ok(channel) = channel_of(chat) else {
        return;
    };
    match rest
        .call::<()>(&Route::typing(&channel), None, REQUEST_TIMEOUT)
        .await
    {
        Ok(answer) if answer.is_success() => {}
        Ok(answer) => debug!(
            "[discord] typing indicator in {channel} refused: HTTP {}",
            answer.status
        ),
        Err(CallError::Limited { .. }) => {}
        Err(CallError::Transport(err)) => {
            debug!("[discord] typing indicator in {channel} failed: {err}")
        }
    }
}

/// Looks for messages the bot (`bot_id`) created in `chat` since shortly before `attempted_at`
/// with exactly the part's text: earliest first.
pub async fn lookup(
    rest: &Rest,
    bot_id: &str,
    chat: &str,
    part: &Part,
    attempted_at: SystemTime,
) -> Lookup {
    let channel = match channel_of(chat) {
        Ok(channel) => channel,
        Err(err) => return Lookup::Failed(err.to_string()),
    };
    let since = attempted_at
        .checked_sub(LOOKUP_MARGIN)
        .unwrap_or(attempted_at);
    let route = Route::list_messages(&channel, snowflake_at(since), LOOKUP_LIMIT);
    let answer = match rest.get(&route, REQUEST_TIMEOUT).await {
        Ok(answer) => answer,
        Err(CallError::Limited { after }) => {
            return Lookup::Failed(format!(
                "Discord's rate limit refills in {:.1}s",
                after.as_secs_f64()
            ));
        }
        Err(CallError::Transport(err)) => {
            return Lookup::Failed(format!("reading channel {channel}: {err}"));
        }
    };
    if !answer.is_success() {
        let err = classify(answer.status, answer.retry_after.as_deref(), &answer.body);
        return Lookup::Failed(format!("reading channel {channel}: {err}"));
    }
    let messages: Vec<Message> = match serde_json::from_slice(&answer.body) {
        Ok(messages) => messages,
        Err(err) => return Lookup::Failed(format!("reading channel {channel}: {err}")),
    };
    Lookup::Matches(matches(messages, bot_id, &part.body))
}

/// The messages by `bot_id` whose text is `body`, earliest first.
fn matches(messages: Vec<Message>, bot_id: &str, body: &str) -> Vec<Receipt> {
    let mut found: Vec<(u64, String)> = messages
        .into_iter()
        .filter(|m| m.author.id == bot_id && m.content == body)
        .map(|m| (m.id.parse::<u64>().unwrap_or(u64::MAX), m.id))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, provider_id)| Receipt {
            provider_id,
            segments: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, author: &str, content: &str) -> Message {
        serde_json::from_value(serde_json::json!({
            "id": id, "channel_id": "5", "content": content,
            "author": {"id": author, "username": "x"}
        }))
        .unwrap()
    }

    #[test]
    fn matches_are_the_bots_messages_with_the_same_text_earliest_first() {
        let messages = vec![
            message("30", "7", "hello"),
            message("25", "8", "hello"),
            message("20", "7", "hello"),
            message("10", "7", "hello there"),
        ];
        let found = matches(messages, "7", "hello");
        let ids: Vec<&str> = found.iter().map(|r| r.provider_id.as_str()).collect();
        assert_eq!(ids, ["20", "30"]);
    }

    #[test]
    fn the_body_keeps_mass_mentions_quiet() {
        let body = serde_json::to_value(NewMessage {
            content: "@everyone hi",
            allowed_mentions: AllowedMentions { parse: &["users"] },
            nonce: None,
            enforce_nonce: false,
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"content": "@everyone hi", "allowed_mentions": {"parse": ["users"]}})
        );
    }

    #[actix_web::test]
    async fn a_chat_that_is_not_a_channel_id_is_refused_before_any_call() {
        let rest = Rest::new("http://127.0.0.1:9", "t");
        let err = send_part(&rest, "general", &Part::plain("hi"))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Permanent { .. }), "{err:?}");
    }
}
