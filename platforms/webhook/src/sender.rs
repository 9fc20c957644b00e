//! The outbound POST: one part to one chat, as JSON, with the shared secret.
use std::time::Duration;

use platform_api::http::{client, retry_after, transport_error};
use platform_api::{Part, Receipt, SendError};
use serde::{Deserialize, Serialize};

use crate::error::classify;
use crate::format::numbering;
use crate::settings::WebhookSettings;
use crate::webhook::SECRET_HEADER;

/// How long to wait for an answer; past it the part may have arrived, so it is not re-sent.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// The JSON body of an outbound POST.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Outgoing<'a> {
    /// The chat it goes to.
    pub chat: &'a str,
    /// The part's text, numbering included.
    pub text: &'a str,
    /// Its position in the reply, from 1.
    pub part: usize,
    /// How many parts the reply has.
    pub parts: usize,
}

/// The answer of a receiver that names what it stored.
#[derive(Deserialize)]
struct Stored {
    id: serde_json::Value,
}

/// The receiver's id for what it stored, or one made up when it named none.
fn receipt_id(answer: &[u8]) -> String {
    match serde_json::from_slice::<Stored>(answer).map(|s| s.id) {
        Ok(serde_json::Value::String(id)) if !id.is_empty() => id,
        Ok(serde_json::Value::Number(id)) => id.to_string(),
        _ => format!("webhook-{:016x}", rand::random::<u64>()),
    }
}

/// POSTs one part to `WEBHOOK_OUTBOUND_URL`.
pub async fn send_part(
    settings: &WebhookSettings,
    chat: &str,
    part: &Part,
) -> Result<Receipt, SendError> {
    let (index, count) = numbering(&part.body);
    let outgoing = Outgoing {
        chat,
        text: &part.body,
        part: index,
        parts: count,
    };
    let request = client()
        .post(&settings.outbound_url)
        .timeout(REQUEST_TIMEOUT)
        .insert_header((SECRET_HEADER, settings.secret.as_str()));
    let mut response = match request.send_json(&outgoing).await {
        Ok(response) => response,
        Err(err) => {
            return Err(transport_error(
                err,
                "WEBHOOK_OUTBOUND_URL",
                REQUEST_TIMEOUT,
            ));
        }
    };
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    // A 2xx means the part arrived; an unreadable answer only costs us its id.
    let answer = response.body().limit(MAX_ANSWER).await.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(Receipt {
            provider_id: receipt_id(&answer),
            segments: None,
        });
    }
    Err(classify(status, retry_after.as_deref(), &answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_use_the_receivers_id_when_it_names_one() {
        assert_eq!(receipt_id(br#"{"id": "msg-42"}"#), "msg-42");
        assert_eq!(receipt_id(br#"{"id": 42, "ok": true}"#), "42");
        for answer in [&b""[..], b"ok", br#"{"id": ""}"#, br#"{"status": "ok"}"#] {
            assert!(receipt_id(answer).starts_with("webhook-"));
        }
    }

    #[test]
    fn the_body_names_chat_text_and_position() {
        let body = serde_json::to_value(Outgoing {
            chat: "room-1",
            text: "Hello (2/3)",
            part: 2,
            parts: 3,
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"chat": "room-1", "text": "Hello (2/3)", "part": 2, "parts": 3})
        );
    }

    #[actix_web::test]
    async fn a_refused_connection_can_be_retried() {
        // The host selects the TLS provider at start-up; a test has to do it itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Port 9 (discard) on loopback is closed on any ordinary machine.
        let settings = WebhookSettings {
            secret: "0123456789abcdef".into(),
            outbound_url: "http://127.0.0.1:9/hermes".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            access: Default::default(),
            home: None,
        };
        let err = send_part(&settings, "room-1", &Part::plain("hi"))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Retry { .. }), "{err:?}");
    }
}
