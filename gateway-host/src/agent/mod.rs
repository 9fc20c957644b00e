//! Agent backends: who writes the replies.
//!
//! - `echo`: built in, answers `You said: <text>`;
//! - `openai`: any OpenAI-compatible chat-completions server ([`openai`]);
//! - `hermes`: Hermes Agent's API server, which keeps the conversation itself ([`hermes`]);
//! - `command`: a program run per turn, the conversation as JSON on stdin, the reply on stdout
//!   ([`command`]).
//!
//! The host builds every request the same way ([`AgentRequest`]): the system message, the
//! history it keeps, the new user message, and the turn's id, the same when a turn is run again
//! after a crash. A backend that can stream publishes the reply as it grows ([`Live`]); the
//! host shows it where the platform can.
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use platform_api::ConfigSection;
use serde::Serialize;

use crate::settings;

pub mod checkup;
pub mod command;
pub mod hermes;
pub mod openai;
pub mod persona;
mod sse;

/// One message of a conversation as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A message of `role` with `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// The conversation as a backend that keeps its own history knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// This conversation: a new one after `/new` or `/reset`.
    pub id: String,
    /// The chat, stable across `/new`: `<platform>:<chat>`.
    pub key: String,
}

/// What the agent is asked to answer.
#[derive(Clone, Debug, Serialize)]
pub struct AgentRequest {
    /// Platform name.
    pub platform: String,
    /// Platform label, as people know it.
    pub platform_label: String,
    /// The chat.
    pub chat: String,
    /// This turn: the same when it is run again after a crash (`Idempotency-Key`).
    pub turn_id: String,
    /// The system message: the persona, the platform's hint, the date and time.
    pub system: String,
    /// The platform's hint alone, for a backend that brings its own persona.
    pub hint: Option<String>,
    /// The chat's display name, when the platform gives one (WhatsApp's profile name); the
    /// system message names it already ([`name_line`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_name: Option<String>,
    /// The conversation, for a backend that keeps its history itself.
    pub session: Session,
    /// History, oldest first, ending with the new user message.
    pub messages: Vec<ChatMessage>,
    /// Files that came with the new user message: named in its text for every backend; with
    /// `HERMES_AGENT_VISION` an image also goes as an image content part; a program run per
    /// turn gets each file's path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<TurnFile>,
}

/// A file that came with the new user message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TurnFile {
    /// Its file name.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where it is on disk, for a backend that reads files ([`Agent::reads_files`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The image as a `data:` URL, for a model that sees images (`HERMES_AGENT_VISION`).
    #[serde(skip)]
    pub image: Option<String>,
}

/// The content of the new user message in OpenAI's chat-completions form: its text, or, when
/// images come with it, the text then each image as an `image_url` part.
pub fn user_content(text: &str, files: &[TurnFile]) -> serde_json::Value {
    use serde_json::json;
    let images: Vec<&str> = files.iter().filter_map(|f| f.image.as_deref()).collect();
    if images.is_empty() {
        return json!(text);
    }
    let mut parts = vec![json!({"type": "text", "text": text})];
    parts.extend(
        images
            .into_iter()
            .map(|url| json!({"type": "image_url", "image_url": {"url": url}})),
    );
    serde_json::Value::Array(parts)
}

/// What the agent is told of the person it talks with, when their name is known.
pub fn name_line(name: &str) -> String {
    format!("The person you are talking with goes by the name {name}.")
}

impl AgentRequest {
    /// The new user message: the last one.
    pub fn last_user(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("")
    }
}

/// The reply so far, as a streaming backend writes it: every update holds the whole text
/// received until then. Whoever shows it reads the latest value at its own pace.
pub type Live = tokio::sync::watch::Sender<String>;

/// A backend that writes replies.
#[async_trait(?Send)]
pub trait Agent {
    /// The reply to the last message of the request. A backend that streams publishes the
    /// growing text to `live` when given one; the finished reply is returned either way.
    async fn reply(&self, request: &AgentRequest, live: Option<&Live>) -> anyhow::Result<String>;

    /// Whether replies arrive as they are written (given a `live` to write to).
    fn streams(&self) -> bool {
        false
    }

    /// Whether the backend reads the files of a turn from disk ([`TurnFile::path`]): the host
    /// then writes them there first.
    fn reads_files(&self) -> bool {
        false
    }
}

