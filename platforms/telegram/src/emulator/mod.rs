//! A loopback emulator of the part of Telegram's Bot API that the gateway uses.
//!
//! It serves `/bot<token>/<method>` on `127.0.0.1` (GET with a query, POST with JSON or a
//! form) and answers with the Bot API's shapes and errors: a wrong token gets 401
//! `Unauthorized`, an unknown method 404 `Not Found`. Methods: `getMe`; `getUpdates` (a real
//! long poll: `offset` confirms earlier updates, a newer `getUpdates` ends a waiting one with
//! 409 `Conflict: terminated by other getUpdates request`, and none works while a webhook is
//! set); `setWebhook`, `deleteWebhook`, `getWebhookInfo` (while a webhook is set each update is
//! POSTed to it with the secret header, retried until it answers 2xx, and the last failure is
//! reported); `sendMessage` (HTML checked as Telegram parses it, the 4,096-unit limit, unknown
//! chats); `sendChatAction`; `getFile`, and file downloads from `/file/bot<token>/<path>`.
//!
//! Tests play the users ([`Emulator::user_writes`], [`Emulator::write`] in groups,
//! [`Emulator::reply_to`], photos and documents), script faults ([`Fault`], and chats that
//! blocked the bot with [`Emulator::block`]) and read back what happened: messages sent,
//! every send attempt, chat actions, `getUpdates` calls, webhook posts. Other processes can
//! read the same from `GET /_emulator/sent`, `/_emulator/attempts`, `/_emulator/actions`,
//! `/_emulator/polls`, `/_emulator/webhook_posts` and `/_emulator/updates`.
//!
//! Relaxations, for loopback use: a webhook may be `http://127.0.0.1…` or `http://localhost…`
//! (Telegram requires HTTPS on ports 443, 80, 88 or 8443), and it is delivered to one update
//! at a time.
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::loopback::LoopbackServer;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::format::utf16_len;
use crate::types::{
    Chat, Document, File, Message, MessageEntity, PhotoSize, Update, User, WebhookInfo,
};
use crate::webhook::SECRET_HEADER;

mod html;

pub use html::{Parsed, parse as parse_html};

/// Longest message, in UTF-16 code units of visible text.
const MAX_MESSAGE_UNITS: usize = 4096;
/// Longest long poll honoured, in seconds.
const MAX_POLL_SECS: u64 = 50;
/// How long a webhook post may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before a failed webhook post is repeated; it doubles up to a second.
const WEBHOOK_RETRY: Duration = Duration::from_millis(100);
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

/// The emulated bot.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The bot token the API accepts (`<bot id>:<secret>`).
    pub token: String,
    /// The bot's user id.
    pub bot_id: i64,
    /// The bot's username, without `@`.
    pub bot_username: String,
    /// The bot's display name.
    pub bot_name: String,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            token: "7000000001:AAE-emulator-token_0123456789abcdefghij".to_string(),
            bot_id: 7_000_000_001,
            bot_username: "hermes_test_bot".to_string(),
            bot_name: "Hermes".to_string(),
        }
    }
}

impl EmulatorConfig {
    /// A bot with a random token (and the id in it), as `@username`.
    pub fn random(username: &str) -> Self {
        let bot_id = 7_000_000_000 + i64::from(rand::random::<u32>() % 1_000_000_000);
        EmulatorConfig {
            token: format!("{bot_id}:AA{:032x}", rand::random::<u128>()),
            bot_id,
            bot_username: username.to_string(),
            bot_name: "Hermes".to_string(),
        }
    }
}

/// A Telegram user the tests play.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// User id; also the id of their private chat with the bot.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Username, without `@`.
    pub username: Option<String>,
    /// Whether it is a bot.
    pub is_bot: bool,
}

impl Person {
    /// A person without username.
    pub fn new(id: i64, first_name: &str) -> Person {
        Person {
            id,
            first_name: first_name.to_string(),
            username: None,
            is_bot: false,
        }
    }

    /// Another bot.
    pub fn bot(id: i64, username: &str) -> Person {
        Person {
            id,
            first_name: username.to_string(),
            username: Some(username.to_string()),
            is_bot: true,
        }
    }

    /// As a Bot API user.
    pub fn user(&self) -> User {
        User {
            id: self.id,
            is_bot: self.is_bot,
            first_name: self.first_name.clone(),
            last_name: None,
            username: self.username.clone(),
        }
    }

    /// Their private chat with the bot.
    pub fn chat(&self) -> Chat {
        Chat {
            id: self.id,
            kind: "private".to_string(),
            title: None,
            username: self.username.clone(),
            first_name: Some(self.first_name.clone()),
        }
    }
}

