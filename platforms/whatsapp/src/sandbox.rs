//! The WhatsApp sandbox: the Twilio emulator stands in for Twilio and its Sandbox for
//! WhatsApp, and a test phone writes to the gateway through signed webhooks, exactly as
//! Twilio would post them (its 24-hour window opening with each message).
use std::net::SocketAddr;

use platform_api::sandbox::{Sandbox, SandboxFile, SandboxProvider, SandboxReply, SandboxStatus};
use rand::Rng;

use crate::emulator::shown::{fetched, files};
use crate::emulator::{Emulator, EmulatorConfig, MediaFile, SentMessage};
use crate::guide::SANDBOX_NUMBER;

/// The sandbox account's SMS number (unused by WhatsApp, required by the account).
const SMS_NUMBER: &str = "+15005550006";
/// The sandbox user's phone.
const USER: &str = "+15555550100";
/// The name WhatsApp shows for the sandbox user (`ProfileName`).
const PROFILE_NAME: &str = "Sandbox User";

struct WhatsAppSandbox {
    emulator: Emulator,
    account_sid: String,
    auth_token: String,
    webhook_url: String,
    port: u16,
}

fn start(port: u16) -> Result<Box<dyn Sandbox>, String> {
    let account_sid = format!("AC{}", hex(32));
    let auth_token = hex(32);
    let webhook_url = format!("http://127.0.0.1:{port}{}", crate::webhook::PATH);
    let emulator = Emulator::start(EmulatorConfig {
        account_sid: account_sid.clone(),
        auth_token: auth_token.clone(),
        phone_number: SMS_NUMBER.to_string(),
        sms_url: None,
        sms_method: "POST".to_string(),
    })
    .map_err(|e| format!("starting the Twilio emulator: {e}"))?;
    emulator.enable_whatsapp(SANDBOX_NUMBER, &webhook_url);
    emulator.deliver_status_callbacks(None);
    Ok(Box::new(WhatsAppSandbox {
        emulator,
        account_sid,
        auth_token,
        webhook_url,
        port,
    }))
}

fn hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

inventory::submit! {
    SandboxProvider { platform: "whatsapp", start }
}

/// A message as the sandbox shows it: the chat without `whatsapp:`, billed as one message.
fn reply(message: &SentMessage, emulator: &Emulator) -> SandboxReply {
    SandboxReply {
        chat: message
            .to
            .strip_prefix("whatsapp:")
            .unwrap_or(&message.to)
            .to_string(),
        body: message.body.clone(),
        encoding: None,
        segments: 1,
        media: files(message, &fetched(emulator, message)),
    }
}

impl WhatsAppSandbox {
    fn write(&self, text: &str, files: &[MediaFile]) -> Result<(), String> {
        let posted = self
            .emulator
            .whatsapp_text(USER, text, PROFILE_NAME, files, None)
            .map_err(|e| format!("posting the WhatsApp message: {e}"))?;
        if posted.answered == 200 {
            Ok(())
        } else {
            Err(format!(
                "the gateway answered the webhook with {}",
                posted.answered
            ))
        }
    }
}

impl Sandbox for WhatsAppSandbox {
    fn settings(&self) -> Vec<(String, String)> {
        [
            ("WHATSAPP_ENABLED", "true".to_string()),
            ("TWILIO_ENABLED", "false".to_string()),
            ("TWILIO_ACCOUNT_SID", self.account_sid.clone()),
            ("TWILIO_AUTH_TOKEN", self.auth_token.clone()),
            ("TWILIO_WHATSAPP_NUMBER", SANDBOX_NUMBER.to_string()),
            ("TWILIO_API_BASE_URL", self.emulator.base_url()),
            ("WHATSAPP_WEBHOOK_URL", self.webhook_url.clone()),
            ("SMS_WEBHOOK_HOST", "127.0.0.1".to_string()),
            ("WHATSAPP_WEBHOOK_PORT", self.port.to_string()),
            ("WHATSAPP_ALLOWED_USERS", USER.to_string()),
            ("WHATSAPP_ALLOW_ALL_USERS", "false".to_string()),
            ("WHATSAPP_HOME_CHANNEL", USER.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn user(&self) -> String {
        USER.to_string()
    }

    fn address(&self) -> String {
        format!("whatsapp:{SANDBOX_NUMBER}")
    }

    fn send_as_user(&self, _gateway: SocketAddr, text: &str) -> Result<(), String> {
        self.write(text, &[])
    }

    /// A message with a file: Twilio keeps it and posts its media URL, which the gateway
    /// fetches with the account's credentials.
    fn send_file_as_user(
        &self,
        _gateway: SocketAddr,
        file: &SandboxFile,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<(), String> {
        let media = MediaFile {
            content_type: file.content_type.clone(),
            bytes,
        };
        self.write(caption, &[media])
    }

    /// Each message once Twilio fetched its file, in the order the gateway sent them.
    fn on_reply(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        let (accepted, queue) = std::sync::mpsc::channel::<SentMessage>();
        let emulator = self.emulator.clone();
        std::thread::spawn(move || {
            for message in queue {
                f(reply(&message, &emulator));
            }
        });
        self.emulator.set_on_message(Box::new(move |m| {
            let _ = accepted.send(m.clone());
        }));
    }

    /// Twilio's reports, `read` included.
    fn on_status(&self, f: Box<dyn Fn(SandboxStatus) + Send + Sync>) {
        let emulator = self.emulator.clone();
        self.emulator.set_on_status(Box::new(move |m| {
            f(SandboxStatus {
                reply: reply(m, &emulator),
                status: m.status.clone(),
                error_code: m.error_code,
            })
        }));
    }
}
