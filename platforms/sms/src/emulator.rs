//! A loopback emulator of the part of Twilio's REST API v2010 that the gateway uses.
//!
//! It serves `Messages.json`, `IncomingPhoneNumbers` and the account resource on `127.0.0.1`,
//! checks HTTP Basic credentials on every call and answers with Twilio's JSON shapes and error
//! codes. Tests script faults ([`Fault`]) and read back what was sent ([`Emulator::messages`]);
//! `hermes gateway --sandbox` uses it in place of Twilio. Other processes can read the accepted
//! messages from `GET /_emulator/messages` (and every attempt from `GET /_emulator/attempts`).
use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};

use crate::segments;

/// The API version every route lives under.
const API_VERSION: &str = "2010-04-01";
/// Twilio's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 1600;
/// How long [`Emulator::stop`] waits for the server thread to finish.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The emulated account and the number it owns.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The account SID (`AC…`), also the Basic auth user name.
    pub account_sid: String,
    /// The auth token, the Basic auth password.
    pub auth_token: String,
    /// The number the account owns, in E.164 form.
    pub phone_number: String,
    /// The owned number's initial SMS webhook URL.
    pub sms_url: Option<String>,
    /// The owned number's initial SMS webhook method, `POST` or `GET`.
    pub sms_method: String,
}

/// A message Twilio would have accepted (answered 201).
#[derive(Clone, Debug, Serialize)]
pub struct SentMessage {
    /// The message SID, `SM` and 32 hex digits.
    pub sid: String,
    /// The recipient.
    pub to: String,
    /// The sender number, when `From` was given.
    pub from: Option<String>,
    /// The Messaging Service, when `MessagingServiceSid` was given.
    pub messaging_service_sid: Option<String>,
    /// The text (empty for a media-only message).
    pub body: String,
    /// The `MediaUrl` values, in order.
    pub media_urls: Vec<String>,
    /// Billed segments.
    pub segments: u32,
    /// `GSM-7` or `UCS-2`.
    pub encoding: String,
}

/// One `Messages.json` POST as received, with what the emulator answered.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// The form parameters in wire order (empty when the body was not a form).
    pub params: Vec<(String, String)>,
    /// The `To` parameter.
    pub to: Option<String>,
    /// The `Body` parameter.
    pub body: Option<String>,
    /// The HTTP status answered; `None` when the emulator never answered ([`Fault::Hang`]).
    pub status: Option<u16>,
    /// The Twilio error code answered, if any.
    pub code: Option<i64>,
    /// The SID of the message created, when it was accepted.
    pub sid: Option<String>,
    /// When it arrived, counted from the start of the emulator.
    pub elapsed: Duration,
}

/// A scripted answer to the next `Messages.json` POST, in place of normal processing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with code 20429, and `Retry-After` in seconds when given.
    TooManyRequests {
        /// The `Retry-After` header value in seconds.
        retry_after: Option<u64>,
    },
    /// 500 with code 20500.
    ServerError,
    /// 503 with code 20503.
    ServiceUnavailable,
    /// A Twilio error body with the given HTTP status and code.
    Error {
        /// The HTTP status.
        status: u16,
        /// The Twilio error code.
        code: i64,
    },
    /// Read the request and never answer; nothing is sent.
    Hang,
    /// Process the request normally (the message is sent) but answer only after the delay.
    Delay(Duration),
}

/// Called with each accepted message.
type Callback = Arc<dyn Fn(&SentMessage) + Send + Sync>;

struct State {
    sms_url: Option<String>,
    sms_method: String,
    number_updated: String,
    messages: Vec<SentMessage>,
    attempts: Vec<Attempt>,
    faults: VecDeque<Fault>,
    opted_out: HashSet<String>,
    on_message: Option<Callback>,
}

struct Shared {
    account_sid: String,
    auth_token: String,
    phone_number: String,
    number_sid: String,
    created: String,
    started: Instant,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, attempt: Attempt) {
        self.lock().attempts.push(attempt);
    }

    fn attempt(&self, params: &[(String, String)]) -> Attempt {
        Attempt {
            params: params.to_vec(),
            to: param(params, "To").map(str::to_string),
            body: param(params, "Body").map(str::to_string),
            status: None,
            code: None,
            sid: None,
            elapsed: self.started.elapsed(),
        }
    }

    fn account_uri(&self) -> String {
        format!("/{API_VERSION}/Accounts/{}", self.account_sid)
    }
}

