//! `sendMessageDraft` (Bot API 9.3): a reply shown in a private chat while it is written.
//!
//! Checked as Telegram checks it: the chat must be a known private chat (a group, supergroup or
//! channel answers `TEXTDRAFT_PEER_INVALID`), `draft_id` a non-zero integer, and the text what
//! `sendMessage` accepts (1 to 4,096 units after the HTML is parsed, the same errors). Each chat
//! has a bucket of updates ([`super::EmulatorConfig::draft_burst`]); an update finding it
//! empty is answered 429 with `retry_after`. A shown update replaces the chat's draft until a
//! message is sent there.
use std::time::Instant;

use actix_web::HttpResponse;
use serde_json::{Map, Value};

use super::messages::{chat, too_many_requests, visible_text};
use super::{Attempt, Draft, DraftCallback, Shared, State, error, int_param, ok, text_param};

/// Why an update was refused: status, description, and `retry_after` for a 429.
type Refusal = (u16, String, Option<u64>);

pub(super) fn send_message_draft(shared: &Shared, params: &Map<String, Value>) -> HttpResponse {
    let mut attempt = Attempt::arrived(shared, "sendMessageDraft", params);
    let mut state = shared.lock();
    let shown = show(shared, &mut state, params, attempt.elapsed);
    let (status, description) = match &shown {
        Ok(_) => (200, None),
        Err((status, description, _)) => (*status, Some(description.clone())),
    };
    attempt.status = Some(status);
    attempt.description = description;
    state.draft_attempts.push(attempt);
    drop(state);
    match shown {
        Ok((draft, callback)) => {
            if let Some(callback) = callback {
                callback(&draft);
            }
            ok(true)
        }
        Err((_, _, Some(retry_after))) => too_many_requests(retry_after),
        Err((status, description, None)) => error(status, &description),
    }
}

/// Checks an update and shows it, or says why not.
fn show(
    shared: &Shared,
    state: &mut State,
    params: &Map<String, Value>,
    elapsed: std::time::Duration,
) -> Result<(Draft, Option<DraftCallback>), Refusal> {
    let refuse = |status: u16, description: &str| Err((status, description.to_string(), None));
    let Some(chat_id) = text_param(params, "chat_id").filter(|c| !c.trim().is_empty()) else {
        return refuse(400, "Bad Request: chat_id is empty");
    };
    let Some(chat) = chat(state, &chat_id) else {
        return refuse(400, "Bad Request: chat not found");
    };
    if chat.kind != "private" {
        return refuse(400, "Bad Request: TEXTDRAFT_PEER_INVALID");
    }
    if state.blocked.contains(&chat.id) {
        return refuse(403, "Forbidden: bot was blocked by the user");
    }
    // Telegram's wording for a zero or missing draft_id is not documented; this says what its
    // documentation asks for.
    let Some(draft_id) = int_param(params, "draft_id").filter(|&id| id != 0) else {
        return refuse(400, "Bad Request: draft_id must be non-zero");
    };
    let body = text_param(params, "text").unwrap_or_default();
    let parse_mode = text_param(params, "parse_mode");
    let parsed = match visible_text(&body, parse_mode.as_deref()) {
        Ok(parsed) => parsed,
        Err(description) => return refuse(400, &description),
    };
    take_from_bucket(shared, state, chat.id).map_err(|retry_after| {
        (
            429,
            format!("Too Many Requests: retry after {retry_after}"),
            Some(retry_after),
        )
    })?;
    let draft = Draft {
        chat_id: chat.id,
        draft_id,
        message_thread_id: int_param(params, "message_thread_id"),
        text: parsed.text,
        body,
        parse_mode,
        entities: parsed.entities,
        elapsed,
    };
    state.drafts.push(draft.clone());
    state.showing.insert(chat.id, draft.clone());
    Ok((draft, state.on_draft.clone()))
}

/// Takes one update from the chat's bucket, or says in how many seconds one is there.
fn take_from_bucket(shared: &Shared, state: &mut State, chat_id: i64) -> Result<(), u64> {
    let burst = f64::from(shared.draft_burst);
    let rate = shared.drafts_per_second;
    let now = Instant::now();
    let (left, refilled) = state.draft_buckets.entry(chat_id).or_insert((burst, now));
    *left = (*left + now.duration_since(*refilled).as_secs_f64() * rate).min(burst);
    *refilled = now;
    if *left >= 1.0 {
        *left -= 1.0;
        return Ok(());
    }
    // Telegram says whole seconds.
    let wait = if rate > 0.0 {
        (1.0 - *left) / rate
    } else {
        3600.0
    };
    Err((wait.ceil() as u64).max(1))
}
