//! Which messages the bot answers, and how a `MESSAGE_CREATE` becomes an [`Inbound`].
//!
//! The bot answers a direct message, a message that mentions it, and a reply to one of its own
//! messages. It never answers itself or another bot (two bots would answer each other forever),
//! a webhook, or a system message (a member joining, a pin).
use std::time::SystemTime;

use platform_api::{Attachment, Inbound};

use crate::NAME;
use crate::types::Message;

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
    let attachments: Vec<Attachment> = message
        .attachments
        .iter()
        .map(|a| Attachment {
            url: a.url.clone(),
            content_type: a.content_type.clone(),
            name: None,
            size: None,
        })
        .collect();
    if text.is_empty() && attachments.is_empty() {
        return Err(Skip::Empty);
    }
    Ok(Inbound {
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
    fn attachments_come_along() {
        let with_file = message(json!({
            "content": "",
            "attachments": [{"id": "1", "filename": "cat.png", "url": "https://cdn.example/cat.png", "content_type": "image/png"}]
        }));
        let inbound = to_inbound(&with_file, BOT).unwrap();
        assert_eq!(
            inbound.attachments,
            vec![Attachment {
                url: "https://cdn.example/cat.png".into(),
                content_type: Some("image/png".into()),
                name: None,
                size: None,
            }]
        );
        assert_eq!(inbound.text, "");
    }
}
