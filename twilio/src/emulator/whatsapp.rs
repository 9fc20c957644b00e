//! WhatsApp through the same account: `whatsapp:+…` addresses on `Messages.json`, the
//! account's WhatsApp sender with the URL its inbound messages are posted to, Meta's 24-hour
//! customer service window and the approved content templates that may be sent outside it.
//!
//! A free-form message (`Body`, `MediaUrl`) to a user who has not written in the last 24 hours
//! is accepted (201, `queued`) and then fails with 63016, as Twilio reports it. A template
//! (`ContentSid` with `ContentVariables`) goes whatever the window.
use std::io;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::messages::Rejection;
use super::{
    API_VERSION, Emulator, InboundMms, MediaFile, SentMessage, State, is_sid, media_params, param,
};

/// The prefix of a WhatsApp address.
const PREFIX: &str = "whatsapp:";
/// How long after a user's last message free-form messages may reach them.
const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Twilio's code for a free-form message outside the window.
pub(super) const OUTSIDE_WINDOW: i64 = 63016;

/// The account's WhatsApp sender.
#[derive(Clone, Debug)]
pub(super) struct Sender {
    /// Its number, E.164.
    number: String,
    /// Where its inbound messages are posted.
    webhook_url: String,
}

/// A template send, checked and rendered.
#[derive(Clone, Debug)]
pub(super) struct Template {
    /// The `ContentSid`.
    pub(super) sid: String,
    /// The `ContentVariables`, as posted.
    pub(super) variables: Option<String>,
    /// The template's text with the variables put in.
    pub(super) body: String,
}

/// Whether `address` is a WhatsApp address (`whatsapp:+…`).
pub(super) fn is_whatsapp(address: &str) -> bool {
    address.starts_with(PREFIX)
}

/// The number of an address, without its `whatsapp:` prefix.
pub(super) fn address(address: &str) -> &str {
    address.strip_prefix(PREFIX).unwrap_or(address)
}

/// The sender a message to `to` goes from when it is a WhatsApp one: `whatsapp:<sender>`.
pub(super) fn sender(state: &State, to: &str) -> Option<String> {
    let sender = state.whatsapp.as_ref().filter(|_| is_whatsapp(to))?;
    Some(format!("{PREFIX}{}", sender.number))
}

/// Twilio's WhatsApp checks of a `Messages.json` request (none when neither address is a
/// WhatsApp one): both addresses of one channel (21910), the account's sender as `From`
/// (63007), and for a template a known `ContentSid` (21655) with valid `ContentVariables`
/// (21656, 21654 without a `ContentSid`, 35127 next to a `Body`). The rendered template, when
/// one is sent.
pub(super) fn check(
    state: &State,
    to: &str,
    from: Option<&str>,
    params: &[(String, String)],
) -> Result<Option<Template>, Rejection> {
    let from_whatsapp = from.is_some_and(is_whatsapp);
    if !is_whatsapp(to) && !from_whatsapp {
        return Ok(None);
    }
    if from.is_some() && is_whatsapp(to) != from_whatsapp {
        return Err(Rejection::bad_request(
            21910,
            "Invalid From and To pair. From and To should be of the same channel".to_string(),
        ));
    }
    if let Some(from) = from.filter(|from| {
        state
            .whatsapp
            .as_ref()
            .is_none_or(|sender| address(from) != sender.number)
    }) {
        return Err(Rejection::bad_request(
            63007,
            format!("Twilio could not find a Channel with the specified From address: {from}"),
        ));
    }
    let non_empty = |name: &str| param(params, name).filter(|v| !v.is_empty());
    let variables = non_empty("ContentVariables");
    let Some(sid) = non_empty("ContentSid") else {
        if variables.is_some() {
            return Err(Rejection::bad_request(
                21654,
                "A ContentSid must be specified if ContentVariables are provided in the request."
                    .to_string(),
            ));
        }
        return Ok(None);
    };
    let Some(text) = state.templates.get(sid).filter(|_| is_sid(sid, "HX")) else {
        return Err(Rejection::bad_request(
            21655,
            format!("The ContentSid is Invalid: {sid}"),
        ));
    };
    if variables.is_some() && non_empty("Body").is_some() {
        return Err(Rejection::bad_request(
            35127,
            "'Messages' Body and ContentVariables cannot be provided together".to_string(),
        ));
    }
    let body = render(text, variables).ok_or_else(|| {
        Rejection::bad_request(
            21656,
            "The Content Variables parameter is invalid.".to_string(),
        )
    })?;
    Ok(Some(Template {
        sid: sid.to_string(),
        variables: variables.map(str::to_string),
        body,
    }))
}

