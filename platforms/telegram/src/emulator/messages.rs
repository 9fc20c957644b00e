//! `sendMessage` (the scripted faults first, then HTML checked as Telegram parses it, the
//! 4,096-unit limit, unknown and blocked chats) and `sendChatAction`.
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{
    Attempt, Callback, ChatAction, Fault, SentMessage, Shared, State, error, html, ok, text_param,
    unix_now,
};
use crate::format::utf16_len;
use crate::types::{Chat, Message};

/// Longest message, in UTF-16 code units of visible text.
const MAX_MESSAGE_UNITS: usize = 4096;
/// The chat actions Telegram knows.
const ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

impl Attempt {
    /// A call of `method` with these parameters that has just arrived, not answered yet.
    pub(super) fn arrived(shared: &Shared, method: &str, params: &Map<String, Value>) -> Attempt {
        Attempt {
            method: method.to_string(),
            chat_id: text_param(params, "chat_id"),
            text: text_param(params, "text").or_else(|| text_param(params, "caption")),
            parse_mode: text_param(params, "parse_mode"),
            status: None,
            description: None,
            elapsed: shared.elapsed(),
        }
    }
}

/// The text a chat shows for `text` (or a caption) sent with `parse_mode`, or the description
/// of a 400: HTML that Telegram cannot parse, or a parse mode it does not know.
pub(super) fn parse_as(text: &str, parse_mode: Option<&str>) -> Result<html::Parsed, String> {
    match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(html::trimmed(text.to_string(), Vec::new())),
        Some("html") => {
            html::parse(text).map_err(|why| format!("Bad Request: can't parse entities: {why}"))
        }
        Some(_) => Err("Bad Request: unsupported parse_mode".to_string()),
    }
}

/// Keeps a message the bot sent; it replaces the draft its chat showed.
pub(super) fn record(state: &mut State, sent: &SentMessage) {
    state.sent.push(sent.clone());
    state.showing.remove(&sent.chat_id);
}

/// A message from the bot in `chat`, with nothing in it yet.
pub(super) fn from_bot(shared: &Shared, chat: Chat, message_id: i64) -> Message {
    Message::new(message_id, Some(shared.bot.clone()), chat, unix_now())
}

/// The text a chat shows for `text` sent with `parse_mode`, checked as `sendMessage` and
/// `sendMessageDraft` check it; or the description of a 400.
pub(super) fn visible_text(text: &str, parse_mode: Option<&str>) -> Result<html::Parsed, String> {
    let parsed = parse_as(text, parse_mode)?;
    if parsed.text.is_empty() {
        return Err("Bad Request: message text is empty".to_string());
    }
    if utf16_len(&parsed.text) > MAX_MESSAGE_UNITS {
        return Err("Bad Request: message is too long".to_string());
    }
    Ok(parsed)
}

/// A 429 as Telegram sends it: `parameters.retry_after` and the `Retry-After` header.
pub(super) fn too_many_requests(retry_after: u64) -> HttpResponse {
    let description = format!("Too Many Requests: retry after {retry_after}");
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", retry_after.to_string()))
        .json(json!({
            "ok": false,
            "error_code": 429,
            "description": description,
            "parameters": {"retry_after": retry_after},
        }))
}

/// The chat a `chat_id` names: a known id, or `@username` of a known chat.
pub(super) fn chat(state: &State, chat_id: &str) -> Option<Chat> {
    match chat_id.trim().parse::<i64>() {
        Ok(id) => state.chats.get(&id).cloned(),
        Err(_) => {
            let name = chat_id.trim().strip_prefix('@')?;
            state
                .chats
                .values()
                .find(|c| c.username.as_deref() == Some(name))
                .cloned()
        }
    }
}

/// The chat a send goes to, or the status and description Telegram refuses it with: no
/// `chat_id`, an unknown chat, or one that blocked the bot.
pub(super) fn recipient(state: &State, chat_id: Option<&str>) -> Result<Chat, (u16, String)> {
    let refuse = |status: u16, description: &str| Err((status, description.to_string()));
    let Some(chat_id) = chat_id.filter(|c| !c.trim().is_empty()) else {
        return refuse(400, "Bad Request: chat_id is empty");
    };
    let Some(chat) = chat(state, chat_id) else {
        return refuse(400, "Bad Request: chat not found");
    };
    if state.blocked.contains(&chat.id) {
        return refuse(403, "Forbidden: bot was blocked by the user");
    }
    Ok(chat)
}

/// Takes the next message id of a chat.
pub(super) fn next_message_id(state: &mut State, chat_id: i64) -> i64 {
    let next = state.next_message_id.entry(chat_id).or_insert(1);
    let message_id = *next;
    *next += 1;
    message_id
}

