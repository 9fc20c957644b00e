//! Webhook mode's route: Telegram POSTs each update, as JSON, to the path of
//! `TELEGRAM_WEBHOOK_URL`, with the secret of `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! The secret is checked first (in constant time; 401 without it), the body is capped, and
//! Telegram gets its 200 only once the host stored the message: it retries anything else,
//! so a 503 while the store is unavailable delays the update rather than losing it.
use std::sync::{Arc, OnceLock};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::InboundSink;
use platform_api::body::{BodyError, read_capped};
use platform_api::route::{accept_and_answer, answer, secret_header_matches};
use tracing::{debug, warn};

use crate::inbound::{Bot, to_inbound};
use crate::types::Update;

/// The header that carries the webhook secret.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
/// Largest update accepted: a message of 4,096 characters with its entities and a reply
/// quoted in full stays far below it.
pub const MAX_BODY: usize = 256 * 1024;

/// What the route needs, shared by every worker.
pub struct WebhookState {
    /// The secret Telegram sends.
    pub secret: String,
    /// The bot, once `getMe` answered (the receive loop fills it in before `setWebhook`).
    pub bot: Arc<OnceLock<Bot>>,
    /// Where accepted messages go.
    pub sink: Arc<dyn InboundSink>,
}

/// The route's handler.
pub async fn receive(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<WebhookState>,
) -> HttpResponse {
    let sink = &state.sink;
    if !secret_header_matches(&req, SECRET_HEADER, &state.secret) {
        warn!("[telegram] webhook request rejected: missing or wrong {SECRET_HEADER}");
        sink.rejected(crate::NAME, "secret");
        return answer(StatusCode::UNAUTHORIZED, "unauthorized");
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
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(err) => {
            warn!("[telegram] webhook request rejected: not JSON: {err}");
            sink.rejected(crate::NAME, "parse");
            return answer(StatusCode::BAD_REQUEST, "not JSON");
        }
    };
    let update: Update = match serde_json::from_value(value) {
        Ok(update) => update,
        Err(err) => {
            // Telegram would post it again and again: it is acknowledged and reported.
            tracing::error!("[telegram] an update could not be read and is skipped: {err}");
            sink.rejected(crate::NAME, "parse");
            return answer(StatusCode::OK, "unreadable update skipped");
        }
    };
    let Some(bot) = state.bot.get() else {
        // Only before `getMe` answered; Telegram retries.
        return answer(StatusCode::SERVICE_UNAVAILABLE, "starting");
    };
    let inbound = match to_inbound(&update, bot) {
        Ok(inbound) => inbound,
        Err(skip) => {
            debug!(
                "[telegram] update {} skipped: {}",
                update.update_id,
                skip.reason()
            );
            return answer(StatusCode::OK, "ignored");
        }
    };
    accept_and_answer(sink.as_ref(), crate::NAME, inbound).await
}

/// Registers the route at `path` (other methods on it get 405).
pub fn configure(cfg: &mut web::ServiceConfig, path: &str, state: web::Data<WebhookState>) {
    cfg.service(
        web::resource(path)
            .app_data(state)
            .route(web::post().to(receive))
            .default_service(web::to(|| async {
                answer(StatusCode::METHOD_NOT_ALLOWED, "use POST")
            })),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use actix_web::App;
    use actix_web::http::header;
    use actix_web::test::{TestRequest, call_service, init_service};
    use platform_api::{Accepted, Inbound, SinkError, async_trait};

    use super::*;

    const SECRET: &str = "s3cret_Secret-0123";
    const PATH: &str = "/webhooks/telegram";

    #[derive(Default)]
    struct Recorder {
        stored: Mutex<Vec<Inbound>>,
        rejected: Mutex<Vec<&'static str>>,
        unavailable: bool,
    }

    #[async_trait(?Send)]
    impl InboundSink for Recorder {
        async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
            if self.unavailable {
                return Err(SinkError::Unavailable("disk full".into()));
            }
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

    fn update(id: i64, text: &str) -> Vec<u8> {
        serde_json::json!({
            "update_id": id,
            "message": {
                "message_id": id, "date": 0, "text": text,
                "from": {"id": 42, "is_bot": false, "first_name": "Ada"},
                "chat": {"id": 42, "type": "private"}
            }
        })
        .to_string()
        .into_bytes()
    }

    async fn post(
        sink: Arc<Recorder>,
        known: bool,
        secret: Option<&str>,
        body: Vec<u8>,
    ) -> StatusCode {
        let bot = Arc::new(OnceLock::new());
        if known {
            let _ = bot.set(Bot {
                id: 999,
                username: "HermesBot".into(),
            });
        }
        let state = web::Data::new(WebhookState {
            secret: SECRET.to_string(),
            bot,
            sink,
        });
        let app = init_service(App::new().configure(|cfg| configure(cfg, PATH, state))).await;
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

    #[actix_web::test]
    async fn an_update_with_the_secret_is_stored_once() {
        let sink = Arc::new(Recorder::default());
        for _ in 0..2 {
            assert_eq!(
                post(sink.clone(), true, Some(SECRET), update(1, "hi")).await,
                StatusCode::OK
            );
        }
        let stored = sink.stored.lock().unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].provider_id, "42:1");
    }

    #[actix_web::test]
    async fn bad_requests_are_refused_before_anything_is_stored() {
        let sink = Arc::new(Recorder::default());
        let huge = vec![b' '; MAX_BODY + 1];
        for (secret, body, status) in [
            (None, update(1, "a"), StatusCode::UNAUTHORIZED),
            (
                Some("s3cret_Secret-0124"),
                update(2, "b"),
                StatusCode::UNAUTHORIZED,
            ),
            (Some(""), update(3, "c"), StatusCode::UNAUTHORIZED),
            (Some(SECRET), huge, StatusCode::PAYLOAD_TOO_LARGE),
            (Some(SECRET), b"{not json".to_vec(), StatusCode::BAD_REQUEST),
        ] {
            assert_eq!(post(sink.clone(), true, secret, body).await, status);
        }
        assert!(sink.stored.lock().unwrap().is_empty());
        assert_eq!(
            *sink.rejected.lock().unwrap(),
            ["secret", "secret", "secret", "size", "parse"]
        );
    }

    #[actix_web::test]
    async fn telegram_is_asked_to_retry_until_the_message_is_stored() {
        let down = Arc::new(Recorder {
            unavailable: true,
            ..Recorder::default()
        });
        assert_eq!(
            post(down, true, Some(SECRET), update(1, "hi")).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let sink = Arc::new(Recorder::default());
        assert_eq!(
            post(sink.clone(), false, Some(SECRET), update(1, "hi")).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "before getMe answered"
        );
        assert!(sink.stored.lock().unwrap().is_empty());
    }
}
