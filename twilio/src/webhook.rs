//! A Twilio webhook route: size cap, strict form parsing, signature check, normalisation, and
//! the message handed to the host once it is stored.
//!
//! One handler serves every [`Channel`] of the account: SMS on `/webhooks/twilio`, WhatsApp
//! (`whatsapp:` addresses) on `/webhooks/whatsapp`; each platform names its channel and
//! registers it with [`configure`].
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::body::{BodyError, read_capped};
use platform_api::{
    Accepted, Attachment, Control, Inbound, InboundSink, Setting, SettingKind, SinkError, phone,
    redact_url,
};
use tracing::{debug, error, info, warn};

use crate::signature::{SIGNATURE_SETTINGS, scheme, verify};

/// `SMS_WEBHOOK_HOST`: the address the Twilio listener binds, SMS's and WhatsApp's (they share
/// it when their ports are equal).
pub const WEBHOOK_HOST: Setting = Setting::new(
    "SMS_WEBHOOK_HOST",
    "webhook_host",
    "Address the webhook server binds",
)
.default("0.0.0.0")
.kind(SettingKind::Ip);

/// Largest body accepted; Twilio's webhooks are a few KiB.
pub const MAX_BODY: usize = 64 * 1024;
/// The answer to every webhook: replies go out through the REST API, never inline.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

/// One kind of message on the Twilio account, which Twilio posts to a route of its own: what
/// the webhook and status-callback handlers say and strip for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The platform's registered name: inbound messages, logs and metrics carry it.
    pub platform: &'static str,
    /// What Twilio writes before a number on this channel: empty, or `whatsapp:`.
    pub prefix: &'static str,
    /// The setting holding the public webhook URL, named when a signature does not match.
    pub url_setting: &'static str,
    /// The route incoming messages are posted to; status callbacks go to it + `/status`.
    pub path: &'static str,
}

impl Channel {
    /// The number in an address Twilio wrote on this channel (`whatsapp:+1555…` → `+1555…`),
    /// normalised to E.164.
    pub fn number(&self, address: &str) -> Result<String, String> {
        let number = address
            .trim()
            .strip_prefix(self.prefix)
            .ok_or_else(|| format!("{address:?} is not a {} address", self.platform))?;
        phone::normalize(number).map_err(|_| format!("{address:?} is not a phone number"))
    }
}

/// How to expose the listener from this machine with a tunnel, for `hermes gateway setup`'s
/// next steps: the port, and the setting to fill with the tunnel's address followed by `path`.
pub fn tunnel_steps(port: &str, setting: &str, path: &str) -> String {
    format!(
        "Running the gateway on this machine? Expose port {port} with a tunnel:
  cloudflared tunnel --url http://localhost:{port}
  ngrok http {port}
then set {setting} to the https address it prints followed by {path}"
    )
}

/// What the webhook handlers need, shared by every worker.
pub struct WebhookState {
    /// The channel the routes serve.
    pub channel: Channel,
    /// Key of the signature.
    pub auth_token: String,
    /// Key of the signature of a request signed with a Webhook Shared Key
    /// (`TWILIO_WEBHOOK_SHARED_KEY`), when one is configured.
    pub shared_key: Option<String>,
    /// URLs the signature may be computed over; empty in insecure mode.
    pub url_variants: Vec<String>,
    /// URLs a status callback's signature may be computed over; empty in insecure mode.
    pub status_url_variants: Vec<String>,
    /// Our own number, to drop echoes.
    pub phone_number: String,
    /// Where accepted messages go.
    pub sink: Arc<dyn InboundSink>,
}

/// The empty TwiML document with `status`.
pub fn twiml(status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/xml; charset=utf-8"))
        .body(EMPTY_TWIML)
}

/// Why a body is not a valid form.
#[derive(Debug, PartialEq, Eq)]
pub struct FormError(pub String);

