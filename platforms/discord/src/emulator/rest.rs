//! The emulator's REST API under `/api/v10`, with Discord's JSON shapes, error codes and
//! rate-limit headers.
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde_json::{Value, json};

use super::{Attempt, CreatedMessage, Fault, Shared, Stored, TypingCall, timestamp};
use crate::MAX_MESSAGE_CHARS;

/// The bucket hash every message creation answers with (the channel is its major parameter).
const CREATE_BUCKET: &str = "80c17d2f203122d936070c88c8d10f33";

/// Every API call: authenticated, then routed by method and path.
pub(super) async fn api(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let Some(path) = req.path().strip_prefix("/api/v10/") else {
        return error(404, 0, "404: Not Found");
    };
    let expected = format!("Bot {}", shared.config.token);
    let authorized = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return error(401, 0, "401: Unauthorized");
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, ["gateway", "bot"]) => gateway_bot(&shared),
        (Method::GET, ["users", "@me"]) => HttpResponse::Ok().json(shared.bot_user()),
        (Method::GET, ["applications", "@me"]) => application(&shared),
        (Method::GET, ["channels", id]) => channel(&shared, id),
        (Method::POST, ["channels", id, "messages"]) => create_message(&shared, id, &body).await,
        (Method::GET, ["channels", id, "messages"]) => {
            list_messages(&shared, id, req.query_string())
        }
        (Method::POST, ["channels", id, "typing"]) => typing(&shared, id),
        (_, ["gateway", "bot"] | ["users", "@me"] | ["applications", "@me"] | ["channels", ..]) => {
            error(405, 0, "405: Method Not Allowed")
        }
        _ => error(404, 0, "404: Not Found"),
    }
}

/// Discord's error body: `{"message", "code"}`.
fn error(status: u16, code: i64, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({"message": message, "code": code}))
}

fn unknown_channel() -> HttpResponse {
    error(404, 10003, "Unknown Channel")
}

fn gateway_bot(shared: &Shared) -> HttpResponse {
    let identifies = shared.lock().counters.identifies;
    HttpResponse::Ok().json(json!({
        "url": format!("ws://{}/gateway", shared.addr),
        "shards": 1,
        "session_start_limit": {
            "total": 1000,
            "remaining": 1000u32.saturating_sub(identifies),
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        },
    }))
}

fn application(shared: &Shared) -> HttpResponse {
    let flags = shared.app_flags(&shared.lock());
    HttpResponse::Ok().json(json!({
        "id": shared.config.bot_id,
        "name": shared.config.bot_name,
        "icon": null,
        "description": "",
        "bot_public": true,
        "bot_require_code_grant": false,
        "bot": shared.bot_user(),
        "flags": flags,
    }))
}

fn channel(shared: &Shared, id: &str) -> HttpResponse {
    let state = shared.lock();
    let Some(channel) = state.channels.get(id) else {
        return unknown_channel();
    };
    match (&channel.name, &channel.recipient) {
        (_, Some(recipient)) => HttpResponse::Ok().json(json!({
            "id": id,
            "type": 1,
            "last_message_id": null,
            "recipients": [{"id": recipient, "username": format!("user-{recipient}"), "discriminator": "0"}],
        })),
        (name, None) => HttpResponse::Ok().json(json!({
            "id": id,
            "type": 0,
            "guild_id": super::GUILD_ID,
            "name": name,
            "position": 0,
            "nsfw": false,
        })),
    }
}

/// Adds the rate-limit headers of a bucket with `remaining` calls that resets in `reset_after`.
fn limit_headers(
    builder: &mut HttpResponseBuilder,
    limit: u32,
    remaining: u32,
    reset_after: Duration,
) {
    let reset_at = SystemTime::now() + reset_after;
    let reset_epoch = reset_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    builder
        .insert_header(("X-RateLimit-Limit", limit.to_string()))
        .insert_header(("X-RateLimit-Remaining", remaining.to_string()))
        .insert_header(("X-RateLimit-Reset", format!("{reset_epoch:.3}")))
        .insert_header((
            "X-RateLimit-Reset-After",
            format!("{:.3}", reset_after.as_secs_f64()),
        ))
        .insert_header(("X-RateLimit-Bucket", CREATE_BUCKET));
}

/// A 429 as Discord sends it.
fn rate_limited(retry_after: f64, global: bool, limit: u32, reset_after: Duration) -> HttpResponse {
    let mut builder = HttpResponse::TooManyRequests();
    limit_headers(&mut builder, limit, 0, reset_after);
    builder
        .insert_header(("Retry-After", (retry_after.ceil() as u64).to_string()))
        .insert_header(("X-RateLimit-Scope", if global { "global" } else { "user" }));
    if global {
        builder.insert_header(("X-RateLimit-Global", "true"));
    }
    builder.json(json!({
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": global,
    }))
}

