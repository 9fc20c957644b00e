//! The Twilio account's resources, through REST API v2010: the account itself, a number it
//! owns and that number's Messaging webhook and fallback (`hermes gateway doctor` uses these);
//! and the files of inbound messages (MMS, WhatsApp), fetched with the account's credentials.
use std::time::Duration;

use platform_api::{Attachment, FetchError, Fetched};
use serde::Deserialize;

use crate::account::TwilioAccount;
use crate::error::TwilioError;
use crate::messages::client;

/// How long one call may take; these are interactive checks, not sends.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read; a page of numbers is a few KiB each.
const MAX_ANSWER: usize = 1024 * 1024;

/// A call to the Twilio REST API that did not give the expected answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection refused, name resolution, TLS, timeout.
    #[error("could not reach Twilio at {base}: {message}")]
    Unreachable {
        /// The API base URL that was tried, its password hidden.
        base: String,
        /// What went wrong.
        message: String,
    },
    /// Twilio answered with an error status.
    #[error("Twilio answered HTTP {status}{}: {message}", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Twilio's error code, when the body carried one.
        code: Option<i64>,
        /// Twilio's message, or the start of the body.
        message: String,
    },
    /// A success status with a body that is not the documented resource.
    #[error("Twilio answered HTTP {status} with an unexpected body: {message}")]
    Unreadable {
        /// The HTTP status.
        status: u16,
        /// Why the body could not be read.
        message: String,
    },
}

impl ApiError {
    /// Whether Twilio refused the credentials (HTTP 401, code 20003).
    pub fn is_authentication(&self) -> bool {
        matches!(self, ApiError::Refused { status: 401, .. })
            || matches!(
                self,
                ApiError::Refused {
                    code: Some(20003),
                    ..
                }
            )
    }
}

/// The account resource (`GET /2010-04-01/Accounts/{SID}.json`), the fields the checks read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    /// The account SID.
    pub sid: String,
    /// The name given in the Console.
    pub friendly_name: Option<String>,
    /// `active`, `suspended` or `closed`.
    pub status: Option<String>,
}

/// What a number can do.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// It can send and receive SMS.
    pub sms: bool,
    /// It can send and receive MMS.
    pub mms: bool,
}

/// An IncomingPhoneNumber resource: a number the account owns, with its Messaging webhook.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct IncomingNumber {
    /// The number's SID, `PN` and 32 hex digits.
    pub sid: String,
    /// The number, E.164.
    pub phone_number: String,
    /// What it can do.
    pub capabilities: Capabilities,
    /// The URL Twilio calls when a message comes in (empty or absent: none).
    pub sms_url: Option<String>,
    /// The method of that call, `POST` or `GET`.
    pub sms_method: Option<String>,
    /// The URL Twilio calls when the call to `sms_url` fails (empty or absent: none); a second
    /// gateway on the same database takes over there.
    pub sms_fallback_url: Option<String>,
    /// The method of the fallback call, `POST` or `GET`.
    pub sms_fallback_method: Option<String>,
    /// A TwiML App that handles incoming messages instead of `sms_url`, when set.
    pub sms_application_sid: Option<String>,
}

