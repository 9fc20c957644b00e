//! Updates → inbound messages: which messages reach the agent, and how they look.
//!
//! - Private chats always; groups and supergroups only when the message is for the bot: it
//!   mentions `@botusername` (or the bot by name, a `text_mention`), runs `/command@botusername`,
//!   or replies to one of the bot's messages. Channels never.
//! - Messages from the bot itself, and from other bots, are dropped: two bots in a group would
//!   otherwise answer each other forever.
//! - The mention is removed from the text and `/cmd@botusername` becomes `/cmd`.
//! - `chat` is the chat id, `sender` the user id, `provider_id` is `"{chat_id}:{message_id}"`
//!   (message ids are only unique within a chat). The text is the text, or the caption of a
//!   file. Files become attachments named by `telegram:file/<file_id>`, with their type, name
//!   and size as Telegram describes them: the largest size of a photo (`image/jpeg`), a
//!   document, a voice note (`audio/ogg`, `voice.ogg`), an audio file, a video and a video
//!   note; a file without a name is named for its kind and type (`audio.mp3`). The platform
//!   fetches them with `getFile` ([`crate::client::Api::fetch_file`]).
use std::time::SystemTime;

use platform_api::{Attachment, Inbound};

use crate::types::{Message, MessageEntity, Update};

/// The bot itself, as `getMe` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bot {
    /// Its user id.
    pub id: i64,
    /// Its username, without `@`.
    pub username: String,
}

/// Why an update does not become an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not a new message (an edit, a channel post …).
    NotAMessage,
    /// Sent on behalf of a chat (an anonymous admin), with no user to check access for.
    NoSender,
    /// Written by this bot.
    OwnMessage,
    /// Written by another bot.
    FromBot,
    /// A group message not meant for the bot.
    NotAddressed,
    /// A channel post.
    Channel,
    /// Nothing the agent can read or hear (a sticker, a location, a service message).
    Empty,
}

impl Skip {
    /// A short reason, for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::NotAMessage => "not a message",
            Skip::NoSender => "no sender",
            Skip::OwnMessage => "own message",
            Skip::FromBot => "from a bot",
            Skip::NotAddressed => "group message not for the bot",
            Skip::Channel => "channel",
            Skip::Empty => "no text or file",
        }
    }
}

/// Where an attachment can be fetched: `telegram:file/<file_id>`.
///
/// Not the download URL: that is `<base>/file/bot<token>/<path>`, with the bot token in it,
/// and attachments are stored with the message, shown by commands and handed to agents. A
/// `file_id` stays valid for the bot; whoever fetches the file resolves it with `getFile` then.
pub fn attachment_url(file_id: &str) -> String {
    format!("telegram:file/{file_id}")
}

/// The `file_id` of an attachment's `telegram:file/<file_id>`.
pub fn file_id(url: &str) -> Option<&str> {
    url.strip_prefix("telegram:file/")
        .filter(|id| !id.is_empty())
}

/// The byte offset of a UTF-16 offset in `text`; `None` past its end or inside a character.
fn byte_offset(text: &str, units: usize) -> Option<usize> {
    let mut counted = 0;
    for (at, c) in text.char_indices() {
        if counted == units {
            return Some(at);
        }
        if counted > units {
            return None;
        }
        counted += c.len_utf16();
    }
    (counted == units).then_some(text.len())
}

/// The byte range of an entity in `text`.
fn span(text: &str, entity: &MessageEntity) -> Option<(usize, usize)> {
    let start = byte_offset(text, entity.offset)?;
    let end = start + byte_offset(&text[start..], entity.length)?;
    Some((start, end))
}

