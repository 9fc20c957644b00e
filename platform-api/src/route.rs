//! What a platform's inbound route does the same way on every platform that is posted JSON
//! (the JSON webhook, Telegram's webhook mode): checking a shared-secret header, and answering
//! the provider once the host has taken the message, or could not.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;
use tracing::{error, info, warn};

use crate::message::Inbound;
use crate::platform::{Accepted, InboundSink, SinkError};

/// Whether the request carries exactly one `header` equal to `secret`, compared in constant
/// time so that the answer's timing says nothing about how much of a guess was right.
pub fn secret_header_matches(req: &HttpRequest, header: &str, secret: &str) -> bool {
    let mut given = req.headers().get_all(header);
    match (given.next(), given.next()) {
        (Some(value), None) => bool::from(value.as_bytes().ct_eq(secret.as_bytes())),
        _ => false,
    }
}

/// A JSON answer `{"status": outcome}`.
pub fn answer(status: StatusCode, outcome: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "status": outcome }))
}

/// Hands `inbound` to the host and answers the provider: 200 once it is stored (or known as a
/// repeat), 503 while storing is refused for now, 500 when it failed; each logged under
/// `[platform]`. Providers that retry an answer other than 2xx then post it again.
pub async fn accept_and_answer(
    sink: &dyn InboundSink,
    platform: &str,
    inbound: Inbound,
) -> HttpResponse {
    let id = inbound.provider_id.clone();
    match sink.accept(inbound).await {
        Ok(Accepted::Stored) => {
            info!(message_id = %id, "[{platform}] inbound message stored");
            answer(StatusCode::OK, "stored")
        }
        Ok(Accepted::Duplicate) => {
            info!(message_id = %id, "[{platform}] duplicate acknowledged, not processed again");
            answer(StatusCode::OK, "duplicate")
        }
        Err(SinkError::Unavailable(why)) => {
            warn!("[{platform}] cannot store {id} now: {why}");
            answer(StatusCode::SERVICE_UNAVAILABLE, "cannot store now")
        }
        Err(SinkError::Storage(err)) => {
            error!("[{platform}] could not store {id}: {err}");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "storage failed")
        }
    }
}
