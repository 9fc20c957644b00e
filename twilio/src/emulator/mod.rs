//! A loopback emulator of the part of Twilio's REST API v2010 that the gateway uses.
//!
//! It serves `Messages.json` (create, and the list with Twilio's filters and paging),
//! `IncomingPhoneNumbers` and the account resource on `127.0.0.1`, checks HTTP Basic
//! credentials on every call and answers with Twilio's JSON shapes and error codes. Accepted
//! messages go on through a carrier ([`carrier`]) that sends and delivers them and, when asked,
//! posts signed status callbacks. Tests script faults ([`Fault`]) and read back what was sent
//! ([`Emulator::messages`]); `hermes gateway --sandbox` uses it in place of Twilio. Other
//! processes can read the accepted messages from `GET /_emulator/messages`, every attempt from
//! `GET /_emulator/attempts`, the callbacks posted from `GET /_emulator/callbacks`, and the
//! media traffic (inbound media fetched, outbound `MediaUrl`s downloaded) from `GET /_emulator/media-fetches` and `GET /_emulator/downloads`.
//! It speaks WhatsApp too ([`whatsapp`]): `whatsapp:` addresses, the 24-hour window and
//! content templates.
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform_api::loopback::LoopbackServer;
use serde::Serialize;
use serde_json::{Value, json};

mod carrier;
mod media;
mod messages;
pub mod shown;
mod whatsapp;

pub use carrier::CallbackPost;
pub use media::{MediaDownload, MediaFetch, MediaFile};

/// The API version every route lives under.
const API_VERSION: &str = "2010-04-01";
/// Twilio's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 1600;

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
    /// Billed segments; 1 for an MMS (with `MediaUrl`s), billed per message.
    pub segments: u32,
    /// `GSM-7` or `UCS-2`.
    pub encoding: String,
    /// Where it is: `accepted`, `queued`, `sent`, `delivered`, `undelivered`, `failed`.
    pub status: String,
    /// The error code of a failed delivery.
    pub error_code: Option<i64>,
    /// When it was created, as Twilio writes dates (RFC 2822).
    pub date_created: String,
    /// When its status last changed.
    pub date_updated: String,
    /// When the carrier sent it; `None` until then.
    pub date_sent: Option<String>,
    /// The `StatusCallback` URL it was created with.
    pub status_callback: Option<String>,
    /// The `ContentSid` of a template send, as posted.
    pub content_sid: Option<String>,
    /// The `ContentVariables` of a template send, as posted.
    pub content_variables: Option<String>,
    #[serde(skip)]
    created: SystemTime,
    #[serde(skip)]
    sent: Option<SystemTime>,
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
    /// Create the message (it is sent) but never answer: the client cannot know.
    AcceptThenHang,
    /// Process the request normally (the message is sent) but answer only after the delay.
    Delay(Duration),
}

/// Called with each accepted message.
type Callback = Arc<dyn Fn(&SentMessage) + Send + Sync>;

struct State {
    sms_url: Option<String>,
    sms_method: String,
    sms_fallback_url: Option<String>,
    sms_fallback_method: String,
    number_updated: String,
    messages: Vec<SentMessage>,
    attempts: Vec<Attempt>,
    faults: VecDeque<Fault>,
    opted_out: HashSet<String>,
    on_message: Option<Callback>,
    /// Position in `messages` by SID.
    index: HashMap<String, usize>,
    /// The query of every `GET Messages.json`, in order.
    list_queries: Vec<Vec<(String, String)>>,
    /// Where status callbacks go; `None` while they are off.
    callback_target: Option<carrier::Target>,
    callbacks: Vec<CallbackPost>,
    /// Scripted delivery failures by recipient: the final status and its error code.
    delivery_failures: HashMap<String, (String, Option<i64>)>,
    on_status: Option<Callback>,
    /// Inbound media by media SID (`ME…`).
    media: HashMap<String, media::StoredMedia>,
    /// The CDN links handed out, by token.
    cdn: HashMap<String, media::CdnLink>,
    media_fetches: Vec<MediaFetch>,
    downloads: Vec<MediaDownload>,
    /// How long a `MediaUrl` may take to answer.
    fetch_timeout: Duration,
    /// How many of the next authenticated media URL requests answer 503.
    media_failures: usize,
    /// The Webhook Shared Key webhooks are signed with, and the algorithm named with it;
    /// `None`: the auth token.
    shared_key: Option<(String, String)>,
    /// The account's WhatsApp sender, once enabled.
    whatsapp: Option<whatsapp::Sender>,
    /// When each WhatsApp user (E.164) last wrote: their 24-hour window starts there.
    windows: HashMap<String, SystemTime>,
    /// The approved content templates' text by `ContentSid`.
    templates: HashMap<String, String>,
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

/// A running emulator; clones share it, and it stops when the last clone is dropped.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    server: Arc<LoopbackServer>,
}

