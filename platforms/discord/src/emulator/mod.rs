//! A loopback emulator of the parts of Discord that the gateway uses: the REST API (v10) and the
//! gateway WebSocket, on `127.0.0.1`, in a thread of its own.
//!
//! - The REST API: `GET /gateway/bot`, `GET /users/@me`, `GET /applications/@me`,
//!   `GET /channels/{id}`, `POST /channels/{id}/messages` (validated as Discord does: empty,
//!   over 2,000 characters, unknown channel, a user who does not take the bot's DMs), `PATCH
//!   /channels/{id}/messages/{id}` (the bot's own messages only, the same content checks,
//!   unknown message), `GET /channels/{id}/messages?after=&limit=` and `POST
//!   /channels/{id}/typing`, all under `/api/v10` and behind `Authorization: Bot <token>`;
//!   message creation and edits carry Discord's rate-limit headers (a bucket per route and
//!   channel, [`EmulatorConfig::messages_per_window`], [`EmulatorConfig::edits_per_window`])
//!   and answer 429 when the bucket is empty or a [`Fault`] says so.
//! - The gateway (`/gateway`; sessions resume on `/gateway-resume`): Hello with
//!   [`EmulatorConfig::heartbeat_interval`], heartbeat acknowledgements, Identify checked (token:
//!   close 4004; intents: 4013, or 4014 when the Message Content Intent is asked for and not
//!   enabled), READY, numbered dispatches, Resume replaying what the client missed (op 9 for an
//!   unknown session), and on command a dropped socket, silence instead of acknowledgements,
//!   a heartbeat request (op 1), Reconnect (op 7), Invalid Session (op 9) and any close code.
//!
//! - Attachments, both ways: a user's files ([`Post::attach`], [`Post::voice`]) and the bot's
//!   uploads (multipart `payload_json` and `files[n]`, at most [`MAX_FILES`] files of at most
//!   [`MAX_UPLOAD_BYTES`]; a voice message checked as Discord checks one) become Discord's
//!   attachment objects, whose signed URLs the emulator
//!   serves under `/attachments/` until they expire ([`Emulator::expire_attachments`]),
//!   recording each download ([`Emulator::downloads`]).
//!
//! Tests play users with [`Emulator::post`] (a direct message, a guild message with or without
//! a mention, a reply to the bot, files): each becomes a `MESSAGE_CREATE` for the bot's
//! session. While no socket is connected, events wait for the session and are delivered when
//! it resumes (or, before any session, to the first one), so a dropped socket loses nothing.
//! Read-backs: [`Emulator::messages`] (what the bot created, as it reads now),
//! [`Emulator::attempts`] (every create, with its answer), [`Emulator::edits`] and
//! [`Emulator::edit_attempts`], [`Emulator::versions`] (a message's text after each change),
//! [`Emulator::first_visible`], [`Emulator::typing`] and the gateway counters
//! ([`Emulator::counters`]).
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::web;
use platform_api::loopback::LoopbackServer;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::types::{DISCORD_EPOCH_MS, IS_VOICE_MESSAGE, app_flags};
pub use files::{Download, MAX_FILES, MAX_UPLOAD_BYTES, PostedFile, SentFile, Voice};

mod files;
mod gateway;
mod rest;
#[cfg(test)]
mod tests;

/// The emulated bot, its application and its limits.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The bot token every call and Identify must carry.
    pub token: String,
    /// The bot's user id (also its application's id).
    pub bot_id: String,
    /// The bot's user name.
    pub bot_name: String,
    /// Whether the application has the Message Content Intent enabled; without it, an Identify
    /// asking for it is closed with 4014.
    pub message_content_intent: bool,
    /// The heartbeat interval Hello announces.
    pub heartbeat_interval: Duration,
    /// Messages the bot may create per channel per [`EmulatorConfig::window`].
    pub messages_per_window: u32,
    /// Edits of its messages the bot may make per channel per [`EmulatorConfig::window`],
    /// in a bucket of their own.
    pub edits_per_window: u32,
    /// The length of a rate-limit window.
    pub window: Duration,
}