/// A supergroup (ids of supergroups start at -100…).
pub fn group(id: i64, title: &str) -> Chat {
    Chat {
        id,
        kind: "supergroup".to_string(),
        title: Some(title.to_string()),
        username: None,
        first_name: None,
    }
}

/// A message the bot sent (`sendMessage` answered 200).
#[derive(Clone, Debug, Serialize)]
pub struct SentMessage {
    /// The chat.
    pub chat_id: i64,
    /// Its id in the chat.
    pub message_id: i64,
    /// What the chat shows: the text after the HTML was parsed, trimmed.
    pub text: String,
    /// The `text` parameter as sent (HTML when `parse_mode` is `HTML`).
    pub body: String,
    /// The `parse_mode` parameter.
    pub parse_mode: Option<String>,
    /// The formatting Telegram made of the HTML.
    pub entities: Vec<MessageEntity>,
    /// When it was sent, from the start of the emulator.
    pub elapsed: Duration,
}

/// One `sendMessage` call, whatever the answer.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// The `chat_id` parameter.
    pub chat_id: Option<String>,
    /// The `text` parameter.
    pub text: Option<String>,
    /// The `parse_mode` parameter.
    pub parse_mode: Option<String>,
    /// The HTTP status answered; `None` when the emulator never answered ([`Fault::Hang`]).
    pub status: Option<u16>,
    /// The error's description, when it failed.
    pub description: Option<String>,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// One `sendChatAction` that was accepted.
#[derive(Clone, Debug, Serialize)]
pub struct ChatAction {
    /// The chat.
    pub chat_id: i64,
    /// The action (`typing`).
    pub action: String,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// One `getUpdates` call.
#[derive(Clone, Debug, Serialize)]
pub struct Poll {
    /// The `offset` parameter.
    pub offset: Option<i64>,
    /// The `timeout` parameter, in seconds.
    pub timeout: u64,
    /// The HTTP status answered.
    pub status: u16,
    /// The updates handed out.
    pub update_ids: Vec<i64>,
    /// When it arrived, from the start of the emulator.
    pub started: Duration,
    /// When it was answered.
    pub answered: Duration,
}

/// One post of an update to the webhook.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookPost {
    /// The update posted.
    pub update_id: i64,
    /// Where.
    pub url: String,
    /// The status the webhook answered; `None` when it did not answer.
    pub status: Option<u16>,
    /// Why the post failed, as `getWebhookInfo` reports it.
    pub error: Option<String>,
    /// When it was made, from the start of the emulator.
    pub elapsed: Duration,
}

/// A scripted answer to the next `sendMessage`, in place of normal processing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `Too Many Requests: retry after N` with `parameters.retry_after` (and the header).
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 500 `Internal Server Error`.
    ServerError,
    /// 502 with an HTML page, as a proxy in front of the API answers.
    BadGateway,
    /// Read the request and never answer; nothing is sent.
    Hang,
    /// Send the message, but answer only after the delay.
    Delay(Duration),
}

/// Called with each message sent.
type Callback = Arc<dyn Fn(&SentMessage) + Send + Sync>;

struct Hook {
    url: String,
    secret: Option<String>,
    allowed_updates: Option<Vec<String>>,
    generation: u64,
    last_error_date: Option<i64>,
    last_error_message: Option<String>,
}

struct State {
    chats: HashMap<i64, Chat>,
    next_message_id: HashMap<i64, i64>,
    next_update_id: i64,
    /// Updates not confirmed yet, oldest first.
    updates: VecDeque<Update>,
    files: HashMap<String, File>,
    sent: Vec<SentMessage>,
    attempts: Vec<Attempt>,
    actions: Vec<ChatAction>,
    polls: Vec<Poll>,
    posts: Vec<WebhookPost>,
    faults: VecDeque<Fault>,
    blocked: HashSet<i64>,
    /// Bumped by every `getUpdates`: a waiting one that sees it change was superseded.
    poll_generation: u64,
    hook: Option<Hook>,
    /// Bumped by every webhook change: a delivery loop of an older one stops.
    hook_generation: u64,
    next_file: u64,
    on_message: Option<Callback>,
}