struct Server {
    handle: ServerHandle,
    addr: SocketAddr,
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Server {
    fn stop(&self) {
        let done = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(done) = done {
            // The stop command is sent when `stop` is called; its completion future is not needed.
            drop(self.handle.stop(false));
            let _ = done.recv_timeout(STOP_WAIT);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running emulator; clones share it, and it stops when the last clone is dropped.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    server: Arc<Server>,
}

impl Emulator {
    /// Starts serving on `127.0.0.1` (a free port) in a thread of its own; returns once listening.
    pub fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let created = rfc2822(SystemTime::now());
        let shared = Arc::new(Shared {
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            phone_number: config.phone_number,
            number_sid: random_sid("PN"),
            created: created.clone(),
            started: Instant::now(),
            state: Mutex::new(State {
                sms_url: config.sms_url.filter(|url| !url.is_empty()),
                sms_method: config.sms_method.to_ascii_uppercase(),
                number_updated: created,
                messages: Vec::new(),
                attempts: Vec::new(),
                faults: VecDeque::new(),
                opted_out: HashSet::new(),
                on_message: None,
            }),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<ServerHandle>>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("twilio-emulator".to_string())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .route("/_emulator/messages", web::get().to(control_messages))
                            .route("/_emulator/attempts", web::get().to(control_attempts))
                            .default_service(web::to(api))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener);
                    let server = match server {
                        Ok(server) => server.run(),
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(server.handle()));
                    let _ = server.await;
                });
                let _ = done_tx.send(());
            })?;
        let handle = ready_rx.recv().map_err(|_| {
            io::Error::other("the Twilio emulator thread exited before listening")
        })??;
        Ok(Emulator {
            shared,
            server: Arc::new(Server {
                handle,
                addr,
                done: Mutex::new(Some(done_rx)),
            }),
        })
    }

    /// The base URL to use in place of `https://api.twilio.com`: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Stops the server, dropping open connections; waits (a few seconds at most) for it to end.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// The account SID.
    pub fn account_sid(&self) -> String {
        self.shared.account_sid.clone()
    }

    /// The SID (`PN…`) of the owned number.
    pub fn number_sid(&self) -> String {
        self.shared.number_sid.clone()
    }

    /// Every accepted message, in order.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.shared.lock().messages.clone()
    }

    /// Every `Messages.json` POST received, in order, whatever the answer.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passes; returns them all.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Queues a scripted answer; each `Messages.json` POST that passes authentication takes one.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Marks a number as opted out: sending to it answers 400 with code 21610.
    pub fn opt_out(&self, number: &str) {
        self.shared
            .lock()
            .opted_out
            .insert(number.trim().to_string());
    }

    /// Opts a number back in.
    pub fn opt_in(&self, number: &str) {
        self.shared.lock().opted_out.remove(number.trim());
    }

    /// The owned number's current SMS webhook URL and method.
    pub fn incoming_number(&self) -> (Option<String>, String) {
        let state = self.shared.lock();
        (state.sms_url.clone(), state.sms_method.clone())
    }

    /// Sets the function called (on the server's thread) with each accepted message.
    pub fn set_on_message(&self, f: Box<dyn Fn(&SentMessage) + Send + Sync>) {
        self.shared.lock().on_message = Some(Arc::from(f));
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url())
            .field("account_sid", &self.shared.account_sid)
            .finish_non_exhaustive()
    }
}

async fn control_messages(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().messages)
}

async fn control_attempts(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().attempts)
}

/// The resources of the API, by path.
#[derive(Debug, PartialEq, Eq)]
enum Resource<'a> {
    Account,
    Messages,
    Numbers,
    Number(&'a str),
}

/// Splits `/2010-04-01/Accounts/...` into the path's account SID and the resource.
fn resource(path: &str) -> Option<(&str, Resource<'_>)> {
    let rest = path.strip_prefix("/2010-04-01/Accounts/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [account] => Some((account.strip_suffix(".json")?, Resource::Account)),
        [account, "Messages.json"] => Some((account, Resource::Messages)),
        [account, "IncomingPhoneNumbers.json"] => Some((account, Resource::Numbers)),
        [account, "IncomingPhoneNumbers", number] => {
            Some((account, Resource::Number(number.strip_suffix(".json")?)))
        }
        _ => None,
    }
}

async fn api(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let path = req.path().to_string();
    let route = resource(&path);
    let is_send = req.method() == actix_web::http::Method::POST
        && matches!(route, Some((_, Resource::Messages)));
    let params: Vec<(String, String)> = if req.method() == actix_web::http::Method::POST {
        serde_urlencoded::from_bytes(&body).unwrap_or_default()
    } else {
        Vec::new()
    };

    if path.starts_with("/2010-04-01/") && !authorized(req.headers(), &shared) {
        let response = unauthenticated();
        if is_send {
            let mut attempt = shared.attempt(&params);
            attempt.status = Some(401);
            attempt.code = Some(20003);
            shared.record(attempt);
        }
        return response;
    }
    let Some((_, resource)) = route.filter(|(account, _)| *account == shared.account_sid) else {
        if is_send {
            let mut attempt = shared.attempt(&params);
            attempt.status = Some(404);
            attempt.code = Some(20404);
            shared.record(attempt);
        }
        return not_found(&path);
    };

    let method = req.method().as_str();
    match (resource, method) {
        (Resource::Messages, "POST") => send(&shared, req.headers(), params).await,
        (Resource::Account, "GET") => HttpResponse::Ok().json(account_json(&shared)),
        (Resource::Numbers, "GET") => list_numbers(&shared, req.query_string()),
        (Resource::Number(sid), "GET") if sid == shared.number_sid => {
            HttpResponse::Ok().json(number_json(&shared))
        }
        (Resource::Number(sid), "POST") if sid == shared.number_sid => {
            update_number(&shared, &params)
        }
        (Resource::Number(_), "GET" | "POST") => not_found(&path),
        _ => twilio_error(405, Some(20004), "Method not allowed"),
    }
}

/// Whether the request carries the account's Basic credentials.
fn authorized(headers: &HeaderMap, shared: &Shared) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    match decoded.split_once(':') {
        Some((user, password)) => user == shared.account_sid && password == shared.auth_token,
        None => false,
    }
}

