//! A fake OpenAI-compatible chat-completions server, for black-box tests of the `openai` agent.
//!
//! `POST /v1/chat/completions` records each request body and answers a `chat.completion` whose
//! content is `You said: <last user message>` unless a fixed reply is set. Tests can slow it down,
//! make it fail, or make it require an API key. It counts how many requests of one conversation
//! (the first word of the last user message) it answered at once. `GET /v1/models` lists one
//! model. With `"stream": true` the same answer comes as server-sent events. Every request's
//! headers are recorded.
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// The headers of every chat-completions request, in order ([`FakeLlm::headers`]).
    headers: Vec<Headers>,
    /// Whether session headers get Hermes Agent's 403 ([`FakeLlm::refuse_sessions`]).
    refuse_sessions: bool,
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

impl std::fmt::Debug for FakeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLlm")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

/// An OpenAI-style error answer.
fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": code,
        }
    }))
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
        (state.delay, state.key.clone())
    };
    if !delay.is_zero() {
        actix_rt::time::sleep(delay).await;
    }
    while shared.lock().held {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(key) = key {
        let given = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            let message = match given {
                Some(_) => "Incorrect API key provided.",
                None => {
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                }
            };
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
                message,
            );
        }
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
        if state.failures > 0 {
            state.failures -= 1;
            drop(state);
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                "The server had an error while processing your request. Sorry about that!",
            );
        }
        state.answered += 1;
        (state.reply.clone(), state.answered)
    };
    let content = reply.unwrap_or_else(|| format!("You said: {}", last_user_text(messages)));
    let prompt_tokens: usize = messages.iter().map(|m| words(&text_of(m))).sum();
    let completion_tokens = words(&content);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL);
    if request.get("stream") == Some(&Value::Bool(true)) {
        return streamed(
            &format!("chatcmpl-fake{answered:06}"),
            model,
            created,
            &content,
        );
    }
    HttpResponse::Ok().json(json!({
        "id": format!("chatcmpl-fake{answered:06}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": null,
    }))
}

// Headers, refused sessions and streamed answers: what the `hermes` backend and Hermes Agent
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

/// `content` as an OpenAI server streams it: a chunk per word, then one with the
/// `finish_reason`, then `[DONE]`.
fn streamed(id: &str, model: &str, created: u64, content: &str) -> HttpResponse {
    let chunk = |delta: Value, finish: Value| {
        let chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        format!("data: {chunk}\n\n")
    };
    let mut body = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    for piece in content.split_inclusive(' ') {
        body.push_str(&chunk(json!({"content": piece}), Value::Null));
    }
    body.push_str(&chunk(json!({}), json!("stop")));
    body.push_str("data: [DONE]\n\n");
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .body(body)
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
        assert_eq!(streamed.header("content-type"), Some("text/event-stream"));
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
}