impl Emulator {
    /// Starts serving on `127.0.0.1` (a free port) in a thread of its own; returns once listening.
    pub fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
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
                sms_fallback_url: None,
                sms_fallback_method: "POST".to_string(),
                number_updated: created,
                messages: Vec::new(),
                attempts: Vec::new(),
                faults: VecDeque::new(),
                opted_out: HashSet::new(),
                on_message: None,
                index: HashMap::new(),
                list_queries: Vec::new(),
                callback_target: None,
                callbacks: Vec::new(),
                delivery_failures: HashMap::new(),
                on_status: None,
                media: HashMap::new(),
                cdn: HashMap::new(),
                media_fetches: Vec::new(),
                downloads: Vec::new(),
                fetch_timeout: media::FETCH_TIMEOUT,
                media_failures: 0,
                shared_key: None,
                whatsapp: None,
                windows: HashMap::new(),
                templates: HashMap::new(),
            }),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = LoopbackServer::start(
            "twilio-emulator",
            listener,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone())
                    .route("/_emulator/messages", web::get().to(control_messages))
                    .route("/_emulator/attempts", web::get().to(control_attempts))
                    .route("/_emulator/callbacks", web::get().to(control_callbacks))
                    .route(
                        "/_emulator/media-fetches",
                        web::get().to(control_media_fetches),
                    )
                    .route("/_emulator/downloads", web::get().to(control_downloads))
                    .route(
                        &format!("{}/{{token}}", media::CDN_PATH),
                        web::get().to(media::cdn),
                    )
                    .default_service(web::to(api));
            },
        )?;
        Ok(Emulator {
            shared,
            server: Arc::new(server),
        })
    }

    /// The base URL to use in place of `https://api.twilio.com`: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
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
        wait_for(n, timeout, || self.messages())
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

    /// The owned number's current SMS fallback URL and method: where Twilio would post an
    /// incoming message when the webhook fails.
    pub fn incoming_fallback(&self) -> (Option<String>, String) {
        let state = self.shared.lock();
        (
            state.sms_fallback_url.clone(),
            state.sms_fallback_method.clone(),
        )
    }

    /// Sets the function called (on the server's thread) with each accepted message.
    pub fn set_on_message(&self, f: Box<dyn Fn(&SentMessage) + Send + Sync>) {
        self.shared.lock().on_message = Some(Arc::from(f));
    }

    /// Sets the function called (on the server's thread) with a message each time the carrier
    /// moves it on (`sent`, then `delivered` or its failure).
    pub fn set_on_status(&self, f: Box<dyn Fn(&SentMessage) + Send + Sync>) {
        self.shared.lock().on_status = Some(Arc::from(f));
    }

    /// Turns status callbacks on for messages created from now on: each status change is
    /// posted, signed, to the message's `StatusCallback`, or, with `via` (`http://host:port`),
    /// to that address with the callback URL's path and query, as a proxy would forward it.
    pub fn deliver_status_callbacks(&self, via: Option<&str>) {
        install_crypto_provider();
        self.shared.lock().callback_target = Some(match via {
            Some(base) => carrier::Target::Via(base.to_string()),
            None => carrier::Target::Direct,
        });
    }

    /// Messages to `number` accepted from now on fail at the carrier with `status`
    /// (`undelivered` or `failed`) and `code` (30007 carrier filtering, 30003 unreachable, …).
    pub fn fail_delivery(&self, number: &str, status: &str, code: i64) {
        self.shared
            .lock()
            .delivery_failures
            .insert(number.trim().to_string(), (status.to_string(), Some(code)));
    }

    /// Every status callback posted, in order.
    pub fn callbacks(&self) -> Vec<CallbackPost> {
        self.shared.lock().callbacks.clone()
    }

    /// Waits until at least `n` callbacks were posted or `timeout` passes; returns them all.
    pub fn wait_for_callbacks(&self, n: usize, timeout: Duration) -> Vec<CallbackPost> {
        wait_for(n, timeout, || self.callbacks())
    }

    /// The query of every `GET Messages.json` (the message list), in order.
    pub fn list_queries(&self) -> Vec<Vec<(String, String)>> {
        self.shared.lock().list_queries.clone()
    }
}

