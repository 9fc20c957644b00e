//! `sendMessage`, `sendPhoto`, `sendVoice`, `sendAudio`, `sendVideo`, `sendDocument`,
//! `sendMessageDraft` and `sendChatAction`: one part to one chat (its text, or its one file
//! with the text as caption), a reply shown as a draft while it is written, and the typing
//! indicator.
use std::time::Duration;

use platform_api::{LiveView, Part, PartMedia, Receipt, SendAs, SendError};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::client::{Api, CallError, Upload};
use crate::error::{classify, is_parse_error};
use crate::format::shown;

/// How long to wait for Telegram's answer to a send; past it the message may exist, so the
/// part is not re-sent (Telegram cannot be asked what was sent).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for Telegram's answer to a file upload (up to 50 MB on the way).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the answer to a typing action.
const ACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the answer to a draft: a lost one is replaced by the next.
const DRAFT_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two drafts of one chat: Telegram takes about two a second, and a
/// little more than half a second apart keeps any one-second window at two.
pub const DRAFT_EVERY: Duration = Duration::from_millis(600);

/// The parameters of `sendMessage`.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct SendMessage<'a> {
    /// The chat.
    pub chat_id: i64,
    /// The text, as HTML when `parse_mode` is `HTML`.
    pub text: &'a str,
    /// `HTML`, or absent for plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<&'a str>,
}

/// The parameters of `sendMessageDraft`: a preview of a message being written, shown in a
/// private chat until the bot sends the message itself.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct SendMessageDraft<'a> {
    /// The chat (a private chat: a user's id).
    pub chat_id: i64,
    /// The draft, non-zero; updates with the same id replace each other.
    pub draft_id: i64,
    /// The text so far, 1-4,096 characters, as HTML when `parse_mode` is `HTML`.
    pub text: &'a str,
    /// `HTML`, or absent for plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<&'a str>,
}

/// The part of a sent message the receipt needs.
#[derive(Deserialize)]
struct Sent {
    message_id: i64,
}

/// A chat id as the host keeps it (a decimal integer).
fn chat_id(chat: &str) -> Result<i64, SendError> {
    chat.trim().parse().map_err(|_| SendError::Permanent {
        code: None,
        message: format!("{chat:?} is not a Telegram chat id (a number such as 123456789)"),
    })
}

async fn send_message(
    api: &Api,
    chat_id: i64,
    text: &str,
    parse_mode: Option<&str>,
) -> Result<Receipt, CallError> {
    let params = SendMessage {
        chat_id,
        text,
        parse_mode,
    };
    let sent = api
        .call::<_, Sent>("sendMessage", &params, REQUEST_TIMEOUT)
        .await;
    receipt(chat_id, sent)
}

fn to_send_error(api: &Api, err: CallError) -> SendError {
    match err {
        CallError::Transport(error) => error,
        CallError::Answer(answer) => {
            let error = classify(answer.status, answer.retry_after.as_deref(), &answer.body);
            api.redact_error(error)
        }
    }
}

/// The method that sends a file as `send_as`, and its parameter holding the file.
fn file_method(send_as: SendAs) -> (&'static str, &'static str) {
    match send_as {
        SendAs::Photo => ("sendPhoto", "photo"),
        SendAs::Voice => ("sendVoice", "voice"),
        SendAs::Audio => ("sendAudio", "audio"),
        SendAs::Video => ("sendVideo", "video"),
        SendAs::Document => ("sendDocument", "document"),
    }
}

/// Uploads `media` (its `bytes`) to `chat_id` with `caption` (none when empty) in
/// `parse_mode`.
async fn send_file(
    api: &Api,
    chat_id: i64,
    (media, bytes): (&PartMedia, &[u8]),
    caption: &str,
    parse_mode: Option<&str>,
) -> Result<Receipt, CallError> {
    let (method, field) = file_method(media.send_as);
    let chat = chat_id.to_string();
    let mut params = vec![("chat_id", chat.as_str())];
    if !caption.is_empty() {
        params.push(("caption", caption));
        if let Some(mode) = parse_mode {
            params.push(("parse_mode", mode));
        }
    }
    let file = Upload {
        field,
        file_name: &media.name,
        content_type: &media.content_type,
        bytes,
    };
    let sent = api
        .upload::<Sent>(method, &params, &file, UPLOAD_TIMEOUT)
        .await;
    receipt(chat_id, sent)
}