struct Shared {
    token: String,
    bot: User,
    started: Instant,
    state: Mutex<State>,
    /// Woken on every change a waiting poll or delivery loop may care about.
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A running emulator; clones share it, and it stops when the last clone is dropped.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    server: Arc<LoopbackServer>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url())
            .field("bot", &self.shared.bot.username)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Emulator {
    /// Starts serving on `127.0.0.1` (a free port) in a thread of its own; returns once
    /// listening.
    pub fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        // Webhook posts go out through awc with rustls, which needs a process-wide crypto
        // provider; a process that chose one keeps it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let shared = Arc::new(Shared {
            token: config.token,
            bot: User {
                id: config.bot_id,
                is_bot: true,
                first_name: config.bot_name,
                last_name: None,
                username: Some(config.bot_username),
            },
            started: Instant::now(),
            state: Mutex::new(State {
                chats: HashMap::new(),
                next_message_id: HashMap::new(),
                next_update_id: 100_000 + i64::from(rand::random::<u16>()),
                updates: VecDeque::new(),
                files: HashMap::new(),
                sent: Vec::new(),
                attempts: Vec::new(),
                actions: Vec::new(),
                polls: Vec::new(),
                posts: Vec::new(),
                faults: VecDeque::new(),
                blocked: HashSet::new(),
                poll_generation: 0,
                hook: None,
                hook_generation: 0,
                next_file: 1,
                on_message: None,
            }),
            changed: Notify::new(),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = LoopbackServer::start(
            "telegram-emulator",
            listener,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone())
                    .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                    .route("/_emulator/sent", web::get().to(read_sent))
                    .route("/_emulator/attempts", web::get().to(read_attempts))
                    .route("/_emulator/actions", web::get().to(read_actions))
                    .route("/_emulator/polls", web::get().to(read_polls))
                    .route("/_emulator/webhook_posts", web::get().to(read_posts))
                    .route("/_emulator/updates", web::get().to(read_updates))
                    .default_service(web::to(api));
            },
        )?;
        Ok(Emulator {
            shared,
            server: Arc::new(server),
        })
    }

    /// The base URL to use in place of `https://api.telegram.org`: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stops the server, dropping open connections; waits (a few seconds at most) for it to end.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// The token the API accepts.
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// The bot, as `getMe` describes it.
    pub fn bot(&self) -> User {
        self.shared.bot.clone()
    }

    /// Makes a chat known, so that the bot can send to it before anyone there wrote.
    pub fn add_chat(&self, chat: &Chat) {
        self.shared.lock().chats.insert(chat.id, chat.clone());
    }

    /// `person` writes `text` to the bot in their private chat.
    pub fn user_writes(&self, person: &Person, text: &str) -> Update {
        self.write(&person.chat(), person, text)
    }

    /// `person` writes `text` in `chat`; mentions (`@name`) and commands (`/cmd`, `/cmd@bot`)
    /// in it get their entities, as Telegram marks them.
    pub fn write(&self, chat: &Chat, person: &Person, text: &str) -> Update {
        self.write_with(chat, person, text, |_| {})
    }

    /// Like [`Emulator::write`], with `edit` changing the message before it is queued (other
    /// entities, a reply, a caption in place of the text …).
    pub fn write_with(
        &self,
        chat: &Chat,
        person: &Person,
        text: &str,
        edit: impl FnOnce(&mut Message),
    ) -> Update {
        let mut message = Message {
            message_id: 0,
            from: Some(person.user()),
            chat: chat.clone(),
            date: unix_now(),
            text: Some(text.to_string()),
            entities: entities(text),
            caption: None,
            caption_entities: Vec::new(),
            reply_to_message: None,
            photo: Vec::new(),
            document: None,
        };
        edit(&mut message);
        if chat.kind == "private" && chat.id == person.id {
            // Blocked users cannot write to the bot; writing to it unblocks it.
            self.unblock(chat.id);
        }
        self.queue(message)
    }

    /// `person` replies with `text` to a message the bot sent.
    pub fn reply_to(&self, sent: &SentMessage, person: &Person, text: &str) -> Update {
        let chat = self
            .shared
            .lock()
            .chats
            .get(&sent.chat_id)
            .cloned()
            .unwrap_or_else(|| person.chat());
        let original = Message {
            message_id: sent.message_id,
            from: Some(self.shared.bot.clone()),
            chat: chat.clone(),
            date: unix_now(),
            text: Some(sent.text.clone()),
            entities: sent.entities.clone(),
            caption: None,
            caption_entities: Vec::new(),
            reply_to_message: None,
            photo: Vec::new(),
            document: None,
        };
        self.write_with(&chat, person, text, |m| {
            m.reply_to_message = Some(Box::new(original));
        })
    }

    /// `person` sends a photo (three sizes) to `chat`, with an optional caption.
    pub fn send_photo(&self, chat: &Chat, person: &Person, caption: Option<&str>) -> Update {
        let sizes: Vec<PhotoSize> = [(90, 67), (320, 240), (1280, 960)]
            .iter()
            .map(|(width, height)| {
                let file = self.add_file("photos", "jpg", u64::from(width * height / 10));
                PhotoSize {
                    file_id: file.file_id,
                    file_unique_id: file.file_unique_id,
                    width: *width,
                    height: *height,
                    file_size: file.file_size,
                }
            })
            .collect();
        self.with_media(chat, person, caption, |m| m.photo = sizes)
    }

    /// `person` sends a file to `chat`, with an optional caption.
    pub fn send_document(
        &self,
        chat: &Chat,
        person: &Person,
        file_name: &str,
        mime_type: &str,
        caption: Option<&str>,
    ) -> Update {
        let extension = file_name.rsplit('.').next().unwrap_or("bin");
        let file = self.add_file("documents", extension, 2048);
        let document = Document {
            file_id: file.file_id,
            file_unique_id: file.file_unique_id,
            file_name: Some(file_name.to_string()),
            mime_type: Some(mime_type.to_string()),
            file_size: file.file_size,
        };
        self.with_media(chat, person, caption, |m| m.document = Some(document))
    }

    fn with_media(
        &self,
        chat: &Chat,
        person: &Person,
        caption: Option<&str>,
        attach: impl FnOnce(&mut Message),
    ) -> Update {
        self.write_with(chat, person, "", |m| {
            m.text = None;
            m.entities = Vec::new();
            m.caption = caption.map(str::to_string);
            m.caption_entities = caption.map(entities).unwrap_or_default();
            attach(m);
        })
    }

    fn add_file(&self, folder: &str, extension: &str, size: u64) -> File {
        let mut state = self.shared.lock();
        let n = state.next_file;
        state.next_file += 1;
        let file = File {
            file_id: format!("AgAC{:024x}", rand::random::<u128>() >> 32),
            file_unique_id: format!("AQAD{n:08}"),
            file_size: Some(size),
            file_path: Some(format!("{folder}/file_{n}.{extension}")),
        };
        state.files.insert(file.file_id.clone(), file.clone());
        file
    }

    fn queue(&self, mut message: Message) -> Update {
        let update = {
            let mut state = self.shared.lock();
            let next = state.next_message_id.entry(message.chat.id).or_insert(1);
            message.message_id = *next;
            *next += 1;
            state.chats.insert(message.chat.id, message.chat.clone());
            let update = Update {
                update_id: state.next_update_id,
                message: Some(message),
            };
            state.next_update_id += 1;
            state.updates.push_back(update.clone());
            update
        };
        self.shared.changed.notify_waiters();
        update
    }

    /// Queues a scripted answer; each `sendMessage` with the right token takes one.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// The chat has blocked the bot (a private chat) or removed it (a group): sending there
    /// answers 403 `Forbidden: bot was blocked by the user`, until the user writes to the bot
    /// again (which unblocks it, as in Telegram) or [`Emulator::unblock`].
    pub fn block(&self, chat_id: i64) {
        self.shared.lock().blocked.insert(chat_id);
    }

    /// The chat takes the bot's messages again.
    pub fn unblock(&self, chat_id: i64) {
        self.shared.lock().blocked.remove(&chat_id);
    }

    /// Sets a webhook as `setWebhook` would (also to test the gateway against one left set).
    pub fn set_webhook(&self, url: &str, secret: Option<&str>) {
        set_hook(&self.shared, url, secret.map(str::to_string), None);
    }

    /// Sets the function called (on the server's thread) with each message sent.
    pub fn set_on_message(&self, f: Box<dyn Fn(&SentMessage) + Send + Sync>) {
        self.shared.lock().on_message = Some(Arc::from(f));
    }

    /// Every message sent, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// The messages sent to `chat_id`, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        let state = self.shared.lock();
        state
            .sent
            .iter()
            .filter(|m| m.chat_id == chat_id)
            .cloned()
            .collect()
    }

    /// Waits until at least `n` messages were sent or `timeout` passes; returns them all.
    pub fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        wait_for(n, timeout, || self.sent())
    }

    /// Every `sendMessage` call, in order, whatever the answer.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// Every accepted `sendChatAction`, in order.
    pub fn chat_actions(&self) -> Vec<ChatAction> {
        self.shared.lock().actions.clone()
    }

    /// Every answered `getUpdates` call, in order.
    pub fn polls(&self) -> Vec<Poll> {
        self.shared.lock().polls.clone()
    }

    /// Every post of an update to the webhook, in order.
    pub fn webhook_posts(&self) -> Vec<WebhookPost> {
        self.shared.lock().posts.clone()
    }

    /// The updates not confirmed yet, oldest first.
    pub fn pending_updates(&self) -> Vec<Update> {
        self.shared.lock().updates.iter().cloned().collect()
    }

    /// What `getWebhookInfo` answers now.
    pub fn webhook_info(&self) -> WebhookInfo {
        webhook_info(&self.shared.lock())
    }
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

