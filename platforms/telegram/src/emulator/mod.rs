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
//! chats); `sendMessageDraft` (Bot API 9.3: a reply shown while it is written, private chats
//! only, limited per chat as [`EmulatorConfig::draft_burst`] says); `sendChatAction`;
//! `sendPhoto`, `sendVoice`, `sendAudio`, `sendVideo` and `sendDocument` (multipart/form-data
//! uploads or a `file_id` or URL, with Telegram's caption and size limits); `getFile` (`Bad
//! Request: file is too big` over 20 MB), and file downloads of the bytes users sent from
//! `/file/bot<token>/<path>`.
//!
//! Tests play the users ([`Emulator::user_writes`], [`Emulator::write`] in groups,
//! [`Emulator::reply_to`], photos, documents, voice notes, audio and videos), script faults
//! ([`Fault`], and chats that blocked the bot with [`Emulator::block`]) and read back what
//! happened: messages sent, every send attempt, draft updates ([`Emulator::drafts`], the draft
//! a chat shows now with [`Emulator::showing`], and when text first became visible with
//! [`Emulator::first_visible`]), chat actions, `getUpdates` calls, webhook posts. Other
//! processes can read the same from `GET /_emulator/sent`, `/_emulator/attempts`,
//! `/_emulator/drafts`, `/_emulator/actions`, `/_emulator/polls`, `/_emulator/webhook_posts`,
//! `/_emulator/updates` and `/_emulator/downloads`.
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

use crate::types::{
    Chat, Document, File, Message, MessageEntity, PhotoSize, Recording, Update, User, WebhookInfo,
};

mod drafts;
mod files;
mod html;
mod media;
mod messages;
mod updates;
mod webhook;

use drafts::send_message_draft;
use files::{Stored, download, get_file};
use messages::{send_chat_action, send_message};
use updates::get_updates;
use webhook::{delete_webhook, set_hook, set_webhook, webhook_info};

pub use files::Download;
pub use html::{Parsed, parse as parse_html};
pub use media::SentFile;

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
    /// Draft updates a chat takes at once before the rate applies: each chat has a bucket of
    /// this many, refilled at [`EmulatorConfig::drafts_per_second`]; an update finding it empty
    /// is answered 429 with `retry_after`. Telegram publishes no figure for drafts (about one
    /// message a second per chat is its advice for messages); the default, 3 refilled at 2.5 a
    /// second, never refuses a client that keeps to 2 updates a second, and refuses one that
    /// sends 4 a second within 2 seconds.
    pub draft_burst: u32,
    /// How fast a chat's draft bucket refills, in updates per second.
    pub drafts_per_second: f64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            token: "7000000001:AAE-emulator-token_0123456789abcdefghij".to_string(),
            bot_id: 7_000_000_001,
            bot_username: "hermes_test_bot".to_string(),
            bot_name: "Hermes".to_string(),
            draft_burst: DRAFT_BURST,
            drafts_per_second: DRAFTS_PER_SECOND,
        }
    }
}

/// Largest request body read: room for a 50 MB upload (more than Telegram takes, so that the
/// emulator answers a larger one as Telegram does) and its multipart framing.
const PAYLOAD_LIMIT: usize = 52 * 1024 * 1024;
/// The default of [`EmulatorConfig::draft_burst`].
const DRAFT_BURST: u32 = 3;
/// The default of [`EmulatorConfig::drafts_per_second`].
const DRAFTS_PER_SECOND: f64 = 2.5;

