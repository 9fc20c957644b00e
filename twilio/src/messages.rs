//! The Twilio Messages API client: one part to one number, on SMS or on WhatsApp (the same API,
//! with `whatsapp:` addresses), and look-ups of sends whose outcome is unknown.
pub use platform_api::http::client;
use platform_api::http::{retry_after, transport_error};
use std::time::{Duration, SystemTime};

use platform_api::{Lookup, Part, Receipt, SendError};
use serde::Deserialize;

use crate::account::TwilioAccount;

/// Who sends on the account, and where Twilio reports back: what a send and a look-up need.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// The account.
    pub account: &'a TwilioAccount,
    /// The sender as Twilio addresses it: `+15551234567`, or `whatsapp:+15551234567`.
    pub from: &'a str,
    /// A Messaging Service that sends instead of `from` (SMS only).
    pub messaging_service_sid: Option<&'a str>,
    /// What goes before a recipient's number: empty for SMS, `whatsapp:` for WhatsApp.
    pub prefix: &'static str,
    /// Where Twilio posts the status callbacks of what is sent; `None` in insecure mode.
    pub status_callback: Option<String>,
    /// Whether a part may have gone as a template whose text wraps the part's (WhatsApp
    /// outside its 24-hour window): a look-up then matches a listed body that contains the
    /// part's text, not only one equal to it.
    pub templated: bool,
    /// How the channel reads Twilio's error answers ([`crate::error::classify`], or a
    /// channel's own on top of it).
    pub classify: fn(u16, Option<&str>, &[u8]) -> SendError,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    num_segments: Option<String>,
}

fn messages_url(account: &TwilioAccount) -> String {
    format!("{}/Messages.json", account.url())
}

/// Sends one part to `to` (a number, E.164) through `POST
/// /2010-04-01/Accounts/{SID}/Messages.json`; a part with files is an MMS (or a WhatsApp
/// message with media), one `MediaUrl` per file (Twilio fetches each from the gateway's
/// public URL before it sends), and its body may then be empty.
pub async fn send_message(line: &Line<'_>, to: &str, part: &Part) -> Result<Receipt, SendError> {
    let mut content: Vec<(&str, &str)> = Vec::new();
    if !part.body.is_empty() || part.media.is_empty() {
        content.push(("Body", &part.body));
    }
    for media in &part.media {
        content.push(("MediaUrl", media.public_url()?));
    }
    create(line, to, &content).await
}

/// Sends the approved content template `content_sid` (`HX…`) to `to`, its variables
/// `variables` (a JSON object, `{"1": "…"}`) as `ContentVariables`, and no `Body`: what
/// WhatsApp lets a business send outside a chat's 24-hour window.
pub async fn send_template(
    line: &Line<'_>,
    to: &str,
    content_sid: &str,
    variables: &str,
) -> Result<Receipt, SendError> {
    create(
        line,
        to,
        &[("ContentSid", content_sid), ("ContentVariables", variables)],
    )
    .await
}

/// Creates one message to `to` with `content` (`Body`, `MediaUrl`s or a template).
async fn create(line: &Line<'_>, to: &str, content: &[(&str, &str)]) -> Result<Receipt, SendError> {
    let account = line.account;
    let url = messages_url(account);
    let to = format!("{}{to}", line.prefix);
    let mut form: Vec<(&str, &str)> = vec![("To", &to)];
    match line.messaging_service_sid {
        Some(sid) => form.push(("MessagingServiceSid", sid)),
        None => form.push(("From", line.from)),
    }
    form.extend_from_slice(content);
    if let Some(callback) = &line.status_callback {
        form.push(("StatusCallback", callback));
    }
    let request = client()
        .post(&url)
        .insert_header(("Authorization", account.basic_auth()))
        .insert_header(("Accept", "application/json"))
        .timeout(account.request_timeout);
    let mut response = match request.send_form(&form).await {
        Ok(response) => response,
        Err(err) => return Err(transport_error(err, "Twilio", account.request_timeout)),
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
    Err((line.classify)(status, retry_after.as_deref(), &body))
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
pub async fn lookup(line: &Line<'_>, to: &str, part: &Part, attempted_at: SystemTime) -> Lookup {
    let since = attempted_at.checked_sub(CLOCK_SKEW).unwrap_or(attempted_at);
    let since_text = chrono::DateTime::<chrono::Utc>::from(since)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let to = format!("{}{to}", line.prefix);
    let mut found = Vec::new();
    for by_date in [true, false] {
        let mut query: Vec<(&str, &str)> = vec![("To", &to)];
        if line.messaging_service_sid.is_none() {
            query.push(("From", line.from));
        }
        if by_date {
            query.push(("DateSent>", &since_text));
        }
        query.push(("PageSize", PAGE_SIZE));
        let first = match serde_urlencoded::to_string(&query) {
            Ok(q) => format!("{}?{q}", messages_url(line.account)),
            Err(e) => return Lookup::Failed(format!("building the look-up: {e}")),
        };
        match list(line, first, part, since, &mut found).await {
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
    line: &Line<'_>,
    mut url: String,
    part: &Part,
    since: SystemTime,
    found: &mut Vec<(SystemTime, Receipt)>,
) -> Result<(), String> {
    let account = line.account;
    for _ in 0..MAX_PAGES {
        let request = client()
            .get(&url)
            .insert_header(("Authorization", account.basic_auth()))
            .insert_header(("Accept", "application/json"))
            .timeout(account.request_timeout);
        let mut response = request.send().await.map_err(|e| {
            format!(
                "reading Twilio's message list: {}",
                transport_error(e, "Twilio", account.request_timeout)
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
                (line.classify)(status, None, &body)
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
            let ours = match line.messaging_service_sid {
                Some(service) => message.messaging_service_sid.as_deref() == Some(service),
                None => true,
            };
            let listed = message.body.as_deref().unwrap_or("");
            let same_text =
                listed == part.body || (line.templated && listed.contains(part.body.as_str()));
            let files = message
                .num_media
                .as_deref()
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if ours && same_text && files == part.media.len() {
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
                url = format!("{}{next}", account.api_base_url);
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}