/// The built-in agent that echoes the user.
pub struct Echo;

#[async_trait(?Send)]
impl Agent for Echo {
    async fn reply(&self, request: &AgentRequest, _live: Option<&Live>) -> anyhow::Result<String> {
        Ok(format!("You said: {}", request.last_user()))
    }
}

/// Names a chat in ids sent to the agent server without naming it: a digest of the platform
/// and the chat (a phone number is personal data; the id only has to be unique and stable).
pub fn chat_tag(platform: &str, chat: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::new()
        .chain_update(platform.as_bytes())
        .chain_update([0])
        .chain_update(chat.as_bytes())
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{platform}-{hex}")
}

/// The configured backend and the per-turn time limit.
pub fn from_config(section: &ConfigSection) -> anyhow::Result<(Rc<dyn Agent>, Duration)> {
    let timeout = Duration::from_secs(
        section
            .number(settings::AGENT_TIMEOUT_SECS.env)?
            .unwrap_or(120)
            .max(1),
    );
    let kind = section
        .choice(settings::AGENT.env, settings::AGENT_BACKENDS)?
        .unwrap_or_else(|| "echo".to_string());
    let agent: Rc<dyn Agent> = match kind.as_str() {
        "openai" => {
            let url = section
                .url(settings::AGENT_URL.env)?
                .context("HERMES_AGENT=openai needs HERMES_AGENT_URL (a base URL ending in /v1)")?;
            let model = section
                .text(settings::AGENT_MODEL.env)
                .context("HERMES_AGENT=openai needs HERMES_AGENT_MODEL")?
                .to_string();
            Rc::new(openai::OpenAi::new(
                &url,
                model,
                section
                    .text(settings::AGENT_API_KEY.env)
                    .map(str::to_string),
                timeout,
            ))
        }
        "hermes" => {
            let url = section.url(settings::AGENT_URL.env)?.context(
                "HERMES_AGENT=hermes needs HERMES_AGENT_URL (Hermes Agent's API server, ending in /v1, e.g. http://127.0.0.1:8642/v1)",
            )?;
            let api_key = section
                .text(settings::AGENT_API_KEY.env)
                .filter(|k| !k.is_empty())
                .context(
                "HERMES_AGENT=hermes needs HERMES_AGENT_API_KEY (the API_SERVER_KEY of Hermes Agent's API server: it keeps sessions only for a client with its key)",
            )?;
            let model = section
                .text(settings::AGENT_MODEL.env)
                .unwrap_or(hermes::DEFAULT_MODEL);
            Rc::new(hermes::Hermes::new(
                &url,
                model.to_string(),
                api_key.to_string(),
                timeout,
            ))
        }
        "command" => Rc::new(command::Command::new(
            section
                .text(settings::AGENT_COMMAND.env)
                .context("HERMES_AGENT=command needs HERMES_AGENT_COMMAND")?,
        )),
        _ => Rc::new(Echo),
    };
    Ok((agent, timeout))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request of one user message on SMS.
    pub(crate) fn request(text: &str) -> AgentRequest {
        AgentRequest {
            platform: "sms".into(),
            platform_label: "SMS".into(),
            chat: "+15550001111".into(),
            turn_id: "sms-1-1".into(),
            system: "You are terse.".into(),
            hint: Some("Plain text.".into()),
            chat_name: None,
            session: Session {
                id: "sms-1".into(),
                key: "sms:+15550001111".into(),
            },
            messages: vec![ChatMessage::new("user", text)],
            files: Vec::new(),
        }
    }

    #[test]
    fn images_follow_the_text_as_image_parts() {
        let photo = TurnFile {
            name: "cat.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 3,
            path: None,
            image: Some("data:image/jpeg;base64,AAAA".into()),
        };
        let doc = TurnFile {
            name: "a.pdf".into(),
            content_type: "application/pdf".into(),
            size: 3,
            path: None,
            image: None,
        };
        assert_eq!(
            user_content("hi", std::slice::from_ref(&doc)),
            serde_json::json!("hi")
        );
        assert_eq!(
            user_content("look", &[photo, doc]),
            serde_json::json!([
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
            ])
        );
    }

    #[actix_rt::test]
    async fn echo_answers_the_last_user_message() {
        assert_eq!(
            Echo.reply(&request("hi"), None).await.unwrap(),
            "You said: hi"
        );
    }
}
