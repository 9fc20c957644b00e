//! A fake OpenAI-compatible chat-completions server, for black-box tests of the `openai` agent.
//!
//! `POST /v1/chat/completions` records each request body and answers a `chat.completion` whose
//! content is `You said: <last user message>` unless a fixed reply is set. Tests can slow it down,
//! make it fail, or make it require an API key. It counts how many requests of one conversation
//! (the first word of the last user message) it answered at once. `GET /v1/models` lists one
//! model.
//!
//! A request with `"stream": true` is answered with server-sent events as OpenAI streams them:
//! `chat.completion.chunk` objects, the first with `delta.role`, then the same reply cut into
//! pieces (word by word, at a pace tests set), a last chunk with `finish_reason: "stop"` (and the
//! usage when `stream_options.include_usage` asks), then `data: [DONE]`. Tests can break a
//! stream mid-way or hold it, and read when each answer's first piece was written. Every
//! request's headers are recorded.
//!
//! `POST /v1/audio/transcriptions` transcribes a multipart `file` as OpenAI's speech-to-text
//! does, its errors included: the transcript is one a test set for those exact bytes, or
//! [`default_transcript`] (the file's name and size). Each request read is recorded.
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::loopback::LoopbackServer;
use serde_json::{Value, json};

/// The model named in answers when the request names none.
const DEFAULT_MODEL: &str = "fake-llm";

#[derive(Default)]
struct State {
    requests: Vec<Value>,
    reply: Option<String>,
    delay: Duration,
    failures: usize,
    key: Option<String>,
    answered: u64,
    held: bool,
    /// Requests being answered, by the first word of their last user message.
    in_flight: std::collections::HashMap<String, usize>,
    /// The most requests with the same first word ever answered at once.
    most_at_once: usize,
    streaming: Streaming,
    /// The headers of every chat-completions request, in order ([`FakeLlm::headers`]).
    headers: Vec<Headers>,
    /// When every chat-completions request arrived, in order ([`FakeLlm::arrivals`]).
    arrivals: Vec<Instant>,
    /// Whether session headers get Hermes Agent's 403 ([`FakeLlm::refuse_sessions`]).
    refuse_sessions: bool,
    /// Transcripts set for exact audio bytes ([`FakeLlm::set_transcript`]).
    transcripts: std::collections::HashMap<Vec<u8>, String>,
    /// Every transcription request read whole, in order ([`FakeLlm::transcriptions`]).
    transcriptions: Vec<TranscriptionRequest>,
}

/// A request being answered, counted in [`State::in_flight`] until dropped.
struct InFlight {
    shared: web::Data<Shared>,
    key: String,
}

impl InFlight {
    fn start(shared: &web::Data<Shared>, key: String) -> InFlight {
        let mut state = shared.lock();
        let n = state.in_flight.entry(key.clone()).or_default();
        *n += 1;
        let n = *n;
        state.most_at_once = state.most_at_once.max(n);
        InFlight {
            shared: shared.clone(),
            key,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = self.shared.lock().in_flight.get_mut(&self.key) {
            *n -= 1;
        }
    }
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake server; clones share it, and it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeLlm {
    shared: Arc<Shared>,
    server: Arc<LoopbackServer>,
}

impl FakeLlm {
    /// Starts serving on `127.0.0.1` (a free port) in a thread of its own; returns once listening.
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("binding the fake LLM server");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server =
            LoopbackServer::start("fake-llm", listener, move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone())
                    .route("/v1/chat/completions", web::post().to(completions))
                    .route("/v1/models", web::get().to(models))
                    .route("/v1/audio/transcriptions", web::post().to(transcriptions))
                    .default_service(web::to(not_found));
            })
            .expect("the fake LLM server listens");
        FakeLlm {
            shared,
            server: Arc::new(server),
        }
    }

    /// The base URL for `HERMES_AGENT_URL`: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stops the server, dropping open connections.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Every chat-completions request body received (valid JSON only), in order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().requests.clone()
    }

    /// When each chat-completions request arrived (its body read, before any delay or hold), in
    /// order: the instant the agent asked, for benchmarks timing a turn's start.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.shared.lock().arrivals.clone()
    }

    /// Waits until at least `n` requests arrived or `timeout` passes; returns them all.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= n || Instant::now() >= deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The most requests answered at once whose last user message starts with the same word
    /// (tests start each message with a word naming its conversation).
    pub fn most_at_once(&self) -> usize {
        self.shared.lock().most_at_once
    }

    /// Answers `text` from now on instead of echoing the user.
    pub fn set_reply(&self, text: &str) {
        self.shared.lock().reply = Some(text.to_string());
    }

    /// Waits `delay` before answering each request from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Holds every request, those already waiting included, until [`FakeLlm::release`]: an
    /// agent that is stuck.
    pub fn hold(&self) {
        self.shared.lock().held = true;
    }

    /// Lets held requests (and later ones) be answered.
    pub fn release(&self) {
        self.shared.lock().held = false;
    }

    /// Answers the next `n` requests with 500 and an OpenAI-style `server_error`.
    pub fn fail_next(&self, n: usize) {
        self.shared.lock().failures = n;
    }

    /// Requires `Authorization: Bearer <key>` from now on; other requests get 401.
    pub fn require_key(&self, key: &str) {
        self.shared.lock().key = Some(key.to_string());
    }
}

/// How streamed answers are paced, broken and held, and what each one did.
#[derive(Default)]
struct Streaming {
    pace: Duration,
    break_after: Option<usize>,
    hold_after: Option<usize>,
    answers: Vec<StreamedAnswer>,
}

