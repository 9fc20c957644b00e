//! `POST /webhooks/json`: shared-secret check, size cap, strict JSON, normalisation.
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::body::{BodyError, read_capped};
use platform_api::route::{accept_and_answer, answer, secret_header_matches};
use platform_api::{Inbound, InboundSink};
use serde::Deserialize;
use tracing::warn;

/// The route other systems post messages to.
pub const PATH: &str = "/webhooks/json";
/// The header that carries the shared secret, in both directions.
pub const SECRET_HEADER: &str = "X-Hermes-Secret";
/// Largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest chat, sender or message id accepted, in characters.
pub const MAX_ID_CHARS: usize = 256;

/// What the route needs, shared by every worker.
pub struct WebhookState {
    /// The shared secret.
    pub secret: String,
    /// Where accepted messages go.
    pub sink: Arc<dyn InboundSink>,
}

/// A message as another system posts it.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// The sender's id for the message; the host deduplicates on it.
    pub id: String,
    /// The conversation it belongs to; replies go back to it.
    pub chat: String,
    /// Who wrote it; checked against `WEBHOOK_ALLOWED_USERS`.
    pub sender: String,
    /// The text.
    pub text: String,
}

/// Normalises a chat or sender id: trimmed, not empty, at most [`MAX_ID_CHARS`], no control
/// characters.
pub fn parse_chat(id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() {
        Err("empty id".to_string())
    } else if id.chars().count() > MAX_ID_CHARS {
        Err(format!("longer than {MAX_ID_CHARS} characters"))
    } else if id.chars().any(char::is_control) {
        Err("contains control characters".to_string())
    } else {
        Ok(id.to_string())
    }
}

/// Turns a posted message into an [`Inbound`] message.
pub fn to_inbound(message: Message) -> Result<Inbound, String> {
    let field = |name: &str, value: &str| parse_chat(value).map_err(|why| format!("{name}: {why}"));
    Ok(Inbound {
        platform: crate::NAME.to_string(),
        chat: field("chat", &message.chat)?,
        sender: field("sender", &message.sender)?,
        provider_id: field("id", &message.id)?,
        text: message.text,
        attachments: Vec::new(),
        received_at: SystemTime::now(),
        control: None,
        sender_name: None,
    })
}

/// The route's handler.
pub async fn receive(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<WebhookState>,
) -> HttpResponse {
    let sink = &state.sink;
    // The secret comes first: a caller without it learns nothing, not even body limits.
    if !secret_header_matches(&req, SECRET_HEADER, &state.secret) {
        warn!("[webhook] request rejected: missing or wrong {SECRET_HEADER}");
        sink.rejected(crate::NAME, "secret");
        return answer(StatusCode::FORBIDDEN, "forbidden");
    }
    let body = match read_capped(&req, &mut payload, MAX_BODY).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            sink.rejected(crate::NAME, "size");
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "too large");
        }
        Err(BodyError::Broken) => {
            sink.rejected(crate::NAME, "parse");
            return answer(StatusCode::BAD_REQUEST, "unreadable body");
        }
    };
    let inbound = match serde_json::from_slice::<Message>(&body)
        .map_err(|err| err.to_string())
        .and_then(to_inbound)
    {
        Ok(inbound) => inbound,
        Err(why) => {
            warn!("[webhook] request rejected: {why}");
            sink.rejected(crate::NAME, "parse");
            return answer(StatusCode::BAD_REQUEST, &format!("bad message: {why}"));
        }
    };
    accept_and_answer(sink.as_ref(), crate::NAME, inbound).await
}