/// What the text says to the bot: whether it names the bot, and the text without the mention.
fn addressed(text: &str, entities: &[MessageEntity], bot: &Bot) -> (bool, String) {
    let handle = format!("@{}", bot.username);
    let mut named = false;
    // Byte ranges to remove, in order.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for entity in entities {
        let Some((start, end)) = span(text, entity) else {
            continue;
        };
        let piece = &text[start..end];
        match entity.kind.as_str() {
            "mention" if piece.eq_ignore_ascii_case(&handle) => {
                named = true;
                cuts.push((start, end));
            }
            "text_mention" if entity.user.as_ref().is_some_and(|u| u.id == bot.id) => {
                named = true;
                cuts.push((start, end));
            }
            "bot_command" => {
                if let Some((command, target)) = piece.split_once('@')
                    && target.eq_ignore_ascii_case(&bot.username)
                {
                    named = true;
                    cuts.push((start + command.len(), end));
                }
            }
            _ => {}
        }
    }
    cuts.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, end) in cuts {
        if start < pos {
            continue;
        }
        out.push_str(&text[pos..start]);
        let mut end = end;
        // `@bot, hello` and `@bot: hello` lose their punctuation; one space after goes too.
        if text[end..].starts_with([',', ':']) {
            end += 1;
        }
        let before_space = out.is_empty() || out.ends_with(char::is_whitespace);
        if before_space && text[end..].starts_with(' ') {
            end += 1;
        }
        pos = end;
    }
    out.push_str(&text[pos..]);
    (named, out.trim().to_string())
}

/// The extension a file of `mime_type` is usually saved with, for naming a file Telegram gave
/// no name.
fn extension(mime_type: &str) -> &str {
    match mime_type {
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "m4a",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/flac" | "audio/x-flac" => "flac",
        "video/quicktime" => "mov",
        "image/jpeg" => "jpg",
        other => other
            .split_once('/')
            .map(|(_, subtype)| subtype)
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("bin"),
    }
}

/// An attachment of a file Telegram described: its `file_id`, declared type and size, and its
/// name or, without one, `<stem>.<extension of its type>`.
fn described(
    file_id: &str,
    mime_type: Option<&str>,
    fallback_type: &str,
    file_name: Option<&str>,
    stem: &str,
    file_size: Option<u64>,
) -> Attachment {
    let content_type = mime_type.unwrap_or(fallback_type);
    let name = file_name
        .map(str::to_string)
        .unwrap_or_else(|| format!("{stem}.{}", extension(content_type)));
    Attachment {
        url: attachment_url(file_id),
        content_type: Some(content_type.to_string()),
        name: Some(name),
        size: file_size,
    }
}

fn attachments(message: &Message) -> Vec<Attachment> {
    let mut found = Vec::new();
    let largest = message
        .photo
        .iter()
        .max_by_key(|p| (u64::from(p.width) * u64::from(p.height), p.file_size));
    if let Some(photo) = largest {
        // Telegram re-encodes every photo as JPEG.
        found.push(described(
            &photo.file_id,
            None,
            "image/jpeg",
            None,
            "photo",
            photo.file_size,
        ));
    }
    if let Some(voice) = &message.voice {
        // A voice note is always OGG/Opus, whatever type the client declared.
        let file = &voice.file;
        found.push(described(
            &file.file_id,
            None,
            "audio/ogg",
            None,
            "voice",
            file.file_size,
        ));
    }
    let files = [
        (
            message.document.as_ref(),
            "application/octet-stream",
            "file",
        ),
        (
            message.audio.as_ref().map(|r| &r.file),
            "audio/mpeg",
            "audio",
        ),
        (
            message.video.as_ref().map(|r| &r.file),
            "video/mp4",
            "video",
        ),
        (
            message.video_note.as_ref().map(|r| &r.file),
            "video/mp4",
            "video_note",
        ),
    ];
    for (file, fallback_type, stem) in files {
        if let Some(file) = file {
            found.push(described(
                &file.file_id,
                file.mime_type.as_deref(),
                fallback_type,
                file.file_name.as_deref(),
                stem,
                file.file_size,
            ));
        }
    }
    found
}