/// One answer streamed as server-sent events.
#[derive(Clone, Debug)]
pub struct StreamedAnswer {
    /// The last user message of the request (tests name each turn in it).
    pub prompt: String,
    /// When the answer started (its headers were handed to the connection).
    pub started: Instant,
    /// When its first piece of text was handed to the connection.
    pub first_piece: Option<Instant>,
    /// The pieces of text written so far.
    pub pieces: usize,
    /// How it ended; `None` while it is being written.
    pub end: Option<StreamEnd>,
}

/// How a streamed answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every piece, the `finish_reason` and `[DONE]` were written.
    Finished,
    /// The connection was closed mid-way, as [`FakeLlm::break_stream_after`] asked.
    Broken,
    /// The client went away before the end.
    Abandoned,
}

/// Streaming: pace, faults and what was streamed.
impl FakeLlm {
    /// Waits `pace` between two pieces of every streamed answer from now on.
    pub fn set_stream_pace(&self, pace: Duration) {
        self.shared.lock().streaming.pace = pace;
    }

    /// Streamed answers from now on stop after `pieces` pieces of text: the connection is
    /// closed with neither a `finish_reason` nor `[DONE]`, as when a server dies mid-answer.
    pub fn break_stream_after(&self, pieces: usize) {
        self.shared.lock().streaming.break_after = Some(pieces);
    }

    /// Streamed answers are written whole again.
    pub fn mend_streams(&self) {
        self.shared.lock().streaming.break_after = None;
    }

    /// Streamed answers, those being written included, pause after `pieces` pieces of text
    /// until [`FakeLlm::release_streams`]: a model that stalls mid-answer.
    pub fn hold_stream_after(&self, pieces: usize) {
        self.shared.lock().streaming.hold_after = Some(pieces);
    }

    /// Lets held streamed answers (and later ones) go on.
    pub fn release_streams(&self) {
        self.shared.lock().streaming.hold_after = None;
    }

    /// Every streamed answer, in the order they started.
    pub fn streamed(&self) -> Vec<StreamedAnswer> {
        self.shared.lock().streaming.answers.clone()
    }

    /// When the first piece of text of each streamed answer was written, in the order the
    /// answers started (answers that wrote none are left out).
    pub fn first_token_times(&self) -> Vec<Instant> {
        let state = self.shared.lock();
        state
            .streaming
            .answers
            .iter()
            .filter_map(|a| a.first_piece)
            .collect()
    }

    /// Waits until `done` holds for the streamed answers or `timeout` passes; returns them.
    pub fn wait_for_streamed(
        &self,
        timeout: Duration,
        done: impl Fn(&[StreamedAnswer]) -> bool,
    ) -> Vec<StreamedAnswer> {
        let deadline = Instant::now() + timeout;
        loop {
            let answers = self.streamed();
            if done(&answers) || Instant::now() >= deadline {
                return answers;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl std::fmt::Debug for FakeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLlm")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

/// An OpenAI-style error answer.
fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> HttpResponse {
    error_on(status, kind, code, None, message)
}

/// An OpenAI-style error answer that names the parameter at fault.
fn error_on(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code,
        }
    }))
}

/// OpenAI's 500, when [`FakeLlm::fail_next`] left failures to give; takes one.
fn take_failure(state: &mut State) -> Option<HttpResponse> {
    (state.failures > 0).then(|| {
        state.failures -= 1;
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        )
    })
}

/// OpenAI's 401 when a key is required ([`FakeLlm::require_key`]) and the request's
/// `Authorization: Bearer` is missing or another.
fn key_refusal(req: &HttpRequest, key: Option<&str>) -> Option<HttpResponse> {
    let key = key?;
    let given = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(key) {
        return None;
    }
    let message = match given {
        Some(_) => "Incorrect API key provided.",
        None => {
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        }
    };
    Some(error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        Some("invalid_api_key"),
        message,
    ))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    let message = format!("Invalid URL ({} {})", req.method(), req.path());
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        &message,
    )
}

async fn models() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": [{"id": DEFAULT_MODEL, "object": "model", "created": 0, "owned_by": "hermes-tests"}],
    }))
}

async fn completions(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let arrived = Instant::now();
    let parsed = serde_json::from_slice::<Value>(&body);
    let _in_flight = parsed.as_ref().ok().map(|value| {
        let messages = value.get("messages").and_then(Value::as_array);
        let text = messages.map(|m| last_user_text(m)).unwrap_or_default();
        let first = text.split_whitespace().next().unwrap_or_default();
        InFlight::start(&shared, first.to_string())
    });
    let (delay, key) = {
        let mut state = shared.lock();
        if let Ok(value) = &parsed {
            state.requests.push(value.clone());
        }
        state.headers.push(Headers::of(&req));
        state.arrivals.push(arrived);
        (state.delay, state.key.clone())
    };
    if !delay.is_zero() {
        actix_rt::time::sleep(delay).await;
    }
    while shared.lock().held {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(refusal) = key_refusal(&req, key.as_deref()) {
        return refusal;
    }
    if let Some(refusal) = refuse_session(&shared, &req) {
        return refusal;
    }
    let request = match parsed {
        Ok(value) => value,
        Err(err) => {
            let message = format!("We could not parse the JSON body of your request: {err}");
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                &message,
            );
        }
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "'messages' is a required property",
        );
    };
    let (reply, answered) = {
        let mut state = shared.lock();
        if let Some(failure) = take_failure(&mut state) {
            return failure;
        }
        state.answered += 1;
        (state.reply.clone(), state.answered)
    };
    let content = reply.unwrap_or_else(|| format!("You said: {}", last_user_text(messages)));
    let prompt_tokens: usize = messages.iter().map(|m| words(&text_of(m))).sum();
    let completion_tokens = words(&content);
    let answer = Completion {
        id: format!("chatcmpl-fake{answered:06}"),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model: request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_MODEL)
            .to_string(),
        usage: json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }),
        content,
    };
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
        return stream(&shared, answer, last_user_text(messages), include_usage);
    }
    HttpResponse::Ok().json(json!({
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": answer.usage,
        "system_fingerprint": null,
    }))
}

