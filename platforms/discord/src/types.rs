//! The parts of Discord's data model (API v10) that the gateway reads, and snowflake arithmetic.
//!
//! These are hand-written structs holding only the fields used, rather than `twilight-model`:
//! that crate models all of Discord (thousands of types) and would add minutes to every clean
//! build on a two-core CI for the dozen fields read here; unknown fields are ignored, so new
//! ones Discord adds cannot break parsing. The emulator ([`crate::emulator`], feature
//! `emulator`) writes the full shapes of Discord's documentation, which these structs read.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The first second of 2015, where Discord's snowflakes count their milliseconds from.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// The gateway intents the bot asks for: `GUILDS`, `GUILD_MESSAGES`, `DIRECT_MESSAGES` and the
/// privileged `MESSAGE_CONTENT`.
pub const INTENTS: u64 =
    intents::GUILDS | intents::GUILD_MESSAGES | intents::DIRECT_MESSAGES | intents::MESSAGE_CONTENT;

/// Gateway intent bits.
pub mod intents {
    /// Guild create/update/delete and channel events.
    pub const GUILDS: u64 = 1 << 0;
    /// Messages in guild channels.
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    /// Messages in direct messages.
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    /// The content of messages that do not mention the bot (privileged).
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// Every intent Discord defines: bits 0 to 16, 20, 21, 24 and 25.
    pub const ALL: u64 = ((1 << 17) - 1) | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
}

/// Application flags (`GET /applications/@me`).
pub mod app_flags {
    /// The Message Content Intent is enabled (verified apps in 100+ servers).
    pub const GATEWAY_MESSAGE_CONTENT: u64 = 1 << 18;
    /// The Message Content Intent is enabled (apps in fewer than 100 servers).
    pub const GATEWAY_MESSAGE_CONTENT_LIMITED: u64 = 1 << 19;
}

/// Gateway opcodes.
pub mod op {
    /// An event (`t` names it, `s` is its sequence number).
    pub const DISPATCH: u8 = 0;
    /// A heartbeat, either way.
    pub const HEARTBEAT: u8 = 1;
    /// Starts a new session.
    pub const IDENTIFY: u8 = 2;
    /// Resumes a session after a dropped connection.
    pub const RESUME: u8 = 6;
    /// The server asks the client to reconnect and resume.
    pub const RECONNECT: u8 = 7;
    /// The session is invalid; `d` says whether it can be resumed.
    pub const INVALID_SESSION: u8 = 9;
    /// The first message on a connection, with the heartbeat interval.
    pub const HELLO: u8 = 10;
    /// Acknowledges a heartbeat.
    pub const HEARTBEAT_ACK: u8 = 11;
}

/// One message on the gateway socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The opcode ([`op`]).
    pub op: u8,
    /// Its data.
    #[serde(default)]
    pub d: Value,
    /// The sequence number of a dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<u64>,
    /// The event name of a dispatch (`MESSAGE_CREATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

/// The data of Hello (op 10).
#[derive(Clone, Debug, Deserialize)]
pub struct Hello {
    /// Milliseconds between heartbeats.
    pub heartbeat_interval: u64,
}

/// The data of the READY event.
#[derive(Clone, Debug, Deserialize)]
pub struct Ready {
    /// The session, for resuming.
    pub session_id: String,
    /// Where to resume it.
    pub resume_gateway_url: String,
    /// The bot's own user.
    pub user: User,
}

/// A Discord user.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct User {
    /// Its snowflake.
    pub id: String,
    /// Its user name.
    #[serde(default)]
    pub username: String,
    /// Whether it is a bot.
    #[serde(default)]
    pub bot: bool,
}

/// The `flags` bit of a voice message: one `audio/ogg` attachment recorded in Discord's app.
pub const IS_VOICE_MESSAGE: u64 = 1 << 13;