impl IncomingNumber {
    /// The Messaging webhook URL, if one is set.
    pub fn webhook_url(&self) -> Option<&str> {
        self.sms_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// The fallback webhook URL, if one is set.
    pub fn fallback_url(&self) -> Option<&str> {
        self.sms_fallback_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// The TwiML App that takes incoming messages instead of the webhook, if one is set.
    pub fn application(&self) -> Option<&str> {
        self.sms_application_sid
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

#[derive(Deserialize)]
struct NumberPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingNumber>,
}

/// Fetches the account: the cheapest call that proves the credentials.
pub async fn fetch_account(account: &TwilioAccount) -> Result<Account, ApiError> {
    let url = format!("{}.json", account.url());
    call(account, client().get(&url), None).await
}

/// Finds `number` (E.164) among the account's numbers; `None` when the account does not own
/// it.
pub async fn find_number(
    account: &TwilioAccount,
    number: &str,
) -> Result<Option<IncomingNumber>, ApiError> {
    let query = serde_urlencoded::to_string([("PhoneNumber", number)]).unwrap_or_default();
    let url = format!("{}/IncomingPhoneNumbers.json?{query}", account.url());
    let page: NumberPage = call(account, client().get(&url), None).await?;
    // The filter also matches partial numbers: keep the exact one.
    Ok(page.incoming_phone_numbers.into_iter().find(|n| {
        platform_api::phone::normalize(&n.phone_number)
            .ok()
            .as_deref()
            == Some(number)
    }))
}

/// Points the number's Messaging webhook at `url` with method POST and, when `fallback` is
/// given, its fallback webhook at that URL with method POST, in one request so that Twilio never
/// holds half of the pair. Without `fallback` the number's fallback is left as it is.
pub async fn update_webhook(
    account: &TwilioAccount,
    number_sid: &str,
    url: &str,
    fallback: Option<&str>,
) -> Result<IncomingNumber, ApiError> {
    let endpoint = format!("{}/IncomingPhoneNumbers/{number_sid}.json", account.url());
    let mut form = vec![("SmsUrl", url), ("SmsMethod", "POST")];
    if let Some(fallback) = fallback {
        form.extend([("SmsFallbackUrl", fallback), ("SmsFallbackMethod", "POST")]);
    }
    call(account, client().post(&endpoint), Some(&form)).await
}

/// Sends an authenticated request and reads the documented resource from a success answer.
async fn call<T: for<'de> Deserialize<'de>>(
    account: &TwilioAccount,
    request: awc::ClientRequest,
    form: Option<&[(&str, &str)]>,
) -> Result<T, ApiError> {
    let request = request
        .insert_header(("Authorization", account.basic_auth()))
        .insert_header(("Accept", "application/json"))
        .timeout(CALL_TIMEOUT);
    let sent = match form {
        Some(form) => request.send_form(&form).await,
        None => request.send().await,
    };
    let mut response = sent.map_err(|err| ApiError::Unreachable {
        base: platform_api::redact_url(&account.api_base_url),
        message: err.to_string(),
    })?;
    let status = response.status().as_u16();
    let body = response
        .body()
        .limit(MAX_ANSWER)
        .await
        .map_err(|err| ApiError::Unreadable {
            status,
            message: err.to_string(),
        })?;
    if !(200..300).contains(&status) {
        return Err(refusal(status, &body));
    }
    serde_json::from_slice(&body).map_err(|err| ApiError::Unreadable {
        status,
        message: err.to_string(),
    })
}

/// Twilio's error body as an [`ApiError`]; other bodies (a proxy's page) are quoted briefly.
fn refusal(status: u16, body: &[u8]) -> ApiError {
    let parsed: TwilioError = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed.message.unwrap_or_else(|| {
        let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
        let text = text.trim();
        if text.is_empty() {
            "no details".to_string()
        } else {
            text.to_string()
        }
    });
    ApiError::Refused {
        status,
        code: parsed.code,
        message,
    }
}

/// Fetches an inbound MMS file from its `MediaUrl`, reading at most `limit` bytes.
///
/// Twilio serves it only to the account's HTTP Basic credentials and answers with a redirect
/// to a short-lived CDN link; the credentials go only to Twilio's own origin (the API base),
/// so a `MediaUrl` elsewhere is refused rather than handed the auth token. Twilio gives no
/// file name: the file is named after its media SID and its type (`ME….jpg`).
pub async fn fetch_media(
    account: &TwilioAccount,
    attachment: &Attachment,
    limit: u64,
) -> Result<Fetched, FetchError> {
    if origin(&attachment.url).is_none() || origin(&attachment.url) != origin(&account.api_base_url)
    {
        return Err(FetchError::Permanent(
            "the media URL is not on Twilio's API (TWILIO_API_BASE_URL): not fetched with the account's credentials".to_string(),
        ));
    }
    let mut fetched = platform_api::http::download(
        &attachment.url,
        Some(&account.basic_auth()),
        limit,
        account.request_timeout,
        "Twilio",
    )
    .await?;
    if fetched.content_type.is_none() {
        fetched.content_type = attachment.content_type.clone();
    }
    fetched.name = Some(file_name(&attachment.url, fetched.content_type.as_deref()));
    Ok(fetched)
}

/// `scheme://host[:port]` of a URL, without credentials or path; `None` when it is not one.
pub fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.host_str()?;
    Some(parsed.origin().ascii_serialization())
}

/// A name for a file Twilio serves at `url`: its media SID (the URL's last segment) and the
/// usual extension of `content_type` (`ME0123….jpg`).
pub fn file_name(url: &str, content_type: Option<&str>) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let sid = path
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("media");
    match content_type.and_then(platform_api::media::extension) {
        Some(ext) => format!("{sid}.{ext}"),
        None => sid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_their_media_sid_and_type() {
        let url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM2/Media/ME0123abc";
        let cases = [
            (Some("image/jpeg"), "ME0123abc.jpg"),
            (Some("image/png; charset=binary"), "ME0123abc.png"),
            (Some("text/x-vcard"), "ME0123abc.vcf"),
            (Some("application/x-unknown"), "ME0123abc"),
            (None, "ME0123abc"),
        ];
        for (content_type, name) in cases {
            assert_eq!(file_name(url, content_type), name, "{content_type:?}");
        }
        assert_eq!(
            file_name("https://api.twilio.com/x/ME9?Expires=1", Some("video/mp4")),
            "ME9.mp4"
        );
        assert_eq!(
            file_name("https://api.twilio.com/", Some("image/gif")),
            "media.gif"
        );
    }

    #[test]
    fn origins_leave_out_credentials_and_paths() {
        assert_eq!(
            origin("https://user:pw@bot.example.com:8443/webhooks/twilio?x=1").as_deref(),
            Some("https://bot.example.com:8443")
        );
        assert_eq!(
            origin("https://api.twilio.com").as_deref(),
            Some("https://api.twilio.com")
        );
        assert_eq!(
            origin("HTTPS://API.Twilio.com:443/2010-04-01").as_deref(),
            Some("https://api.twilio.com")
        );
        assert_eq!(origin("not a url"), None);
    }

    #[test]
    fn reads_twilio_error_bodies_and_other_pages() {
        let auth = br#"{"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#;
        let err = refusal(401, auth);
        assert!(err.is_authentication());
        assert_eq!(
            err.to_string(),
            "Twilio answered HTTP 401, code 20003: Authenticate"
        );
        let invalid = br#"{"type":"https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY","title":"Invalid request","status":422}"#;
        let err = refusal(422, invalid);
        assert!(!err.is_authentication());
        assert!(err.to_string().starts_with("Twilio answered HTTP 422: {"));
        assert_eq!(
            refusal(502, b"").to_string(),
            "Twilio answered HTTP 502: no details"
        );
    }

    #[test]
    fn reads_numbers_as_twilio_and_its_examples_spell_them() {
        let page: NumberPage = serde_json::from_str(
            r#"{"incoming_phone_numbers": [{"sid": "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "phone_number": "+18089255327",
                "capabilities": {"voice": true, "sms": false, "mms": true, "fax": false},
                "sms_url": "", "sms_method": "POST", "sms_application_sid": "", "beta": null}], "page": 0}"#,
        )
        .unwrap();
        let number = &page.incoming_phone_numbers[0];
        assert_eq!(number.webhook_url(), None);
        assert_eq!(number.fallback_url(), None);
        assert_eq!(number.application(), None);
        assert!(!number.capabilities.sms);
        let number: IncomingNumber = serde_json::from_str(
            r#"{"sid": "PN1", "phone_number": "+15551234567", "sms_url": "https://bot.example.com/webhooks/twilio",
                "sms_method": "POST", "sms_application_sid": null,
                "sms_fallback_url": " https://standby.example.com/webhooks/twilio ", "sms_fallback_method": "POST"}"#,
        )
        .unwrap();
        assert_eq!(
            number.webhook_url(),
            Some("https://bot.example.com/webhooks/twilio")
        );
        assert_eq!(
            number.fallback_url(),
            Some("https://standby.example.com/webhooks/twilio")
        );
        assert_eq!(number.sms_fallback_method.as_deref(), Some("POST"));
    }
}