/// A reply about to be given, whole or streamed.
struct Completion {
    id: String,
    created: u64,
    model: String,
    content: String,
    usage: Value,
}

impl Completion {
    /// One `chat.completion.chunk` event with `choices[0]` made of `delta` and `finish_reason`.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> web::Bytes {
        let choices = json!([{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }]);
        self.event(choices, Value::Null)
    }

    /// A chunk event with these `choices` and `usage`.
    fn event(&self, choices: Value, usage: Value) -> web::Bytes {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": choices,
            "usage": usage,
        });
        web::Bytes::from(format!("data: {chunk}\n\n"))
    }
}

/// Answers with `answer` streamed: a task writes the events, paced, into the response's body.
fn stream(
    shared: &web::Data<Shared>,
    answer: Completion,
    prompt: String,
    include_usage: bool,
) -> HttpResponse {
    let index = {
        let mut state = shared.lock();
        state.streaming.answers.push(StreamedAnswer {
            prompt,
            started: Instant::now(),
            first_piece: None,
            pieces: 0,
            end: None,
        });
        state.streaming.answers.len() - 1
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = shared.clone();
    actix_rt::spawn(async move {
        let end = write_stream(&shared, &answer, index, include_usage, &tx).await;
        shared.lock().streaming.answers[index].end = Some(end);
        if end == StreamEnd::Broken {
            // An error from the body makes the server drop the connection without the last
            // chunk of the chunked encoding: the client sees the answer cut off.
            let _ = tx.send(Err(io::Error::other("the fake LLM broke the stream")));
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(EventStream { rx, cut: None })
}

/// Writes the events of `answer` (the `index`th streamed answer) to `tx`; says how it ended.
async fn write_stream(
    shared: &Shared,
    answer: &Completion,
    index: usize,
    include_usage: bool,
    tx: &Events,
) -> StreamEnd {
    let send = |bytes: web::Bytes| tx.send(Ok(bytes)).is_ok();
    let role = json!({"role": "assistant", "content": "", "refusal": null});
    if !send(answer.chunk(role, None)) {
        return StreamEnd::Abandoned;
    }
    for (n, piece) in answer
        .content
        .split_inclusive(char::is_whitespace)
        .enumerate()
    {
        let (pace, broken) = {
            let state = shared.lock();
            let broken = state.streaming.break_after.is_some_and(|after| n >= after);
            (state.streaming.pace, broken)
        };
        if broken {
            return StreamEnd::Broken;
        }
        if n > 0 && !pace.is_zero() {
            actix_rt::time::sleep(pace).await;
        }
        while shared
            .lock()
            .streaming
            .hold_after
            .is_some_and(|after| n >= after)
        {
            if tx.is_closed() {
                return StreamEnd::Abandoned;
            }
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        if !send(answer.chunk(json!({"content": piece}), None)) {
            return StreamEnd::Abandoned;
        }
        let mut state = shared.lock();
        let written = &mut state.streaming.answers[index];
        written.pieces = n + 1;
        written.first_piece.get_or_insert_with(Instant::now);
    }
    let mut events = vec![answer.chunk(json!({}), Some("stop"))];
    if include_usage {
        events.push(answer.event(json!([]), answer.usage.clone()));
    }
    events.push(web::Bytes::from_static(b"data: [DONE]\n\n"));
    if events.into_iter().all(send) {
        StreamEnd::Finished
    } else {
        StreamEnd::Abandoned
    }
}

/// What a streamed answer's writer hands to its body: events, or an error that cuts it off.
type Events = tokio::sync::mpsc::UnboundedSender<io::Result<web::Bytes>>;

/// The body of a streamed answer: what its writer task sends, until the task ends.
///
/// A channel from a task rather than `HttpResponse::streaming`: the writer is plain async code
/// (pace, hold, break), and the crate needs no stream combinators for it.
struct EventStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<io::Result<web::Bytes>>,
    /// The error that cuts the answer off, kept for one turn so that what came before it is
    /// written out first (the server drops the connection, unwritten data included, on an error).
    cut: Option<io::Error>,
}

impl MessageBody for EventStream {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, io::Error>>> {
        let this = self.get_mut();
        if let Some(cut) = this.cut.take() {
            return Poll::Ready(Some(Err(cut)));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Err(cut))) => {
                this.cut = Some(cut);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }
}

// Headers and refused sessions: what the `hermes` backend and Hermes Agent
// (whose model this fake also plays) need.

/// The headers of one request.
#[derive(Clone, Debug, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    fn of(req: &HttpRequest) -> Headers {
        Headers(
            req.headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_ascii_lowercase(), value)
                })
                .collect(),
        )
    }

    /// The value of the header `name` (any case), if it was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FakeLlm {
    /// The headers of every chat-completions request received, in order.
    pub fn headers(&self) -> Vec<Headers> {
        self.shared.lock().headers.clone()
    }

    /// Answers requests that name a session (`X-Hermes-Session-Id` or `-Key`) as Hermes
    /// Agent's API server does when it has no `API_SERVER_KEY`: 403.
    pub fn refuse_sessions(&self) {
        self.shared.lock().refuse_sessions = true;
    }
}

