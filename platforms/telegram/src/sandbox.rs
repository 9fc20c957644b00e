//! The Telegram sandbox: the Bot API emulator stands in for Telegram, and a test user writes
//! to the bot in a private chat. The gateway polls the emulator as it would poll Telegram, so
//! the listener port the host picks is not used.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use platform_api::sandbox::{Sandbox, SandboxFile, SandboxProvider, SandboxReply};

use crate::emulator::{Draft, Emulator, EmulatorConfig, Person, Recorded, SentFile, SentMessage};
use crate::types::Update;

/// The sandbox user's id (and private chat).
const USER_ID: i64 = 100_200_300;
/// How long [`Sandbox::send_as_user`] waits for the gateway to fetch the message.
const FETCH_WAIT: Duration = Duration::from_secs(30);

struct TelegramSandbox {
    emulator: Emulator,
    user: Person,
}

fn start(_port: u16) -> Result<Box<dyn Sandbox>, String> {
    let emulator = Emulator::start(EmulatorConfig::random("hermes_sandbox_bot"))
        .map_err(|e| format!("starting the Telegram emulator: {e}"))?;
    let user = Person::new(USER_ID, "You");
    emulator.add_chat(&user.chat());
    Ok(Box::new(TelegramSandbox { emulator, user }))
}

inventory::submit! {
    SandboxProvider { platform: crate::NAME, start }
}

/// A message the bot sent, as the sandbox shows it: its text (a file's caption), and the file
/// as Telegram received it (a voice note has no name of its own: it shows as `voice.ogg`).
fn reply(message: &SentMessage) -> SandboxReply {
    let media = message
        .media
        .iter()
        .map(|file| SandboxFile {
            name: file
                .file_name
                .clone()
                .unwrap_or_else(|| format!("{}.{}", file.kind, extension(file))),
            content_type: file
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_string()),
            size: file.file_size.unwrap_or(0),
        })
        .collect();
    SandboxReply {
        chat: message.chat_id.to_string(),
        body: message.text.clone(),
        encoding: None,
        segments: 1,
        media,
    }
}

/// The extension a nameless file of this kind gets.
fn extension(file: &SentFile) -> &'static str {
    match file.kind.as_str() {
        "photo" => "jpg",
        "voice" => "ogg",
        _ => "bin",
    }
}

fn update(draft: &Draft) -> SandboxReply {
    SandboxReply {
        chat: draft.chat_id.to_string(),
        body: draft.text.clone(),
        encoding: None,
        segments: 1,
        media: Vec::new(),
    }
}

impl TelegramSandbox {
    /// Waits until the gateway has fetched and confirmed `update` (polled past it).
    fn fetched(&self, update: Update) -> Result<(), String> {
        let deadline = Instant::now() + FETCH_WAIT;
        while Instant::now() < deadline {
            let pending = self.emulator.pending_updates();
            if pending.iter().all(|u| u.update_id != update.update_id) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "the gateway has not fetched the message within {}s (is it polling?)",
            FETCH_WAIT.as_secs()
        ))
    }
}

impl Sandbox for TelegramSandbox {
    fn settings(&self) -> Vec<(String, String)> {
        let user = USER_ID.to_string();
        [
            ("TELEGRAM_ENABLED", "true".to_string()),
            ("TELEGRAM_BOT_TOKEN", self.emulator.token()),
            ("TELEGRAM_API_BASE_URL", self.emulator.base_url()),
            // Polling: a webhook of the real configuration must not apply.
            ("TELEGRAM_WEBHOOK_URL", String::new()),
            ("TELEGRAM_WEBHOOK_SECRET", String::new()),
            ("TELEGRAM_ALLOWED_USERS", user.clone()),
            ("TELEGRAM_ALLOW_ALL_USERS", "false".to_string()),
            ("TELEGRAM_HOME_CHANNEL", user),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn user(&self) -> String {
        USER_ID.to_string()
    }

    fn address(&self) -> String {
        format!("@{}", self.emulator.bot().username.unwrap_or_default())
    }

    /// Queues the message as an update and waits until the gateway has fetched and confirmed
    /// it (polled past it).
    fn send_as_user(&self, _gateway: SocketAddr, text: &str) -> Result<(), String> {
        self.fetched(self.emulator.user_writes(&self.user, text))
    }

    /// Sends the file as Telegram's apps do: a JPEG as a photo, OGG audio as a voice note,
    /// other audio and video as such, anything else as a document; waits until the gateway
    /// fetched the update (it then downloads the file through `getFile`).
    fn send_file_as_user(
        &self,
        _gateway: SocketAddr,
        file: &SandboxFile,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<(), String> {
        let chat = self.user.chat();
        let caption = Some(caption).filter(|c| !c.is_empty());
        let recorded = Recorded {
            file_name: Some(file.name.as_str()),
            mime_type: &file.content_type,
            bytes: &bytes,
            caption,
        };
        let update = match file.content_type.as_str() {
            "image/jpeg" => {
                self.emulator
                    .send_photo_sizes(&chat, &self.user, &[(0, 0, &bytes)], caption)
            }
            "audio/ogg" if caption.is_none() => {
                self.emulator.send_voice(&chat, &self.user, &bytes, 1)
            }
            t if t.starts_with("audio/") => self.emulator.send_audio(&chat, &self.user, recorded),
            t if t.starts_with("video/") => self.emulator.send_video(&chat, &self.user, recorded),
            _ => self.emulator.send_file(
                &chat,
                &self.user,
                &file.name,
                &file.content_type,
                &bytes,
                caption,
            ),
        };
        self.fetched(update)
    }

    /// The gateway polls the emulator: there is no listener to wait for.
    fn polled(&self) -> bool {
        true
    }

    fn on_reply(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        self.emulator.set_on_message(Box::new(move |m| f(reply(m))));
    }

    /// Each draft update (`sendMessageDraft`): the reply as it is written.
    fn on_update(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        self.emulator.set_on_draft(Box::new(move |d| f(update(d))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_reported_as_telegram_received_it() {
        let mut message = SentMessage {
            chat_id: USER_ID,
            message_id: 3,
            text: "The chart".to_string(),
            body: "The <b>chart</b>".to_string(),
            parse_mode: Some("HTML".to_string()),
            entities: Vec::new(),
            media: Some(SentFile {
                kind: "photo".to_string(),
                file_id: "BQAC1".to_string(),
                file_name: Some("chart.png".to_string()),
                content_type: Some("image/png".to_string()),
                file_size: Some(48_200),
                sha1: None,
                reference: None,
            }),
            elapsed: Duration::ZERO,
        };
        let shown = reply(&message);
        assert_eq!(shown.body, "The chart");
        assert_eq!(
            shown.media,
            vec![SandboxFile {
                name: "chart.png".into(),
                content_type: "image/png".into(),
                size: 48_200,
            }]
        );
        message.text.clear();
        if let Some(file) = message.media.as_mut() {
            file.kind = "voice".to_string();
            file.file_name = None;
            file.content_type = Some("audio/ogg".to_string());
        }
        let shown = reply(&message);
        assert_eq!(shown.body, "");
        assert_eq!(shown.media[0].name, "voice.ogg");
        message.media = None;
        message.text = "plain".to_string();
        assert!(reply(&message).media.is_empty());
    }
}