impl EmulatorConfig {
    /// A bot with `token`, the Message Content Intent enabled, Discord's heartbeat interval
    /// (41.25 s) and its message rate limits (5 creations per channel per 5 s, and 5 edits:
    /// Discord publishes no figure for edits; its headers tell a client the bucket it is in).
    pub fn new(token: &str) -> EmulatorConfig {
        EmulatorConfig {
            token: token.to_string(),
            bot_id: "1100000000000000001".to_string(),
            bot_name: "hermes".to_string(),
            message_content_intent: true,
            heartbeat_interval: Duration::from_millis(41_250),
            messages_per_window: 5,
            edits_per_window: 5,
            window: Duration::from_secs(5),
        }
    }
}

/// The guild (server) every emulated guild channel belongs to.
pub const GUILD_ID: &str = "1200000000000000001";
/// The guild's `#general` channel, which always exists.
pub const GENERAL_CHANNEL: &str = "1300000000000000001";

/// A message the bot created through the REST API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedMessage {
    /// Its snowflake.
    pub id: String,
    /// The channel it is in.
    pub channel_id: String,
    /// Its text now (after the edits; [`Emulator::versions`] has each).
    pub content: String,
    /// When it was created.
    #[serde(skip)]
    pub at: SystemTime,
    /// When it was created, from the start of the emulator: when its first text became
    /// visible.
    pub elapsed: Duration,
    /// The files uploaded with it, in order.
    pub files: Vec<SentFile>,
}

/// One edit of a bot's message that Discord accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edit {
    /// The message edited.
    pub message_id: String,
    /// Its channel.
    pub channel_id: String,
    /// Its text after the edit.
    pub content: String,
    /// When it was edited.
    #[serde(skip)]
    pub at: SystemTime,
    /// When the edit arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// A message's text from one change to the next: as created, then after each edit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The text.
    pub content: String,
    /// When it became visible, from the start of the emulator.
    pub elapsed: Duration,
}

/// One `POST /channels/{id}/messages` (or, in [`Emulator::edit_attempts`], `PATCH
/// /channels/{id}/messages/{id}`) that passed authentication, with its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The channel in the path.
    pub channel_id: String,
    /// The message in the path, for an edit.
    pub message_id: Option<String>,
    /// The `content` of the body, when there was one.
    pub content: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// Discord's error code, when it failed.
    pub code: Option<i64>,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// One `POST /channels/{id}/typing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypingCall {
    /// The channel.
    pub channel_id: String,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// What the gateway side has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// WebSocket connections opened.
    pub connections: u32,
    /// Identify payloads accepted (new sessions).
    pub identifies: u32,
    /// Resume payloads that resumed a session.
    pub resumes: u32,
    /// Resume payloads for an unknown or invalidated session.
    pub failed_resumes: u32,
    /// Heartbeats received.
    pub heartbeats: u32,
    /// Connections opened on the resume URL.
    pub resume_url_connections: u32,
    /// Close codes the client sent, in order.
    pub client_close_codes: Vec<u16>,
}

/// A scripted answer to the next message creation (or edit, [`Emulator::push_edit_fault`]), in
/// place of normal processing.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// 429 with `retry_after` (seconds) in the body and `Retry-After` rounded up.
    RateLimited {
        /// Seconds to wait.
        retry_after: f64,
        /// Whether it is the global limit.
        global: bool,
    },
    /// 500 Internal Server Error.
    ServerError,
    /// 502 Bad Gateway with Cloudflare's HTML page.
    BadGateway,
    /// Create (or edit) the message, but answer only after this long (a client that times out
    /// first cannot know it happened).
    AcceptThenDelay(Duration),
}

/// What a user posts: build it with [`Post::dm`] or [`Post::guild`] and refine it.
#[derive(Clone, Debug)]
pub struct Post {
    /// The author's user id.
    pub author: String,
    /// Whether the author is a bot.
    pub author_bot: bool,
    /// The guild channel, or `None` for a direct message to the bot.
    pub channel: Option<String>,
    /// The text, as the user typed it (a mention is added by [`Post::mention`]).
    pub content: String,
    /// Whether the message mentions the bot (`<@bot>` first, and in `mentions`).
    pub mention: bool,
    /// The id of a message it replies to.
    pub reply_to: Option<String>,
    /// Attached files.
    pub attachments: Vec<PostedFile>,
}

impl Post {
    /// A direct message from `user` to the bot.
    pub fn dm(user: &str, text: &str) -> Post {
        Post {
            author: user.to_string(),
            author_bot: false,
            channel: None,
            content: text.to_string(),
            mention: false,
            reply_to: None,
            attachments: Vec::new(),
        }
    }