async fn create_message(shared: &Shared, channel_id: &str, body: &[u8]) -> HttpResponse {
    let elapsed = shared.started.elapsed();
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let content = parsed
        .as_ref()
        .and_then(|v| v.get("content"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let record = |status: u16, code: Option<i64>| {
        shared.lock().attempts.push(Attempt {
            channel_id: channel_id.to_string(),
            content: content.clone(),
            status,
            code,
            elapsed,
        });
    };
    let limit = shared.config.messages_per_window;
    let (fault, blocked, bucket) = {
        let mut state = shared.lock();
        let Some(channel) = state.channels.get(channel_id) else {
            drop(state);
            record(404, Some(10003));
            return unknown_channel();
        };
        let blocked = channel
            .recipient
            .as_ref()
            .is_some_and(|user| state.blocked.contains(user));
        let fault = state.faults.pop_front();
        // The channel's bucket: a window of `limit` calls.
        let now = Instant::now();
        let window = shared.config.window;
        let entry = state
            .buckets
            .entry(channel_id.to_string())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        let over = entry.0 >= limit;
        if !over {
            entry.0 += 1;
        }
        let bucket = (over, limit.saturating_sub(entry.0), entry.1 - now);
        (fault, blocked, bucket)
    };
    let (over, remaining, reset_after) = bucket;
    match fault {
        Some(Fault::RateLimited {
            retry_after,
            global,
        }) => {
            record(429, None);
            return rate_limited(retry_after, global, limit, reset_after);
        }
        Some(Fault::ServerError) => {
            record(500, None);
            return error(500, 0, "500: Internal Server Error");
        }
        Some(Fault::BadGateway) => {
            record(502, None);
            return HttpResponse::BadGateway()
                .content_type("text/html")
                .body("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>");
        }
        Some(Fault::AcceptThenDelay(_)) | None => {}
    }
    if over {
        record(429, None);
        return rate_limited(reset_after.as_secs_f64(), false, limit, reset_after);
    }
    let refuse = |status: u16, code: i64, body: Value| {
        record(status, Some(code));
        let mut builder =
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
        limit_headers(&mut builder, limit, remaining, reset_after);
        builder.json(body)
    };
    let Some(parsed) = parsed else {
        return refuse(
            400,
            50109,
            json!({"message": "The request body contains invalid JSON.", "code": 50109}),
        );
    };
    let content = content.clone().unwrap_or_default();
    let has_other = ["embeds", "attachments", "sticker_ids", "poll"]
        .iter()
        .any(|field| {
            parsed
                .get(field)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        });
    if content.is_empty() && !has_other {
        return refuse(
            400,
            50006,
            json!({"message": "Cannot send an empty message", "code": 50006}),
        );
    }
    if content.chars().count() > MAX_MESSAGE_CHARS {
        return refuse(
            400,
            50035,
            json!({
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {"content": {"_errors": [{
                    "code": "BASE_TYPE_MAX_LENGTH",
                    "message": format!("Must be {MAX_MESSAGE_CHARS} or fewer in length."),
                }]}},
            }),
        );
    }
    if blocked {
        return refuse(
            403,
            50007,
            json!({"message": "Cannot send messages to this user", "code": 50007}),
        );
    }
    let (message, callback, created) = {
        let mut state = shared.lock();
        let id = state.snowflake();
        let now = SystemTime::now();
        let mut message = json!({
            "id": id.to_string(),
            "type": 0,
            "channel_id": channel_id,
            "author": shared.bot_user(),
            "content": content,
            "timestamp": timestamp(now),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
        });
        let guild = state
            .channels
            .get(channel_id)
            .is_some_and(|c| c.recipient.is_none());
        if guild {
            message["guild_id"] = json!(super::GUILD_ID);
        }
        state.stored.push(Stored {
            id,
            channel_id: channel_id.to_string(),
            json: message.clone(),
        });
        let created = CreatedMessage {
            id: id.to_string(),
            channel_id: channel_id.to_string(),
            content: content.clone(),
            at: now,
        };
        state.created.push(created.clone());
        state.attempts.push(Attempt {
            channel_id: channel_id.to_string(),
            content: Some(content.clone()),
            status: 200,
            code: None,
            elapsed,
        });
        (message, state.on_message.clone(), created)
    };
    if let Some(callback) = callback {
        callback(&created);
    }
    if let Some(Fault::AcceptThenDelay(delay)) = fault {
        actix_web::rt::time::sleep(delay).await;
    }
    let mut builder = HttpResponse::Ok();
    limit_headers(&mut builder, limit, remaining, reset_after);
    builder.json(message)
}

fn list_messages(shared: &Shared, channel_id: &str, query: &str) -> HttpResponse {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let after = match param("after").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(after)) => after,
        Some(Err(_)) => {
            return HttpResponse::BadRequest().json(json!({
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {"after": {"_errors": [{"code": "NUMBER_TYPE_COERCE", "message": "Value is not snowflake."}]}},
            }));
        }
    };
    let limit = param("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=100).contains(n))
        .unwrap_or(50);
    let state = shared.lock();
    if !state.channels.contains_key(channel_id) {
        return unknown_channel();
    }
    let mut found: Vec<&Stored> = state
        .stored
        .iter()
        .filter(|m| m.channel_id == channel_id && m.id > after)
        .collect();
    found.sort_by_key(|m| m.id);
    found.truncate(limit);
    // Discord lists the newest first.
    let page: Vec<Value> = found.iter().rev().map(|m| m.json.clone()).collect();
    HttpResponse::Ok().json(page)
}

fn typing(shared: &Shared, channel_id: &str) -> HttpResponse {
    let mut state = shared.lock();
    if !state.channels.contains_key(channel_id) {
        return unknown_channel();
    }
    state.typing.push(TypingCall {
        channel_id: channel_id.to_string(),
        elapsed: shared.started.elapsed(),
    });
    HttpResponse::NoContent().finish()
}
