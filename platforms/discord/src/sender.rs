//! Sending: one part as one message (`POST /channels/{id}/messages`; JSON, or a multipart
//! form of `payload_json` and `files[n]` when it carries files), or as an edit of the message
//! that showed the reply while it was written (`PATCH …/messages/{id}`); that message posted
//! and edited as the reply grows ([`show_live`]); the typing indicator; and the look-up of a
//! message whose send had an unknown outcome (by its text and its files' names).
use std::time::{Duration, SystemTime};

use platform_api::http::transport_error;
use platform_api::{LiveView, Lookup, Part, PartMedia, Receipt, SendError};
use serde::Serialize;
use tracing::debug;

use crate::client::{CallError, FileUpload, MAX_INLINE_WAIT, Rest, Route, form};
use crate::error::{UNKNOWN_MESSAGE, classify};
use crate::settings::parse_chat;
use crate::types::{Message, snowflake_at};

/// How long to wait for Discord's answer; past it the message may exist, so it is not re-sent.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How far before the attempt a look-up starts, for clocks that disagree.
pub const LOOKUP_MARGIN: Duration = Duration::from_secs(30);
/// Messages read per look-up (Discord's maximum is 100).
pub const LOOKUP_LIMIT: u8 = 50;
/// The slowest upload allowed for before a send's outcome is unknown: its files' bytes at this
/// rate (2 Mbit/s) are added to the time Discord is given to answer.
pub const UPLOAD_BYTES_PER_SEC: u64 = 256 * 1024;
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
    /// The files uploaded with a new message, in the order of their `files[n]` parts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<NewAttachment<'a>>,
}

/// An uploaded file as the message's JSON names it: `id` is the `n` of its `files[n]` part.
#[derive(Debug, Serialize)]
pub struct NewAttachment<'a> {
    /// The `n` of its part.
    pub id: usize,
    /// The name the recipient sees (Discord keeps a URL-safe form as the attachment's
    /// `filename`, and this one as its `title`).
    pub filename: &'a str,
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

/// [`send_part`], giving Discord `timeout` to answer.
///
/// A part with files ([`Part::media`]) is one message uploaded as a multipart form, its text
/// (empty for a part of files only) and the files together. A part that edits a message
/// ([`Part::edit`]) replaces its text; when that message was deleted meanwhile, the part is
/// posted as a new message instead. Files that come with an edit go in a message of their
/// own right after it, created with a nonce derived from the edited message (`enforce_nonce`):
/// Discord could add them to the edited message, but an edit is sent again whenever its
/// outcome is unknown, and the nonce is what keeps a second attempt (within Discord's few
/// minutes) from posting the files twice.
pub async fn send_part_within(
    rest: &Rest,
    chat: &str,
    part: &Part,
    timeout: Duration,
) -> Result<Receipt, SendError> {
    let channel = channel_of(chat)?;
    let receipt = |provider_id| Receipt {
        provider_id,
        segments: None,
    };
    if let Some(message) = &part.edit {
        match edit_with_files(rest, &channel, message, part, timeout).await {
            Err(SendError::Permanent {
                code: Some(UNKNOWN_MESSAGE),
                ..
            }) => {
                debug!("[discord] message {message} to edit is gone; posting the part anew");
            }
            edited => return edited.map(receipt),
        }
    }
    let route = Route::create_message(&channel);
    let written = write(rest, &route, &part.body, None, &part.media, timeout);
    written.await.map(receipt)
}