/// An inbound MMS (or WhatsApp message) the emulator posted to the gateway.
#[derive(Clone, Debug)]
pub struct InboundMms {
    /// Its SID (`MM…`; `SM…` for a WhatsApp message without files), the webhook's `MessageSid`.
    pub message_sid: String,
    /// The `MediaUrl{i}` posted, in order.
    pub media_urls: Vec<String>,
    /// The HTTP status the webhook was answered with.
    pub answered: u16,
}

impl Emulator {
    /// A person (`from`) texts the owned number an MMS with `files`: the files are stored and
    /// served on their media URLs, and the webhook is posted, signed, to the number's SMS URL
    /// (or, with `via`, to that base URL with the SMS URL's path and query) with `NumMedia`,
    /// `MediaUrl{i}` and `MediaContentType{i}` as Twilio posts them. Blocks until answered, so
    /// call it from outside an async runtime.
    pub fn text_with_media(
        &self,
        from: &str,
        body: &str,
        files: &[MediaFile],
        via: Option<&str>,
    ) -> io::Result<InboundMms> {
        let (url, method) = self.incoming_number();
        let url = url.ok_or_else(|| io::Error::other("the number has no SMS URL"))?;
        let (message_sid, media_urls) = self.store_media("MM", files);
        let mut params: Vec<(String, String)> = vec![
            ("ToCountry".into(), "US".into()),
            ("SmsMessageSid".into(), message_sid.clone()),
            ("NumMedia".into(), files.len().to_string()),
        ];
        params.extend(media_params(files, &media_urls));
        params.extend([
            ("SmsSid".into(), message_sid.clone()),
            ("SmsStatus".into(), "received".into()),
            ("Body".into(), body.to_string()),
            ("To".into(), self.shared.phone_number.clone()),
            ("NumSegments".into(), "1".into()),
            ("MessageSid".into(), message_sid.clone()),
            ("AccountSid".into(), self.shared.account_sid.clone()),
            ("From".into(), from.to_string()),
            ("ApiVersion".into(), API_VERSION.into()),
        ]);
        let answered = self.post_inbound((&url, &method), &params, &message_sid, via)?;
        Ok(InboundMms {
            message_sid,
            media_urls,
            answered,
        })
    }

    /// Stores an inbound message's files under a new message SID with `prefix` (`MM`, or `SM`
    /// for a WhatsApp message without files); returns the SID and the files' media URLs.
    fn store_media(&self, prefix: &str, files: &[MediaFile]) -> (String, Vec<String>) {
        let (message_sid, media_sids) = media::store(&self.shared, prefix, files);
        let media_urls = media_sids
            .iter()
            .map(|sid| {
                format!(
                    "{}{}/Messages/{message_sid}/Media/{sid}",
                    self.base_url(),
                    self.shared.account_uri()
                )
            })
            .collect();
        (message_sid, media_urls)
    }