/// The entities Telegram marks in typed text: `@mentions` and `/commands`.
pub fn entities(text: &str) -> Vec<MessageEntity> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut units = 0;
    let mut previous: Option<char> = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let starts = previous.is_none_or(|p| !word(p) && p != '@' && p != '/');
        if starts && (c == '@' || c == '/') {
            let rest = &text[at + 1..];
            let mut len = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            let kind = if c == '@' { "mention" } else { "bot_command" };
            if c == '/' && rest[len..].starts_with('@') {
                let target = &rest[len + 1..];
                let extra = target.find(|c: char| !word(c)).unwrap_or(target.len());
                if extra > 0 {
                    len += 1 + extra;
                }
            }
            let valid = if c == '@' {
                (5..=32).contains(&len)
            } else {
                len > 0
            };
            if valid {
                // Everything in the entity is ASCII: one unit per byte.
                found.push(MessageEntity {
                    kind: kind.to_string(),
                    offset: units,
                    length: len + 1,
                    url: None,
                    user: None,
                });
                units += len + 1;
                previous = text[..at + 1 + len].chars().next_back();
                i += text[at..at + 1 + len].chars().count();
                continue;
            }
        }
        units += c.len_utf16();
        previous = Some(c);
        i += 1;
    }
    found
}

/// A Bot API success.
fn ok(result: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(json!({"ok": true, "result": result}))
}