/// Registers the route (other methods on it get 405).
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<WebhookState>) {
    cfg.service(
        web::resource(PATH)
            .app_data(state)
            .route(web::post().to(receive))
            .default_service(web::to(|| async {
                answer(StatusCode::METHOD_NOT_ALLOWED, "use POST")
            })),
    );
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use std::sync::Mutex;

    use actix_web::App;
    use actix_web::test::{TestRequest, call_service, init_service};
    use platform_api::{Accepted, SinkError, async_trait};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[derive(Default)]
    struct Recorder {
        stored: Mutex<Vec<Inbound>>,
        rejected: Mutex<Vec<&'static str>>,
    }

    #[async_trait(?Send)]
    impl InboundSink for Recorder {
        async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
            let mut stored = self.stored.lock().unwrap();
            if stored.iter().any(|m| m.provider_id == inbound.provider_id) {
                return Ok(Accepted::Duplicate);
            }
            stored.push(inbound);
            Ok(Accepted::Stored)
        }

        fn rejected(&self, _platform: &str, reason: &'static str) {
            self.rejected.lock().unwrap().push(reason);
        }
    }

    async fn post(sink: Arc<Recorder>, secret: Option<&str>, body: Vec<u8>) -> StatusCode {
        let state = web::Data::new(WebhookState {
            secret: SECRET.to_string(),
            sink,
        });
        let app = init_service(App::new().configure(|cfg| configure(cfg, state))).await;
        let mut req = TestRequest::post()
            .uri(PATH)
            .insert_header((header::CONTENT_TYPE, "application/json"));
        if let Some(secret) = secret {
            req = req.insert_header((SECRET_HEADER, secret));
        }
        call_service(&app, req.set_payload(body).to_request())
            .await
            .status()
    }

    fn message(id: &str) -> Vec<u8> {
        format!(
            r#"{{"id": "{id}", "chat": " room-1 ", "sender": "alice", "text": "Hi **there**"}}"#
        )
        .into_bytes()
    }

    #[actix_web::test]
    async fn a_message_with_the_secret_is_stored_once() {
        let sink = Arc::new(Recorder::default());
        assert_eq!(
            post(sink.clone(), Some(SECRET), message("m1")).await,
            StatusCode::OK
        );
        assert_eq!(
            post(sink.clone(), Some(SECRET), message("m1")).await,
            StatusCode::OK
        );
        let stored = sink.stored.lock().unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            (stored[0].chat.as_str(), stored[0].sender.as_str()),
            ("room-1", "alice")
        );
        assert_eq!(stored[0].text, "Hi **there**");
    }

    #[actix_web::test]
    async fn bad_requests_are_refused_before_anything_is_stored() {
        let sink = Arc::new(Recorder::default());
        let wrong = "0123456789abcdef0123456789abcdeX";
        let huge = vec![b' '; MAX_BODY + 1];
        for (secret, body, status) in [
            (None, message("a"), StatusCode::FORBIDDEN),
            (Some(wrong), message("b"), StatusCode::FORBIDDEN),
            (Some(""), message("c"), StatusCode::FORBIDDEN),
            (Some(SECRET), huge, StatusCode::PAYLOAD_TOO_LARGE),
            (Some(SECRET), b"{not json".to_vec(), StatusCode::BAD_REQUEST),
            (
                Some(SECRET),
                br#"{"id": "d", "chat": "x"}"#.to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                Some(SECRET),
                br#"{"id": " ", "chat": "x", "sender": "y", "text": "z"}"#.to_vec(),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            assert_eq!(post(sink.clone(), secret, body).await, status);
        }
        assert!(sink.stored.lock().unwrap().is_empty());
        assert_eq!(
            *sink.rejected.lock().unwrap(),
            [
                "secret", "secret", "secret", "size", "parse", "parse", "parse"
            ]
        );
    }

    #[test]
    fn ids_are_trimmed_bounded_and_printable() {
        assert_eq!(parse_chat("  room 7 "), Ok("room 7".to_string()));
        assert!(parse_chat("").is_err());
        assert!(parse_chat("a\nb").is_err());
        assert!(parse_chat(&"x".repeat(MAX_ID_CHARS + 1)).is_err());
    }
}