/// Parses `application/x-www-form-urlencoded` strictly: keeps empty values and repeated keys,
/// rejects broken percent-escapes and invalid UTF-8 instead of guessing.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    if body.is_empty() {
        return Ok(pairs);
    }
    for field in body.split(|&b| b == b'&') {
        if field.is_empty() {
            continue;
        }
        let (name, value) = match field.iter().position(|&b| b == b'=') {
            Some(i) => (&field[..i], &field[i + 1..]),
            None => (field, &[][..]),
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

fn decode(input: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .ok_or_else(|| FormError("truncated percent-escape".into()))?;
                let s =
                    std::str::from_utf8(hex).map_err(|_| FormError("bad percent-escape".into()))?;
                let byte = u8::from_str_radix(s, 16)
                    .map_err(|_| FormError(format!("bad percent-escape %{s}")))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError("not UTF-8".into()))
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Recognises Twilio's carrier keywords: a message that is exactly one of them.
pub fn control_keyword(body: &str) -> Option<Control> {
    match body.trim().to_ascii_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE" | "OPTOUT" => {
            Some(Control::OptOut)
        }
        "START" | "YES" | "UNSTOP" => Some(Control::OptIn),
        "HELP" | "INFO" => Some(Control::Help),
        _ => None,
    }
}

/// A `MediaUrl` as it is stored. Twilio's never carries credentials; one that does (a forged
/// request to a gateway running without signature checks) loses them, so that no stored URL
/// holds a secret.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Longest display name kept, in characters.
const MAX_NAME_CHARS: usize = 64;