/// A Bot API error: `{"ok": false, "error_code": status, "description": …}`.
fn error(status: u16, description: &str) -> HttpResponse {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(code).json(json!({
        "ok": false,
        "error_code": status,
        "description": description,
    }))
}

/// The parameters of a call: the query of a GET, the JSON or form body of a POST.
fn params(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, String> {
    let form = |text: &[u8]| -> Result<Map<String, Value>, String> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(text).map_err(|e| e.to_string())?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect())
    };
    let mut params = form(req.query_string().as_bytes())?;
    if req.method() != actix_web::http::Method::POST || body.is_empty() {
        return Ok(params);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let posted = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => return Err("can't parse JSON object".to_string()),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        form(body)?
    } else {
        return Err(format!("unsupported Content-Type {content_type:?}"));
    };
    params.extend(posted);
    Ok(params)
}

fn text_param(params: &Map<String, Value>, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int_param(params: &Map<String, Value>, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bool_param(params: &Map<String, Value>, name: &str) -> bool {
    matches!(params.get(name), Some(Value::Bool(true)))
        || matches!(params.get(name), Some(Value::String(s)) if s == "true" || s == "1")
}

fn list_param(params: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    let value = match params.get(name)? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    Some(
        value
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
    )
}

async fn read_sent(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().sent)
}

async fn read_attempts(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().attempts)
}

async fn read_actions(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().actions)
}

async fn read_polls(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().polls)
}

async fn read_posts(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().posts)
}

async fn read_updates(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().updates)
}

async fn api(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let path = req.path().to_string();
    if let Some(rest) = path.strip_prefix("/file/bot") {
        return download(&shared, rest);
    }
    let Some((token, method)) = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return error(404, "Not Found");
    };
    if token != shared.token {
        return error(401, "Unauthorized");
    }
    let params = match params(&req, &body) {
        Ok(params) => params,
        Err(why) => return error(400, &format!("Bad Request: {why}")),
    };
    match method.to_ascii_lowercase().as_str() {
        "getme" => {
            let mut me = serde_json::to_value(&shared.bot).unwrap_or_default();
            if let Value::Object(map) = &mut me {
                map.insert("can_join_groups".into(), Value::Bool(true));
                map.insert("can_read_all_group_messages".into(), Value::Bool(false));
                map.insert("supports_inline_queries".into(), Value::Bool(false));
            }
            ok(me)
        }
        "getupdates" => get_updates(&shared, &params).await,
        "setwebhook" => set_webhook(&shared, &params),
        "deletewebhook" => delete_webhook(&shared, &params),
        "getwebhookinfo" => ok(webhook_info(&shared.lock())),
        "sendmessage" => send_message(&shared, &params).await,
        "sendchataction" => send_chat_action(&shared, &params),
        "getfile" => get_file(&shared, &params),
        _ => error(404, "Not Found"),
    }
}

