//! The Bot API objects the gateway reads and the emulator writes, with only the fields used.
//!
//! Hand-written rather than taken from the `frankenstein` crate: its types cover the whole API
//! (hundreds of structs compiled into every build of the gateway for the dozen fields used
//! here), and the emulator has to produce the same shapes as Telegram, omitting absent fields
//! as Telegram does, which these derive directly. Fields the gateway does not know are ignored
//! when reading, so new Bot API versions do not break it.
use serde::{Deserialize, Serialize};

/// Every Bot API answer: `{"ok": true, "result": …}` or
/// `{"ok": false, "error_code": 429, "description": "…", "parameters": {…}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse<T> {
    /// Whether the call succeeded.
    pub ok: bool,
    /// The result of a successful call.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    /// A human-readable description (errors; some successes such as `setWebhook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The error code of a failed call (an HTTP status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// What can be done about a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ResponseParameters>,
}

fn none<T>() -> Option<T> {
    None
}

/// Why a call failed and what to do about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseParameters {
    /// The group became a supergroup with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_to_chat_id: Option<i64>,
    /// Seconds to wait before repeating the request (flood control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A Telegram user or bot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique id.
    pub id: i64,
    /// Whether it is a bot.
    pub is_bot: bool,
    /// First name.
    pub first_name: String,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Username, without `@`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Unique id; negative for groups and channels.
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Title of a group or channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Username of a private chat, supergroup or channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// First name of the other party in a private chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
}

/// An incoming update; only messages are asked for (`allowed_updates=["message"]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// Sequential id; confirming one (a `getUpdates` offset past it) confirms all before it.
    pub update_id: i64,
    /// A new message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Unique within its chat.
    pub message_id: i64,
    /// The sender; absent for messages sent on behalf of a chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<User>,
    /// The chat it belongs to.
    pub chat: Chat,
    /// Unix time it was sent.
    pub date: i64,
    /// The text of a text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Mentions, commands, URLs … in `text`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<MessageEntity>,
    /// The caption of a photo or document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Entities in `caption`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caption_entities: Vec<MessageEntity>,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_message: Option<Box<Message>>,
    /// A photo, in every size Telegram made of it (smallest first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photo: Vec<PhotoSize>,
    /// A file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
    /// A voice note (OGG/Opus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Recording>,
    /// An audio file (music), shown in the player.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Recording>,
    /// A video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Recording>,
    /// A round video message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_note: Option<Recording>,
}

impl Message {
    /// A message `message_id` in `chat` from `from` at `date`, with nothing in it yet: the
    /// fields a kind of message fills are set on the result.
    pub fn new(message_id: i64, from: Option<User>, chat: Chat, date: i64) -> Message {
        Message {
            message_id,
            from,
            chat,
            date,
            text: None,
            entities: Vec::new(),
            caption: None,
            caption_entities: Vec::new(),
            reply_to_message: None,
            photo: Vec::new(),
            document: None,
            voice: None,
            audio: None,
            video: None,
            video_note: None,
        }
    }
}

impl Message {
    /// The text, or the caption of a photo or document, with its entities.
    pub fn text_and_entities(&self) -> (&str, &[MessageEntity]) {
        match (&self.text, &self.caption) {
            (Some(text), _) => (text, &self.entities),
            (None, Some(caption)) => (caption, &self.caption_entities),
            (None, None) => ("", &[]),
        }
    }
}

/// A special part of a message's text. Offsets and lengths count UTF-16 code units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEntity {
    /// `mention` (`@username`), `text_mention` (a user without username), `bot_command`, `url`,
    /// `bold` …
    #[serde(rename = "type")]
    pub kind: String,
    /// Start, in UTF-16 code units.
    pub offset: usize,
    /// Length, in UTF-16 code units.
    pub length: usize,
    /// The URL of a `text_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The user of a `text_mention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

/// One size of a photo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoSize {
    /// Id to download it with (`getFile`).
    pub file_id: String,
    /// Id that stays the same across bots.
    pub file_unique_id: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// A general file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Id to download it with (`getFile`).
    pub file_id: String,
    /// Id that stays the same across bots.
    pub file_unique_id: String,
    /// Its name, as the sender had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Its MIME type, as the sender declared it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// A voice note, audio file, video or video note: a file with a duration. Of Telegram's
