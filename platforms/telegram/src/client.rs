//! The Bot API client: `POST <base>/bot<token>/<method>` with a JSON body (or a
//! multipart/form-data one that uploads a file), and file downloads from
//! `<base>/file/bot<token>/<path>`, over the host's `awc` client.
//!
//! The token is part of every URL, so it is a password that travels in paths: no URL is ever
//! logged, and every error message made here goes through [`redact`], which replaces the
//! token (and any `/bot…/` path segment) with `***`.
use std::fmt;
use std::future::Future;
use std::time::Duration;

use awc::SendClientRequest;
use platform_api::http::multipart::{Form, FormBody};
use platform_api::http::{client, download, retry_after, transport_error};
use platform_api::media::human_size;
use platform_api::{FetchError, Fetched, SendError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{ApiResponse, File};

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
        self.answer(method, request.send_json(params).await, timeout)
            .await
    }

    /// Calls `method` with `params` and `file` as multipart/form-data (how a bot uploads a
    /// file); waits at most `timeout` for the answer.
    pub async fn upload<R: DeserializeOwned>(
        &self,
        method: &str,
        params: &[(&str, &str)],
        file: &Upload<'_>,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let FormBody { content_type, body } = form_data(params, file);
        let request = client()
            .post(self.url(method))
            .timeout(timeout)
            .insert_header(("Content-Type", content_type));
        self.answer(method, request.send_body(body).await, timeout)
            .await
    }

    /// The result of a call, from what came back.
    async fn answer<R: DeserializeOwned>(
        &self,
        method: &str,
        sent: <SendClientRequest as Future>::Output,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let mut response = match sent {
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

    /// Downloads the file `file_id` names: `getFile`, then
    /// `<base>/file/bot<token>/<file_path>`, reading at most `limit` bytes. Telegram hands
    /// bots files of at most 20 MB; a larger one, like one over `limit`, is refused for good.
    /// Errors never carry the token, hence never the file's URL.
    pub async fn fetch_file(
        &self,
        file_id: &str,
        limit: u64,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let params = serde_json::json!({ "file_id": file_id });
        let file: File = self
            .call("getFile", &params, timeout)
            .await
            .map_err(fetch_error)?;
        if file.file_size.is_some_and(|size| size > limit) {
            return Err(FetchError::Permanent(format!(
                "the file is larger than {}",
                human_size(limit)
            )));
        }
        let Some(path) = file.file_path.filter(|p| !p.is_empty()) else {
            return Err(FetchError::Permanent(
                "Telegram gave no path to download the file from".to_string(),
            ));
        };
        let url = format!("{}/file/bot{}/{path}", self.base, self.token);
        download(&url, None, limit, timeout, PEER)
            .await
            .map_err(|err| match err {
                FetchError::Retry(message) => FetchError::Retry(self.redact(&message)),
                FetchError::Permanent(message) => FetchError::Permanent(self.redact(&message)),
            })
    }
}

/// What a failed `getFile` means for fetching the file: no answer, 429 and 5xx may pass;
/// Telegram's refusal (too big for bots, an unknown `file_id`) will not.
fn fetch_error(err: CallError) -> FetchError {
    let message = err.to_string();
    match err {
        CallError::Transport(SendError::Permanent { .. }) => FetchError::Permanent(message),
        CallError::Transport(_) => FetchError::Retry(message),
        CallError::Answer(answer) => {
            let retry =
                answer.status == 429 || answer.status >= 500 || (200..300).contains(&answer.status);
            if retry {
                FetchError::Retry(format!("getFile: {message}"))
            } else if message.contains("file is too big") {
                FetchError::Permanent(
                    "the file is larger than the 20 MB Telegram lets bots download".to_string(),
                )
            } else {
                FetchError::Permanent(format!("getFile: {message}"))
            }
        }
    }
}

/// A file uploaded with a call ([`Api::upload`]).
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// The parameter holding it (`photo`, `voice`, `document` …).
    pub field: &'a str,
    /// The file name the recipient sees.
    pub file_name: &'a str,
    /// Its MIME type.
    pub content_type: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
}

/// `params` and `file` as a multipart/form-data body.
fn form_data(params: &[(&str, &str)], file: &Upload<'_>) -> FormBody {
    let mut form = Form::new();
    for (name, value) in params {
        form.text(*name, *value);
    }
    form.file(file.field, file.file_name, file.content_type, file.bytes);
    form.encode()
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

    #[test]
    fn a_get_file_refused_for_now_is_retried_and_a_refusal_is_final() {
        let answer = |status: u16, description: &str| {
            let body =
                serde_json::json!({"ok": false, "error_code": status, "description": description});
            CallError::Answer(Answer {
                status,
                retry_after: None,
                body: body.to_string().into_bytes(),
            })
        };
        let cases = [
            (answer(429, "Too Many Requests: retry after 3"), true),
            (answer(502, "Bad Gateway"), true),
            (
                CallError::Transport(SendError::Ambiguous {
                    message: "no answer from Telegram within 60s".into(),
                }),
                true,
            ),
            (answer(400, "Bad Request: file is too big"), false),
            (answer(400, "Bad Request: invalid file_id"), false),
            (answer(401, "Unauthorized"), false),
        ];
        for (err, retry) in cases {
            let shown = err.to_string();
            let fetch = fetch_error(err);
            assert_eq!(
                matches!(fetch, FetchError::Retry(_)),
                retry,
                "{shown}: {fetch:?}"
            );
        }
        assert_eq!(
            fetch_error(answer(400, "Bad Request: file is too big")).to_string(),
            "the file is larger than the 20 MB Telegram lets bots download"
        );
    }

    #[test]
    fn an_upload_is_its_parameters_then_its_file() {
        let file = Upload {
            field: "document",
            file_name: "a \"quoted\"\r\nname.pdf",
            content_type: "application/pdf",
            bytes: b"%PDF-1.7",
        };
        let FormBody { content_type, body } =
            form_data(&[("chat_id", "42"), ("caption", "<b>Hi</b>")], &file);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("a boundary");
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(
            body,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n<b>Hi</b>\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a %22quoted%22%0D%0Aname.pdf\"\r\n\
                 Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--{boundary}--\r\n"
            )
        );
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
