//! The emulator's REST API under `/api/v10`, with Discord's JSON shapes, error codes and
//! rate-limit headers.
use std::time::{Duration, Instant, SystemTime};

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_TYPE, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::files::{MAX_FILES, MAX_UPLOAD_BYTES, Upload, Voice};
use super::{
    Attempt, CreatedMessage, Edit, EditCallback, EmulatorConfig, Fault, Shared, State, Stored,
    TypingCall, Version, timestamp,
};
use crate::MAX_MESSAGE_CHARS;
use crate::types::IS_VOICE_MESSAGE;

/// The bucket hash every message creation answers with (the channel is its major parameter).
const CREATE_BUCKET: &str = "80c17d2f203122d936070c88c8d10f33";
/// The bucket hash every message edit answers with.
const EDIT_BUCKET: &str = "d7e4a9b3c1f2e5a6b8c9d0e1f2a3b4c5";

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
        (Method::POST, ["channels", id, "messages"]) => {
            create_message(&shared, id, req.headers(), body).await
        }
        (Method::PATCH, ["channels", id, "messages", message]) => {
            edit_message(&shared, id, message, &body).await
        }
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

/// A route with a rate-limit bucket per channel (its major parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Route {
    /// `POST /channels/{id}/messages`.
    Create,
    /// `PATCH /channels/{id}/messages/{id}`.
    Edit,
}

impl Route {
    /// The bucket's hash, as `X-RateLimit-Bucket` names it.
    fn hash(self) -> &'static str {
        match self {
            Route::Create => CREATE_BUCKET,
            Route::Edit => EDIT_BUCKET,
        }
    }

    /// The calls a channel's bucket allows per window.
    fn limit(self, config: &EmulatorConfig) -> u32 {
        match self {
            Route::Create => config.messages_per_window,
            Route::Edit => config.edits_per_window,
        }
    }
}

/// Where a call stands in its channel's bucket.
struct Bucket {
    route: Route,
    limit: u32,
    /// The bucket was empty: the call is refused with 429.
    over: bool,
    remaining: u32,
    reset_after: Duration,
}

/// Counts a call of `route` in `channel_id`'s bucket: a window of the route's limit.
fn take(shared: &Shared, state: &mut State, route: Route, channel_id: &str) -> Bucket {
    let limit = route.limit(&shared.config);
    let now = Instant::now();
    let window = shared.config.window;
    let entry = state
        .buckets
        .entry((route, channel_id.to_string()))
        .or_insert((0, now + window));
    if entry.1 <= now {
        *entry = (0, now + window);
    }
    let over = entry.0 >= limit;
    if !over {
        entry.0 += 1;
    }
    Bucket {
        route,
        limit,
        over,
        remaining: limit.saturating_sub(entry.0),
        reset_after: entry.1 - now,
    }
}

/// Adds the rate-limit headers of `bucket`, with `remaining` calls left.
fn limit_headers(builder: &mut HttpResponseBuilder, bucket: &Bucket, remaining: u32) {
    let reset_at = SystemTime::now() + bucket.reset_after;
    let reset_epoch = reset_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    builder
        .insert_header(("X-RateLimit-Limit", bucket.limit.to_string()))
        .insert_header(("X-RateLimit-Remaining", remaining.to_string()))
        .insert_header(("X-RateLimit-Reset", format!("{reset_epoch:.3}")))
        .insert_header((
            "X-RateLimit-Reset-After",
            format!("{:.3}", bucket.reset_after.as_secs_f64()),
        ))
        .insert_header(("X-RateLimit-Bucket", bucket.route.hash()));
}