/// `Voice`, `Audio`, `Video` and `VideoNote`, only the fields the gateway reads (a voice note
/// has no file name, a video note no type; width, height, performer … are ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// The file.
    #[serde(flatten)]
    pub file: Document,
    /// Length in seconds, as the sender declared it.
    #[serde(default)]
    pub duration: u32,
}

/// A file ready to download (`getFile`), from `<base>/file/bot<token>/<file_path>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Its id.
    pub file_id: String,
    /// Id that stays the same across bots.
    pub file_unique_id: String,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Path to download it from, for at least an hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
}

/// The state of the bot's webhook (`getWebhookInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookInfo {
    /// The webhook URL; empty when none is set (the bot is polled).
    pub url: String,
    /// Whether a self-signed certificate was uploaded.
    #[serde(default)]
    pub has_custom_certificate: bool,
    /// Updates waiting to be delivered.
    #[serde(default)]
    pub pending_update_count: u64,
    /// Unix time of the last failed delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_date: Option<i64>,
    /// Why the last delivery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_message: Option<String>,
    /// Most simultaneous deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// The update kinds delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_updates: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_shapes_parse_and_unknown_fields_are_ignored() {
        let update: Update = serde_json::from_str(
            r#"{"update_id": 10, "message": {"message_id": 5, "from": {"id": 42, "is_bot": false,
            "first_name": "Ada", "language_code": "en"}, "chat": {"id": 42, "type": "private",
            "first_name": "Ada"}, "date": 1700000000, "text": "/start",
            "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}}"#,
        )
        .unwrap();
        let message = update.message.unwrap();
        assert_eq!(message.text_and_entities().0, "/start");
        assert_eq!(message.entities[0].kind, "bot_command");
        let error: ApiResponse<bool> = serde_json::from_str(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
        )
        .unwrap();
        assert_eq!(error.parameters.unwrap().retry_after, Some(3));
        assert_eq!(error.result, None);
    }

    #[test]
    fn voice_notes_audio_and_videos_parse_from_telegrams_shapes() {
        let message: Message = serde_json::from_str(
            r#"{"message_id": 9, "chat": {"id": 42, "type": "private"}, "date": 1700000000,
            "voice": {"duration": 2, "mime_type": "audio/ogg", "file_id": "AwACAgIAAxkBAAIB",
            "file_unique_id": "AgADcxEAAvrJyUo", "file_size": 8653},
            "audio": {"duration": 201, "performer": "Band", "title": "Song",
            "file_name": "song.mp3", "mime_type": "audio/mpeg", "file_id": "CQACAgIAAxkBAAIC",
            "file_unique_id": "AgADdBEAAvrJyUo", "file_size": 3217011},
            "video": {"duration": 5, "width": 1280, "height": 720, "file_name": "clip.mp4",
            "mime_type": "video/mp4", "thumbnail": {"file_id": "AAMC", "file_unique_id": "AQAD",
            "width": 320, "height": 180}, "file_id": "BAACAgIAAxkBAAID",
            "file_unique_id": "AgADdREAAvrJyUo", "file_size": 912345},
            "video_note": {"duration": 7, "length": 240, "file_id": "DQACAgIAAxkBAAIE",
            "file_unique_id": "AgADdhEAAvrJyUo", "file_size": 402112}}"#,
        )
        .unwrap();
        let voice = message.voice.unwrap();
        assert_eq!(voice.duration, 2);
        assert_eq!(voice.file.file_id, "AwACAgIAAxkBAAIB");
        assert_eq!(voice.file.mime_type.as_deref(), Some("audio/ogg"));
        assert_eq!(voice.file.file_name, None);
        let audio = message.audio.unwrap();
        assert_eq!(audio.file.file_name.as_deref(), Some("song.mp3"));
        assert_eq!(audio.file.file_size, Some(3_217_011));
        assert_eq!(message.video.unwrap().file.file_id, "BAACAgIAAxkBAAID");
        let note = message.video_note.unwrap();
        assert_eq!((note.duration, note.file.mime_type), (7, None));
    }

    #[test]
    fn absent_fields_are_omitted_as_telegram_does() {
        let chat = Chat {
            id: -100,
            kind: "group".into(),
            title: Some("Ops".into()),
            username: None,
            first_name: None,
        };
        assert_eq!(
            serde_json::to_value(&chat).unwrap(),
            serde_json::json!({"id": -100, "type": "group", "title": "Ops"})
        );
    }
}