/// Edits `message` to the part's text, then posts the part's files (if any) in a message of
/// their own, made once by its nonce; returns the edited message's id (the files' when the
/// part has no text to edit to).
async fn edit_with_files(
    rest: &Rest,
    channel: &str,
    message: &str,
    part: &Part,
    timeout: Duration,
) -> Result<String, SendError> {
    let edited = if part.body.is_empty() {
        None
    } else {
        let route = Route::edit_message(channel, message);
        Some(write(rest, &route, &part.body, None, &[], timeout).await?)
    };
    if part.media.is_empty() {
        return edited.ok_or_else(|| SendError::Permanent {
            code: None,
            message: "an edit with neither text nor files".to_string(),
        });
    }
    let route = Route::create_message(channel);
    let nonce = Some(format!("f{message}"));
    let files = write(rest, &route, "", nonce, &part.media, timeout).await?;
    Ok(edited.unwrap_or(files))
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
            write_waiting(
                rest,
                &route,
                body,
                None,
                &[],
                REQUEST_TIMEOUT,
                Duration::ZERO,
            )
            .await?;
        }
        None => {
            let route = Route::create_message(&channel);
            // The turn's nonce: a turn run again after a crash that came between the post and
            // its record gets the message it posted, not a second one.
            let nonce = Some(format!("live{}", view.draft_id));
            let id = write_waiting(
                rest,
                &route,
                body,
                nonce,
                &[],
                REQUEST_TIMEOUT,
                Duration::ZERO,
            )
            .await?;
            view.message = Some(id);
        }
    }
    Ok(())
}

/// [`write_waiting`] for a part, waiting up to [`MAX_INLINE_WAIT`] for the rate limit.
async fn write(
    rest: &Rest,
    route: &Route,
    content: &str,
    nonce: Option<String>,
    files: &[PartMedia],
    timeout: Duration,
) -> Result<String, SendError> {
    write_waiting(rest, route, content, nonce, files, timeout, MAX_INLINE_WAIT).await
}

/// Creates or edits a message (`route`) with `content` and `files` (a creation made
/// idempotent by `nonce` when given), waiting at most `max_wait` for the route's rate limit;
/// returns the message's id.
async fn write_waiting(
    rest: &Rest,
    route: &Route,
    content: &str,
    nonce: Option<String>,
    files: &[PartMedia],
    timeout: Duration,
    max_wait: Duration,
) -> Result<String, SendError> {
    let body = NewMessage {
        content,
        allowed_mentions: AllowedMentions { parse: &["users"] },
        enforce_nonce: nonce.is_some(),
        nonce,
        attachments: files
            .iter()
            .enumerate()
            .map(|(id, file)| NewAttachment {
                id,
                filename: &file.name,
            })
            .collect(),
    };
    let uploaded: u64 = files.iter().map(|file| file.size).sum();
    let timeout = timeout + Duration::from_secs_f64(uploaded as f64 / UPLOAD_BYTES_PER_SEC as f64);
    let called = if files.is_empty() {
        rest.call_waiting(route, Some(&body), timeout, max_wait)
            .await
    } else {
        let uploads = files
            .iter()
            .map(|file| {
                // Refused, naming the file, when the host did not load its bytes.
                file.loaded_bytes()?;
                Ok(FileUpload {
                    filename: file.name.clone(),
                    content_type: file.content_type.clone(),
                    bytes: file.bytes.clone().unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, SendError>>()?;
        let form = form(&body, &uploads).map_err(|message| SendError::Permanent {
            code: None,
            message,
        })?;
        rest.call_form(route, form, timeout, max_wait).await
    };
    let answer = match called {
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
/// with exactly the part's text and files (by name, in order): earliest first.
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
    Lookup::Matches(matches(messages, bot_id, part))
}

/// The messages by `bot_id` that are `part`: the same text, and the same files in the same
/// order (none for a part without files), earliest first.
fn matches(messages: Vec<Message>, bot_id: &str, part: &Part) -> Vec<Receipt> {
    let same_files = |m: &Message| {
        m.attachments.len() == part.media.len()
            && m.attachments
                .iter()
                .zip(&part.media)
                .all(|(attachment, file)| attachment.named(&file.name))
    };
    let mut found: Vec<(u64, String)> = messages
        .into_iter()
        .filter(|m| m.author.id == bot_id && m.content == part.body && same_files(m))
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
        let found = matches(messages, "7", &Part::plain("hello"));
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
            attachments: Vec::new(),
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