impl EmulatorConfig {
    /// A bot with a random token (and the id in it), as `@username`.
    pub fn random(username: &str) -> Self {
        let bot_id = 7_000_000_000 + i64::from(rand::random::<u32>() % 1_000_000_000);
        EmulatorConfig {
            token: format!("{bot_id}:AA{:032x}", rand::random::<u128>()),
            bot_id,
            bot_username: username.to_string(),
            ..EmulatorConfig::default()
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

/// An audio file or video a user sends ([`Emulator::send_audio`], [`Emulator::send_video`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Recorded<'a> {
    /// Its name; `None` when the sender's app gave none (Telegram then leaves it out).
    pub file_name: Option<&'a str>,
    /// Its MIME type.
    pub mime_type: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
    /// The caption.
    pub caption: Option<&'a str>,
}

/// A PNG of `width` × `height` as far as Telegram reads it (the header): enough to be sent as
/// a photo.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(b"\x08\x02\x00\x00\x00pixels");
    png
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
    /// The file of a `sendPhoto`, `sendVoice`, `sendAudio`, `sendVideo` or `sendDocument`, whose
    /// caption `text` and `body` then are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<SentFile>,
    /// When it was sent, from the start of the emulator.
    pub elapsed: Duration,
}

/// A draft update the chat showed (`sendMessageDraft` answered 200): the reply being written,
/// until the next update of the chat, a message sent to it, or 30 seconds without update.
#[derive(Clone, Debug, Serialize)]
pub struct Draft {
    /// The chat (a private one).
    pub chat_id: i64,
    /// The `draft_id` parameter: one per reply being written.
    pub draft_id: i64,
    /// The `message_thread_id` parameter.
    pub message_thread_id: Option<i64>,
    /// What the chat shows: the text after the HTML was parsed, trimmed.
    pub text: String,
    /// The `text` parameter as sent.
    pub body: String,
    /// The `parse_mode` parameter.
    pub parse_mode: Option<String>,
    /// The formatting Telegram made of the HTML.
    pub entities: Vec<MessageEntity>,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// One send (`sendMessage` or a file's `sendPhoto` …; in [`Emulator::draft_attempts`],
/// `sendMessageDraft`) call, whatever the answer.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// The method called (`sendMessage`, `sendPhoto` …).
    pub method: String,
    /// The `chat_id` parameter.
    pub chat_id: Option<String>,
    /// The `text` parameter, or the `caption` of a file.
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

/// A scripted answer to the next send (`sendMessage`, or a file's `sendPhoto` …), in place of
/// normal processing.
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
/// Called with each draft update shown.
type DraftCallback = Arc<dyn Fn(&Draft) + Send + Sync>;

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
    /// What users sent, by `file_id`.
    files: HashMap<String, Stored>,
    downloads: Vec<Download>,
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
    drafts: Vec<Draft>,
    draft_attempts: Vec<Attempt>,
    /// The draft each chat shows now.
    showing: HashMap<i64, Draft>,
    /// Each chat's draft bucket: updates left, and when it was last refilled.
    draft_buckets: HashMap<i64, (f64, Instant)>,
    on_draft: Option<DraftCallback>,
}

struct Shared {
    token: String,
    bot: User,
    draft_burst: u32,
    drafts_per_second: f64,
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
            draft_burst: config.draft_burst,
            drafts_per_second: config.drafts_per_second,
            started: Instant::now(),
            state: Mutex::new(State {
                chats: HashMap::new(),
                next_message_id: HashMap::new(),
                next_update_id: 100_000 + i64::from(rand::random::<u16>()),
                updates: VecDeque::new(),
                files: HashMap::new(),
                downloads: Vec::new(),
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
                drafts: Vec::new(),
                draft_attempts: Vec::new(),
                showing: HashMap::new(),
                draft_buckets: HashMap::new(),
                on_draft: None,
            }),
            changed: Notify::new(),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = LoopbackServer::start(
            "telegram-emulator",
            listener,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone())
                    .app_data(web::PayloadConfig::new(PAYLOAD_LIMIT))
                    .route("/_emulator/sent", web::get().to(read_sent))
                    .route("/_emulator/attempts", web::get().to(read_attempts))
                    .route("/_emulator/drafts", web::get().to(read_drafts))
                    .route("/_emulator/actions", web::get().to(read_actions))
                    .route("/_emulator/polls", web::get().to(read_polls))
                    .route("/_emulator/webhook_posts", web::get().to(read_posts))
                    .route("/_emulator/updates", web::get().to(read_updates))
                    .route("/_emulator/downloads", web::get().to(read_downloads))
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
            text: Some(text.to_string()),
            entities: entities(text),
            ..Message::new(0, Some(person.user()), chat.clone(), unix_now())
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
            text: Some(sent.text.clone()),
            entities: sent.entities.clone(),
            ..Message::new(
                sent.message_id,
                Some(self.shared.bot.clone()),
                chat.clone(),
                unix_now(),
            )
        };
        self.write_with(&chat, person, text, |m| {
            m.reply_to_message = Some(Box::new(original));
        })
    }

    /// `person` sends a photo (three sizes, with placeholder bytes) to `chat`, with an optional
    /// caption.
    pub fn send_photo(&self, chat: &Chat, person: &Person, caption: Option<&str>) -> Update {
        let sizes: Vec<PhotoSize> = [(90, 67), (320, 240), (1280, 960)]
            .iter()
            .map(|&(width, height)| self.photo_size(width, height, None))
            .collect();
        self.with_media(chat, person, caption, |m| m.photo = sizes)
    }

    /// `person` sends a photo to `chat`: each of `sizes` (width, height, JPEG bytes; smallest
    /// first, as Telegram lists them) becomes one entry of the message's `photo`, downloadable
    /// as those bytes.
    pub fn send_photo_sizes(
        &self,
        chat: &Chat,
        person: &Person,
        sizes: &[(u32, u32, &[u8])],
        caption: Option<&str>,
    ) -> Update {
        let sizes: Vec<PhotoSize> = sizes
            .iter()
            .map(|&(width, height, bytes)| self.photo_size(width, height, Some(bytes)))
            .collect();
        self.with_media(chat, person, caption, |m| m.photo = sizes)
    }

    fn photo_size(&self, width: u32, height: u32, bytes: Option<&[u8]>) -> PhotoSize {
        let file = self.add_file("photos", "jpg", bytes);
        PhotoSize {
            file_id: file.file_id,
            file_unique_id: file.file_unique_id,
            width,
            height,
            file_size: file.file_size,
        }
    }

    /// `person` sends a file (with placeholder bytes) to `chat`, with an optional caption.
    pub fn send_document(
        &self,
        chat: &Chat,
        person: &Person,
        file_name: &str,
        mime_type: &str,
        caption: Option<&str>,
    ) -> Update {
        self.document(chat, person, file_name, mime_type, None, caption)
    }

    /// `person` sends `bytes` as a file to `chat`, with an optional caption. Over 20 MB,
    /// `getFile` refuses it with `Bad Request: file is too big`, as the Bot API does.
    pub fn send_file(
        &self,
        chat: &Chat,
        person: &Person,
        file_name: &str,
        mime_type: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Update {
        self.document(chat, person, file_name, mime_type, Some(bytes), caption)
    }

    fn document(
        &self,
        chat: &Chat,
        person: &Person,
        file_name: &str,
        mime_type: &str,
        bytes: Option<&[u8]>,
        caption: Option<&str>,
    ) -> Update {
        let extension = file_name.rsplit('.').next().unwrap_or("bin");
        let file = self.add_file("documents", extension, bytes);
        let document = Document {
            file_id: file.file_id,
            file_unique_id: file.file_unique_id,
            file_name: Some(file_name.to_string()),
            mime_type: Some(mime_type.to_string()),
            file_size: file.file_size,
        };
        self.with_media(chat, person, caption, |m| m.document = Some(document))
    }

    /// `person` sends a voice note (`bytes`, OGG/Opus, `duration` seconds) to `chat`. Telegram
    /// gives a voice note no file name, and `audio/ogg` as its type.
    pub fn send_voice(&self, chat: &Chat, person: &Person, bytes: &[u8], duration: u32) -> Update {
        let voice = self.recording("voice", None, "audio/ogg", bytes, duration);
        self.with_media(chat, person, None, |m| m.voice = Some(voice))
    }

    /// `person` sends an audio file (music) to `chat`, with an optional caption; `file_name`
    /// is absent when the sender's app gave none, as Telegram then leaves it out.
    pub fn send_audio(&self, chat: &Chat, person: &Person, file: Recorded<'_>) -> Update {
        let audio = self.recording("music", file.file_name, file.mime_type, file.bytes, 1);
        self.with_media(chat, person, file.caption, |m| m.audio = Some(audio))
    }

    /// `person` sends a video to `chat`, with an optional caption.
    pub fn send_video(&self, chat: &Chat, person: &Person, file: Recorded<'_>) -> Update {
        let video = self.recording("videos", file.file_name, file.mime_type, file.bytes, 1);
        self.with_media(chat, person, file.caption, |m| m.video = Some(video))
    }

    fn recording(
        &self,
        folder: &str,
        file_name: Option<&str>,
        mime_type: &str,
        bytes: &[u8],
        duration: u32,
    ) -> Recording {
        let extension = file_name
            .and_then(|name| name.rsplit_once('.'))
            .map(|(_, extension)| extension)
            .or_else(|| mime_type.split_once('/').map(|(_, subtype)| subtype))
            .unwrap_or("bin");
        let file = self.add_file(folder, extension, Some(bytes));
        Recording {
            file: Document {
                file_id: file.file_id,
                file_unique_id: file.file_unique_id,
                file_name: file_name.map(str::to_string),
                mime_type: Some(mime_type.to_string()),
                file_size: file.file_size,
            },
            duration,
        }
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

    /// Stores a file a user sent: `bytes`, or a placeholder text naming its path.
    fn add_file(&self, folder: &str, extension: &str, bytes: Option<&[u8]>) -> File {
        let mut state = self.shared.lock();
        let n = state.next_file;
        state.next_file += 1;
        let path = format!("{folder}/file_{n}.{extension}");
        let bytes: Arc<[u8]> = match bytes {
            Some(bytes) => Arc::from(bytes),
            None => Arc::from(format!("emulated content of {path}").into_bytes()),
        };
        let file = File {
            file_id: format!("AgAC{:024x}", rand::random::<u128>() >> 32),
            file_unique_id: format!("AQAD{n:08}"),
            file_size: Some(bytes.len() as u64),
            file_path: Some(path),
        };
        let stored = Stored {
            file: file.clone(),
            bytes,
        };
        state.files.insert(file.file_id.clone(), stored);
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

    /// Queues a scripted answer; each send (`sendMessage`, or a file's `sendPhoto` …) with the
    /// right token takes one.
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

    /// Every send (`sendMessage`, or a file's `sendPhoto` …), in order, whatever the answer.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// Every draft update shown, in order.
    pub fn drafts(&self) -> Vec<Draft> {
        self.shared.lock().drafts.clone()
    }

    /// The draft updates shown in `chat_id`, in order.
    pub fn drafts_to(&self, chat_id: i64) -> Vec<Draft> {
        let state = self.shared.lock();
        state
            .drafts
            .iter()
            .filter(|d| d.chat_id == chat_id)
            .cloned()
            .collect()
    }

    /// Waits until at least `n` draft updates were shown or `timeout` passes; returns them all.
    pub fn wait_for_drafts(&self, n: usize, timeout: Duration) -> Vec<Draft> {
        wait_for(n, timeout, || self.drafts())
    }

    /// Every `sendMessageDraft` call, in order, whatever the answer.
    pub fn draft_attempts(&self) -> Vec<Attempt> {
        self.shared.lock().draft_attempts.clone()
    }

    /// The draft `chat_id` shows now: the last update, unless a message was sent to the chat
    /// since or it is older than Telegram keeps a draft (30 seconds).
    pub fn showing(&self, chat_id: i64) -> Option<Draft> {
        let state = self.shared.lock();
        let draft = state.showing.get(&chat_id)?;
        (self.shared.elapsed().saturating_sub(draft.elapsed) < DRAFT_LIFETIME)
            .then(|| draft.clone())
    }

    /// When text first became visible in `chat_id` at or after `since`: the first draft
    /// update or message sent there, whichever came first.
    pub fn first_visible(&self, chat_id: i64, since: Instant) -> Option<Instant> {
        let started = self.shared.started;
        let state = self.shared.lock();
        let drafts = state
            .drafts
            .iter()
            .filter(|d| d.chat_id == chat_id)
            .map(|d| d.elapsed);
        let sent = state
            .sent
            .iter()
            .filter(|m| m.chat_id == chat_id)
            .map(|m| m.elapsed);
        drafts
            .chain(sent)
            .map(|at| started + at)
            .filter(|&at| at >= since)
            .min()
    }

    /// Sets the function called (on the server's thread) with each draft update shown.
    pub fn set_on_draft(&self, f: Box<dyn Fn(&Draft) + Send + Sync>) {
        self.shared.lock().on_draft = Some(Arc::from(f));
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

    /// Every request for a file download, in order, whatever the answer.
    pub fn downloads(&self) -> Vec<Download> {
        self.shared.lock().downloads.clone()
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

/// How long Telegram shows a draft that is not updated.
const DRAFT_LIFETIME: Duration = Duration::from_secs(30);

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

async fn read_drafts(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().drafts)
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

async fn read_downloads(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().downloads)
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
    let parsed = if media::is_multipart(&req) {
        match params(&req, &[]) {
            Ok(query) => media::multipart(&req, body, query).await,
            Err(why) => Err(why),
        }
    } else {
        params(&req, &body).map(|params| (params, Vec::new()))
    };
    let (params, uploads) = match parsed {
        Ok(parsed) => parsed,
        Err(why) => return error(400, &format!("Bad Request: {why}")),
    };
    let method = method.to_ascii_lowercase();
    if let Some(kind) = media::Kind::of_method(&method) {
        return media::send_media(&shared, kind, &params, &uploads).await;
    }
    match method.as_str() {
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
        "sendmessagedraft" => send_message_draft(&shared, &params),
        "sendchataction" => send_chat_action(&shared, &params),
        "getfile" => get_file(&shared, &params),
        _ => error(404, "Not Found"),
    }
}

#[cfg(test)]
mod tests;
