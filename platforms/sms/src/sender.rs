//! The Twilio Messages API client: one part to one number.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
pub use platform_api::http::client;
use platform_api::http::{retry_after, transport_error};
use platform_api::{Part, Receipt, SendError};
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