    /// Posts an inbound message's webhook, signed, to `url` (or, with `via`, to that base URL
    /// with the URL's path and query); blocks until it is answered and returns the status.
    fn post_inbound(
        &self,
        (url, method): (&str, &str),
        params: &[(String, String)],
        message_sid: &str,
        via: Option<&str>,
    ) -> io::Result<u16> {
        let target = match via {
            Some(base) => carrier::Target::Via(base.to_string()),
            None => carrier::Target::Direct,
        };
        install_crypto_provider();
        let answered = actix_web::rt::System::new().block_on(carrier::post_signed(
            &self.shared,
            &target,
            (url, method),
            params,
            message_sid,
        ));
        answered.ok_or_else(|| io::Error::other("the webhook went unanswered"))
    }

    /// Signs every webhook and status callback from now on with a Webhook Shared Key, as Twilio
    /// does once the account has one: HMAC-SHA256 with `key`, and
    /// `X-Twilio-Webhooks-Signature-Settings: algorithm=<algorithm>` (`HMAC_SHA256`; another
    /// name stands for an algorithm Twilio may add).
    pub fn sign_with_shared_key(&self, algorithm: &str, key: &str) {
        self.shared.lock().shared_key = Some((algorithm.to_string(), key.to_string()));
    }

    /// Every GET of inbound media (media URL or CDN link), in order.
    pub fn media_fetches(&self) -> Vec<MediaFetch> {
        self.shared.lock().media_fetches.clone()
    }

    /// Every `MediaUrl` of an outbound message the emulator fetched, in order.
    pub fn downloads(&self) -> Vec<MediaDownload> {
        self.shared.lock().downloads.clone()
    }

    /// Waits until at least `n` downloads were made or `timeout` passes; returns them all.
    pub fn wait_for_downloads(&self, n: usize, timeout: Duration) -> Vec<MediaDownload> {
        wait_for(n, timeout, || self.downloads())
    }

    /// How long a `MediaUrl` of an outbound message may take before its fetch fails (Twilio's
    /// own wait is the default).
    pub fn set_media_fetch_timeout(&self, timeout: Duration) {
        self.shared.lock().fetch_timeout = timeout;
    }

    /// Answers the next `n` authenticated requests of a media URL with 503 (code 20503), as
    /// Twilio does while the file is not available.
    pub fn fail_media_fetches(&self, n: usize) {
        self.shared.lock().media_failures = n;
    }

    /// Expires every CDN link handed out so far, as time would.
    pub fn expire_media_links(&self) {
        let now = Instant::now();
        for link in self.shared.lock().cdn.values_mut() {
            link.expires = now;
        }
    }
}

/// An inbound message's `MediaContentType{i}` and `MediaUrl{i}` parameters.
fn media_params(files: &[MediaFile], media_urls: &[String]) -> Vec<(String, String)> {
    files
        .iter()
        .zip(media_urls)
        .enumerate()
        .flat_map(|(i, (file, media_url))| {
            [
                (format!("MediaContentType{i}"), file.content_type.clone()),
                (format!("MediaUrl{i}"), media_url.clone()),
            ]
        })
        .collect()
}

/// The emulator's HTTP client is awc with rustls, which needs a process-wide crypto provider;
/// a process that chose one keeps it.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Polls `read` until it returns at least `n` items or `timeout` passes; returns the last read.
fn wait_for<T>(n: usize, timeout: Duration, read: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let items = read();
        if items.len() >= n || Instant::now() >= deadline {
            return items;
        }
        std::thread::sleep(Duration::from_millis(10));
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

async fn control_callbacks(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().callbacks)
}

async fn control_media_fetches(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().media_fetches)
}

async fn control_downloads(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().downloads)
}