fn download(shared: &Shared, rest: &str) -> HttpResponse {
    let Some((token, path)) = rest.split_once('/') else {
        return error(404, "Not Found");
    };
    if token != shared.token {
        return error(401, "Unauthorized");
    }
    let known = shared
        .lock()
        .files
        .values()
        .any(|f| f.file_path.as_deref() == Some(path));
    if !known {
        return error(404, "Not Found");
    }
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(format!("emulated content of {path}"))
}

fn get_file(shared: &Shared, params: &Map<String, Value>) -> HttpResponse {
    let id = text_param(params, "file_id").unwrap_or_default();
    match shared.lock().files.get(&id) {
        Some(file) => ok(file),
        None => error(400, "Bad Request: invalid file_id"),
    }
}

/// The updates a poll with `offset` gets now, up to `limit`.
fn ready(state: &State, offset: Option<i64>, limit: usize) -> Vec<Update> {
    state
        .updates
        .iter()
        .filter(|u| offset.is_none_or(|o| o < 0 || u.update_id >= o))
        .take(limit)
        .cloned()
        .collect()
}

/// Forgets the updates an offset confirms: those before it, or all but the last `-offset`.
fn confirm(state: &mut State, offset: Option<i64>) {
    match offset {
        None => {}
        Some(offset) if offset < 0 => {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while state.updates.len() > keep {
                state.updates.pop_front();
            }
        }
        Some(offset) => state.updates.retain(|u| u.update_id >= offset),
    }
}

async fn get_updates(shared: &web::Data<Shared>, params: &Map<String, Value>) -> HttpResponse {
    let offset = int_param(params, "offset");
    let timeout = u64::try_from(int_param(params, "timeout").unwrap_or(0))
        .unwrap_or(0)
        .min(MAX_POLL_SECS);
    let limit =
        usize::try_from(int_param(params, "limit").unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let started = shared.elapsed();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let generation = {
        let mut state = shared.lock();
        state.poll_generation += 1;
        state.poll_generation
    };
    // A poll that is waiting learns that this one supersedes it.
    shared.changed.notify_waiters();
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut state = shared.lock();
            let answer = if state.hook.is_some() {
                Some(Err(
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                ))
            } else if state.poll_generation != generation {
                Some(Err(
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                ))
            } else {
                confirm(&mut state, offset);
                let updates = ready(&state, offset, limit);
                (!updates.is_empty() || Instant::now() >= deadline).then_some(Ok(updates))
            };
            if let Some(answer) = answer {
                let (status, update_ids) = match &answer {
                    Ok(updates) => (200, updates.iter().map(|u| u.update_id).collect()),
                    Err(_) => (409, Vec::new()),
                };
                state.polls.push(Poll {
                    offset,
                    timeout,
                    status,
                    update_ids,
                    started,
                    answered: shared.elapsed(),
                });
                return match answer {
                    Ok(updates) => ok(updates),
                    Err(description) => error(409, description),
                };
            }
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        let _ = actix_web::rt::time::timeout(wait, notified).await;
    }
}

fn webhook_info(state: &State) -> WebhookInfo {
    let pending = state.updates.len() as u64;
    match &state.hook {
        None => WebhookInfo {
            url: String::new(),
            has_custom_certificate: false,
            pending_update_count: pending,
            ..WebhookInfo::default()
        },
        Some(hook) => WebhookInfo {
            url: hook.url.clone(),
            has_custom_certificate: false,
            pending_update_count: pending,
            last_error_date: hook.last_error_date,
            last_error_message: hook.last_error_message.clone(),
            max_connections: Some(40),
            allowed_updates: hook.allowed_updates.clone(),
        },
    }
}

/// Whether the emulator takes `url` as a webhook: HTTPS, or plain HTTP on loopback.
fn acceptable_webhook(url: &str) -> bool {
    url.starts_with("https://")
        || url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost")
        || url.starts_with("http://[::1]")
}

