//! Which messages the bot answers, how a `MESSAGE_CREATE` becomes an [`Inbound`], and how
//! its attachments are fetched.
//!
//! The bot answers a direct message, a message that mentions it, and a reply to one of its own
//! messages. It never answers itself or another bot (two bots would answer each other forever),
//! a webhook, or a system message (a member joining, a pin).
use std::time::SystemTime;

use std::time::Duration;

use actix_web::http::Uri;
use platform_api::http::download;
use platform_api::{Attachment, FetchError, Fetched, Inbound};

use crate::NAME;
use crate::types::{IS_VOICE_MESSAGE, Message, MessageAttachment};

/// The name Discord's apps give a voice message's file.
pub const VOICE_MESSAGE_NAME: &str = "voice-message.ogg";
/// The type of a voice message's file (Opus in Ogg).
pub const VOICE_MESSAGE_TYPE: &str = "audio/ogg";
/// How long fetching one attachment may take, the whole file read.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Message types that carry what a user wrote: 0 (a message) and 19 (a reply).
const USER_MESSAGE_TYPES: [u8; 2] = [0, 19];

/// Why a message is not for the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The bot wrote it.
    Own,
    /// Another bot or a webhook wrote it.
    Bot,
    /// A system message.
    System,
    /// A guild message that neither mentions the bot nor replies to it.
    NotAddressed,
    /// Nothing is left once the mention is removed, and nothing is attached.
    Empty,
}

/// The inbound message for the agent, or why there is none; `bot_id` is the bot's own user id.
pub fn to_inbound(message: &Message, bot_id: &str) -> Result<Inbound, Skip> {
    if message.author.id == bot_id {
        return Err(Skip::Own);
    }
    if message.author.bot || message.webhook_id.is_some() {
        return Err(Skip::Bot);
    }
    if !USER_MESSAGE_TYPES.contains(&message.kind) {
        return Err(Skip::System);
    }
    let direct = message.guild_id.is_none();
    let mentioned = message.mentions.iter().any(|user| user.id == bot_id);
    let replied_to = message
        .referenced_message
        .as_ref()
        .and_then(|referenced| referenced.author.as_ref())
        .is_some_and(|author| author.id == bot_id);
    if !(direct || mentioned || replied_to) {
        return Err(Skip::NotAddressed);
    }
    let text = strip_mentions(&message.content, bot_id);
    let voice = message.flags & IS_VOICE_MESSAGE != 0;
    let attachments: Vec<Attachment> = message
        .attachments
        .iter()
        .map(|a| attachment(a, voice))
        .collect();
    if text.is_empty() && attachments.is_empty() {
        return Err(Skip::Empty);
    }
    Ok(Inbound {
        sender_name: None,
        platform: NAME.to_string(),
        chat: message.channel_id.clone(),
        sender: message.author.id.clone(),
        text,
        attachments,
        provider_id: message.id.clone(),
        received_at: SystemTime::now(),
        control: None,
    })
}

/// An attachment for the host: its signed URL (no token: the host may store it), name, size
/// and type. A voice message's one file is always `audio/ogg`, named `voice-message.ogg`,
/// whatever the client declared, so that the host knows a voice note to transcribe.
fn attachment(file: &MessageAttachment, voice: bool) -> Attachment {
    if voice {
        return Attachment {
            name: Some(VOICE_MESSAGE_NAME.to_string()),
            size: file.size,
            ..Attachment::new(&file.url, Some(VOICE_MESSAGE_TYPE.to_string()))
        };
    }
    Attachment {
        name: Some(file.filename.clone()).filter(|name| !name.is_empty()),
        size: file.size,
        ..Attachment::new(&file.url, file.content_type.clone())
    }
}

/// Fetches an attachment's bytes from Discord's CDN, at most `limit` of them. Its URL is
/// signed and needs no token; once expired (about a day after the message) or deleted, the
/// CDN answers 404 (or 403), which is permanent.
pub async fn fetch(attachment: &Attachment, limit: u64) -> Result<Fetched, FetchError> {
    let link = attachment.url.parse::<Uri>().ok();
    if !link.is_some_and(|uri| matches!(uri.scheme_str(), Some("https" | "http"))) {
        return Err(FetchError::Permanent(
            "the attachment's link is not a URL".to_string(),
        ));
    }
    let fetched = download(&attachment.url, None, limit, FETCH_TIMEOUT, "Discord's CDN").await?;
    Ok(Fetched {
        name: attachment.name.clone(),
        ..fetched
    })
}