/// `POST Messages.json`: scripted faults first, then Twilio's checks.
async fn send(shared: &Shared, headers: &HeaderMap, params: Vec<(String, String)>) -> HttpResponse {
    let fault = shared.lock().faults.pop_front();
    match fault {
        None => create_message(shared, headers, &params),
        Some(Fault::Hang) => {
            shared.record(shared.attempt(&params));
            std::future::pending::<HttpResponse>().await
        }
        Some(Fault::Delay(delay)) => {
            let response = create_message(shared, headers, &params);
            actix_web::rt::time::sleep(delay).await;
            response
        }
        Some(fault) => {
            let to = param(&params, "To").unwrap_or_default();
            let (status, code, retry_after) = match fault {
                Fault::TooManyRequests { retry_after } => (429, 20429, retry_after),
                Fault::ServerError => (500, 20500, None),
                Fault::ServiceUnavailable => (503, 20503, None),
                Fault::Error { status, code } => (status, code, None),
                Fault::Hang | Fault::Delay(_) => (500, 20500, None),
            };
            let mut response = twilio_error(status, Some(code), &error_message(code, to));
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            }
            let mut attempt = shared.attempt(&params);
            attempt.status = Some(response.status().as_u16());
            attempt.code = Some(code);
            shared.record(attempt);
            response
        }
    }
}

/// A request rejected by Twilio's checks.
struct Rejection {
    status: u16,
    code: Option<i64>,
    message: String,
}

impl Rejection {
    fn bad_request(code: i64, message: String) -> Rejection {
        Rejection {
            status: 400,
            code: Some(code),
            message,
        }
    }
}

/// What a valid `Messages.json` request asks for.
struct Outgoing {
    to: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    body: String,
    media_urls: Vec<String>,
}

fn validate(
    shared: &Shared,
    state: &State,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Outgoing, Rejection> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Rejection {
            status: 415,
            code: None,
            message: "Unsupported Media Type: send application/x-www-form-urlencoded".to_string(),
        });
    }
    let non_empty = |name: &str| param(params, name).filter(|v| !v.is_empty());
    let Some(to) = non_empty("To") else {
        return Err(Rejection::bad_request(
            21604,
            "A 'To' phone number is required.".to_string(),
        ));
    };
    let from = non_empty("From");
    let messaging_service_sid = non_empty("MessagingServiceSid");
    if from.is_none() && messaging_service_sid.is_none() {
        return Err(Rejection::bad_request(
            21603,
            "A 'From' phone number is required.".to_string(),
        ));
    }
    let body = param(params, "Body").unwrap_or_default();
    let media_urls: Vec<String> = params
        .iter()
        .filter(|(key, value)| key == "MediaUrl" && !value.is_empty())
        .map(|(_, value)| value.clone())
        .collect();
    if body.is_empty() && media_urls.is_empty() {
        return Err(Rejection::bad_request(
            21602,
            "Message body is required.".to_string(),
        ));
    }
    if !is_e164(to) {
        return Err(Rejection::bad_request(21211, error_message(21211, to)));
    }
    if let Some(from) = from.filter(|from| *from != shared.phone_number) {
        return Err(Rejection::bad_request(
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
            ),
        ));
    }
    if let Some(sid) = messaging_service_sid.filter(|sid| !is_sid(sid, "MG")) {
        return Err(Rejection::bad_request(
            21701,
            format!("The Messaging Service Sid {sid} is invalid."),
        ));
    }
    if let Some(url) = media_urls.iter().find(|url| !is_http_url(url)) {
        return Err(Rejection::bad_request(
            21620,
            format!("Invalid media URL(s): {url}"),
        ));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(Rejection::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.".to_string(),
        ));
    }
    if state.opted_out.contains(to) {
        return Err(Rejection::bad_request(21610, error_message(21610, to)));
    }
    Ok(Outgoing {
        to: to.to_string(),
        from: from.map(str::to_string),
        messaging_service_sid: messaging_service_sid.map(str::to_string),
        body: body.to_string(),
        media_urls,
    })
}