/// Sets the webhook and starts delivering to it; true when it was already set to `url`.
fn set_hook(
    shared: &Arc<Shared>,
    url: &str,
    secret: Option<String>,
    allowed_updates: Option<Vec<String>>,
) -> bool {
    let (generation, same) = {
        let mut state = shared.lock();
        state.hook_generation += 1;
        let generation = state.hook_generation;
        let same = state.hook.as_ref().is_some_and(|h| h.url == url);
        state.hook = Some(Hook {
            url: url.to_string(),
            secret,
            allowed_updates,
            generation,
            last_error_date: None,
            last_error_message: None,
        });
        (generation, same)
    };
    shared.changed.notify_waiters();
    let shared = Arc::clone(shared);
    let job = move || async move { deliver(shared, generation).await };
    match tokio::runtime::Handle::try_current() {
        // In a handler: on the server's runtime.
        Ok(_) => {
            actix_web::rt::spawn(job());
        }
        // From a test's thread: on a runtime of its own.
        Err(_) => {
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(job());
            });
        }
    }
    same
}

fn set_webhook(shared: &web::Data<Shared>, params: &Map<String, Value>) -> HttpResponse {
    let url = text_param(params, "url").unwrap_or_default();
    if url.is_empty() {
        return delete_webhook(shared, params);
    }
    if !acceptable_webhook(&url) {
        return error(
            400,
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
        );
    }
    let secret = text_param(params, "secret_token").filter(|s| !s.is_empty());
    if let Some(secret) = &secret
        && !crate::settings::valid_secret(secret)
    {
        return error(
            400,
            "Bad Request: bad webhook: secret token contains unallowed characters",
        );
    }
    if bool_param(params, "drop_pending_updates") {
        shared.lock().updates.clear();
    }
    let allowed = list_param(params, "allowed_updates");
    let already = set_hook(&shared.clone().into_inner(), &url, secret, allowed);
    let description = if already {
        "Webhook is already set"
    } else {
        "Webhook was set"
    };
    HttpResponse::Ok().json(json!({"ok": true, "result": true, "description": description}))
}

fn delete_webhook(shared: &web::Data<Shared>, params: &Map<String, Value>) -> HttpResponse {
    let existed = {
        let mut state = shared.lock();
        state.hook_generation += 1;
        if bool_param(params, "drop_pending_updates") {
            state.updates.clear();
        }
        state.hook.take().is_some()
    };
    shared.changed.notify_waiters();
    let description = if existed {
        "Webhook was deleted"
    } else {
        "Webhook is already deleted"
    };
    HttpResponse::Ok().json(json!({"ok": true, "result": true, "description": description}))
}

/// Posts pending updates, oldest first, to the webhook of `generation` until it changes.
async fn deliver(shared: Arc<Shared>, generation: u64) {
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(WEBHOOK_TIMEOUT)
        .finish();
    let mut retry = WEBHOOK_RETRY;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if Arc::strong_count(&shared) <= 1 {
            // The emulator is gone.
            return;
        }
        let job = {
            let state = shared.lock();
            match &state.hook {
                Some(hook) if hook.generation == generation => state
                    .updates
                    .front()
                    .cloned()
                    .map(|u| (u, hook.url.clone(), hook.secret.clone())),
                _ => return,
            }
        };
        let Some((update, url, secret)) = job else {
            let _ = actix_web::rt::time::timeout(Duration::from_secs(1), notified).await;
            continue;
        };
        let mut request = client.post(&url);
        if let Some(secret) = &secret {
            request = request.insert_header((SECRET_HEADER, secret.as_str()));
        }
        let (status, failure) = match request.send_json(&update).await {
            Ok(response) if response.status().is_success() => {
                (Some(response.status().as_u16()), None)
            }
            Ok(response) => {
                let status = response.status();
                (
                    Some(status.as_u16()),
                    Some(format!(
                        "Wrong response from the webhook: {} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or_default()
                    )),
                )
            }
            Err(awc::error::SendRequestError::Timeout) => {
                (None, Some("Read timeout expired".to_string()))
            }
            Err(awc::error::SendRequestError::Connect(_)) => {
                (None, Some("Connection refused".to_string()))
            }
            Err(err) => (None, Some(err.to_string())),
        };
        {
            let mut state = shared.lock();
            let post = WebhookPost {
                update_id: update.update_id,
                url,
                status,
                error: failure.clone(),
                elapsed: shared.elapsed(),
            };
            state.posts.push(post);
            match &failure {
                None => state.updates.retain(|u| u.update_id != update.update_id),
                Some(message) => {
                    if let Some(hook) = state.hook.as_mut().filter(|h| h.generation == generation) {
                        hook.last_error_date = Some(unix_now());
                        hook.last_error_message = Some(message.clone());
                    }
                }
            }
        }
        if failure.is_some() {
            actix_web::rt::time::sleep(retry).await;
            retry = (retry * 2).min(Duration::from_secs(1));
        } else {
            retry = WEBHOOK_RETRY;
        }
    }
}