/// A file attached to a message.
#[derive(Clone, Debug, Deserialize)]
pub struct MessageAttachment {
    /// Where it can be fetched: a CDN link signed for about a day (`ex`, `is`, `hm`), which
    /// needs no token.
    pub url: String,
    /// Its name as Discord keeps it ([`attachment_filename`]).
    #[serde(default)]
    pub filename: String,
    /// The name as it was given, when Discord had to change it for `filename`.
    #[serde(default)]
    pub title: Option<String>,
    /// Its size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Its MIME type, when Discord knows it.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl MessageAttachment {
    /// Whether this is the file that was uploaded as `name`: Discord keeps the name as it was
    /// given in `title` when it had to change it for `filename`.
    pub fn named(&self, name: &str) -> bool {
        self.title.as_deref() == Some(name)
            || self.filename == name
            || self.filename == attachment_filename(name)
    }
}

/// The message a reply refers to (only its author is read).
#[derive(Clone, Debug, Deserialize)]
pub struct ReferencedMessage {
    /// Who wrote it.
    pub author: Option<User>,
}

/// A message, as in `MESSAGE_CREATE` and the REST API.
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    /// Its snowflake.
    pub id: String,
    /// The channel it is in.
    pub channel_id: String,
    /// The guild (server) of that channel; `None` in a direct message.
    #[serde(default)]
    pub guild_id: Option<String>,
    /// Who wrote it.
    pub author: User,
    /// Its text (empty without the Message Content Intent, unless it mentions the bot).
    #[serde(default)]
    pub content: String,
    /// The users it mentions.
    #[serde(default)]
    pub mentions: Vec<User>,
    /// Files attached to it.
    #[serde(default)]
    pub attachments: Vec<MessageAttachment>,
    /// The message it replies to, if any.
    #[serde(default)]
    pub referenced_message: Option<Box<ReferencedMessage>>,
    /// Its type: 0 for a plain message, 19 for a reply; others are system messages.
    #[serde(rename = "type", default)]
    pub kind: u8,
    /// Set when a webhook, not a user, posted it.
    #[serde(default)]
    pub webhook_id: Option<String>,
    /// Its flags ([`IS_VOICE_MESSAGE`], …).
    #[serde(default)]
    pub flags: u64,
}

/// `GET /gateway/bot`.
#[derive(Clone, Debug, Deserialize)]
pub struct GatewayBot {
    /// The WebSocket URL to connect to.
    pub url: String,
    /// How many more sessions may be started today.
    #[serde(default)]
    pub session_start_limit: Option<SessionStartLimit>,
}

/// How many sessions the bot may still start.
#[derive(Clone, Debug, Deserialize)]
pub struct SessionStartLimit {
    /// Sessions left.
    pub remaining: u64,
    /// Sessions allowed per day.
    pub total: u64,
}

/// `GET /applications/@me` (only what the doctor reads).
#[derive(Clone, Debug, Deserialize)]
pub struct Application {
    /// Its snowflake (also the client id used in invite links).
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its flags ([`app_flags`]).
    #[serde(default)]
    pub flags: u64,
}

/// Discord's JSON error body: `{"code", "message"}`, with `retry_after` and `global` on a 429.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// Discord's error code (`50007`), 0 for general errors.
    #[serde(default)]
    pub code: Option<i64>,
    /// What went wrong.
    #[serde(default)]
    pub message: Option<String>,
    /// Seconds to wait, on a 429.
    #[serde(default)]
    pub retry_after: Option<f64>,
    /// Whether a 429 is the global limit rather than a route's.
    #[serde(default)]
    pub global: Option<bool>,
    /// Field errors of `50035 Invalid Form Body`.
    #[serde(default)]
    pub errors: Option<Value>,
}