/// A sender's name as shown (WhatsApp's `ProfileName`): one line, without control characters,
/// at most [`MAX_NAME_CHARS`]; `None` when nothing is left.
fn display_name(raw: &str) -> Option<String> {
    let name: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Turns signed webhook parameters into an [`Inbound`] message of `channel`; a sender's
/// `ProfileName` (WhatsApp) is its display name.
pub fn to_inbound(channel: &Channel, params: &[(String, String)]) -> Result<Inbound, String> {
    let from = param(params, "From").ok_or("missing From")?;
    let sender = channel.number(from).map_err(|why| format!("From: {why}"))?;
    let provider_id = param(params, "MessageSid")
        .or_else(|| param(params, "SmsMessageSid"))
        .filter(|s| !s.is_empty())
        .ok_or("missing MessageSid")?
        .to_string();
    let text = param(params, "Body").unwrap_or("").to_string();
    let num_media: usize = param(params, "NumMedia")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let attachments = (0..num_media.min(10))
        .filter_map(|i| {
            let url = param(params, &format!("MediaUrl{i}"))?;
            let content_type = param(params, &format!("MediaContentType{i}"));
            Some(Attachment {
                url: without_credentials(url),
                content_type: content_type.map(str::to_string),
                // Twilio names no file: its media SID is the name, also when it cannot be
                // fetched.
                name: Some(crate::client::file_name(url, content_type)),
                size: None,
            })
        })
        .collect();
    Ok(Inbound {
        sender_name: param(params, "ProfileName").and_then(display_name),
        platform: channel.platform.to_string(),
        chat: sender.clone(),
        sender,
        control: control_keyword(&text),
        text,
        attachments,
        provider_id,
        received_at: SystemTime::now(),
    })
}

/// Explains a signature mismatch: which URLs were tried and how the request's own URL differs.
fn mismatch_hint(req: &HttpRequest, channel: &Channel, variants: &[String]) -> String {
    let setting = channel.url_setting;
    let info = req.connection_info();
    let seen = redact_url(&format!("{}://{}{}", info.scheme(), info.host(), req.uri()));
    let configured = variants.first().map(String::as_str).unwrap_or("");
    let cause = if !configured.starts_with(&format!("{}://", info.scheme())) {
        format!(
            "the scheme differs from {setting} (a TLS-terminating proxy or tunnel is normal; check the Console URL matches {setting} exactly)"
        )
    } else if !configured.contains(req.path()) {
        format!("the path differs from {setting} (a proxy may have rewritten it)")
    } else {
        format!(
            "the auth token or the URL in the Twilio Console differs from TWILIO_AUTH_TOKEN / {setting}"
        )
    };
    // The configured URL may carry HTTP Basic credentials (Twilio supports them): never shown.
    let tried: Vec<String> = variants.iter().map(|url| redact_url(url)).collect();
    format!("tried {tried:?}; request arrived as {seen}; likely cause: {cause}")
}

/// The checks every request from Twilio passes before it is read: a form body within
/// [`MAX_BODY`] that parses strictly, signed for one of `url_variants` (none: insecure mode).
/// A request that fails one gets the answer to send back (415, 413, 400 or 403).
pub async fn signed_params(
    req: &HttpRequest,
    payload: &mut web::Payload,
    state: &WebhookState,
    url_variants: &[String],
) -> Result<Vec<(String, String)>, HttpResponse> {
    let sink = state.sink.as_ref();
    let name = state.channel.platform;
    let (auth_token, shared_key) = (state.auth_token.as_str(), state.shared_key.as_deref());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    const FORM: &str = "application/x-www-form-urlencoded";
    let is_form = content_type
        .get(..FORM.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(FORM));
    if !is_form {
        sink.rejected(name, "parse");
        return Err(twiml(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let body = match read_capped(req, payload, MAX_BODY).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            sink.rejected(name, "size");
            return Err(twiml(StatusCode::PAYLOAD_TOO_LARGE));
        }
        Err(BodyError::Broken) => {
            sink.rejected(name, "parse");
            return Err(twiml(StatusCode::BAD_REQUEST));
        }
    };
    let params = match parse_form(&body) {
        Ok(params) => params,
        Err(FormError(why)) => {
            debug!("[{name}] unparseable webhook body: {why}");
            sink.rejected(name, "parse");
            return Err(twiml(StatusCode::BAD_REQUEST));
        }
    };
    if !url_variants.is_empty() {
        let mut signatures = req.headers().get_all("X-Twilio-Signature");
        let signature = match (signatures.next(), signatures.next()) {
            (Some(sig), None) => sig.to_str().unwrap_or(""),
            _ => "",
        };
        if signature.is_empty() || signature.len() > 128 {
            warn!("[{name}] webhook rejected: missing X-Twilio-Signature");
            sink.rejected(name, "signature");
            return Err(twiml(StatusCode::FORBIDDEN));
        }
        let settings = req
            .headers()
            .get(SIGNATURE_SETTINGS)
            .map(|v| v.to_str().unwrap_or("?"));
        let scheme = match scheme(settings, auth_token, shared_key) {
            Ok(scheme) => scheme,
            Err(why) => {
                error!("[{name}] webhook rejected: {why}");
                sink.rejected(name, "signature");
                return Err(twiml(StatusCode::FORBIDDEN));
            }
        };
        if verify(scheme, url_variants, &params, signature).is_none() {
            warn!(
                "[{name}] webhook rejected: invalid signature; {}",
                mismatch_hint(req, &state.channel, url_variants)
            );
            sink.rejected(name, "signature");
            return Err(twiml(StatusCode::FORBIDDEN));
        }
    }
    Ok(params)
}

/// The webhook handler.
pub async fn receive(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<WebhookState>,
) -> HttpResponse {
    let sink = &state.sink;
    let name = state.channel.platform;
    let params = match signed_params(&req, &mut payload, &state, &state.url_variants).await {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let inbound = match to_inbound(&state.channel, &params) {
        Ok(inbound) => inbound,
        Err(why) => {
            warn!("[{name}] webhook rejected: {why}");
            sink.rejected(name, "parse");
            return twiml(StatusCode::BAD_REQUEST);
        }
    };
    if inbound.sender == state.phone_number {
        debug!("[{name}] ignoring a message from our own number");
        sink.rejected(name, "echo");
        return twiml(StatusCode::OK);
    }
    let sid = inbound.provider_id.clone();
    let sender = inbound.sender.clone();
    match sink.accept(inbound).await {
        Ok(Accepted::Stored) => twiml(StatusCode::OK),
        Ok(Accepted::Duplicate) => {
            info!(
                message_sid = %sid,
                "[{name}] duplicate webhook from {} acknowledged, not processed again",
                phone::redact(&sender)
            );
            twiml(StatusCode::OK)
        }
        Err(SinkError::Unavailable(why)) => {
            warn!("[{name}] cannot store {sid} now ({why}): answering 503");
            twiml(StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(SinkError::Storage(err)) => {
            tracing::error!("[{name}] could not store {sid}: {err}");
            twiml(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Registers the channel's webhook route (other methods on it get 405).
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<WebhookState>) {
    cfg.service(
        web::resource(state.channel.path)
            .app_data(state)
            .route(web::post().to(receive))
            .default_service(web::to(|| async { twiml(StatusCode::METHOD_NOT_ALLOWED) })),
    );
}

/// The two channels as the platforms declare them, for the tests of this crate.
#[cfg(test)]
pub(crate) mod test_channels {
    use super::Channel;

    /// SMS.
    pub const SMS: Channel = Channel {
        platform: "sms",
        prefix: "",
        url_setting: "SMS_WEBHOOK_URL",
        path: "/webhooks/twilio",
    };
    /// WhatsApp.
    pub const WHATSAPP: Channel = Channel {
        platform: "whatsapp",
        prefix: "whatsapp:",
        url_setting: "WHATSAPP_WEBHOOK_URL",
        path: "/webhooks/whatsapp",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parsing_is_strict_and_lossless() {
        let pairs = parse_form(b"Body=Hi+there%21&FromCity=&Body=again&Flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("Body".into(), "Hi there!".into()),
                ("FromCity".into(), "".into()),
                ("Body".into(), "again".into()),
                ("Flag".into(), "".into()),
            ]
        );
        assert_eq!(
            parse_form("Body=Gr%C3%BC%C3%9Fe".as_bytes()).unwrap()[0].1,
            "Grüße"
        );
        for bad in [
            &b"Body=%FF%FE"[..],
            b"Body=%G1",
            b"Body=abc%",
            b"Body=%4",
            b"\xff=1",
        ] {
            assert!(parse_form(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_profile_name_is_one_clean_line_of_at_most_64_characters() {
        assert_eq!(
            display_name(" Ada\n Lovelace\u{7} ").as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(display_name("\t\n"), None);
        assert_eq!(
            display_name(&"é".repeat(100)).map(|n| n.chars().count()),
            Some(64)
        );
        let params: Vec<(String, String)> = [
            ("From", "whatsapp:+15550001111"),
            ("MessageSid", "SM1"),
            ("ProfileName", "Ada"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let inbound = to_inbound(&test_channels::WHATSAPP, &params).unwrap();
        assert_eq!(inbound.sender_name.as_deref(), Some("Ada"));
    }

    #[test]
    fn keywords_are_exact_words_in_any_case() {
        assert_eq!(control_keyword(" stop "), Some(Control::OptOut));
        assert_eq!(control_keyword("Unsubscribe"), Some(Control::OptOut));
        assert_eq!(control_keyword("unstop"), Some(Control::OptIn));
        assert_eq!(control_keyword("help"), Some(Control::Help));
        assert_eq!(control_keyword("please stop"), None);
        assert_eq!(control_keyword("STOP!"), None);
    }

    #[test]
    fn mms_parameters_become_attachments() {
        let params: Vec<(String, String)> = [
            ("From", "+14155550100"),
            ("MessageSid", "MM1"),
            ("Body", ""),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://AC1:secret@api.twilio.com/m/1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let inbound = to_inbound(&test_channels::SMS, &params).unwrap();
        assert_eq!(inbound.text, "");
        assert_eq!(inbound.attachments.len(), 2);
        assert_eq!(
            inbound.attachments[0].content_type.as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(inbound.attachments[1].content_type, None);
        assert_eq!(inbound.attachments[0].url, "https://api.twilio.com/m/0");
        assert_eq!(inbound.attachments[1].url, "https://api.twilio.com/m/1");
    }
}
