//! The SMS sandbox: the Twilio emulator stands in for Twilio, and a test phone texts the
//! gateway through signed webhooks, exactly as Twilio would post them.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use platform_api::sandbox::{Sandbox, SandboxFile, SandboxProvider, SandboxReply, SandboxStatus};
use rand::Rng;

use hermes_twilio::emulator::shown::{fetched, files};
use hermes_twilio::emulator::{Emulator, EmulatorConfig, MediaDownload, MediaFile, SentMessage};
use hermes_twilio::signature::compute_signature;

/// The number the sandbox account owns (Twilio's magic test number).
const OUR_NUMBER: &str = "+15005550006";
/// The sandbox user's phone.
const USER: &str = "+15555550100";

struct SmsSandbox {
    emulator: Emulator,
    account_sid: String,
    auth_token: String,
    webhook_url: String,
    port: u16,
}

fn hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn start(port: u16) -> Result<Box<dyn Sandbox>, String> {
    let account_sid = format!("AC{}", hex(32));
    let auth_token = hex(32);
    let webhook_url = format!("http://127.0.0.1:{port}/webhooks/twilio");
    let emulator = Emulator::start(EmulatorConfig {
        account_sid: account_sid.clone(),
        auth_token: auth_token.clone(),
        phone_number: OUR_NUMBER.to_string(),
        sms_url: Some(webhook_url.clone()),
        sms_method: "POST".to_string(),
    })
    .map_err(|e| format!("starting the Twilio emulator: {e}"))?;
    // Twilio posts delivery reports to the gateway's status route, as it would in production.
    emulator.deliver_status_callbacks(None);
    Ok(Box::new(SmsSandbox {
        emulator,
        account_sid,
        auth_token,
        webhook_url,
        port,
    }))
}

inventory::submit! {
    SandboxProvider { platform: "sms", start }
}

fn form(params: &[(String, String)]) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

/// A message as the sandbox shows it; an MMS as such (billed as one message), with each file
/// Twilio fetched for it (`downloads`, as the emulator recorded them).
fn reply(message: &SentMessage, downloads: &[MediaDownload]) -> SandboxReply {
    let (encoding, segments) = if message.media_urls.is_empty() {
        (message.encoding.clone(), message.segments)
    } else {
        (crate::format::MMS_ENCODING.to_string(), 1)
    };
    SandboxReply {
        chat: message.to.clone(),
        body: message.body.clone(),
        encoding: Some(encoding),
        segments,
        media: files(message, downloads),
    }
}