/// Hermes Agent's 403 to a session header, when asked to refuse them.
fn refuse_session(shared: &Shared, req: &HttpRequest) -> Option<HttpResponse> {
    let names_one = ["X-Hermes-Session-Id", "X-Hermes-Session-Key"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    (names_one && shared.lock().refuse_sessions).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            None,
            "Session continuation requires API key authentication. Configure API_SERVER_KEY to enable this feature.",
        )
    })
}

// Transcriptions: `POST /v1/audio/transcriptions` as OpenAI's speech-to-text answers it, for
// voice notes (`HERMES_STT_URL` is the fake's `base_url`).

/// OpenAI's limit on an upload to the audio endpoints: 25 MiB.
pub const MAX_AUDIO_BYTES: usize = 25 * 1024 * 1024;

/// The file extensions OpenAI transcribes; it judges a file by its name.
const AUDIO_FORMATS: [&str; 10] = [
    "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
];

/// The `response_format`s OpenAI knows, as its error lists them.
const RESPONSE_FORMATS: [&str; 5] = ["json", "text", "srt", "verbose_json", "vtt"];

/// How many bytes of audio make a second, for the `duration` of answers: 16 kHz 16-bit mono
/// PCM, what voice notes are usually converted to.
const AUDIO_BYTES_PER_SECOND: f64 = 32_000.0;

/// One transcription request as the fake read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TranscriptionRequest {
    /// The `model` field, if sent.
    pub model: Option<String>,
    /// The filename of the `file` part, if it had one.
    pub filename: Option<String>,
    /// The content type of the `file` part, if it had one.
    pub content_type: Option<String>,
    /// How many bytes of audio the `file` part held.
    pub size: usize,
    /// Whether a `file` part was sent at all.
    pub has_file: bool,
    /// The other fields (`language`, `prompt`, `response_format`, `temperature`, …) by name.
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Transcriptions: what the fake answers and what it was asked.
impl FakeLlm {
    /// Answers `text` as the transcript of exactly these audio bytes from now on. Other audio
    /// is transcribed as [`default_transcript`] says.
    pub fn set_transcript(&self, audio: &[u8], text: &str) {
        self.shared
            .lock()
            .transcripts
            .insert(audio.to_vec(), text.to_string());
    }

    /// Every transcription request whose form was read whole (those answered with a 400
    /// included, those over [`MAX_AUDIO_BYTES`] not), in order.
    pub fn transcriptions(&self) -> Vec<TranscriptionRequest> {
        self.shared.lock().transcriptions.clone()
    }
}

/// The transcript of audio no test set one for: `transcript of <filename> (<n> bytes)`, so that
/// a black-box test can predict it from the file it sends.
pub fn default_transcript(filename: &str, size: usize) -> String {
    format!("transcript of {filename} ({size} bytes)")
}

async fn transcriptions(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let key = shared.lock().key.clone();
    if let Some(refusal) = key_refusal(&req, key.as_deref()) {
        return refusal;
    }
    let (request, audio) = match read_form(&req, payload).await {
        Ok(read) => read,
        Err(refusal) => return refusal,
    };
    shared.lock().transcriptions.push(request.clone());
    if let Some(refusal) = invalid_transcription(&request) {
        return refusal;
    }
    let transcript = {
        let mut state = shared.lock();
        if let Some(failure) = take_failure(&mut state) {
            return failure;
        }
        state.transcripts.get(&audio).cloned()
    };
    let filename = request.filename.as_deref().unwrap_or_default();
    let text = transcript.unwrap_or_else(|| default_transcript(filename, audio.len()));
    transcription_answer(&request, &text)
}

/// Reads the multipart form: the `file` part's bytes and every other field as text. Answers
/// OpenAI's 400 to a body that is not a form and its 413 once the audio passes
/// [`MAX_AUDIO_BYTES`].
async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(TranscriptionRequest, Vec<u8>), HttpResponse> {
    use futures_util::StreamExt;

    let malformed = |_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "Could not parse multipart form",
        )
    };
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut request = TranscriptionRequest::default();
    let mut audio = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(malformed)?;
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            request.has_file = true;
            request.filename = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(str::to_string);
            request.content_type = field.content_type().map(ToString::to_string);
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            value.extend_from_slice(&chunk.map_err(malformed)?);
            if value.len() > MAX_AUDIO_BYTES {
                let message = format!(
                    "Maximum content size limit ({MAX_AUDIO_BYTES}) exceeded ({} bytes read)",
                    value.len()
                );
                return Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "server_error",
                    None,
                    &message,
                ));
            }
        }
        match name.as_str() {
            "file" => audio = value,
            "model" => request.model = Some(String::from_utf8_lossy(&value).into_owned()),
            _ => {
                let value = String::from_utf8_lossy(&value).into_owned();
                request.fields.insert(name, value);
            }
        }
    }
    request.size = audio.len();
    Ok((request, audio))
}