/// The resources of the API, by path.
#[derive(Debug, PartialEq, Eq)]
enum Resource<'a> {
    Account,
    Messages,
    Numbers,
    Number(&'a str),
    /// One file of a message: the message SID and the media SID.
    Media(&'a str, &'a str),
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
        [account, "Messages", message, "Media", media] => {
            Some((account, Resource::Media(message, media)))
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
        if matches!(route, Some((_, Resource::Media(..)))) {
            return media::unauthorized(&shared, &path);
        }
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
        (Resource::Messages, "POST") => messages::send(&shared, req.headers(), params).await,
        (Resource::Messages, "GET") => messages::list(&shared, req.query_string()),
        (Resource::Account, "GET") => HttpResponse::Ok().json(account_json(&shared)),
        (Resource::Numbers, "GET") => list_numbers(&shared, req.query_string()),
        (Resource::Number(sid), "GET") if sid == shared.number_sid => {
            HttpResponse::Ok().json(number_json(&shared))
        }
        (Resource::Number(sid), "POST") if sid == shared.number_sid => {
            update_number(&shared, &params)
        }
        (Resource::Number(_), "GET" | "POST") => not_found(&path),
        (Resource::Media(message, media), "GET") => media::media(&shared, &req, message, media),
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
        "sms_fallback_method": state.sms_fallback_method,
        // Twilio writes an unset fallback as an empty string.
        "sms_fallback_url": state.sms_fallback_url.as_deref().unwrap_or_default(),
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

/// `POST IncomingPhoneNumbers/{sid}.json`: `SmsUrl` and `SmsFallbackUrl` (empty clears them),
/// `SmsMethod` and `SmsFallbackMethod`. Every parameter is checked before any is applied, so a
/// refused update changes nothing.
fn update_number(shared: &Shared, params: &[(String, String)]) -> HttpResponse {
    let url = param(params, "SmsUrl");
    let fallback = param(params, "SmsFallbackUrl");
    for (name, value) in [("SmsUrl", url), ("SmsFallbackUrl", fallback)] {
        if let Some(value) = value.filter(|v| !v.is_empty() && !is_http_url(v)) {
            return twilio_error(400, Some(21402), &format!("{name} is not valid: {value}"));
        }
    }
    let (method, fallback_method) = match (
        method_param(params, "SmsMethod"),
        method_param(params, "SmsFallbackMethod"),
    ) {
        (Ok(method), Ok(fallback_method)) => (method, fallback_method),
        (Err(problem), _) | (_, Err(problem)) => {
            return twilio_error(400, Some(21403), &problem);
        }
    };
    {
        let mut state = shared.lock();
        let sms_url = match url {
            Some(url) => (!url.is_empty()).then(|| url.to_string()),
            None => state.sms_url.clone(),
        };
        // Twilio calls the fallback only when the call to `sms_url` fails, so it needs one.
        if fallback.is_some_and(|f| !f.is_empty()) && sms_url.is_none() {
            return twilio_error(
                400,
                Some(21406),
                "Cannot set SmsFallbackUrl without setting SmsUrl",
            );
        }
        state.sms_url = sms_url;
        if let Some(fallback) = fallback {
            state.sms_fallback_url = (!fallback.is_empty()).then(|| fallback.to_string());
        }
        if let Some(method) = &method {
            state.sms_method = method.clone();
        }
        if let Some(method) = &fallback_method {
            state.sms_fallback_method = method.clone();
        }
        if url.is_some() || fallback.is_some() || method.is_some() || fallback_method.is_some() {
            state.number_updated = rfc2822(SystemTime::now());
        }
    }
    HttpResponse::Ok().json(number_json(shared))
}

/// A method parameter (`SmsMethod`, `SmsFallbackMethod`) upper-cased, or Twilio's message for
/// its code 21403 when it is neither GET nor POST.
fn method_param(params: &[(String, String)], name: &str) -> Result<Option<String>, String> {
    match param(params, name).map(str::to_ascii_uppercase) {
        Some(method) if method != "GET" && method != "POST" => {
            Err(format!("{name} must be either GET or POST"))
        }
        method => Ok(method),
    }
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
        63016 => "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.".to_string(),
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
/// A time as Twilio writes dates (RFC 2822, in UTC).
fn rfc2822(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

#[cfg(test)]
mod tests;
