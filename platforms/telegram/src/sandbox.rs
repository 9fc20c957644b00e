//! The Telegram sandbox: the Bot API emulator stands in for Telegram, and a test user writes
//! to the bot in a private chat. The gateway polls the emulator as it would poll Telegram, so
//! the listener port the host picks is not used.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use platform_api::media::human_size;
use platform_api::sandbox::{Sandbox, SandboxProvider, SandboxReply};

use crate::emulator::{Draft, Emulator, EmulatorConfig, Person, SentMessage};

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

/// A message the bot sent, as the sandbox prints it: a file as `[image: name, type, size]`
/// (`voice note`, `audio`, `video` or `file` for the other kinds) on a line before its caption.
fn reply(message: &SentMessage) -> SandboxReply {
    let body = match &message.media {
        None => message.text.clone(),
        Some(file) => {
            let kind = match file.kind.as_str() {
                "photo" => "image",
                "voice" => "voice note",
                "document" => "file",
                other => other,
            };
            let mut facts: Vec<String> = file.file_name.iter().cloned().collect();
            facts.extend(file.content_type.iter().cloned());
            facts.extend(file.file_size.map(human_size));
            let line = format!("[{kind}: {}]", facts.join(", "));
            [line, message.text.clone()]
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    SandboxReply {
        chat: message.chat_id.to_string(),
        body,
        encoding: None,
        segments: 1,
        media: Vec::new(),
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
        let update = self.emulator.user_writes(&self.user, text);
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
    use crate::emulator::SentFile;

    #[test]
    fn a_file_prints_as_its_kind_name_type_and_size() {
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
        assert_eq!(
            reply(&message).body,
            "[image: chart.png, image/png, 48 KB]\nThe chart"
        );
        message.text.clear();
        if let Some(file) = message.media.as_mut() {
            file.kind = "voice".to_string();
            file.file_name = None;
        }
        assert_eq!(reply(&message).body, "[voice note: image/png, 48 KB]");
        message.media = None;
        message.text = "plain".to_string();
        assert_eq!(reply(&message).body, "plain");
    }
}