/// Twilio's normal processing of `POST Messages.json`.
fn create_message(
    shared: &Shared,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> HttpResponse {
    let mut attempt = shared.attempt(params);
    let mut state = shared.lock();
    let outgoing = match validate(shared, &state, headers, params) {
        Ok(outgoing) => outgoing,
        Err(rejection) => {
            let response = twilio_error(rejection.status, rejection.code, &rejection.message);
            attempt.status = Some(response.status().as_u16());
            attempt.code = rejection.code;
            state.attempts.push(attempt);
            return response;
        }
    };
    let (encoding, segments) = segments::segments(&outgoing.body);
    let message = SentMessage {
        sid: random_sid("SM"),
        to: outgoing.to,
        from: outgoing.from,
        messaging_service_sid: outgoing.messaging_service_sid,
        body: outgoing.body,
        media_urls: outgoing.media_urls,
        segments,
        encoding: encoding.label().to_string(),
    };
    let json = message_json(shared, &message);
    attempt.status = Some(201);
    attempt.sid = Some(message.sid.clone());
    state.attempts.push(attempt);
    state.messages.push(message.clone());
    let callback = state.on_message.clone();
    drop(state);
    if let Some(callback) = callback {
        callback(&message);
    }
    HttpResponse::Created().json(json)
}

/// The message resource as Twilio returns it on creation.
fn message_json(shared: &Shared, message: &SentMessage) -> Value {
    let now = rfc2822(SystemTime::now());
    let uri = format!("{}/Messages/{}", shared.account_uri(), message.sid);
    // Twilio answers "accepted" while a Messaging Service picks the sender, "queued" otherwise.
    let status = if message.messaging_service_sid.is_some() && message.from.is_none() {
        "accepted"
    } else {
        "queued"
    };
    json!({
        "account_sid": shared.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": message.media_urls.len().to_string(),
        "num_segments": message.segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": message.sid,
        "status": status,
        "subresource_uris": {
            "media": format!("{uri}/Media.json"),
            "feedback": format!("{uri}/Feedback.json"),
        },
        "to": message.to,
        "uri": format!("{uri}.json"),
    })
}

/// The account resource, without its auth token.
fn account_json(shared: &Shared) -> Value {
    let uri = shared.account_uri();
    json!({
        "date_created": shared.created,
        "date_updated": shared.created,
        "friendly_name": "hermes sandbox",
        "owner_account_sid": shared.account_sid,
        "sid": shared.account_sid,
        "status": "active",
        "subresource_uris": {
            "incoming_phone_numbers": format!("{uri}/IncomingPhoneNumbers.json"),
            "messages": format!("{uri}/Messages.json"),
        },
        "type": "Full",
        "uri": format!("{uri}.json"),
    })
}

/// The owned number as an IncomingPhoneNumber resource.
fn number_json(shared: &Shared) -> Value {
    let state = shared.lock();
    let uri = format!(
        "{}/IncomingPhoneNumbers/{}",
        shared.account_uri(),
        shared.number_sid
    );
    json!({
        "account_sid": shared.account_sid,
        "address_requirements": "none",
        "address_sid": null,
        "api_version": API_VERSION,
        "beta": false,
        "bundle_sid": null,
        "capabilities": {"voice": true, "sms": true, "mms": true, "fax": false},
        "date_created": shared.created,
        "date_updated": state.number_updated,
        "emergency_address_sid": null,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": friendly_name(&shared.phone_number),
        "identity_sid": null,
        "origin": "twilio",
        "phone_number": shared.phone_number,
        "sid": shared.number_sid,
        "sms_application_sid": null,
        "sms_fallback_method": "POST",
        "sms_fallback_url": null,
        "sms_method": state.sms_method,
        "sms_url": state.sms_url,
        "status": "in-use",
        "status_callback": null,
        "status_callback_method": "POST",
        "subresource_uris": {"assigned_add_ons": format!("{uri}/AssignedAddOns.json")},
        "trunk_sid": null,
        "type": "local",
        "uri": format!("{uri}.json"),
        "voice_application_sid": null,
        "voice_caller_id_lookup": false,
        "voice_fallback_method": "POST",
        "voice_fallback_url": null,
        "voice_method": "POST",
        "voice_receive_mode": "voice",
        "voice_url": null,
    })
}

/// `GET IncomingPhoneNumbers.json`, filtered by `PhoneNumber` when given.
fn list_numbers(shared: &Shared, query: &str) -> HttpResponse {
    let query: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let wanted = param(&query, "PhoneNumber");
    let page_size = param(&query, "PageSize")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(50);
    // A `+` sent unencoded arrives as a space: compare the digits only.
    let matches = wanted.is_none_or(|wanted| digits(wanted) == digits(&shared.phone_number));
    let numbers: Vec<Value> = if matches {
        vec![number_json(shared)]
    } else {
        Vec::new()
    };
    let mut first: Vec<(&str, String)> = Vec::new();
    if let Some(wanted) = wanted {
        first.push(("PhoneNumber", wanted.to_string()));
    }
    first.push(("PageSize", page_size.to_string()));
    first.push(("Page", "0".to_string()));
    let first_query = serde_urlencoded::to_string(&first).unwrap_or_default();
    let uri = format!(
        "{}/IncomingPhoneNumbers.json?{first_query}",
        shared.account_uri()
    );
    HttpResponse::Ok().json(json!({
        "end": numbers.len().saturating_sub(1),
        "first_page_uri": uri,
        "incoming_phone_numbers": numbers,
        "next_page_uri": null,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": null,
        "start": 0,
        "uri": uri,
    }))
}

/// `POST IncomingPhoneNumbers/{sid}.json`: `SmsUrl` (empty clears it) and `SmsMethod`.
fn update_number(shared: &Shared, params: &[(String, String)]) -> HttpResponse {
    let url = param(params, "SmsUrl");
    if let Some(url) = url.filter(|url| !url.is_empty() && !is_http_url(url)) {
        return twilio_error(400, Some(21402), &format!("SmsUrl is not valid: {url}"));
    }
    let method = param(params, "SmsMethod").map(str::to_ascii_uppercase);
    if method.as_deref().is_some_and(|m| m != "GET" && m != "POST") {
        return twilio_error(400, Some(21403), "SmsMethod must be either GET or POST");
    }
    {
        let mut state = shared.lock();
        if let Some(url) = url {
            state.sms_url = (!url.is_empty()).then(|| url.to_string());
        }
        if let Some(method) = &method {
            state.sms_method = method.clone();
        }
        if url.is_some() || method.is_some() {
            state.number_updated = rfc2822(SystemTime::now());
        }
    }
    HttpResponse::Ok().json(number_json(shared))
}

fn unauthenticated() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"Twilio API\""))
        .json(json!({
            "code": 20003,
            "detail": "Your AccountSid or AuthToken was incorrect.",
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }))
}

