//! HTTP plumbing for adapters that call a provider's API with `awc` (feature `http`): one
//! client per actix thread, and what a failed request means for a send.
use std::cell::OnceCell;
use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};

use crate::error::SendError;

/// How long to wait for a connection; nothing has been sent when this runs out.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a request may take unless it sets its own limit (`ClientRequest::timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

thread_local! {
    // awc's client is not `Send`: each actix thread keeps its own, with its own pool.
    static CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

/// The HTTP client of this thread: pooled connections, no redirects, our User-Agent.
pub fn client() -> awc::Client {
    CLIENT.with(|cell| {
        cell.get_or_init(|| {
            let connector = awc::Connector::new()
                .timeout(CONNECT_TIMEOUT)
                // Shorter than the keep-alive of common servers, so that a pooled connection is
                // never one the server already closed.
                .conn_keep_alive(Duration::from_secs(4));
            awc::Client::builder()
                .connector(connector)
                .timeout(DEFAULT_TIMEOUT)
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

/// What a request that got no answer means for a send to `peer` (a name for the operator, such
/// as `Twilio`): retryable when nothing can have reached it, ambiguous once it may have been
/// processed (so that it is not sent twice).
pub fn transport_error(err: SendRequestError, peer: &str, timeout: Duration) -> SendError {
    match err {
        SendRequestError::Connect(ConnectError::Timeout) => SendError::Retry {
            after: None,
            code: None,
            message: format!("timed out connecting to {peer}"),
        },
        SendRequestError::Connect(err) => SendError::Retry {
            after: None,
            code: None,
            message: format!("could not connect to {peer}: {err}"),
        },
        SendRequestError::Url(err) => SendError::Permanent {
            code: None,
            message: format!("bad URL for {peer}: {err}"),
        },
        SendRequestError::Timeout => SendError::Ambiguous {
            message: format!("no answer from {peer} within {}s", timeout.as_secs()),
        },
        other => SendError::Ambiguous {
            message: format!("connection to {peer} failed mid-request: {other}"),
        },
    }
}

/// The `Retry-After` header of an answer, as text.
pub fn retry_after(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    headers
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