/// The text without the bot's mentions (`<@id>`, `<@!id>`), spaces around them tidied.
pub fn strip_mentions(content: &str, bot_id: &str) -> String {
    let mut text = content.to_string();
    for mention in [format!("<@{bot_id}>"), format!("<@!{bot_id}>")] {
        text = text.replace(&mention, " ");
    }
    // Tidy only the spaces the removal left on each line; line breaks are kept.
    text.lines()
        .map(|line| {
            line.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const BOT: &str = "900";

    fn message(extra: Value) -> Message {
        let mut base = json!({
            "id": "1001", "channel_id": "77", "type": 0, "content": "hello",
            "author": {"id": "42", "username": "ada"}, "mentions": [], "attachments": []
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn direct_messages_are_answered() {
        let inbound = to_inbound(&message(json!({})), BOT).unwrap();
        assert_eq!(
            (
                inbound.chat.as_str(),
                inbound.sender.as_str(),
                inbound.provider_id.as_str(),
                inbound.text.as_str()
            ),
            ("77", "42", "1001", "hello")
        );
        assert_eq!(inbound.platform, "discord");
    }

    #[test]
    fn guild_messages_need_a_mention_or_a_reply() {
        let plain = message(json!({"guild_id": "5"}));
        assert_eq!(to_inbound(&plain, BOT), Err(Skip::NotAddressed));
        let mention = message(json!({
            "guild_id": "5", "content": "<@900> what is  up?\nline two <@!900>",
            "mentions": [{"id": "900", "username": "hermes", "bot": true}]
        }));
        assert_eq!(
            to_inbound(&mention, BOT).unwrap().text,
            "what is up?\nline two"
        );
        let other_mention = message(json!({
            "guild_id": "5", "content": "<@901> hi",
            "mentions": [{"id": "901", "username": "someone"}]
        }));
        assert_eq!(to_inbound(&other_mention, BOT), Err(Skip::NotAddressed));
        let reply = message(json!({
            "guild_id": "5", "type": 19, "content": "and then?",
            "referenced_message": {"id": "3", "author": {"id": "900", "bot": true}}
        }));
        assert_eq!(to_inbound(&reply, BOT).unwrap().text, "and then?");
    }

    #[test]
    fn bots_itself_and_system_messages_are_ignored() {
        let own = message(json!({"author": {"id": "900", "username": "hermes", "bot": true}}));
        assert_eq!(to_inbound(&own, BOT), Err(Skip::Own));
        let other = message(json!({"author": {"id": "5", "username": "b", "bot": true}}));
        assert_eq!(to_inbound(&other, BOT), Err(Skip::Bot));
        let hook = message(json!({"webhook_id": "8"}));
        assert_eq!(to_inbound(&hook, BOT), Err(Skip::Bot));
        let join = message(json!({"type": 7, "content": ""}));
        assert_eq!(to_inbound(&join, BOT), Err(Skip::System));
        let bare = message(json!({
            "guild_id": "5", "content": "<@900>",
            "mentions": [{"id": "900", "username": "hermes"}]
        }));
        assert_eq!(to_inbound(&bare, BOT), Err(Skip::Empty));
    }

    #[test]
    fn attachments_keep_their_name_size_and_type() {
        let with_file = message(json!({
            "content": "",
            "attachments": [{
                "id": "1", "filename": "cat.png", "size": 2048,
                "url": "https://cdn.example/cat.png", "content_type": "image/png"
            }]
        }));
        let inbound = to_inbound(&with_file, BOT).unwrap();
        assert_eq!(
            inbound.attachments,
            vec![Attachment {
                url: "https://cdn.example/cat.png".into(),
                content_type: Some("image/png".into()),
                name: Some("cat.png".into()),
                size: Some(2048),
            }]
        );
        assert_eq!(inbound.text, "", "a file alone is a message");
    }

    #[test]
    fn a_voice_message_is_an_ogg_voice_note() {
        let voice = message(json!({
            "content": "", "flags": 8192,
            "attachments": [{
                "id": "1", "filename": "recording.ogg", "size": 9000,
                "url": "https://cdn.example/v.ogg", "content_type": "audio/ogg; codecs=opus",
                "duration_secs": 3.5, "waveform": "AAAA"
            }]
        }));
        let got = &to_inbound(&voice, BOT).unwrap().attachments[0];
        assert_eq!(
            (got.name.as_deref(), got.content_type.as_deref(), got.size),
            (Some("voice-message.ogg"), Some("audio/ogg"), Some(9000))
        );
        // Without the flag, the same file is an audio attachment as it was named.
        let audio = message(json!({
            "content": "listen",
            "attachments": [{"id": "1", "filename": "song.ogg", "url": "https://cdn.example/s.ogg"}]
        }));
        let got = &to_inbound(&audio, BOT).unwrap().attachments[0];
        assert_eq!(
            (got.name.as_deref(), got.content_type.as_deref(), got.size),
            (Some("song.ogg"), None, None)
        );
    }
}