/// The receipt of a message Telegram created, from its answer.
fn receipt(chat_id: i64, sent: Result<Sent, CallError>) -> Result<Receipt, CallError> {
    let provider_id = match sent {
        Ok(sent) => format!("{chat_id}:{}", sent.message_id),
        // Sent, but the answer could not be read: the message exists under an id we lost.
        Err(CallError::Answer(answer)) if (200..300).contains(&answer.status) => {
            format!("{chat_id}:unknown-{:016x}", rand::random::<u64>())
        }
        Err(err) => return Err(err),
    };
    Ok(Receipt {
        provider_id,
        segments: None,
    })
}

/// Sends one formatted part (HTML) to `chat`: a text message, or a part's one file with the
/// part's text as its caption. When Telegram cannot parse the HTML, the part is sent once
/// more as plain text ([`shown`]): the reply arrives unformatted rather than not at all.
pub async fn send_part(api: &Api, chat: &str, part: &Part) -> Result<Receipt, SendError> {
    let chat_id = chat_id(chat)?;
    let file = match part.media.as_slice() {
        [] => None,
        [one] => Some((one, one.loaded_bytes()?)),
        more => {
            return Err(SendError::Permanent {
                code: None,
                message: format!(
                    "a Telegram message carries one file, and this part has {}",
                    more.len()
                ),
            });
        }
    };
    let send = |text: String, parse_mode: Option<&'static str>| async move {
        match file {
            Some(file) => send_file(api, chat_id, file, &text, parse_mode).await,
            None => send_message(api, chat_id, &text, parse_mode).await,
        }
    };
    match send(part.body.clone(), Some("HTML")).await {
        Ok(receipt) => Ok(receipt),
        Err(CallError::Answer(answer)) if is_parse_error(answer.status, &answer.description()) => {
            warn!(
                "[telegram] Telegram could not parse a reply's formatting ({}); sending it to {chat_id} as plain text",
                api.redact(&answer.description())
            );
            send(shown(&part.body), None)
                .await
                .map_err(|err| to_send_error(api, err))
        }
        Err(err) => Err(to_send_error(api, err)),
    }
}

/// Shows `body` (a formatted part, HTML) as the draft `view.draft_id` of a reply being written
/// in `chat`; like a part, HTML Telegram cannot parse is shown as plain text.
pub async fn show_draft(
    api: &Api,
    chat: &str,
    view: &LiveView,
    body: &str,
) -> Result<(), SendError> {
    let chat_id = chat_id(chat)?;
    let draft = |text, parse_mode| SendMessageDraft {
        chat_id,
        draft_id: view.draft_id,
        text,
        parse_mode,
    };
    let shown_as = |params| api.call::<_, bool>("sendMessageDraft", params, DRAFT_TIMEOUT);
    match shown_as(&draft(body, Some("HTML"))).await {
        Ok(_) => Ok(()),
        Err(CallError::Answer(answer)) if is_parse_error(answer.status, &answer.description()) => {
            shown_as(&draft(&shown(body), None))
                .await
                .map(drop)
                .map_err(|err| to_send_error(api, err))
        }
        Err(err) => Err(to_send_error(api, err)),
    }
}

/// Shows "typing…" in `chat` for about five seconds; a failure is only logged.
pub async fn typing(api: &Api, chat: &str) {
    let Ok(chat_id) = chat_id(chat) else {
        return;
    };
    let params = serde_json::json!({"chat_id": chat_id, "action": "typing"});
    if let Err(err) = api
        .call::<_, bool>("sendChatAction", &params, ACTION_TIMEOUT)
        .await
    {
        debug!("[telegram] typing indicator for {chat_id} failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_html_unless_plain() {
        let body = serde_json::to_value(SendMessage {
            chat_id: -100,
            text: "<b>Hi</b>",
            parse_mode: Some("HTML"),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"chat_id": -100, "text": "<b>Hi</b>", "parse_mode": "HTML"})
        );
        let plain = serde_json::to_value(SendMessage {
            chat_id: 5,
            text: "Hi",
            parse_mode: None,
        })
        .unwrap();
        assert_eq!(plain, serde_json::json!({"chat_id": 5, "text": "Hi"}));
    }

    #[test]
    fn a_draft_names_its_chat_and_draft() {
        let body = serde_json::to_value(SendMessageDraft {
            chat_id: 42,
            draft_id: 7,
            text: "<b>Hal</b>",
            parse_mode: Some("HTML"),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"chat_id": 42, "draft_id": 7, "text": "<b>Hal</b>", "parse_mode": "HTML"})
        );
    }

    #[test]
    fn a_chat_that_is_not_a_number_is_refused_permanently() {
        assert!(matches!(
            chat_id("@someone"),
            Err(SendError::Permanent { .. })
        ));
        assert_eq!(chat_id(" -100 ").ok(), Some(-100));
    }
}