/// OpenAI's 400 to a form it cannot transcribe: a required field missing, an unknown
/// `response_format`, a file whose name is not of an audio format, or empty audio.
fn invalid_transcription(request: &TranscriptionRequest) -> Option<HttpResponse> {
    let bad = |param: Option<&str>, code: Option<&str>, message: &str| {
        Some(error_on(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            param,
            message,
        ))
    };
    let missing: Vec<&str> = [
        ("file", request.has_file),
        ("model", request.model.is_some()),
    ]
    .iter()
    .filter(|(_, sent)| !sent)
    .map(|(name, _)| *name)
    .collect();
    if !missing.is_empty() {
        let errors = if missing.len() == 1 {
            "error"
        } else {
            "errors"
        };
        let mut message = format!("{} validation {errors} for Request", missing.len());
        for name in missing {
            message.push_str(&format!(
                "\nbody -> {name}\n  field required (type=value_error.missing)"
            ));
        }
        return bad(None, None, &message);
    }
    let format = response_format(request);
    if !RESPONSE_FORMATS.contains(&format) {
        let formats = python_list(&RESPONSE_FORMATS);
        let message = format!("'{format}' is not one of {formats} - 'response_format'");
        return bad(None, None, &message);
    }
    let extension = request
        .filename
        .as_deref()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, extension)| extension.to_ascii_lowercase());
    if !extension.is_some_and(|e| AUDIO_FORMATS.contains(&e.as_str())) {
        let formats = python_list(&AUDIO_FORMATS);
        let message = format!("Invalid file format. Supported formats: {formats}");
        return bad(None, None, &message);
    }
    (request.size == 0).then(|| {
        error_on(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("audio_too_short"),
            Some("file"),
            "Audio file is too short. Minimum audio length is 0.1 seconds.",
        )
    })
}

/// `['a', 'b']`, as OpenAI's (Python) messages list names.
fn python_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("'{item}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The `response_format` asked for; `json` when none is.
fn response_format(request: &TranscriptionRequest) -> &str {
    request
        .fields
        .get("response_format")
        .map_or("json", String::as_str)
}

/// The transcript in the `response_format` asked for: `{"text"}` (`json`), the bare text and a
/// line end (`text`), one segment with the `language` (as sent, `english` by default) and a
/// `duration` (`verbose_json`), or one SubRip or WebVTT cue (`srt`, `vtt`).
fn transcription_answer(request: &TranscriptionRequest, text: &str) -> HttpResponse {
    let duration = (request.size as f64 / AUDIO_BYTES_PER_SECOND * 100.0).round() / 100.0;
    let plain = |body: String| {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(body)
    };
    let seconds = json!({"type": "duration", "seconds": duration.ceil() as u64});
    match response_format(request) {
        "text" => plain(format!("{text}\n")),
        "srt" => plain(format!(
            "1\n{} --> {}\n{text}\n\n",
            timestamp(0.0, ','),
            timestamp(duration, ',')
        )),
        "vtt" => plain(format!(
            "WEBVTT\n\n{} --> {}\n{text}\n\n",
            timestamp(0.0, '.'),
            timestamp(duration, '.')
        )),
        "verbose_json" => {
            let temperature = request
                .fields
                .get("temperature")
                .and_then(|t| t.parse::<f64>().ok())
                .unwrap_or(0.0);
            HttpResponse::Ok().json(json!({
                "task": "transcribe",
                "language": request.fields.get("language").map_or("english", String::as_str),
                "duration": duration,
                "text": text,
                "segments": [{
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": duration,
                    "text": text,
                    "tokens": [],
                    "temperature": temperature,
                    "avg_logprob": -0.25,
                    "compression_ratio": 1.0,
                    "no_speech_prob": 0.01,
                }],
                "usage": seconds,
            }))
        }
        _ => HttpResponse::Ok().json(json!({"text": text, "usage": seconds})),
    }
}

/// `HH:MM:SS<sep>mmm`, as subtitles write a time.
fn timestamp(seconds: f64, separator: char) -> String {
    let millis = (seconds * 1000.0).round() as u64;
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    format!(
        "{hours:02}:{minutes:02}:{:02}{separator}{:03}",
        rest / 1000,
        rest % 1000
    )
}

/// The text of the last `user` message.
fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(text_of)
        .unwrap_or_default()
}