/// A 429 as Discord sends it.
fn rate_limited(retry_after: f64, global: bool, bucket: &Bucket) -> HttpResponse {
    let mut builder = HttpResponse::TooManyRequests();
    limit_headers(&mut builder, bucket, 0);
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

/// The answer a call gets before its body is looked at, with its status: a scripted fault,
/// or 429 when its bucket is empty. `None` when the call goes on ([`Fault::AcceptThenDelay`]
/// answers late, after doing it).
fn refused_early(fault: Option<&Fault>, bucket: &Bucket) -> Option<(u16, HttpResponse)> {
    match fault {
        Some(Fault::RateLimited {
            retry_after,
            global,
        }) => return Some((429, rate_limited(*retry_after, *global, bucket))),
        Some(Fault::ServerError) => {
            return Some((500, error(500, 0, "500: Internal Server Error")));
        }
        Some(Fault::BadGateway) => {
            return Some((502, HttpResponse::BadGateway()
                .content_type("text/html")
                .body("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>")));
        }
        Some(Fault::AcceptThenDelay(_)) | None => {}
    }
    bucket.over.then(|| {
        let retry_after = bucket.reset_after.as_secs_f64();
        (429, rate_limited(retry_after, false, bucket))
    })
}

/// A refusal: Discord's error `body` with the bucket's headers.
fn refusal(status: u16, body: Value, bucket: &Bucket) -> HttpResponse {
    let mut builder =
        HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    limit_headers(&mut builder, bucket, bucket.remaining);
    builder.json(body)
}

/// Why a call is refused: status, Discord's code and its error body.
type Refusal = (u16, i64, Value);

fn invalid_json() -> Refusal {
    let body = json!({"message": "The request body contains invalid JSON.", "code": 50109});
    (400, 50109, body)
}

/// Checks a message's `content` (with the rest of the `body`, and whether files come with it)
/// as Discord does.
fn check_content(body: &Value, content: &str, has_files: bool) -> Result<(), Refusal> {
    let has_other = has_files
        || ["embeds", "attachments", "sticker_ids", "poll"]
            .iter()
            .any(|field| {
                body.get(field)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            });
    if content.is_empty() && !has_other {
        let body = json!({"message": "Cannot send an empty message", "code": 50006});
        return Err((400, 50006, body));
    }
    if content.chars().count() > MAX_MESSAGE_CHARS {
        return Err(too_long("content", MAX_MESSAGE_CHARS));
    }
    Ok(())
}

/// A call's body: parsed when it is JSON, and its `content`.
fn read_body(body: &[u8]) -> (Option<Value>, Option<String>) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let content = parsed
        .as_ref()
        .and_then(|v| v.get("content"))
        .and_then(Value::as_str)
        .map(str::to_string);
    (parsed, content)
}

/// A creation's body: JSON, or a multipart form of `payload_json` and `files[n]`.
struct Creation {
    parsed: Option<Value>,
    content: Option<String>,
    files: Vec<Upload>,
}

/// Reads a creation's body as its `Content-Type` says.
async fn read_creation(headers: &HeaderMap, body: web::Bytes) -> Result<Creation, Refusal> {
    let multipart = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let (parsed, content) = read_body(&body);
        return Ok(Creation {
            parsed,
            content,
            files: Vec::new(),
        });
    }
    let stream = futures_util::stream::once(async move { Ok::<_, PayloadError>(body) });
    let mut form = Multipart::new(headers, stream);
    let mut payload = None;
    let mut files: Vec<(usize, Upload)> = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|_| invalid_form())?;
        let name = field.name().unwrap_or_default().to_string();
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let content_type = field.content_type().map(ToString::to_string);
        let mut bytes = web::BytesMut::new();
        while let Some(chunk) = field.next().await {
            bytes.extend_from_slice(&chunk.map_err(|_| invalid_form())?);
        }
        if name == "payload_json" {
            payload = Some(bytes.freeze());
        } else if let Some(index) = name
            .strip_prefix("files[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|n| n.parse::<usize>().ok())
        {
            files.push((
                index,
                Upload {
                    filename: filename.unwrap_or_else(|| name.clone()),
                    content_type,
                    bytes: bytes.freeze(),
                    voice: None,
                },
            ));
        }
    }
    let (parsed, content) = match &payload {
        Some(payload) => read_body(payload),
        None => (Some(json!({})), None),
    };
    // The `attachments` metadata may rename a file and give a voice message's duration and
    // waveform: its `id` is the `n` of `files[n]`.
    let metadata: Vec<(usize, &Value)> = parsed
        .as_ref()
        .and_then(|p| p.get("attachments"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let id = match &a["id"] {
                Value::Number(n) => n.as_u64().map(|n| n as usize),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }?;
            Some((id, a))
        })
        .collect();
    for (index, upload) in &mut files {
        let Some((_, meta)) = metadata.iter().find(|(id, _)| id == index) else {
            continue;
        };
        if let Some(name) = meta["filename"].as_str() {
            upload.filename = name.to_string();
        }
        if let (Some(duration_secs), Some(waveform)) =
            (meta["duration_secs"].as_f64(), meta["waveform"].as_str())
        {
            upload.voice = Some(Voice {
                duration_secs,
                waveform: waveform.to_string(),
            });
        }
    }
    files.sort_by_key(|(index, _)| *index);
    Ok(Creation {
        parsed,
        content,
        files: files.into_iter().map(|(_, upload)| upload).collect(),
    })
}

/// Discord's refusal of a `field` longer than `max` (characters, or items of a list).
fn too_long(field: &str, max: usize) -> Refusal {
    let body = json!({
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {field: {"_errors": [{
            "code": "BASE_TYPE_MAX_LENGTH",
            "message": format!("Must be {max} or fewer in length."),
        }]}},
    });
    (400, 50035, body)
}

