//! The Twilio Messages API client: one part to one number.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
pub use platform_api::http::client;
use platform_api::http::{retry_after, transport_error};
use std::time::{Duration, SystemTime};

use platform_api::{Lookup, Part, Receipt, SendError};
use serde::Deserialize;

use crate::error::classify;
use crate::settings::SmsSettings;

/// The `Authorization` header value for the account.
pub fn basic_auth(settings: &SmsSettings) -> String {
    let raw = format!("{}:{}", settings.account_sid, settings.auth_token);
    format!("Basic {}", STANDARD.encode(raw))
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    num_segments: Option<String>,
}

fn messages_url(settings: &SmsSettings) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        settings.api_base_url, settings.account_sid
    )
}

/// Sends one part to `to` through `POST /2010-04-01/Accounts/{SID}/Messages.json`; a part with
/// files is an MMS, one `MediaUrl` per file (Twilio fetches each from the gateway's public
/// URL before it sends), and its body may then be empty.
pub async fn send_message(
    settings: &SmsSettings,
    to: &str,
    part: &Part,
) -> Result<Receipt, SendError> {
    let url = messages_url(settings);
    let mut form: Vec<(&str, &str)> = vec![("To", to)];
    match &settings.messaging_service_sid {
        Some(sid) => form.push(("MessagingServiceSid", sid)),
        None => form.push(("From", &settings.phone_number)),
    }
    if !part.body.is_empty() || part.media.is_empty() {
        form.push(("Body", &part.body));
    }
    for media in &part.media {
        form.push(("MediaUrl", media.public_url()?));
    }
    let callback = settings
        .webhook_url
        .as_deref()
        .map(crate::status::status_callback_url);
    if let Some(callback) = &callback {
        form.push(("StatusCallback", callback));
    }
    let request = client()
        .post(&url)
        .insert_header(("Authorization", basic_auth(settings)))
        .insert_header(("Accept", "application/json"))
        .timeout(settings.request_timeout);
    let mut response = match request.send_form(&form).await {
        Ok(response) => response,
        Err(err) => return Err(transport_error(err, "Twilio", settings.request_timeout)),
    };
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = match response.body().limit(256 * 1024).await {
        Ok(body) => body,
        Err(err) if (200..300).contains(&status) => {
            return Err(SendError::Ambiguous {
                message: format!(
                    "Twilio accepted the message but its answer could not be read: {err}"
                ),
            });
        }
        Err(_) => Default::default(),
    };
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Created>(&body) {
            Ok(created) => Ok(Receipt {
                provider_id: created.sid,
                segments: created.num_segments.and_then(|n| n.parse().ok()),
            }),
            Err(err) => Err(SendError::Ambiguous {
                message: format!("Twilio answered {status} with an unreadable body: {err}"),
            }),
        };
    }
    Err(classify(status, retry_after.as_deref(), &body))
}

/// How far Twilio's clock and ours may disagree when a message's creation time is matched.
const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Messages read per page of the message list.
const PAGE_SIZE: &str = "100";
/// Pages read at most per query: a look-up is about seconds around one send.
const MAX_PAGES: usize = 20;

/// One message of Twilio's message list, as far as a look-up reads it.
#[derive(Debug, Deserialize)]
struct Listed {
    sid: String,
    body: Option<String>,
    date_created: Option<String>,
    messaging_service_sid: Option<String>,
    num_segments: Option<String>,
    num_media: Option<String>,
}

/// A page of `GET Messages.json`.
#[derive(Debug, Deserialize)]
struct Page {
    messages: Vec<Listed>,
    next_page_uri: Option<String>,
}

/// Looks a part whose send had an unknown outcome up in Twilio's message list: messages to
/// `to` from our number (or our Messaging Service) with the part's body and as many files as
/// it carries (`num_media`), created from `attempted_at` on (less [`CLOCK_SKEW`]), nearest
/// first.
///
/// Twilio filters the list by `DateSent` (`DateSent>=` on the wire is the parameter
/// `DateSent>`); a message still queued at Twilio has no send date yet, so when that query
/// finds nothing, the newest messages to the number are read without it, down to the
/// attempt's time.
pub async fn lookup(
    settings: &SmsSettings,
    to: &str,
    part: &Part,
    attempted_at: SystemTime,
) -> Lookup {
    let since = attempted_at.checked_sub(CLOCK_SKEW).unwrap_or(attempted_at);
    let since_text = chrono::DateTime::<chrono::Utc>::from(since)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut found = Vec::new();
    for by_date in [true, false] {
        let mut query: Vec<(&str, &str)> = vec![("To", to)];
        if settings.messaging_service_sid.is_none() {
            query.push(("From", &settings.phone_number));
        }
        if by_date {
            query.push(("DateSent>", &since_text));
        }
        query.push(("PageSize", PAGE_SIZE));
        let first = match serde_urlencoded::to_string(&query) {
            Ok(q) => format!("{}?{q}", messages_url(settings)),
            Err(e) => return Lookup::Failed(format!("building the look-up: {e}")),
        };
        match list(settings, first, part, since, &mut found).await {
            Ok(()) => {}
            Err(why) => return Lookup::Failed(why),
        }
        if !found.is_empty() {
            break;
        }
    }
    found.sort_by_key(|(created, _): &(SystemTime, Receipt)| {
        created
            .duration_since(attempted_at)
            .unwrap_or_else(|e| e.duration())
    });
    Lookup::Matches(found.into_iter().map(|(_, receipt)| receipt).collect())
}

/// Reads pages from `url` on, newest first, adding the messages that match `part` and were
/// created since `since`; stops at the first message created before it.
async fn list(
    settings: &SmsSettings,
    mut url: String,
    part: &Part,
    since: SystemTime,
    found: &mut Vec<(SystemTime, Receipt)>,
) -> Result<(), String> {
    for _ in 0..MAX_PAGES {
        let request = client()
            .get(&url)
            .insert_header(("Authorization", basic_auth(settings)))
            .insert_header(("Accept", "application/json"))
            .timeout(settings.request_timeout);
        let mut response = request.send().await.map_err(|e| {
            format!(
                "reading Twilio's message list: {}",
                transport_error(e, "Twilio", settings.request_timeout)
            )
        })?;
        let status = response.status().as_u16();
        let body = response
            .body()
            .limit(4 * 1024 * 1024)
            .await
            .map_err(|e| format!("reading Twilio's message list: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "Twilio's message list answered: {}",
                classify(status, None, &body)
            ));
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| format!("Twilio's message list is unreadable: {e}"))?;
        let mut older = false;
        for message in page.messages {
            let created = message
                .date_created
                .as_deref()
                .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                .map(SystemTime::from);
            let Some(created) = created else { continue };
            if created < since {
                older = true;
                continue;
            }
            let ours = match &settings.messaging_service_sid {
                Some(service) => message.messaging_service_sid.as_deref() == Some(service),
                None => true,
            };
            let files = message
                .num_media
                .as_deref()
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if ours
                && message.body.as_deref().unwrap_or("") == part.body
                && files == part.media.len()
            {
                found.push((
                    created,
                    Receipt {
                        provider_id: message.sid,
                        segments: message.num_segments.and_then(|n| n.parse().ok()),
                    },
                ));
            }
        }
        match page.next_page_uri {
            Some(next) if !older && !next.is_empty() => {
                url = format!("{}{next}", settings.api_base_url);
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}