/// The chat a `chat_id` names: a known id, or `@username` of a known chat.
fn chat(state: &State, chat_id: &str) -> Option<Chat> {
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

/// Sends a message as Telegram would, or says why not (status and description).
fn process_send(
    shared: &Shared,
    chat_id: Option<&str>,
    text: Option<&str>,
    parse_mode: Option<&str>,
) -> Result<(Message, SentMessage, Option<Callback>), (u16, String)> {
    let refuse = |status: u16, description: &str| Err((status, description.to_string()));
    let mut state = shared.lock();
    let Some(chat_id) = chat_id.filter(|c| !c.trim().is_empty()) else {
        return refuse(400, "Bad Request: chat_id is empty");
    };
    let Some(chat) = chat(&state, chat_id) else {
        return refuse(400, "Bad Request: chat not found");
    };
    if state.blocked.contains(&chat.id) {
        return refuse(403, "Forbidden: bot was blocked by the user");
    }
    let text = text.unwrap_or_default();
    let parsed = match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => html::trimmed(text.to_string(), Vec::new()),
        Some("html") => match html::parse(text) {
            Ok(parsed) => parsed,
            Err(why) => return refuse(400, &format!("Bad Request: can't parse entities: {why}")),
        },
        Some(_) => return refuse(400, "Bad Request: unsupported parse_mode"),
    };
    if parsed.text.is_empty() {
        return refuse(400, "Bad Request: message text is empty");
    }
    if utf16_len(&parsed.text) > MAX_MESSAGE_UNITS {
        return refuse(400, "Bad Request: message is too long");
    }
    let next = state.next_message_id.entry(chat.id).or_insert(1);
    let message_id = *next;
    *next += 1;
    let sent = SentMessage {
        chat_id: chat.id,
        message_id,
        text: parsed.text.clone(),
        body: text.to_string(),
        parse_mode: parse_mode.map(str::to_string),
        entities: parsed.entities.clone(),
        elapsed: shared.elapsed(),
    };
    state.sent.push(sent.clone());
    let message = Message {
        message_id,
        from: Some(shared.bot.clone()),
        chat,
        date: unix_now(),
        text: Some(parsed.text),
        entities: parsed.entities,
        caption: None,
        caption_entities: Vec::new(),
        reply_to_message: None,
        photo: Vec::new(),
        document: None,
    };
    Ok((message, sent, state.on_message.clone()))
}

async fn send_message(shared: &web::Data<Shared>, params: &Map<String, Value>) -> HttpResponse {
    let chat_id = text_param(params, "chat_id");
    let text = text_param(params, "text");
    let parse_mode = text_param(params, "parse_mode");
    let mut attempt = Attempt {
        chat_id: chat_id.clone(),
        text: text.clone(),
        parse_mode: parse_mode.clone(),
        status: None,
        description: None,
        elapsed: shared.elapsed(),
    };
    let fault = shared.lock().faults.pop_front();
    let mut delay = None;
    let refused = match fault {
        Some(Fault::TooManyRequests { retry_after }) => Some((
            429,
            format!("Too Many Requests: retry after {retry_after}"),
            Some(retry_after),
        )),
        Some(Fault::ServerError) => Some((500, "Internal Server Error".to_string(), None)),
        Some(Fault::BadGateway) => {
            attempt.status = Some(502);
            attempt.description = Some("Bad Gateway".to_string());
            shared.lock().attempts.push(attempt);
            return HttpResponse::BadGateway()
                .content_type("text/html")
                .body("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>");
        }
        Some(Fault::Hang) => {
            shared.lock().attempts.push(attempt);
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            return error(500, "Internal Server Error");
        }
        Some(Fault::Delay(wait)) => {
            delay = Some(wait);
            None
        }
        None => None,
    };
    if let Some((status, description, retry_after)) = refused {
        attempt.status = Some(status);
        attempt.description = Some(description.clone());
        shared.lock().attempts.push(attempt);
        let mut body = json!({"ok": false, "error_code": status, "description": description});
        let mut response = HttpResponse::build(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        if let Some(secs) = retry_after {
            body["parameters"] = json!({"retry_after": secs});
            response.insert_header(("Retry-After", secs.to_string()));
        }
        return response.json(body);
    }
    let result = process_send(
        shared,
        chat_id.as_deref(),
        text.as_deref(),
        parse_mode.as_deref(),
    );
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

fn send_chat_action(shared: &Shared, params: &Map<String, Value>) -> HttpResponse {
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

#[cfg(test)]
mod tests;