/// Checks a voice message (`flags` with [`IS_VOICE_MESSAGE`]) as Discord does: one audio file
/// with its duration and waveform, and nothing else.
fn check_voice(content: &str, files: &[Upload]) -> Result<(), Refusal> {
    let refused = |code: i64, message: &str| {
        let body = json!({"message": message, "code": code});
        Err((400, code, body))
    };
    if !content.is_empty() {
        return refused(50159, "Voice messages do not support additional content.");
    }
    let [file] = files else {
        return refused(50160, "Voice messages must have a single audio attachment.");
    };
    let audio = file
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("audio/"));
    if !audio {
        return refused(50160, "Voice messages must have a single audio attachment.");
    }
    if file.voice.is_none() {
        return refused(50161, "Voice messages must have supporting metadata.");
    }
    Ok(())
}

/// A multipart body Discord cannot read.
fn invalid_form() -> Refusal {
    let body = json!({"message": "Invalid Form Body", "code": 50035, "errors": {}});
    (400, 50035, body)
}

/// Checks a creation's files against Discord's limits: their count, then each one's size.
fn check_files(files: &[Upload]) -> Result<(), Refusal> {
    if files.len() > MAX_FILES {
        return Err(too_long("attachments", MAX_FILES));
    }
    if files.iter().any(|f| f.bytes.len() > MAX_UPLOAD_BYTES) {
        let body = json!({"message": "Request entity too large", "code": 40005});
        return Err((413, 40005, body));
    }
    Ok(())
}

async fn create_message(
    shared: &Shared,
    channel_id: &str,
    headers: &HeaderMap,
    body: web::Bytes,
) -> HttpResponse {
    let elapsed = shared.started.elapsed();
    let read = read_creation(headers, body).await;
    let content = read.as_ref().ok().and_then(|c| c.content.clone());
    let record = |status: u16, code: Option<i64>| {
        shared.lock().attempts.push(Attempt {
            channel_id: channel_id.to_string(),
            message_id: None,
            content: content.clone(),
            status,
            code,
            elapsed,
        });
    };
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
        let bucket = take(shared, &mut state, Route::Create, channel_id);
        (fault, blocked, bucket)
    };
    if let Some((status, answer)) = refused_early(fault.as_ref(), &bucket) {
        record(status, None);
        return answer;
    }
    let refuse = |(status, code, body): Refusal| {
        record(status, Some(code));
        refusal(status, body, &bucket)
    };
    let creation = match read {
        Ok(creation) => creation,
        Err(refused) => return refuse(refused),
    };
    let Some(parsed) = creation.parsed else {
        return refuse(invalid_json());
    };
    let files = creation.files;
    let content = content.clone().unwrap_or_default();
    if let Err(refused) = check_files(&files) {
        return refuse(refused);
    }
    if let Err(refused) = check_content(&parsed, &content, !files.is_empty()) {
        return refuse(refused);
    }
    let flags = parsed["flags"].as_u64().unwrap_or(0);
    let voice = flags & IS_VOICE_MESSAGE != 0;
    if voice && let Err(refused) = check_voice(&content, &files) {
        return refuse(refused);
    }
    if blocked {
        let body = json!({"message": "Cannot send messages to this user", "code": 50007});
        return refuse((403, 50007, body));
    }
    let nonce = match nonce_of(&parsed) {
        Ok(nonce) => nonce,
        Err(refused) => return refuse(refused),
    };
    if let Some(earlier) = nonce
        .as_ref()
        .and_then(|nonce| created_with(shared, channel_id, nonce))
    {
        record(200, None);
        let mut builder = HttpResponse::Ok();
        limit_headers(&mut builder, &bucket, bucket.remaining);
        return builder.json(earlier);
    }
    let (message, callback, created) = {
        let mut state = shared.lock();
        let id = state.snowflake();
        if let Some(nonce) = nonce {
            let key = (channel_id.to_string(), nonce);
            state.nonces.insert(key, (id, Instant::now()));
        }
        let now = SystemTime::now();
        let mut sent = Vec::new();
        let mut attachments = Vec::new();
        for upload in &files {
            let attachment = state.host(shared, channel_id, upload);
            let attachment_id = attachment["id"].as_str().and_then(|id| id.parse().ok());
            sent.push(upload.sent(attachment_id.unwrap_or_default()));
            attachments.push(attachment);
        }
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
            "attachments": attachments,
            "embeds": [],
            "pinned": false,
            "flags": if voice { IS_VOICE_MESSAGE } else { 0 },
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
            elapsed,
            files: sent,
        };
        state.created.push(created.clone());
        state.versions.insert(
            id.to_string(),
            vec![Version {
                content: content.clone(),
                elapsed,
            }],
        );
        state.attempts.push(Attempt {
            channel_id: channel_id.to_string(),
            message_id: None,
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
    limit_headers(&mut builder, &bucket, bucket.remaining);
    builder.json(message)
}

/// How long Discord remembers a nonce given with `enforce_nonce` ("the past few minutes").
const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The nonce a creation enforces, if any: a string of at most 25 characters or an integer, as
/// Discord takes it; anything else is refused as Discord refuses it.
fn nonce_of(body: &Value) -> Result<Option<String>, Refusal> {
    if body.get("enforce_nonce").and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let nonce = match body.get("nonce") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 25 => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(too_long("nonce", 25)),
    };
    Ok(Some(nonce))
}