impl Sandbox for SmsSandbox {
    fn settings(&self) -> Vec<(String, String)> {
        [
            ("TWILIO_ENABLED", "true".to_string()),
            ("TWILIO_ACCOUNT_SID", self.account_sid.clone()),
            ("TWILIO_AUTH_TOKEN", self.auth_token.clone()),
            ("TWILIO_PHONE_NUMBER", OUR_NUMBER.to_string()),
            ("TWILIO_API_BASE_URL", self.emulator.base_url()),
            ("TWILIO_MESSAGING_SERVICE_SID", String::new()),
            ("SMS_WEBHOOK_URL", self.webhook_url.clone()),
            ("SMS_WEBHOOK_HOST", "127.0.0.1".to_string()),
            ("SMS_WEBHOOK_PORT", self.port.to_string()),
            ("SMS_ALLOWED_USERS", USER.to_string()),
            ("SMS_ALLOW_ALL_USERS", "false".to_string()),
            ("SMS_HOME_CHANNEL", USER.to_string()),
            ("TWILIO_MAX_SEGMENTS_PER_SECOND", "50".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn user(&self) -> String {
        USER.to_string()
    }

    fn address(&self) -> String {
        OUR_NUMBER.to_string()
    }

    fn send_as_user(&self, gateway: SocketAddr, text: &str) -> Result<(), String> {
        let sid = format!("SM{}", hex(32));
        let params: Vec<(String, String)> = [
            ("ToCountry", "US"),
            ("SmsMessageSid", &sid),
            ("NumMedia", "0"),
            ("SmsSid", &sid),
            ("From", USER),
            ("To", OUR_NUMBER),
            ("Body", text),
            ("MessageSid", &sid),
            ("AccountSid", &self.account_sid),
            ("NumSegments", "1"),
            ("ApiVersion", "2010-04-01"),
            ("SmsStatus", "received"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = compute_signature(&self.auth_token, &self.webhook_url, &params);
        let body = form(&params);
        let request = format!(
            "POST /webhooks/twilio HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        let mut stream = TcpStream::connect_timeout(&gateway, Duration::from_secs(5))
            .map_err(|e| format!("gateway unreachable: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        let status = answer.split_whitespace().nth(1).unwrap_or("");
        if status == "200" {
            Ok(())
        } else {
            Err(format!("the gateway answered the webhook with {status}"))
        }
    }

    /// An MMS from the user: Twilio keeps the file and posts its media URL, which the gateway
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
        let mms = self
            .emulator
            .text_with_media(USER, caption, &[media], None)
            .map_err(|e| format!("posting the MMS: {e}"))?;
        if mms.answered == 200 {
            Ok(())
        } else {
            Err(format!(
                "the gateway answered the webhook with {}",
                mms.answered
            ))
        }
    }

    /// Each message once Twilio fetched its files, in the order the gateway sent them.
    fn on_reply(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        let (accepted, queue) = std::sync::mpsc::channel::<SentMessage>();
        let emulator = self.emulator.clone();
        std::thread::spawn(move || {
            for message in queue {
                f(reply(&message, &fetched(&emulator, &message)));
            }
        });
        self.emulator.set_on_message(Box::new(move |m| {
            let _ = accepted.send(m.clone());
        }));
    }

    /// Twilio reports on a message once it fetched its files: they are all recorded by then.
    fn on_status(&self, f: Box<dyn Fn(SandboxStatus) + Send + Sync>) {
        let emulator = self.emulator.clone();
        self.emulator.set_on_status(Box::new(move |m| {
            f(SandboxStatus {
                reply: reply(m, &emulator.downloads()),
                status: m.status.clone(),
                error_code: m.error_code,
            })
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_api::{ConfigSection, Part, PartMedia, SendAs};

    #[test]
    fn an_mms_shows_as_one_message_with_the_files_twilio_fetched() {
        let account_sid = format!("AC{}", hex(32));
        let emulator = Emulator::start(EmulatorConfig {
            account_sid: account_sid.clone(),
            auth_token: "token".to_string(),
            phone_number: OUR_NUMBER.to_string(),
            sms_url: None,
            sms_method: "POST".to_string(),
        })
        .expect("the emulator starts");
        let base = emulator.base_url();
        let settings = crate::settings::SmsSettings::from_config(&ConfigSection::from_pairs([
            ("TWILIO_ACCOUNT_SID", account_sid.as_str()),
            ("TWILIO_AUTH_TOKEN", "token"),
            ("TWILIO_PHONE_NUMBER", OUR_NUMBER),
            (
                "SMS_WEBHOOK_URL",
                "https://gateway.example.com/webhooks/twilio",
            ),
            ("TWILIO_API_BASE_URL", base.as_str()),
        ]))
        .expect("valid settings");
        // A closed loopback port: Twilio cannot fetch the file.
        let url = "http://127.0.0.1:9/media/tok";
        let long = "A long line of text for the sandbox. ".repeat(60);
        let mut parts = crate::format::format(&long);
        parts[0].media = vec![PartMedia {
            token: "tok".into(),
            name: "chart.png".into(),
            content_type: "image/png".into(),
            size: 10,
            send_as: SendAs::Photo,
            bytes: None,
            url: Some(url.into()),
        }];
        let plain: &Part = &parts[1];
        let _ = rustls::crypto::ring::default_provider().install_default();
        actix_web::rt::System::new().block_on(async {
            for part in [&parts[0], plain] {
                crate::sender::send(&settings, USER, part)
                    .await
                    .expect("accepted");
            }
        });
        let messages = emulator.messages();
        let downloads = fetched(&emulator, &messages[0]);
        assert_eq!(downloads.len(), 1, "{downloads:?}");
        assert_eq!(downloads[0].status, None);
        let shown: Vec<SandboxReply> = messages.iter().map(|m| reply(m, &downloads)).collect();
        assert_eq!(shown[0].encoding.as_deref(), Some("MMS"));
        assert_eq!(shown[0].segments, 1);
        assert_eq!(shown[0].body, parts[0].body);
        assert!(shown[0].media.is_empty(), "a file Twilio never got");
        assert_eq!(shown[1].encoding.as_deref(), Some("GSM-7"));
        assert_eq!(shown[1].body, plain.body);
        assert!(shown[1].segments > 1);

        let got = MediaDownload {
            status: Some(200),
            content_type: Some("image/png".into()),
            filename: Some("chart.png".into()),
            size: 48_200,
            sha1: Some("ab".into()),
            ..downloads[0].clone()
        };
        assert_eq!(
            reply(&messages[0], &[got]).media,
            vec![SandboxFile {
                name: "chart.png".into(),
                content_type: "image/png".into(),
                size: 48_200,
            }]
        );
    }
}