/// `text` with each `{{name}}` replaced by its value in `variables`, a JSON object of
/// non-empty strings; `None` when `variables` is not one or lacks a placeholder's value.
fn render(text: &str, variables: Option<&str>) -> Option<String> {
    let values: Map<String, Value> = match variables {
        Some(json) => serde_json::from_str(json).ok()?,
        None => Map::new(),
    };
    let valid = |value: &Value| value.as_str().is_some_and(|s| !s.is_empty());
    if !values.values().all(valid) {
        return None;
    }
    let mut rendered = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}")? + start;
        let name = rest[start + 2..end].trim();
        rendered.push_str(&rest[..start]);
        rendered.push_str(values.get(name)?.as_str()?);
        rest = &rest[end + 2..];
    }
    rendered.push_str(rest);
    Some(rendered)
}

/// Whether `message` is a free-form WhatsApp message to a user whose window is closed: they
/// never wrote, or last wrote 24 hours ago or more.
pub(super) fn outside_window(state: &State, message: &SentMessage) -> bool {
    if !is_whatsapp(&message.to) || message.content_sid.is_some() {
        return false;
    }
    state
        .windows
        .get(address(&message.to))
        .is_none_or(|last| last.elapsed().unwrap_or_default() >= WINDOW)
}

/// WhatsApp's type of an inbound message, from its first file.
fn message_type(files: &[MediaFile]) -> &'static str {
    let Some(file) = files.first() else {
        return "text";
    };
    match file.content_type.split('/').next().unwrap_or_default() {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        _ => "document",
    }
}

impl Emulator {
    /// Gives the account a WhatsApp sender: `sender` (E.164, such as the Sandbox number
    /// +14155238886), whose inbound messages are posted to `webhook_url` (the sender's "When a
    /// message comes in" URL). Messages may then go from `whatsapp:<sender>`.
    pub fn enable_whatsapp(&self, sender: &str, webhook_url: &str) {
        self.shared.lock().whatsapp = Some(Sender {
            number: sender.trim().to_string(),
            webhook_url: webhook_url.to_string(),
        });
    }

    /// A WhatsApp user (`from`, E.164 without the prefix) writes `body` with `files` to the
    /// sender: their 24-hour window opens, the files are served on their media URLs, and the
    /// webhook is posted, signed as [`Emulator::text_with_media`] signs, to the sender's URL
    /// (or, with `via`, to that base URL with its path and query) with Twilio's WhatsApp
    /// parameters (`ProfileName`, `WaId`, `MessageType`, `whatsapp:` addresses). Blocks until
    /// answered, so call it from outside an async runtime.
    pub fn whatsapp_text(
        &self,
        from: &str,
        body: &str,
        profile_name: &str,
        files: &[MediaFile],
        via: Option<&str>,
    ) -> io::Result<InboundMms> {
        let sender = self
            .shared
            .lock()
            .whatsapp
            .clone()
            .ok_or_else(|| io::Error::other("WhatsApp is not enabled"))?;
        self.open_window(from);
        // Twilio names a WhatsApp message without media as it names an SMS.
        let prefix = if files.is_empty() { "SM" } else { "MM" };
        let (message_sid, media_urls) = self.store_media(prefix, files);
        let mut params: Vec<(String, String)> = vec![
            ("SmsMessageSid".into(), message_sid.clone()),
            ("NumMedia".into(), files.len().to_string()),
            ("ProfileName".into(), profile_name.to_string()),
            ("MessageType".into(), message_type(files).into()),
            ("SmsSid".into(), message_sid.clone()),
            ("WaId".into(), from.trim_start_matches('+').to_string()),
            ("SmsStatus".into(), "received".into()),
            ("Body".into(), body.to_string()),
            ("To".into(), format!("{PREFIX}{}", sender.number)),
            ("NumSegments".into(), "1".into()),
            ("ReferralNumMedia".into(), "0".into()),
            ("MessageSid".into(), message_sid.clone()),
            ("AccountSid".into(), self.shared.account_sid.clone()),
            ("From".into(), format!("{PREFIX}{from}")),
            ("ApiVersion".into(), API_VERSION.into()),
        ];
        params.extend(media_params(files, &media_urls));
        let answered =
            self.post_inbound((&sender.webhook_url, "POST"), &params, &message_sid, via)?;
        Ok(InboundMms {
            message_sid,
            media_urls,
            answered,
        })
    }

    /// `number` (E.164) wrote just now: free-form messages may reach them for 24 hours.
    pub fn open_window(&self, number: &str) {
        self.shared
            .lock()
            .windows
            .insert(number.trim().to_string(), SystemTime::now());
    }

    /// `number`'s last message is now 25 hours old: their window is closed until they write.
    pub fn expire_window(&self, number: &str) {
        let last = SystemTime::now() - WINDOW - Duration::from_secs(60 * 60);
        self.shared
            .lock()
            .windows
            .insert(number.trim().to_string(), last);
    }

    /// Adds an approved content template: `content_sid` (`HX` and 32 hex digits) and its text,
    /// with `{{1}}`, `{{2}}`, … where `ContentVariables` go.
    pub fn add_template(&self, content_sid: &str, text: &str) {
        self.shared
            .lock()
            .templates
            .insert(content_sid.to_string(), text.to_string());
    }
}