/// A message's text: `content` as a string, or its `text` parts joined.
fn text_of(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A rough token count.
fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    fn post(llm: &FakeLlm, body: &Value, auth: Option<&str>) -> (u16, Value) {
        let body = body.to_string();
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        let response = http::request(
            llm.addr(),
            "POST",
            "/v1/chat/completions",
            &headers,
            body.as_bytes(),
        )
        .expect("the fake LLM answers");
        let json = serde_json::from_str(&response.body).expect("a JSON answer");
        (response.status, json)
    }

    fn chat(text: &str) -> Value {
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "You said: first"},
                {"role": "user", "content": text},
            ],
        })
    }

    #[test]
    fn echoes_the_last_user_message() {
        let llm = FakeLlm::start();
        assert!(llm.base_url().starts_with("http://127.0.0.1:"));
        assert!(llm.base_url().ends_with("/v1"));
        let (status, answer) = post(&llm, &chat("hello"), None);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["object"], "chat.completion");
        assert_eq!(answer["model"], "test-model");
        assert!(
            answer["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("chatcmpl-"))
        );
        assert!(
            answer["created"]
                .as_u64()
                .is_some_and(|t| t > 1_600_000_000)
        );
        let choice = &answer["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], "stop");
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["message"]["content"], "You said: hello");
        assert!(answer["usage"]["total_tokens"].as_u64().is_some());

        let parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "in parts"}]}]});
        let (_, answer) = post(&llm, &parts, None);
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            "You said: in parts"
        );
        assert_eq!(answer["model"], DEFAULT_MODEL);

        let requests = llm.wait_for_requests(2, Duration::from_secs(1));
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0], chat("hello"));
    }

    #[test]
    fn fixed_reply_failures_and_delay() {
        let llm = FakeLlm::start();
        llm.set_reply("fixed answer");
        llm.fail_next(2);
        for _ in 0..2 {
            let (status, answer) = post(&llm, &chat("x"), None);
            assert_eq!(status, 500);
            assert_eq!(answer["error"]["type"], "server_error");
            assert!(answer["error"]["message"].as_str().is_some());
        }
        let (status, answer) = post(&llm, &chat("x"), None);
        assert_eq!(status, 200);
        assert_eq!(answer["choices"][0]["message"]["content"], "fixed answer");

        llm.set_delay(Duration::from_millis(300));
        let started = Instant::now();
        let (status, _) = post(&llm, &chat("slow"), None);
        assert_eq!(status, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(llm.requests().len(), 4);
    }

    #[test]
    fn requires_the_key_once_asked() {
        let llm = FakeLlm::start();
        assert_eq!(post(&llm, &chat("open"), None).0, 200);
        llm.require_key("sk-test");
        let (status, answer) = post(&llm, &chat("no key"), None);
        assert_eq!(status, 401);
        assert_eq!(answer["error"]["code"], "invalid_api_key");
        assert_eq!(post(&llm, &chat("bad"), Some("Bearer sk-wrong")).0, 401);
        assert_eq!(post(&llm, &chat("good"), Some("Bearer sk-test")).0, 200);
    }

    #[test]
    fn records_headers_streams_and_refuses_sessions_as_asked() {
        let llm = FakeLlm::start();
        let body = json!({"stream": true, "messages": [{"role": "user", "content": "two words"}]});
        let session = [
            ("Content-Type", "application/json"),
            ("X-Hermes-Session-Id", "s-1"),
        ];
        let streamed = http::request(
            llm.addr(),
            "POST",
            "/v1/chat/completions",
            &session,
            body.to_string().as_bytes(),
        )
        .expect("an answer");
        assert_eq!(streamed.status, 200);
        let content_type = streamed.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let data: Vec<&str> = streamed
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(data.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).expect("a JSON chunk"))
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "You said: two words");
        assert!(chunks.len() > 3, "a chunk per word: {chunks:?}");
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(llm.headers()[0].get("x-hermes-session-id"), Some("s-1"));

        llm.refuse_sessions();
        let (status, answer) = post(&llm, &chat("no session header"), None);
        assert_eq!(status, 200, "{answer}");
        let refused = http::request(
            llm.addr(),
            "POST",
            "/v1/chat/completions",
            &session,
            chat("x").to_string().as_bytes(),
        )
        .expect("an answer");
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("API_SERVER_KEY"), "{}", refused.body);
        assert_eq!(llm.headers().len(), 3);
    }

    #[test]
    fn rejects_malformed_requests() {
        let llm = FakeLlm::start();
        let response = http::request(
            llm.addr(),
            "POST",
            "/v1/chat/completions",
            &[("Content-Type", "application/json")],
            b"{not json",
        )
        .expect("an answer");
        assert_eq!(response.status, 400);
        assert_eq!(post(&llm, &json!({"model": "m"}), None).0, 400);
        let missing = http::request(llm.addr(), "GET", "/v1/nothing", &[], b"").expect("an answer");
        assert_eq!(missing.status, 404);
        let models = http::request(llm.addr(), "GET", "/v1/models", &[], b"").expect("an answer");
        assert_eq!(models.status, 200);
        llm.stop();
    }

    fn streaming(text: &str) -> Value {
        let mut body = chat(text);
        body["stream"] = json!(true);
        body
    }

    /// Posts `body` and returns the raw answer, head and (chunked) body as they came.
    fn raw_post(llm: &FakeLlm, body: &Value) -> String {
        use std::io::{Read, Write};
        let body = body.to_string();
        let mut stream = std::net::TcpStream::connect(llm.addr()).expect("connecting");
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("writing");
        stream.write_all(body.as_bytes()).expect("writing");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        String::from_utf8(raw).expect("UTF-8")
    }

    /// The data of each event of a streamed body (one line each; chunk sizes, when the body
    /// is still chunked, are lines of their own).
    fn data_of(body: &str) -> Vec<String> {
        body.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(str::to_string)
            .collect()
    }

    /// The text of the content deltas of `events`.
    fn streamed_text(events: &[String]) -> String {
        events
            .iter()
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .filter_map(|chunk| {
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }

    #[test]
    fn streams_the_same_reply_as_openai_chunks() {
        let llm = FakeLlm::start();
        let body = streaming("hello there");
        let response = http::request(
            llm.addr(),
            "POST",
            "/v1/chat/completions",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("the fake LLM answers");
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("text/event-stream; charset=utf-8")
        );
        let events = data_of(&response.body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|data| serde_json::from_str(data).expect("a JSON chunk"))
            .collect();
        // The role, four words, the finish.
        assert_eq!(chunks.len(), 6, "{events:?}");
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));
        assert!(chunks.iter().all(|c| c["model"] == "test-model"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let pieces: Vec<&str> = chunks[1..5]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(pieces, ["You ", "said: ", "hello ", "there"]);
        assert!(
            chunks[..5]
                .iter()
                .all(|c| c["choices"][0]["finish_reason"].is_null())
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));

        // The same reply as a whole answer gives; the usage when asked for.
        let (_, whole) = post(&llm, &chat("hello there"), None);
        assert_eq!(
            streamed_text(&events),
            whole["choices"][0]["message"]["content"]
        );
        llm.set_reply("fixed");
        let mut body = streaming("x");
        body["stream_options"] = json!({"include_usage": true});
        let events = data_of(&raw_post(&llm, &body));
        let usage: Value = serde_json::from_str(&events[events.len() - 2]).expect("JSON");
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], 1);

        let streamed = llm.streamed();
        assert_eq!(streamed.len(), 2);
        assert_eq!(streamed[0].prompt, "hello there");
        assert_eq!(streamed[0].pieces, 4);
        assert_eq!(streamed[0].end, Some(StreamEnd::Finished));
        let firsts = llm.first_token_times();
        assert_eq!(firsts.len(), 2);
        assert!(firsts[0] >= streamed[0].started && firsts[1] > firsts[0]);
    }

    #[test]
    fn a_stream_is_paced_broken_or_held_as_asked() {
        let llm = FakeLlm::start();
        llm.set_reply("one two three four");
        llm.set_stream_pace(Duration::from_millis(100));
        let started = Instant::now();
        let answer = raw_post(&llm, &streaming("paced"));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(streamed_text(&data_of(&answer)), "one two three four");
        let paced = &llm.streamed()[0];
        let first = paced.first_piece.expect("a first piece");
        assert!(
            first - paced.started < Duration::from_millis(100),
            "{paced:?}"
        );

        // Broken: two pieces, then the connection closes without the finish, [DONE] or the
        // chunked encoding's last chunk.
        llm.set_stream_pace(Duration::ZERO);
        llm.break_stream_after(2);
        let answer = raw_post(&llm, &streaming("broken"));
        let events = data_of(&answer);
        assert_eq!(streamed_text(&events), "one two ");
        assert!(!answer.contains("[DONE]"), "{answer}");
        assert!(!answer.contains("finish_reason\":\"stop"), "{answer}");
        assert!(!answer.ends_with("0\r\n\r\n"), "{answer}");
        assert_eq!(llm.streamed()[1].end, Some(StreamEnd::Broken));
        llm.mend_streams();

        // Held after one piece until released.
        llm.hold_stream_after(1);
        let reader = std::thread::spawn({
            let llm = llm.clone();
            move || raw_post(&llm, &streaming("held"))
        });
        let seen = llm.wait_for_streamed(Duration::from_secs(10), |a| {
            a.get(2).is_some_and(|a| a.pieces == 1)
        });
        assert_eq!(seen[2].pieces, 1);
        // Held: the stream has not ended, and the reader still waits for the rest.
        assert_eq!(llm.streamed()[2].end, None);
        assert!(!reader.is_finished(), "the answer waits while held");
        llm.release_streams();
        let answer = reader.join().expect("the reader");
        assert_eq!(streamed_text(&data_of(&answer)), "one two three four");
        assert_eq!(llm.streamed()[2].end, Some(StreamEnd::Finished));
        assert_eq!(llm.first_token_times().len(), 3);
    }

    #[test]
    fn a_stream_fails_like_a_whole_answer_before_it_starts() {
        let llm = FakeLlm::start();
        llm.fail_next(1);
        let (status, answer) = post(&llm, &streaming("x"), None);
        assert_eq!(status, 500);
        assert_eq!(answer["error"]["type"], "server_error");
        assert!(llm.streamed().is_empty());
    }

    /// One part of a multipart form: a file when it has a filename and content type.
    struct Part<'a> {
        name: &'a str,
        file: Option<(&'a str, &'a str)>,
        body: &'a [u8],
    }

    fn field<'a>(name: &'a str, value: &'a str) -> Part<'a> {
        Part {
            name,
            file: None,
            body: value.as_bytes(),
        }
    }

    fn audio<'a>(filename: &'a str, body: &'a [u8]) -> Part<'a> {
        Part {
            name: "file",
            file: Some((filename, "audio/ogg")),
            body,
        }
    }

    /// Posts `parts` as `multipart/form-data` to the transcriptions route.
    fn transcribe(llm: &FakeLlm, parts: &[Part], auth: Option<&str>) -> http::Response {
        let boundary = "hermes-test-boundary";
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
            if let Some((filename, content_type)) = part.file {
                disposition.push_str(&format!(
                    "; filename=\"{filename}\"\r\nContent-Type: {content_type}"
                ));
            }
            body.extend_from_slice(format!("{disposition}\r\n\r\n").as_bytes());
            body.extend_from_slice(part.body);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let mut headers = vec![("Content-Type", content_type.as_str())];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        http::request(
            llm.addr(),
            "POST",
            "/v1/audio/transcriptions",
            &headers,
            &body,
        )
        .expect("the fake LLM answers")
    }

    fn json_of(response: &http::Response) -> Value {
        serde_json::from_str(&response.body).expect("a JSON answer")
    }

    #[test]
    fn transcribes_audio_in_each_response_format() {
        let llm = FakeLlm::start();
        let voice = vec![7u8; 64_000];
        let response = transcribe(
            &llm,
            &[audio("note.ogg", &voice), field("model", "whisper-1")],
            None,
        );
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            json_of(&response)["text"],
            default_transcript("note.ogg", 64_000)
        );
        assert_eq!(
            default_transcript("note.ogg", 64_000),
            "transcript of note.ogg (64000 bytes)"
        );

        llm.set_transcript(&voice, "call me back at noon");
        let as_text = |format: &str| {
            let parts = [
                field("model", "whisper-1"),
                audio("voice.OGG", &voice),
                field("response_format", format),
                field("language", "fr"),
                field("temperature", "0.2"),
            ];
            transcribe(&llm, &parts, None)
        };
        let answer = json_of(&as_text("json"));
        assert_eq!(answer["text"], "call me back at noon");
        let text = as_text("text");
        assert_eq!(text.status, 200);
        assert_eq!(
            text.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(text.body, "call me back at noon\n");
        let verbose = json_of(&as_text("verbose_json"));
        assert_eq!(verbose["task"], "transcribe");
        assert_eq!(verbose["language"], "fr");
        assert_eq!(verbose["duration"], 2.0);
        assert_eq!(verbose["text"], "call me back at noon");
        assert_eq!(verbose["segments"][0]["text"], "call me back at noon");
        assert_eq!(verbose["segments"][0]["end"], 2.0);
        assert_eq!(verbose["segments"][0]["temperature"], 0.2);
        assert_eq!(
            as_text("srt").body,
            "1\n00:00:00,000 --> 00:00:02,000\ncall me back at noon\n\n"
        );
        assert_eq!(
            as_text("vtt").body,
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\ncall me back at noon\n\n"
        );

        let recorded = llm.transcriptions();
        assert_eq!(recorded.len(), 6);
        assert_eq!(recorded[0].model.as_deref(), Some("whisper-1"));
        assert_eq!(recorded[0].filename.as_deref(), Some("note.ogg"));
        assert_eq!(recorded[0].content_type.as_deref(), Some("audio/ogg"));
        assert_eq!(recorded[0].size, 64_000);
        assert!(recorded[0].fields.is_empty());
        let fields = &recorded[5].fields;
        assert_eq!(
            fields.get("response_format").map(String::as_str),
            Some("vtt")
        );
        assert_eq!(fields.get("language").map(String::as_str), Some("fr"));
        assert_eq!(fields.get("temperature").map(String::as_str), Some("0.2"));
        assert!(llm.requests().is_empty(), "no chat request was made");
    }

    #[test]
    fn refuses_transcriptions_as_openai_does() {
        let llm = FakeLlm::start();
        let voice = b"OggS voice";
        let refused = |parts: &[Part]| {
            let response = transcribe(&llm, parts, None);
            assert_eq!(response.status, 400, "{}", response.body);
            let answer = json_of(&response);
            assert_eq!(answer["error"]["type"], "invalid_request_error");
            answer["error"].clone()
        };
        let no_file = refused(&[field("model", "whisper-1")]);
        assert_eq!(
            no_file["message"],
            "1 validation error for Request\nbody -> file\n  field required (type=value_error.missing)"
        );
        let no_model = refused(&[audio("a.ogg", voice)]);
        assert!(
            no_model["message"]
                .as_str()
                .is_some_and(|m| m.contains("body -> model\n  field required")),
            "{no_model}"
        );
        let neither = refused(&[field("language", "en")]);
        assert!(
            neither["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("2 validation errors")),
            "{neither}"
        );
        let model = field("model", "whisper-1");
        let text_file = refused(&[audio("a.txt", voice), field("model", "whisper-1")]);
        assert_eq!(
            text_file["message"],
            "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
        );
        let empty = refused(&[audio("a.ogg", b""), field("model", "whisper-1")]);
        assert_eq!(empty["code"], "audio_too_short");
        assert_eq!(empty["param"], "file");
        let format = refused(&[
            audio("a.ogg", voice),
            model,
            field("response_format", "xml"),
        ]);
        assert_eq!(
            format["message"],
            "'xml' is not one of ['json', 'text', 'srt', 'verbose_json', 'vtt'] - 'response_format'"
        );
        assert_eq!(llm.transcriptions().len(), 6, "refused forms are recorded");

        let not_a_form = http::request(
            llm.addr(),
            "POST",
            "/v1/audio/transcriptions",
            &[("Content-Type", "application/json")],
            b"{\"model\": \"whisper-1\"}",
        )
        .expect("an answer");
        assert_eq!(not_a_form.status, 400, "{}", not_a_form.body);
        assert_eq!(
            json_of(&not_a_form)["error"]["message"],
            "Could not parse multipart form"
        );

        let huge = vec![0u8; MAX_AUDIO_BYTES + 1];
        let too_large = transcribe(
            &llm,
            &[field("model", "whisper-1"), audio("long.wav", &huge)],
            None,
        );
        assert_eq!(too_large.status, 413, "{}", too_large.body);
        let error = &json_of(&too_large)["error"];
        assert_eq!(error["type"], "server_error");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Maximum content size limit (26214400) exceeded (")),
            "{error}"
        );
        let just_fits = vec![0u8; MAX_AUDIO_BYTES];
        let fits = transcribe(
            &llm,
            &[field("model", "whisper-1"), audio("long.wav", &just_fits)],
            None,
        );
        assert_eq!(fits.status, 200, "{}", fits.body);
        assert_eq!(llm.transcriptions().len(), 7, "the 413 is not recorded");
    }

    #[test]
    fn transcriptions_require_the_key_and_fail_as_asked() {
        let llm = FakeLlm::start();
        let parts = [audio("a.m4a", b"voice"), field("model", "whisper-1")];
        llm.require_key("sk-stt");
        let no_key = transcribe(&llm, &parts, None);
        assert_eq!(no_key.status, 401);
        assert_eq!(json_of(&no_key)["error"]["code"], "invalid_api_key");
        assert_eq!(
            transcribe(&llm, &parts, Some("Bearer sk-other")).status,
            401
        );
        assert!(
            llm.transcriptions().is_empty(),
            "refused before the form is read"
        );

        llm.fail_next(1);
        let failed = transcribe(&llm, &parts, Some("Bearer sk-stt"));
        assert_eq!(failed.status, 500);
        assert_eq!(json_of(&failed)["error"]["type"], "server_error");
        let answered = transcribe(&llm, &parts, Some("Bearer sk-stt"));
        assert_eq!(answered.status, 200, "{}", answered.body);
        assert_eq!(json_of(&answered)["text"], "transcript of a.m4a (5 bytes)");
        assert_eq!(llm.transcriptions().len(), 2);
    }
}