fn not_found(path: &str) -> HttpResponse {
    twilio_error(
        404,
        Some(20404),
        &format!("The requested resource {path} was not found"),
    )
}

/// A Twilio error body with its HTTP status (500 when `status` is not a valid HTTP status).
fn twilio_error(status: u16, code: Option<i64>, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let more_info = match code {
        Some(code) => format!("https://www.twilio.com/docs/errors/{code}"),
        None => "https://www.twilio.com/docs/usage/twilios-response".to_string(),
    };
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "more_info": more_info,
        "status": status.as_u16(),
    }))
}

/// Twilio's message for a well-known error code.
fn error_message(code: i64, to: &str) -> String {
    match code {
        20003 => "Authenticate".to_string(),
        20404 => "The requested resource was not found".to_string(),
        20429 => "Too Many Requests".to_string(),
        20500 => "Internal Server Error".to_string(),
        20503 => "Service Unavailable".to_string(),
        21211 => format!("The 'To' number {to} is not a valid phone number."),
        21408 => format!(
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
        ),
        21610 => "Attempt to send to unsubscribed recipient".to_string(),
        21611 => {
            "This 'From' number has exceeded the maximum number of queued messages".to_string()
        }
        21612 => "The 'To' phone number is not currently reachable via SMS".to_string(),
        21614 => "'To' number is not a valid mobile number".to_string(),
        30001 => "Queue overflow".to_string(),
        30007 => "Message filtered".to_string(),
        _ => format!("Error {code}"),
    }
}

/// The first value of a form parameter.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `+` and 8 to 15 digits, the first not 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A SID: the two-letter prefix and 32 hex digits.
fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            && url.len() > scheme.len()
    })
}

fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// How Twilio names a number by default: `(555) 123-4567` for North America, else E.164.
fn friendly_name(number: &str) -> String {
    match number.strip_prefix("+1") {
        Some(rest) if rest.len() == 10 && rest.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &rest[..3], &rest[3..6], &rest[6..])
        }
        _ => number.to_string(),
    }
}