    /// A message from `user` in a guild channel, not addressed to the bot.
    pub fn guild(user: &str, channel: &str, text: &str) -> Post {
        Post {
            channel: Some(channel.to_string()),
            ..Post::dm(user, text)
        }
    }

    /// Mentions the bot.
    pub fn mention(mut self) -> Post {
        self.mention = true;
        self
    }

    /// Replies to the message `id`.
    pub fn reply_to(mut self, id: &str) -> Post {
        self.reply_to = Some(id.to_string());
        self
    }

    /// Attaches a file: its name, media type and bytes.
    pub fn attach(mut self, filename: &str, content_type: Option<&str>, bytes: &[u8]) -> Post {
        self.attachments.push(PostedFile {
            filename: filename.to_string(),
            content_type: content_type.map(str::to_string),
            bytes: bytes.to_vec(),
            voice: None,
        });
        self
    }

    /// Attaches a voice message, as Discord's clients record them (`voice-message.ogg`,
    /// `audio/ogg`); the message gets the voice message flag.
    pub fn voice(mut self, bytes: &[u8], voice: Voice) -> Post {
        self.attachments.push(PostedFile {
            filename: "voice-message.ogg".to_string(),
            content_type: Some("audio/ogg".to_string()),
            bytes: bytes.to_vec(),
            voice: Some(voice),
        });
        self
    }

    /// Makes the author a bot.
    pub fn from_bot(mut self) -> Post {
        self.author_bot = true;
        self
    }
}

/// What the server sends on one connection, in order.
#[derive(Clone, Debug)]
enum Out {
    /// A payload.
    Text(String),
    /// A close frame with this code and reason, then the end.
    Close(u16, &'static str),
    /// The end, without a close frame.
    Drop,
    /// Stop acknowledging heartbeats.
    StopAcking,
}

struct Connection {
    tx: UnboundedSender<Out>,
    session: Option<String>,
}

struct SessionLog {
    /// The last sequence number used.
    seq: u64,
    /// Every dispatch, by sequence number.
    events: Vec<(u64, String)>,
    /// The connection it is attached to.
    connection: Option<u64>,
}

/// A stored message, as Discord's API shows it.
#[derive(Clone)]
struct Stored {
    id: u64,
    channel_id: String,
    json: Value,
}

struct Channel {
    name: Option<String>,
    /// The user at the other end of a direct message channel.
    recipient: Option<String>,
}

/// Called with each message the bot creates.
type Callback = Arc<dyn Fn(&CreatedMessage) + Send + Sync>;
/// Called with each edit the bot makes.
type EditCallback = Arc<dyn Fn(&Edit) + Send + Sync>;

struct State {
    message_content_intent: bool,
    sessions: HashMap<String, SessionLog>,
    /// The session new events go to.
    current: Option<String>,
    /// Events waiting for a session (before any, or after an invalidation).
    pending: Vec<(String, Value)>,
    connections: HashMap<u64, Connection>,
    next_connection: u64,
    counters: Counters,
    last_snowflake: u64,
    channels: HashMap<String, Channel>,
    dm_channels: HashMap<String, String>,
    blocked: HashSet<String>,
    stored: Vec<Stored>,
    created: Vec<CreatedMessage>,
    /// Messages created with `enforce_nonce`, by channel and nonce, with when.
    nonces: HashMap<(String, String), (u64, Instant)>,
    attempts: Vec<Attempt>,
    typing: Vec<TypingCall>,
    /// Calls counted per route and channel in the current window, and when it ends.
    buckets: HashMap<(rest::Route, String), (u32, Instant)>,
    faults: VecDeque<Fault>,
    on_message: Option<Callback>,
    edits: Vec<Edit>,
    edit_attempts: Vec<Attempt>,
    edit_faults: VecDeque<Fault>,
    /// Each bot message's text after each change, by id.
    versions: HashMap<String, Vec<Version>>,
    on_edit: Option<EditCallback>,
    /// The files served under `/attachments/`, by attachment id.
    files: HashMap<u64, files::Hosted>,
    downloads: Vec<Download>,
}

struct Shared {
    config: EmulatorConfig,
    addr: SocketAddr,
    started: Instant,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bot_user(&self) -> Value {
        json!({
            "id": self.config.bot_id,
            "username": self.config.bot_name,
            "global_name": null,
            "discriminator": "0",
            "avatar": null,
            "bot": true,
            "flags": 0,
        })
    }

