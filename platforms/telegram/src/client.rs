//! The Bot API client: `POST <base>/bot<token>/<method>` with a JSON body, over the host's
//! `awc` client.
//!
//! The token is part of every URL, so it is a password that travels in paths: no URL is ever
//! logged, and every error message made here goes through [`redact`], which replaces the
//! token (and any `/bot…/` path segment) with `***`.
use std::fmt;
use std::time::Duration;

use platform_api::SendError;
use platform_api::http::{client, retry_after, transport_error};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::ApiResponse;

/// Largest answer read: a full `getUpdates` batch of 100 long messages fits comfortably.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// How the peer is named in transport errors.
const PEER: &str = "Telegram";

/// A Bot API server and the bot's token.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// An error answer from Telegram, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as a Bot API error, when it is one.
    pub fn parsed(&self) -> Option<ApiResponse<serde_json::Value>> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Telegram's description (`Forbidden: bot was blocked by the user`), or what the body
    /// says when it is not a Bot API error (a proxy's HTML page), shortened.
    pub fn description(&self) -> String {
        if let Some(description) = self.parsed().and_then(|p| p.description) {
            return description;
        }
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.trim().chars().take(200).collect();
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {text}", self.status)
        }
    }
}

/// Why a call did not return a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No answer came (refused, timed out, broken): what that means for a send, already
    /// redacted.
    Transport(SendError),
    /// Telegram (or something in front of it) answered with an error; a 2xx status here means
    /// the call succeeded but its answer could not be read.
    Answer(Answer),
}

impl CallError {
    /// The HTTP status of an answer; `None` when none came.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Transport(_) => None,
            CallError::Answer(answer) => Some(answer.status),
        }
    }

    /// Telegram's description of an error answer.
    pub fn description(&self) -> Option<String> {
        match self {
            CallError::Transport(_) => None,
            CallError::Answer(answer) => Some(answer.description()),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(error) => write!(f, "{error}"),
            CallError::Answer(answer) => {
                // Bodies do not carry the token, but a proxy's error page might echo the path.
                write!(f, "{}", redact(&answer.description(), None))
            }
        }
    }
}

/// `text` with the token, and every `/bot<anything>/` path segment, replaced by `***`.
pub fn redact(text: &str, token: Option<&str>) -> String {
    let mut text = match token {
        Some(token) if !token.is_empty() => text.replace(token, "***"),
        _ => text.to_string(),
    };
    let mut from = 0;
    while let Some(at) = text[from..].find("/bot").map(|i| from + i) {
        let start = at + "/bot".len();
        let end = text[start..]
            .find(|c: char| c == '/' || c.is_whitespace())
            .map_or(text.len(), |i| start + i);
        if end > start && &text[start..end] != "***" {
            text.replace_range(start..end, "***");
        }
        from = start;
    }
    text
}

fn redact_send_error(error: SendError, token: &str) -> SendError {
    let clean = |message: String| redact(&message, Some(token));
    match error {
        SendError::Retry {
            after,
            code,
            message,
        } => SendError::Retry {
            after,
            code,
            message: clean(message),
        },
        SendError::Permanent { code, message } => SendError::Permanent {
            code,
            message: clean(message),
        },
        SendError::OptedOut { code, message } => SendError::OptedOut {
            code,
            message: clean(message),
        },
        SendError::Ambiguous { message } => SendError::Ambiguous {
            message: clean(message),
        },
    }
}

impl Api {
    /// A client of the Bot API server at `base` (`https://api.telegram.org`) for `token`.
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// The server, as configured.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `text` with this bot's token redacted.
    pub fn redact(&self, text: &str) -> String {
        redact(text, Some(&self.token))
    }

    /// `error` with this bot's token redacted from its message.
    pub fn redact_error(&self, error: SendError) -> SendError {
        redact_send_error(error, &self.token)
    }

    fn url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base, self.token)
    }

    /// Calls `method` with `params` as JSON; waits at most `timeout` for the answer.
    pub async fn call<P, R>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<R, CallError>
    where
        P: Serialize,
        R: DeserializeOwned,
    {
        let request = client().post(self.url(method)).timeout(timeout);
        let mut response = match request.send_json(params).await {
            Ok(response) => response,
            Err(err) => {
                let error = transport_error(err, PEER, timeout);
                return Err(CallError::Transport(redact_send_error(error, &self.token)));
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match response.body().limit(MAX_ANSWER).await {
            Ok(body) => body.to_vec(),
            Err(err) if (200..300).contains(&status) => {
                // The call went through; only its answer is lost.
                tracing::debug!("[telegram] {method}: unreadable answer: {err}");
                Vec::new()
            }
            Err(err) => format!("unreadable answer: {err}").into_bytes(),
        };
        if (200..300).contains(&status)
            && let Ok(ApiResponse {
                ok: true,
                result: Some(result),
                ..
            }) = serde_json::from_slice::<ApiResponse<R>>(&body)
        {
            return Ok(result);
        }
        Err(CallError::Answer(Answer {
            status,
            retry_after,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    #[test]
    fn redaction_hides_the_token_and_bot_paths() {
        assert_eq!(
            redact(&format!("GET /bot{TOKEN}/getMe failed"), Some(TOKEN)),
            "GET /bot***/getMe failed"
        );
        assert_eq!(
            redact("https://api.telegram.org/bot999:other/sendMessage", None),
            "https://api.telegram.org/bot***/sendMessage"
        );
        assert_eq!(redact(&format!("token {TOKEN}"), Some(TOKEN)), "token ***");
        assert_eq!(redact("no secrets here", Some(TOKEN)), "no secrets here");
        assert_eq!(redact("/bot", None), "/bot");
    }

    #[test]
    fn answers_describe_themselves() {
        let answer = Answer {
            status: 403,
            retry_after: None,
            body: br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#.to_vec(),
        };
        assert_eq!(
            answer.description(),
            "Forbidden: bot was blocked by the user"
        );
        let html = Answer {
            status: 502,
            retry_after: None,
            body: b"<html>Bad Gateway</html>".to_vec(),
        };
        assert_eq!(html.description(), "HTTP 502: <html>Bad Gateway</html>");
        assert!(!format!("{:?}", Api::new("https://x", TOKEN)).contains("AAHdq"));
    }

    #[actix_web::test]
    async fn a_transport_error_never_shows_the_token() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Port 9 (discard) on loopback is closed on any ordinary machine.
        let api = Api::new("http://127.0.0.1:9", TOKEN);
        let err = api
            .call::<_, serde_json::Value>("getMe", &serde_json::json!({}), Duration::from_secs(5))
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(err, CallError::Transport(SendError::Retry { .. })),
            "{shown}"
        );
        assert!(!shown.contains("AAHdq"), "{shown}");
    }
}
