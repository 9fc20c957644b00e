//! The Twilio Messages API client: one part to one number.
use std::cell::OnceCell;
use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform_api::{Part, Receipt, SendError};
use serde::Deserialize;

use crate::error::classify;
use crate::settings::SmsSettings;

/// How long to wait for a connection; nothing has been sent when this runs out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

thread_local! {
    // awc's client is not `Send`: each actix thread keeps its own, with its own pool.
    static CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

/// An HTTP client suited to Twilio's API, for this thread.
pub fn client() -> awc::Client {
    CLIENT.with(|cell| {
        cell.get_or_init(|| {
            let connector = awc::Connector::new()
                .timeout(CONNECT_TIMEOUT)
                // Shorter than the keep-alive of the servers we talk to, so that a pooled
                // connection is never one the server already closed.
                .conn_keep_alive(Duration::from_secs(4));
            awc::Client::builder()
                .connector(connector)
                // Each request sets its own limit (TWILIO_REQUEST_TIMEOUT_SECS).
                .timeout(Duration::from_secs(300))
                .disable_redirects()
                .add_default_header((
                    "User-Agent",
                    concat!("hermes-gateway/", env!("CARGO_PKG_VERSION")),
                ))
                .finish()
        })
        .clone()
    })
}

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

/// Sends one part to `to` through `POST /2010-04-01/Accounts/{SID}/Messages.json`.
pub async fn send_message(
    settings: &SmsSettings,
    to: &str,
    part: &Part,
) -> Result<Receipt, SendError> {
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        settings.api_base_url, settings.account_sid
    );
    let mut form: Vec<(&str, &str)> = vec![("To", to)];
    match &settings.messaging_service_sid {
        Some(sid) => form.push(("MessagingServiceSid", sid)),
        None => form.push(("From", &settings.phone_number)),
    }
    form.push(("Body", &part.body));
    let request = client()
        .post(&url)
        .insert_header(("Authorization", basic_auth(settings)))
        .insert_header(("Accept", "application/json"))
        .timeout(settings.request_timeout);
    let mut response = match request.send_form(&form).await {
        Ok(response) => response,
        Err(err) => return Err(transport_error(err, settings.request_timeout)),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
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

/// Failures before an answer: retryable when nothing can have reached Twilio, ambiguous otherwise.
fn transport_error(err: SendRequestError, timeout: Duration) -> SendError {
    match err {
        SendRequestError::Connect(ConnectError::Timeout) => SendError::Retry {
            after: None,
            code: None,
            message: "timed out connecting to Twilio".to_string(),
        },
        SendRequestError::Connect(err) => SendError::Retry {
            after: None,
            code: None,
            message: format!("could not connect to Twilio: {err}"),
        },
        SendRequestError::Url(err) => SendError::Permanent {
            code: None,
            message: format!("bad Twilio API URL: {err}"),
        },
        SendRequestError::Timeout => SendError::Ambiguous {
            message: format!("no answer from Twilio within {}s", timeout.as_secs()),
        },
        other => SendError::Ambiguous {
            message: format!("connection to Twilio failed mid-request: {other}"),
        },
    }
}