    fn app_flags(&self, state: &State) -> u64 {
        if state.message_content_intent {
            app_flags::GATEWAY_MESSAGE_CONTENT_LIMITED
        } else {
            0
        }
    }
}

impl State {
    /// A new snowflake for now, greater than every one before.
    fn snowflake(&mut self) -> u64 {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            .saturating_sub(DISCORD_EPOCH_MS);
        let id = (ms << 22).max(self.last_snowflake + 1);
        self.last_snowflake = id;
        id
    }

    /// The direct message channel with `user`, created on first use.
    fn dm_channel(&mut self, user: &str) -> String {
        if let Some(channel) = self.dm_channels.get(user) {
            return channel.clone();
        }
        let id = self.snowflake().to_string();
        self.channels.insert(
            id.clone(),
            Channel {
                name: None,
                recipient: Some(user.to_string()),
            },
        );
        self.dm_channels.insert(user.to_string(), id.clone());
        id
    }

    /// Sends `text` on a connection (dropped when it has ended).
    fn send_to(&self, connection: u64, out: Out) {
        if let Some(connection) = self.connections.get(&connection) {
            let _ = connection.tx.send(out);
        }
    }

    /// Numbers a dispatch for the current session and sends it when connected; without a
    /// session it waits for the next one.
    fn dispatch(&mut self, event: &str, data: Value) {
        let Some(id) = self.current.clone() else {
            self.pending.push((event.to_string(), data));
            return;
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            self.pending.push((event.to_string(), data));
            return;
        };
        session.seq += 1;
        let seq = session.seq;
        let text = json!({"op": 0, "t": event, "s": seq, "d": data}).to_string();
        session.events.push((seq, text.clone()));
        if let Some(connection) = session.connection {
            self.send_to(connection, Out::Text(text));
        }
    }

    /// Sends `out` to every open connection.
    fn broadcast(&self, out: Out) {
        for connection in self.connections.values() {
            let _ = connection.tx.send(out.clone());
        }
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
            .field("api_base_url", &self.api_base_url())
            .field("bot_id", &self.shared.config.bot_id)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts serving on `127.0.0.1` (a free port) in a thread of its own; returns once listening.
    pub fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let mut channels = HashMap::new();
        channels.insert(
            GENERAL_CHANNEL.to_string(),
            Channel {
                name: Some("general".to_string()),
                recipient: None,
            },
        );
        let shared = Arc::new(Shared {
            addr,
            started: Instant::now(),
            state: Mutex::new(State {
                message_content_intent: config.message_content_intent,
                sessions: HashMap::new(),
                current: None,
                pending: Vec::new(),
                connections: HashMap::new(),
                next_connection: 1,
                counters: Counters::default(),
                last_snowflake: 0,
                channels,
                dm_channels: HashMap::new(),
                blocked: HashSet::new(),
                stored: Vec::new(),
                created: Vec::new(),
                nonces: HashMap::new(),
                attempts: Vec::new(),
                typing: Vec::new(),
                buckets: HashMap::new(),
                faults: VecDeque::new(),
                on_message: None,
                edits: Vec::new(),
                edit_attempts: Vec::new(),
                edit_faults: VecDeque::new(),
                versions: HashMap::new(),
                on_edit: None,
                files: HashMap::new(),
                downloads: Vec::new(),
            }),
            config,
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = LoopbackServer::start(
            "discord-emulator",
            listener,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone())
                    // Room for a message's files at the upload limit, so that the API, not the
                    // framework, answers one over it.
                    .app_data(web::PayloadConfig::new((MAX_FILES + 1) * MAX_UPLOAD_BYTES))
                    .route("/gateway", web::get().to(gateway::connect))
                    .route(
                        "/attachments/{channel}/{id}/{filename}",
                        web::get().to(files::download),
                    )
                    .route("/gateway-resume", web::get().to(gateway::connect))
                    .default_service(web::to(rest::api));
            },
        )?;
        Ok(Emulator {
            shared,
            server: Arc::new(server),
        })
    }

    /// The REST API's base URL, for `DISCORD_API_BASE_URL`: `http://127.0.0.1:PORT/api/v10`.
    pub fn api_base_url(&self) -> String {
        format!("http://{}/api/v10", self.shared.addr)
    }

    /// The gateway's URL, as `GET /gateway/bot` names it: `ws://127.0.0.1:PORT/gateway`.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.shared.addr)
    }