/// A random SID: the prefix and 32 lowercase hex digits.
fn random_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// RFC 2822 in GMT as Twilio writes it: `Tue, 24 Nov 2026 00:20:00 +0000`.
fn rfc2822(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days to civil date (Howard Hinnant's algorithm), for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[((days + 4) % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    const SID: &str = "AC00000000000000000000000000000001";
    const TOKEN: &str = "secret-token";
    const OWNED: &str = "+15550001111";
    const USER: &str = "+15557654321";

    fn emulator() -> Emulator {
        Emulator::start(EmulatorConfig {
            account_sid: SID.to_string(),
            auth_token: TOKEN.to_string(),
            phone_number: OWNED.to_string(),
            sms_url: Some("https://gateway.example.com/webhooks/twilio".to_string()),
            sms_method: "POST".to_string(),
        })
        .expect("the emulator starts")
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    struct Answer {
        status: u16,
        retry_after: Option<String>,
        json: Value,
    }

    /// One HTTP/1.1 exchange over a fresh connection; `Err` when no answer came within `timeout`.
    fn exchange(
        emu: &Emulator,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
        timeout: Duration,
    ) -> io::Result<Answer> {
        let mut stream = TcpStream::connect(emu.server.addr)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            emu.server.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let raw = String::from_utf8(raw).expect("a UTF-8 answer");
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let retry_after = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .map(|(_, value)| value.trim().to_string());
        let json = serde_json::from_str(body).expect("a JSON body");
        Ok(Answer {
            status,
            retry_after,
            json,
        })
    }

    fn call(
        emu: &Emulator,
        method: &str,
        path: &str,
        auth: Option<String>,
        form: &[(&str, &str)],
    ) -> Answer {
        let mut headers = vec![(
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        )];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        let body = serde_urlencoded::to_string(form).expect("a form");
        exchange(emu, method, path, &headers, &body, Duration::from_secs(10))
            .expect("the emulator answers")
    }

    fn messages_path() -> String {
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    }

    fn send(emu: &Emulator, to: &str, body: &str) -> Answer {
        call(
            emu,
            "POST",
            &messages_path(),
            Some(basic(SID, TOKEN)),
            &[("To", to), ("From", OWNED), ("Body", body)],
        )
    }

    /// Sends with a client that gives up after `timeout`.
    fn send_with_timeout(emu: &Emulator, body: &str, timeout: Duration) -> io::Result<Answer> {
        let form = serde_urlencoded::to_string([("To", USER), ("From", OWNED), ("Body", body)])
            .expect("a form");
        let headers = [
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("Authorization", basic(SID, TOKEN)),
        ];
        exchange(emu, "POST", &messages_path(), &headers, &form, timeout)
    }

    fn assert_error(answer: &Answer, status: u16, code: i64) {
        assert_eq!(answer.status, status, "{}", answer.json);
        assert_eq!(answer.json["code"], code, "{}", answer.json);
        assert_eq!(answer.json["status"], status);
        assert_eq!(
            answer.json["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
        let message = answer.json["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{}", answer.json);
    }

    #[test]
    fn emulator_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Emulator>();
    }

    #[test]
    fn formats_dates_like_twilio() {
        assert_eq!(rfc2822(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc2822(t), "Tue, 14 Nov 2023 22:13:20 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_164_800);
        assert_eq!(rfc2822(t), "Thu, 29 Feb 2024 00:00:00 +0000");
    }

    #[test]
    fn parses_resource_paths() {
        assert_eq!(
            resource("/2010-04-01/Accounts/AC1.json"),
            Some(("AC1", Resource::Account))
        );
        assert_eq!(
            resource("/2010-04-01/Accounts/AC1/Messages.json"),
            Some(("AC1", Resource::Messages))
        );
        assert_eq!(
            resource("/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN2.json"),
            Some(("AC1", Resource::Number("PN2")))
        );
        assert_eq!(resource("/2010-04-01/Accounts/AC1/Calls.json"), None);
        assert_eq!(resource("/2010-04-01/Accounts/AC1"), None);
    }

    #[test]
    fn valid_send_is_accepted_and_recorded() {
        let emu = emulator();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        emu.set_on_message(Box::new(move |m: &SentMessage| {
            sink.lock().expect("test lock").push(m.sid.clone())
        }));
        let short = send(&emu, USER, "hello there");
        let long = send(&emu, USER, &"a".repeat(161));
        let unicode = send(&emu, USER, "héllo 👋");

        assert_eq!(short.status, 201, "{}", short.json);
        let json = &short.json;
        let sid = json["sid"].as_str().expect("a sid");
        assert!(is_sid(sid, "SM") && sid[2..] == sid[2..].to_ascii_lowercase());
        assert_eq!(json["status"], "queued");
        assert_eq!(json["num_segments"], "1");
        assert_eq!(json["num_media"], "0");
        assert_eq!(json["body"], "hello there");
        assert_eq!(json["to"], USER);
        assert_eq!(json["from"], OWNED);
        assert_eq!(json["messaging_service_sid"], Value::Null);
        assert_eq!(json["account_sid"], SID);
        assert_eq!(json["api_version"], "2010-04-01");
        assert_eq!(json["direction"], "outbound-api");
        assert_eq!(json["price"], Value::Null);
        assert_eq!(json["error_code"], Value::Null);
        assert_eq!(
            json["uri"],
            format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
        );
        let date = json["date_created"].as_str().expect("a date");
        assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");
        assert_eq!(long.json["num_segments"], "2");
        assert_eq!(unicode.json["num_segments"], "1");

        let messages = emu.messages();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].sid, sid);
        assert_eq!(messages[0].to, USER);
        assert_eq!(messages[0].from.as_deref(), Some(OWNED));
        assert_eq!(messages[0].body, "hello there");
        assert_eq!(messages[0].segments, 1);
        assert_eq!(messages[0].encoding, "GSM-7");
        assert_eq!(messages[1].segments, 2);
        assert_eq!(messages[1].encoding, "GSM-7");
        assert_eq!(messages[2].encoding, "UCS-2");
        let sids: Vec<String> = messages.iter().map(|m| m.sid.clone()).collect();
        assert_eq!(*seen.lock().expect("test lock"), sids);
        let attempts = emu.attempts();
        assert_eq!(attempts.len(), 3);
        assert!(attempts.iter().all(|a| a.status == Some(201)));
        assert_eq!(attempts[0].sid.as_deref(), Some(sid));
        assert_eq!(emu.wait_for_messages(3, Duration::from_millis(1)).len(), 3);
        assert_eq!(emu.wait_for_messages(4, Duration::from_millis(50)).len(), 3);
        emu.stop();
    }

    #[test]
    fn messaging_service_and_media_urls() {
        let emu = emulator();
        let mg = "MG0123456789abcdef0123456789abcdef";
        let auth = || Some(basic(SID, TOKEN));
        let path = messages_path();
        let ok = call(
            &emu,
            "POST",
            &path,
            auth(),
            &[("To", USER), ("MessagingServiceSid", mg), ("Body", "hi")],
        );
        let bad_mg = call(
            &emu,
            "POST",
            &path,
            auth(),
            &[
                ("To", USER),
                ("MessagingServiceSid", "MG123"),
                ("Body", "hi"),
            ],
        );
        let media_only = call(
            &emu,
            "POST",
            &path,
            auth(),
            &[
                ("To", USER),
                ("From", OWNED),
                ("MediaUrl", "https://example.com/a.png"),
                ("MediaUrl", "https://example.com/b.png"),
            ],
        );
        assert_eq!(ok.status, 201, "{}", ok.json);
        assert_eq!(ok.json["from"], Value::Null);
        assert_eq!(ok.json["messaging_service_sid"], mg);
        assert_error(&bad_mg, 400, 21701);
        assert_eq!(media_only.status, 201, "{}", media_only.json);
        assert_eq!(media_only.json["num_media"], "2");
        let messages = emu.messages();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].messaging_service_sid.as_deref(), Some(mg));
        assert_eq!(messages[0].from, None);
        assert_eq!(
            messages[1].media_urls,
            ["https://example.com/a.png", "https://example.com/b.png"]
        );
    }

    #[test]
    fn rejects_like_twilio() {
        let emu = emulator();
        emu.opt_out(USER);
        let auth = || Some(basic(SID, TOKEN));
        let path = messages_path();
        let other_account = "/2010-04-01/Accounts/AC99999999999999999999999999999999/Messages.json";
        let other = "+15550002222";
        let cases = [
            (call(&emu, "POST", &path, None, &[("To", USER)]), 401, 20003),
            (
                call(&emu, "POST", &path, Some(basic(SID, "wrong")), &[]),
                401,
                20003,
            ),
            (call(&emu, "POST", other_account, auth(), &[]), 404, 20404),
            (send(&emu, "+1555", "hi"), 400, 21211),
            (send(&emu, "not a number", "hi"), 400, 21211),
            (send(&emu, USER, "hi"), 400, 21610),
            (
                call(
                    &emu,
                    "POST",
                    &path,
                    auth(),
                    &[("To", other), ("From", "+15559999999"), ("Body", "hi")],
                ),
                400,
                21606,
            ),
            (
                call(
                    &emu,
                    "POST",
                    &path,
                    auth(),
                    &[("To", other), ("From", OWNED)],
                ),
                400,
                21602,
            ),
            (send(&emu, other, &"x".repeat(1601)), 400, 21617),
            (
                call(
                    &emu,
                    "POST",
                    &path,
                    auth(),
                    &[("From", OWNED), ("Body", "hi")],
                ),
                400,
                21604,
            ),
            (
                call(&emu, "POST", &path, auth(), &[("To", USER), ("Body", "hi")]),
                400,
                21603,
            ),
            (
                call(
                    &emu,
                    "GET",
                    "/2010-04-01/Accounts/AC1/Calls.json",
                    None,
                    &[],
                ),
                401,
                20003,
            ),
            (call(&emu, "GET", &path, auth(), &[]), 405, 20004),
        ];
        for (answer, status, code) in &cases {
            assert_error(answer, *status, *code);
        }
        assert_eq!(
            cases[3].0.json["message"],
            "The 'To' number +1555 is not a valid phone number."
        );
        assert_eq!(
            cases[5].0.json["message"],
            "Attempt to send to unsubscribed recipient"
        );
        assert!(emu.messages().is_empty());
        let attempts = emu.attempts();
        // Every Messages.json POST is an attempt, including the ones refused before processing.
        assert_eq!(attempts.len(), 11);
        assert_eq!(attempts[0].status, Some(401));
        assert_eq!(attempts[2].code, Some(20404));
        assert_eq!(attempts[5].code, Some(21610));

        emu.opt_in(USER);
        assert_eq!(send(&emu, USER, "hi again").status, 201);
        assert_eq!(emu.messages().len(), 1);
    }

    #[test]
    fn wrong_content_type_is_415() {
        let emu = emulator();
        let headers = [
            ("Content-Type", "application/json".to_string()),
            ("Authorization", basic(SID, TOKEN)),
        ];
        let body = json!({"To": USER, "From": OWNED, "Body": "hi"}).to_string();
        let path = messages_path();
        let answer = exchange(
            &emu,
            "POST",
            &path,
            &headers,
            &body,
            Duration::from_secs(10),
        )
        .expect("an answer");
        assert_eq!(answer.status, 415);
        assert_eq!(answer.json["status"], 415);
        assert!(emu.messages().is_empty());
        assert_eq!(emu.attempts()[0].status, Some(415));
    }

    #[test]
    fn faults_are_answered_in_order() {
        let emu = emulator();
        emu.push_fault(Fault::TooManyRequests {
            retry_after: Some(7),
        });
        emu.push_fault(Fault::TooManyRequests { retry_after: None });
        emu.push_fault(Fault::ServerError);
        emu.push_fault(Fault::ServiceUnavailable);
        emu.push_fault(Fault::Error {
            status: 400,
            code: 21408,
        });
        emu.push_fault(Fault::Error {
            status: 400,
            code: 21614,
        });
        emu.push_fault(Fault::Error {
            status: 500,
            code: 30007,
        });
        let answers: Vec<Answer> = (0..8)
            .map(|i| send(&emu, USER, &format!("try {i}")))
            .collect();
        assert_error(&answers[0], 429, 20429);
        assert_eq!(answers[0].retry_after.as_deref(), Some("7"));
        assert_error(&answers[1], 429, 20429);
        assert_eq!(answers[1].retry_after, None);
        assert_error(&answers[2], 500, 20500);
        assert_error(&answers[3], 503, 20503);
        assert_error(&answers[4], 400, 21408);
        assert_eq!(
            answers[4].json["message"],
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {USER}."
            )
        );
        assert_error(&answers[5], 400, 21614);
        assert_error(&answers[6], 500, 30007);
        assert_eq!(answers[7].status, 201);
        let messages = emu.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].body, "try 7");
        let statuses: Vec<Option<u16>> = emu.attempts().iter().map(|a| a.status).collect();
        assert_eq!(statuses, [429, 429, 500, 503, 400, 400, 500, 201].map(Some));
    }

    #[test]
    fn hang_is_never_answered_nor_sent() {
        let emu = emulator();
        emu.push_fault(Fault::Hang);
        let started = Instant::now();
        let hung = send_with_timeout(&emu, "lost", Duration::from_millis(400));
        assert!(hung.is_err(), "a hung request gets no answer");
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(send(&emu, USER, "after").status, 201);
        let messages = emu.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].body, "after");
        let attempts = emu.attempts();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].status, None);
        assert_eq!(attempts[0].body.as_deref(), Some("lost"));
        emu.stop();
    }

    #[test]
    fn delay_answers_late_but_sends() {
        let emu = emulator();
        emu.push_fault(Fault::Delay(Duration::from_millis(300)));
        emu.push_fault(Fault::Delay(Duration::from_secs(2)));
        let started = Instant::now();
        let answer = send(&emu, USER, "slow");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert_eq!(answer.status, 201);
        let gave_up = send_with_timeout(&emu, "ambiguous", Duration::from_millis(300));
        assert!(gave_up.is_err());
        // The client gave up, but Twilio had already taken the message.
        let bodies: Vec<String> = emu.messages().into_iter().map(|m| m.body).collect();
        assert_eq!(bodies, ["slow", "ambiguous"]);
    }

    #[test]
    fn incoming_numbers_lookup_and_update() {
        let emu = emulator();
        let pn = emu.number_sid();
        assert!(is_sid(&pn, "PN"));
        let auth = || Some(basic(SID, TOKEN));
        let list = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
        let number = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/{pn}.json");
        let get = |path: &str| call(&emu, "GET", path, auth(), &[]);
        let encoded = get(&format!("{list}?PhoneNumber=%2B15550001111"));
        let raw_plus = get(&format!("{list}?PhoneNumber=+15550001111"));
        let all = get(&list);
        for page in [&encoded, &raw_plus, &all] {
            assert_eq!(page.status, 200);
            let numbers = page.json["incoming_phone_numbers"]
                .as_array()
                .expect("a list");
            assert_eq!(numbers.len(), 1, "{}", page.json);
            let n = &numbers[0];
            assert_eq!(n["sid"], pn);
            assert_eq!(n["phone_number"], OWNED);
            assert_eq!(n["friendly_name"], "(555) 000-1111");
            assert_eq!(n["sms_url"], "https://gateway.example.com/webhooks/twilio");
            assert_eq!(n["sms_method"], "POST");
            assert_eq!(
                n["capabilities"],
                json!({"voice": true, "sms": true, "mms": true, "fax": false})
            );
            assert_eq!(page.json["page"], 0);
            assert_eq!(page.json["page_size"], 50);
            assert_eq!(page.json["next_page_uri"], Value::Null);
            assert!(page.json["first_page_uri"].as_str().is_some());
        }
        let other = get(&format!("{list}?PhoneNumber=%2B15559990000"));
        assert_eq!(other.status, 200);
        assert_eq!(other.json["incoming_phone_numbers"], json!([]));

        let account = get(&format!("/2010-04-01/Accounts/{SID}.json"));
        assert_eq!(account.status, 200);
        assert_eq!(account.json["sid"], SID);
        assert_eq!(account.json["status"], "active");
        assert_eq!(account.json["type"], "Full");
        assert!(account.json.get("auth_token").is_none());

        let updated = call(
            &emu,
            "POST",
            &number,
            auth(),
            &[
                ("SmsUrl", "https://new.example.com/sms"),
                ("SmsMethod", "GET"),
            ],
        );
        assert_eq!(updated.status, 200, "{}", updated.json);
        assert_eq!(updated.json["sid"], pn);
        assert_eq!(updated.json["sms_url"], "https://new.example.com/sms");
        assert_eq!(updated.json["sms_method"], "GET");
        let fetched = get(&number);
        assert_eq!(fetched.json["sms_url"], "https://new.example.com/sms");
        assert_eq!(
            emu.incoming_number(),
            (
                Some("https://new.example.com/sms".to_string()),
                "GET".to_string()
            )
        );
        let bad_method = call(&emu, "POST", &number, auth(), &[("SmsMethod", "PUT")]);
        assert_error(&bad_method, 400, 21403);
        let unknown_path = format!(
            "/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/PN00000000000000000000000000000000.json"
        );
        let unknown = call(
            &emu,
            "POST",
            &unknown_path,
            auth(),
            &[("SmsUrl", "https://x.example.com")],
        );
        assert_error(&unknown, 404, 20404);
        assert_error(&call(&emu, "GET", &list, None, &[]), 401, 20003);
        let cleared = call(&emu, "POST", &number, auth(), &[("SmsUrl", "")]);
        assert_eq!(cleared.json["sms_url"], Value::Null);
        assert_eq!(emu.incoming_number(), (None, "GET".to_string()));
        assert!(emu.attempts().is_empty());
    }

    #[test]
    fn control_surface_lists_messages() {
        let emu = emulator();
        let sent = send(&emu, USER, "hello");
        let listed = call(&emu, "GET", "/_emulator/messages", None, &[]);
        assert_eq!(sent.status, 201);
        assert_eq!(listed.status, 200);
        assert_eq!(listed.json[0]["sid"], sent.json["sid"]);
        assert_eq!(listed.json[0]["segments"], 1);
        assert_eq!(listed.json[0]["encoding"], "GSM-7");
    }

    #[test]
    fn works_inside_another_actix_system() {
        let emu = actix_web::rt::System::new().block_on(async { emulator() });
        assert_eq!(send(&emu, USER, "hi").status, 201);
    }

    #[test]
    fn stops_and_frees_the_port() {
        let emu = emulator();
        let addr = emu.server.addr;
        let other = emu.clone();
        drop(emu);
        assert!(TcpStream::connect(addr).is_ok());
        drop(other);
        assert!(TcpStream::connect(addr).is_err());
    }
}