/// The message created in `channel_id` with `nonce` within [`NONCE_WINDOW`], as stored now.
fn created_with(shared: &Shared, channel_id: &str, nonce: &str) -> Option<Value> {
    let state = shared.lock();
    let (id, at) = state
        .nonces
        .get(&(channel_id.to_string(), nonce.to_string()))?;
    if at.elapsed() > NONCE_WINDOW {
        return None;
    }
    let stored = state.stored.iter().find(|m| m.id == *id)?;
    Some(stored.json.clone())
}

async fn edit_message(
    shared: &Shared,
    channel_id: &str,
    message_id: &str,
    body: &[u8],
) -> HttpResponse {
    let elapsed = shared.started.elapsed();
    let (parsed, content) = read_body(body);
    let record = |status: u16, code: Option<i64>| {
        shared.lock().edit_attempts.push(Attempt {
            channel_id: channel_id.to_string(),
            message_id: Some(message_id.to_string()),
            content: content.clone(),
            status,
            code,
            elapsed,
        });
    };
    let (fault, bucket) = {
        let mut state = shared.lock();
        if !state.channels.contains_key(channel_id) {
            drop(state);
            record(404, Some(10003));
            return unknown_channel();
        }
        let fault = state.edit_faults.pop_front();
        (fault, take(shared, &mut state, Route::Edit, channel_id))
    };
    if let Some((status, answer)) = refused_early(fault.as_ref(), &bucket) {
        record(status, None);
        return answer;
    }
    let edited = {
        let mut state = shared.lock();
        apply_edit(
            shared,
            &mut state,
            channel_id,
            message_id,
            parsed.as_ref(),
            content.as_deref(),
            elapsed,
        )
    };
    let (message, edit, callback) = match edited {
        Ok(edited) => edited,
        Err((status, code, body)) => {
            record(status, Some(code));
            return refusal(status, body, &bucket);
        }
    };
    record(200, None);
    if let Some(callback) = callback {
        callback(&edit);
    }
    if let Some(Fault::AcceptThenDelay(delay)) = fault {
        actix_web::rt::time::sleep(delay).await;
    }
    let mut builder = HttpResponse::Ok();
    limit_headers(&mut builder, &bucket, bucket.remaining);
    builder.json(message)
}

/// Edits the bot's message `message_id` in `channel_id` as Discord would, or says why not;
/// returns the message as it is now, the record of the edit and the callback to tell.
fn apply_edit(
    shared: &Shared,
    state: &mut State,
    channel_id: &str,
    message_id: &str,
    body: Option<&Value>,
    content: Option<&str>,
    elapsed: Duration,
) -> Result<(Value, Edit, Option<EditCallback>), Refusal> {
    let Some(stored) = state
        .stored
        .iter_mut()
        .find(|m| m.channel_id == channel_id && m.id.to_string() == message_id)
    else {
        return Err((
            404,
            10008,
            json!({"message": "Unknown Message", "code": 10008}),
        ));
    };
    if stored.json["author"]["id"] != shared.config.bot_id.as_str() {
        let body =
            json!({"message": "Cannot edit a message authored by another user", "code": 50005});
        return Err((403, 50005, body));
    }
    if stored.json["flags"].as_u64().unwrap_or(0) & IS_VOICE_MESSAGE != 0 {
        let body = json!({"message": "Voice messages cannot be edited.", "code": 50162});
        return Err((400, 50162, body));
    }
    let Some(body) = body else {
        return Err(invalid_json());
    };
    if let Some(content) = content {
        check_content(body, content, false)?;
        stored.json["content"] = json!(content);
    }
    let now = SystemTime::now();
    stored.json["edited_timestamp"] = json!(timestamp(now));
    let message = stored.json.clone();
    let text = message["content"].as_str().unwrap_or_default().to_string();
    if let Some(created) = state.created.iter_mut().find(|m| m.id == message_id) {
        created.content = text.clone();
    }
    state
        .versions
        .entry(message_id.to_string())
        .or_default()
        .push(Version {
            content: text.clone(),
            elapsed,
        });
    let edit = Edit {
        message_id: message_id.to_string(),
        channel_id: channel_id.to_string(),
        content: text,
        at: now,
        elapsed,
    };
    state.edits.push(edit.clone());
    Ok((message, edit, state.on_edit.clone()))
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