    /// The bot token.
    pub fn token(&self) -> String {
        self.shared.config.token.clone()
    }

    /// The bot's user id.
    pub fn bot_id(&self) -> String {
        self.shared.config.bot_id.clone()
    }

    /// Stops the server, dropping open connections; waits (a few seconds at most) for it to end.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Posts a message as a user: it is stored in its channel and dispatched to the bot as
    /// `MESSAGE_CREATE`. Returns the message's id.
    pub fn post(&self, post: Post) -> String {
        let shared = &self.shared;
        let mut state = shared.lock();
        let id = state.snowflake();
        let (channel, guild) = match &post.channel {
            Some(channel) => (channel.clone(), Some(GUILD_ID)),
            None => (state.dm_channel(&post.author), None),
        };
        let author = json!({
            "id": post.author,
            "username": format!("user-{}", post.author),
            "global_name": null,
            "discriminator": "0",
            "avatar": null,
            "bot": post.author_bot,
        });
        let mut content = post.content.clone();
        let mut mentions = Vec::new();
        if post.mention {
            content = format!("<@{}> {content}", shared.config.bot_id);
            mentions.push(shared.bot_user());
        }
        let referenced = post.reply_to.as_ref().and_then(|reply_to| {
            state
                .stored
                .iter()
                .find(|m| m.id.to_string() == *reply_to)
                .map(|m| m.json.clone())
        });
        let attachments: Vec<Value> = post
            .attachments
            .iter()
            .map(|file| state.host(shared, &channel, &files::Upload::from(file)))
            .collect();
        let voice = post.attachments.iter().any(|file| file.voice.is_some());
        let mut message = json!({
            "id": id.to_string(),
            "channel_id": channel,
            "author": author,
            "content": content,
            "timestamp": timestamp(SystemTime::now()),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "pinned": false,
            "type": if referenced.is_some() { 19 } else { 0 },
            "flags": if voice { IS_VOICE_MESSAGE } else { 0 },
        });
        if let Some(referenced) = &referenced {
            message["message_reference"] = json!({
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
            });
            message["referenced_message"] = referenced.clone();
        }
        if let Some(guild) = guild {
            message["guild_id"] = json!(guild);
            message["member"] = json!({"roles": [], "joined_at": timestamp(SystemTime::now())});
        }
        state.stored.push(Stored {
            id,
            channel_id: channel,
            json: message.clone(),
        });
        state.dispatch("MESSAGE_CREATE", message);
        id.to_string()
    }

    /// A direct message from `user`; returns its id.
    pub fn dm(&self, user: &str, text: &str) -> String {
        self.post(Post::dm(user, text))
    }

    /// The direct message channel between the bot and `user` (created on first use).
    pub fn dm_channel(&self, user: &str) -> String {
        self.shared.lock().dm_channel(user)
    }

    /// Adds a guild channel named `name`; returns its id.
    pub fn add_channel(&self, name: &str) -> String {
        let mut state = self.shared.lock();
        let id = state.snowflake().to_string();
        state.channels.insert(
            id.clone(),
            Channel {
                name: Some(name.to_string()),
                recipient: None,
            },
        );
        id
    }

    /// `user` no longer accepts the bot's direct messages: creating one answers 403, code 50007.
    pub fn block_dms(&self, user: &str) {
        self.shared.lock().blocked.insert(user.to_string());
    }

    /// Turns the application's Message Content Intent on or off.
    pub fn set_message_content_intent(&self, enabled: bool) {
        self.shared.lock().message_content_intent = enabled;
    }

    /// Queues a scripted answer; each message creation that passes authentication takes one.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Queues a scripted answer; each message edit that passes authentication takes one.
    pub fn push_edit_fault(&self, fault: Fault) {
        self.shared.lock().edit_faults.push_back(fault);
    }

    /// Drops every open gateway socket without a close frame, as a network failure would.
    pub fn drop_sockets(&self) {
        self.shared.lock().broadcast(Out::Drop);
    }

    /// Open gateway sockets stop acknowledging heartbeats (new ones acknowledge again).
    pub fn stop_acking(&self) {
        self.shared.lock().broadcast(Out::StopAcking);
    }

    /// Asks every open socket for a heartbeat at once (op 1 from the server).
    pub fn request_heartbeat(&self) {
        let text = json!({"op": 1, "d": null}).to_string();
        self.shared.lock().broadcast(Out::Text(text));
    }