/// Sends a message as Telegram would, or says why not (status and description).
fn process_send(
    shared: &Shared,
    chat_id: Option<&str>,
    text: Option<&str>,
    parse_mode: Option<&str>,
) -> Result<(Message, SentMessage, Option<Callback>), (u16, String)> {
    let mut state = shared.lock();
    let chat = recipient(&state, chat_id)?;
    let text = text.unwrap_or_default();
    let parsed = visible_text(text, parse_mode).map_err(|description| (400, description))?;
    let message_id = next_message_id(&mut state, chat.id);
    let sent = SentMessage {
        chat_id: chat.id,
        message_id,
        text: parsed.text.clone(),
        body: text.to_string(),
        parse_mode: parse_mode.map(str::to_string),
        entities: parsed.entities.clone(),
        media: None,
        elapsed: shared.elapsed(),
    };
    record(&mut state, &sent);
    let message = Message {
        text: Some(parsed.text),
        entities: parsed.entities,
        ..from_bot(shared, chat, message_id)
    };
    Ok((message, sent, state.on_message.clone()))
}

/// Takes the next scripted fault for a send: `Err` with the answer that replaces the call
/// (the attempt recorded), or `Ok` with how long to hold back the answer of the call, which is
/// processed as usual.
pub(super) async fn scripted(
    shared: &Shared,
    mut attempt: Attempt,
) -> Result<(Attempt, Option<Duration>), HttpResponse> {
    let fault = shared.lock().faults.pop_front();
    let refused = match fault {
        Some(Fault::TooManyRequests { retry_after }) => {
            attempt.status = Some(429);
            attempt.description = Some(format!("Too Many Requests: retry after {retry_after}"));
            shared.lock().attempts.push(attempt);
            return Err(too_many_requests(retry_after));
        }
        Some(Fault::ServerError) => (500, "Internal Server Error"),
        Some(Fault::BadGateway) => {
            attempt.status = Some(502);
            attempt.description = Some("Bad Gateway".to_string());
            shared.lock().attempts.push(attempt);
            return Err(HttpResponse::BadGateway()
                .content_type("text/html")
                .body("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"));
        }
        Some(Fault::Hang) => {
            shared.lock().attempts.push(attempt);
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            return Err(error(500, "Internal Server Error"));
        }
        Some(Fault::Delay(wait)) => return Ok((attempt, Some(wait))),
        None => return Ok((attempt, None)),
    };
    let (status, description) = refused;
    attempt.status = Some(status);
    attempt.description = Some(description.to_string());
    shared.lock().attempts.push(attempt);
    Err(error(status, description))
}

/// Answers a send as processed (`result`: the message, what was sent and the callback to
/// tell, or the status and description it was refused with), after `delay`; records the
/// attempt.
pub(super) async fn answer_send(
    shared: &Shared,
    mut attempt: Attempt,
    result: Result<(impl Serialize, SentMessage, Option<Callback>), (u16, String)>,
    delay: Option<Duration>,
) -> HttpResponse {
    let response = match result {
        Ok((message, sent, callback)) => {
            attempt.status = Some(200);
            shared.lock().attempts.push(attempt);
            if let Some(callback) = callback {
                callback(&sent);
            }
            ok(message)
        }
        Err((status, description)) => {
            attempt.status = Some(status);
            attempt.description = Some(description.clone());
            shared.lock().attempts.push(attempt);
            error(status, &description)
        }
    };
    if let Some(wait) = delay {
        actix_web::rt::time::sleep(wait).await;
    }
    response
}

pub(super) async fn send_message(
    shared: &web::Data<Shared>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let attempt = Attempt::arrived(shared, "sendMessage", params);
    let (attempt, delay) = match scripted(shared, attempt).await {
        Ok(go_on) => go_on,
        Err(answer) => return answer,
    };
    let result = process_send(
        shared,
        attempt.chat_id.as_deref(),
        attempt.text.as_deref(),
        attempt.parse_mode.as_deref(),
    );
    answer_send(shared, attempt, result, delay).await
}

pub(super) fn send_chat_action(shared: &Shared, params: &Map<String, Value>) -> HttpResponse {
    let chat_id = text_param(params, "chat_id").unwrap_or_default();
    let action = text_param(params, "action").unwrap_or_default();
    let mut state = shared.lock();
    let Some(chat) = chat(&state, &chat_id) else {
        return error(400, "Bad Request: chat not found");
    };
    if state.blocked.contains(&chat.id) {
        return error(403, "Forbidden: bot was blocked by the user");
    }
    if !ACTIONS.contains(&action.as_str()) {
        return error(400, "Bad Request: wrong parameter action in request");
    }
    let elapsed = shared.elapsed();
    state.actions.push(ChatAction {
        chat_id: chat.id,
        action,
        elapsed,
    });
    ok(true)
}