impl ErrorBody {
    /// The first field error of an `Invalid Form Body` answer, as `field: message`.
    pub fn first_field_error(&self) -> Option<String> {
        fn walk(path: &mut Vec<String>, value: &Value) -> Option<String> {
            let object = value.as_object()?;
            if let Some(first) = object
                .get("_errors")
                .and_then(Value::as_array)
                .and_then(|errors| errors.first())
            {
                let message = first.get("message").and_then(Value::as_str)?;
                return Some(format!("{}: {message}", path.join(".")));
            }
            for (key, inner) in object {
                path.push(key.clone());
                if let Some(found) = walk(path, inner) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        walk(&mut Vec::new(), self.errors.as_ref()?)
    }
}

/// A file name as Discord keeps it for an attachment: characters other than ASCII letters,
/// digits, `.`, `-` and `_` become `_`.
pub fn attachment_filename(name: &str) -> String {
    let kept: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if kept.is_empty() {
        "unknown".to_string()
    } else {
        kept
    }
}

/// The smallest snowflake Discord could give something created at `time`.
pub fn snowflake_at(time: SystemTime) -> u64 {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ms.saturating_sub(DISCORD_EPOCH_MS) << 22
}

/// When the thing with this snowflake was created.
pub fn snowflake_time(id: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis((id >> 22) + DISCORD_EPOCH_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_are_the_four_the_bot_needs() {
        assert_eq!(INTENTS, 1 | 512 | 4096 | 32768);
        assert_eq!(INTENTS & !intents::ALL, 0);
    }

    #[test]
    fn snowflakes_carry_their_creation_time() {
        // Discord's documented example: 175928847299117063 was created 2016-04-30 11:18:25.796.
        let at = snowflake_time(175_928_847_299_117_063);
        let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis();
        assert_eq!(ms, 1_462_015_105_796);
        assert_eq!(snowflake_at(at) >> 22, 175_928_847_299_117_063 >> 22);
        assert_eq!(snowflake_at(UNIX_EPOCH), 0);
    }

    #[test]
    fn a_message_reads_with_only_the_fields_used() {
        let message: Message = serde_json::from_value(serde_json::json!({
            "id": "3", "channel_id": "2", "type": 19, "tts": false,
            "author": {"id": "1", "username": "ada", "discriminator": "0", "avatar": null},
            "content": "hi", "mentions": [], "attachments": [
                {"id": "9", "filename": "a.png", "url": "https://cdn.example/a.png", "size": 3}
            ],
            "referenced_message": {"id": "1", "author": {"id": "7", "username": "bot", "bot": true}}
        }))
        .unwrap();
        assert_eq!(message.guild_id, None);
        assert_eq!(message.kind, 19);
        assert_eq!(message.attachments[0].content_type, None);
        let replied_to = message.referenced_message.unwrap().author.unwrap();
        assert!(replied_to.bot);
    }

    #[test]
    fn form_errors_name_their_field() {
        let body: ErrorBody = serde_json::from_value(serde_json::json!({
            "code": 50035, "message": "Invalid Form Body",
            "errors": {"content": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
            ]}}
        }))
        .unwrap();
        assert_eq!(
            body.first_field_error().as_deref(),
            Some("content: Must be 2000 or fewer in length.")
        );
    }

    #[test]
    fn file_names_keep_what_a_url_can_carry() {
        for (given, kept) in [
            ("report.pdf", "report.pdf"),
            ("holiday photo (1).jpg", "holiday_photo__1_.jpg"),
            ("données-été_2.txt", "donn_es-_t__2.txt"),
            ("", "unknown"),
        ] {
            assert_eq!(attachment_filename(given), kept);
        }
    }

    #[test]
    fn an_attachment_is_known_by_the_name_it_was_uploaded_under() {
        let attachment = |json| serde_json::from_value::<MessageAttachment>(json).unwrap();
        let renamed = attachment(serde_json::json!({
            "url": "https://cdn.example/a", "filename": "my_chart.png", "title": "my chart.png"
        }));
        assert!(renamed.named("my chart.png"));
        assert!(!renamed.named("my-chart.png"));
        // Without a title, the name Discord would keep for it.
        let plain =
            attachment(serde_json::json!({"url": "https://cdn.example/a", "filename": "a_b.txt"}));
        assert!(plain.named("a b.txt") && plain.named("a_b.txt"));
        assert!(!plain.named("a.txt"));
    }
}