    /// Sends Reconnect (op 7) on every open socket.
    pub fn request_reconnect(&self) {
        let text = json!({"op": 7, "d": null}).to_string();
        self.shared.lock().broadcast(Out::Text(text));
    }

    /// Sends Invalid Session (op 9) on every open socket; unless `resumable`, the current
    /// session is forgotten (a Resume of it is refused) and new events wait for the next one.
    pub fn invalidate_session(&self, resumable: bool) {
        let mut state = self.shared.lock();
        let forgotten = if resumable {
            None
        } else {
            state.current.take()
        };
        if let Some(id) = forgotten {
            state.sessions.remove(&id);
        }
        let text = json!({"op": 9, "d": resumable}).to_string();
        state.broadcast(Out::Text(text));
    }

    /// Closes every open socket with `code` (4014 for disallowed intents, …).
    pub fn close_sockets(&self, code: u16) {
        self.shared
            .lock()
            .broadcast(Out::Close(code, "Closed by the emulator."));
    }

    /// The gateway counters.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    /// Whether a socket is attached to a live session (READY or RESUMED was sent).
    pub fn connected(&self) -> bool {
        let state = self.shared.lock();
        state
            .current
            .as_ref()
            .and_then(|id| state.sessions.get(id))
            .is_some_and(|session| session.connection.is_some())
    }

    /// Waits until `check` holds or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, check: impl Fn(&Emulator) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every message the bot created, in order.
    pub fn messages(&self) -> Vec<CreatedMessage> {
        self.shared.lock().created.clone()
    }

    /// Waits until the bot created at least `n` messages or `timeout` passes; returns them all.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<CreatedMessage> {
        self.wait_until(timeout, |e| e.messages().len() >= n);
        self.messages()
    }

    /// Every message creation that passed authentication, in order, whatever the answer.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// Every edit the bot made, in order.
    pub fn edits(&self) -> Vec<Edit> {
        self.shared.lock().edits.clone()
    }

    /// Waits until the bot made at least `n` edits or `timeout` passes; returns them all.
    pub fn wait_for_edits(&self, n: usize, timeout: Duration) -> Vec<Edit> {
        self.wait_until(timeout, |e| e.edits().len() >= n);
        self.edits()
    }

    /// Every message edit that passed authentication, in order, whatever the answer.
    pub fn edit_attempts(&self) -> Vec<Attempt> {
        self.shared.lock().edit_attempts.clone()
    }

    /// The text of the bot's message `id` after each change: as created, then after each edit.
    pub fn versions(&self, id: &str) -> Vec<Version> {
        self.shared
            .lock()
            .versions
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// When text first became visible in `channel_id` at or after `since`: the first message
    /// the bot created there (an edit changes text already shown).
    pub fn first_visible(&self, channel_id: &str, since: Instant) -> Option<Instant> {
        let started = self.shared.started;
        let state = self.shared.lock();
        state
            .created
            .iter()
            .filter(|m| m.channel_id == channel_id)
            .map(|m| started + m.elapsed)
            .find(|&at| at >= since)
    }

    /// Sets the function called (on the server's thread) with each edit the bot makes.
    pub fn set_on_edit(&self, f: Box<dyn Fn(&Edit) + Send + Sync>) {
        self.shared.lock().on_edit = Some(Arc::from(f));
    }

    /// Every typing indicator the bot showed, in order.
    pub fn typing(&self) -> Vec<TypingCall> {
        self.shared.lock().typing.clone()
    }

    /// Every request for an attachment's bytes, in order, whatever the answer.
    pub fn downloads(&self) -> Vec<Download> {
        self.shared.lock().downloads.clone()
    }

    /// Makes every attachment URL handed out so far expired: the CDN answers 404 for them.
    pub fn expire_attachments(&self) {
        let now = SystemTime::now();
        for file in self.shared.lock().files.values_mut() {
            file.expires = now;
        }
    }

    /// Sets the function called (on the server's thread) with each message the bot creates.
    pub fn set_on_message(&self, f: Box<dyn Fn(&CreatedMessage) + Send + Sync>) {
        self.shared.lock().on_message = Some(Arc::from(f));
    }
}

/// An ISO 8601 timestamp as Discord writes them: `2026-05-04T10:20:30.123000+00:00`.
fn timestamp(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// A random session id: 32 hex digits, as Discord's look.
fn session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