/// The inbound message an update carries for the agent, or why there is none.
pub fn to_inbound(update: &Update, bot: &Bot) -> Result<Inbound, Skip> {
    let message = update.message.as_ref().ok_or(Skip::NotAMessage)?;
    let chat = &message.chat;
    if chat.kind == "channel" {
        return Err(Skip::Channel);
    }
    let from = message.from.as_ref().ok_or(Skip::NoSender)?;
    if from.id == bot.id {
        return Err(Skip::OwnMessage);
    }
    if from.is_bot {
        return Err(Skip::FromBot);
    }
    let (text, entities) = message.text_and_entities();
    let (named, text) = addressed(text, entities, bot);
    let private = chat.kind == "private";
    let replies_to_bot = message
        .reply_to_message
        .as_ref()
        .and_then(|reply| reply.from.as_ref())
        .is_some_and(|author| author.id == bot.id);
    if !private && !named && !replies_to_bot {
        return Err(Skip::NotAddressed);
    }
    let attachments = attachments(message);
    if text.is_empty() && attachments.is_empty() {
        return Err(Skip::Empty);
    }
    Ok(Inbound {
        sender_name: None,
        platform: crate::NAME.to_string(),
        chat: chat.id.to_string(),
        sender: from.id.to_string(),
        text,
        attachments,
        provider_id: format!("{}:{}", chat.id, message.message_id),
        received_at: SystemTime::now(),
        control: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Chat, Document, PhotoSize, Recording, User};

    fn bot() -> Bot {
        Bot {
            id: 999,
            username: "HermesBot".to_string(),
        }
    }

    fn user(id: i64, is_bot: bool) -> User {
        User {
            id,
            is_bot,
            first_name: "Ada".to_string(),
            last_name: None,
            username: None,
        }
    }

    fn chat(id: i64, kind: &str) -> Chat {
        Chat {
            id,
            kind: kind.to_string(),
            title: None,
            username: None,
            first_name: None,
        }
    }

    fn entity(kind: &str, offset: usize, length: usize) -> MessageEntity {
        MessageEntity {
            kind: kind.to_string(),
            offset,
            length,
            url: None,
            user: None,
        }
    }

    fn message(chat: Chat, from: User, text: &str, entities: Vec<MessageEntity>) -> Update {
        Update {
            update_id: 1,
            message: Some(Message {
                text: Some(text.to_string()),
                entities,
                ..Message::new(7, Some(from), chat, 0)
            }),
        }
    }

    #[test]
    fn private_messages_always_count() {
        let inbound = to_inbound(
            &message(chat(42, "private"), user(42, false), "hi", vec![]),
            &bot(),
        )
        .unwrap();
        assert_eq!(
            (
                inbound.chat.as_str(),
                inbound.sender.as_str(),
                inbound.provider_id.as_str()
            ),
            ("42", "42", "42:7")
        );
        assert_eq!(inbound.text, "hi");
    }

    #[test]
    fn group_messages_count_only_when_meant_for_the_bot() {
        let group = || chat(-100, "supergroup");
        let plain = message(group(), user(42, false), "hello all", vec![]);
        assert_eq!(to_inbound(&plain, &bot()), Err(Skip::NotAddressed));

        let mention = message(
            group(),
            user(42, false),
            "@hermesbot, what is 2+2?",
            vec![entity("mention", 0, 10)],
        );
        let inbound = to_inbound(&mention, &bot()).unwrap();
        assert_eq!(inbound.text, "what is 2+2?");
        assert_eq!(
            (inbound.chat.as_str(), inbound.sender.as_str()),
            ("-100", "42")
        );

        let other = message(
            group(),
            user(42, false),
            "@otherbot hi",
            vec![entity("mention", 0, 9)],
        );
        assert_eq!(to_inbound(&other, &bot()), Err(Skip::NotAddressed));

        // Offsets count UTF-16 units: the emoji before the mention counts twice.
        let emoji = message(
            group(),
            user(42, false),
            "👋 @HermesBot tell me more",
            vec![entity("mention", 3, 10)],
        );
        assert_eq!(to_inbound(&emoji, &bot()).unwrap().text, "👋 tell me more");

        let command = message(
            group(),
            user(42, false),
            "/status@HermesBot now",
            vec![entity("bot_command", 0, 17)],
        );
        assert_eq!(to_inbound(&command, &bot()).unwrap().text, "/status now");

        let mut by_name = message(group(), user(42, false), "Hermes help", vec![]);
        let mut mention = entity("text_mention", 0, 6);
        mention.user = Some(user(999, true));
        by_name.message.as_mut().unwrap().entities = vec![mention];
        assert_eq!(to_inbound(&by_name, &bot()).unwrap().text, "help");

        let mut reply = message(group(), user(42, false), "and then?", vec![]);
        let bots = message(group(), user(999, true), "earlier answer", vec![]);
        reply.message.as_mut().unwrap().reply_to_message = bots.message.map(Box::new);
        assert_eq!(to_inbound(&reply, &bot()).unwrap().text, "and then?");
    }

    #[test]
    fn bots_are_not_answered() {
        let own = message(
            chat(-1, "group"),
            user(999, true),
            "@HermesBot hi",
            vec![entity("mention", 0, 10)],
        );
        assert_eq!(to_inbound(&own, &bot()), Err(Skip::OwnMessage));
        let other = message(chat(5, "private"), user(5, true), "hi", vec![]);
        assert_eq!(to_inbound(&other, &bot()), Err(Skip::FromBot));
        let channel = message(chat(-1009, "channel"), user(5, false), "post", vec![]);
        assert_eq!(to_inbound(&channel, &bot()), Err(Skip::Channel));
        let mut anonymous = message(chat(42, "private"), user(42, false), "hi", vec![]);
        anonymous.message.as_mut().unwrap().from = None;
        assert_eq!(to_inbound(&anonymous, &bot()), Err(Skip::NoSender));
        assert_eq!(
            to_inbound(
                &Update {
                    update_id: 3,
                    message: None
                },
                &bot()
            ),
            Err(Skip::NotAMessage)
        );
    }

    #[test]
    fn a_file_without_a_name_is_named_for_its_type() {
        for (mime_type, expected) in [
            ("audio/mpeg", "mp3"),
            ("audio/x-m4a", "m4a"),
            ("audio/ogg", "ogg"),
            ("video/mp4", "mp4"),
            ("video/quicktime", "mov"),
            ("image/jpeg", "jpg"),
            ("application/pdf", "pdf"),
            ("application/vnd.ms-excel", "bin"),
            ("nonsense", "bin"),
        ] {
            assert_eq!(extension(mime_type), expected, "{mime_type}");
        }
    }

    #[test]
    fn photos_and_documents_become_attachments_without_the_token() {
        let mut update = message(chat(42, "private"), user(42, false), "", vec![]);
        let m = update.message.as_mut().unwrap();
        m.text = None;
        m.caption = Some("look".to_string());
        let size = |id: &str, side: u32| PhotoSize {
            file_id: id.to_string(),
            file_unique_id: format!("u-{id}"),
            width: side,
            height: side,
            file_size: None,
        };
        m.photo = vec![size("small", 90), size("large", 1280), size("medium", 320)];
        m.document = Some(Document {
            file_id: "doc-1".to_string(),
            file_unique_id: "u-doc".to_string(),
            file_name: Some("report.pdf".to_string()),
            mime_type: Some("application/pdf".to_string()),
            file_size: Some(1000),
        });
        let inbound = to_inbound(&update, &bot()).unwrap();
        assert_eq!(inbound.text, "look");
        assert_eq!(
            inbound.attachments,
            [
                Attachment {
                    name: Some("photo.jpg".into()),
                    ..Attachment::new("telegram:file/large", Some("image/jpeg".into()))
                },
                Attachment {
                    name: Some("report.pdf".into()),
                    size: Some(1000),
                    ..Attachment::new("telegram:file/doc-1", Some("application/pdf".into()))
                },
            ]
        );
        let mut voice = message(chat(42, "private"), user(42, false), "", vec![]);
        let m = voice.message.as_mut().unwrap();
        m.text = None;
        m.voice = Some(Recording {
            file: Document {
                file_id: "v-1".to_string(),
                file_unique_id: "u-v".to_string(),
                file_name: None,
                mime_type: Some("audio/mpeg".to_string()),
                file_size: Some(6200),
            },
            duration: 4,
        });
        let voice = to_inbound(&voice, &bot()).expect("a voice note is not empty");
        assert_eq!(
            voice.attachments,
            [Attachment {
                name: Some("voice.ogg".into()),
                size: Some(6200),
                ..Attachment::new("telegram:file/v-1", Some("audio/ogg".into()))
            }]
        );
        let mut sticker = message(chat(42, "private"), user(42, false), "", vec![]);
        sticker.message.as_mut().unwrap().text = None;
        assert_eq!(to_inbound(&sticker, &bot()), Err(Skip::Empty));
    }
}
