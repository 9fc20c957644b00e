//! [`check_send_errors`] and [`check_stub`].
use std::time::Duration;

use super::registration::sample_section;
use super::report;
use crate::error::SendError;
use crate::message::Part;
use crate::registration::Registration;

/// A provider's answer to a send, as a platform's error classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<&'a str>,
    /// The response body.
    pub body: &'a [u8],
}

/// What a classifier must make of an [`Answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// [`SendError::Retry`], with or without a wait.
    Retry,
    /// [`SendError::Retry`] waiting exactly this long (from `Retry-After`).
    RetryAfter(Duration),
    /// [`SendError::Permanent`].
    Permanent,
    /// [`SendError::OptedOut`].
    OptedOut,
}

impl Expected {
    fn accepts(self, error: &SendError) -> bool {
        match (self, error) {
            (Expected::Retry, SendError::Retry { .. }) => true,
            (Expected::RetryAfter(wait), SendError::Retry { after, .. }) => *after == Some(wait),
            (Expected::Permanent, SendError::Permanent { .. }) => true,
            (Expected::OptedOut, SendError::OptedOut { .. }) => true,
            _ => false,
        }
    }
}

/// The answers every HTTP provider may give, whatever its own error format.
fn common_answers() -> Vec<(Answer<'static>, Expected)> {
    let answer = |status, retry_after, body: &'static [u8]| Answer {
        status,
        retry_after,
        body,
    };
    let html: &[u8] = b"<html><head><title>Bad Gateway</title></head><body>nginx</body></html>";
    let json: &[u8] = br#"{"error": "something went wrong"}"#;
    let not_utf8: &[u8] = b"\xff\xfe\x00broken";
    let mut cases = vec![
        (answer(429, None, b""), Expected::Retry),
        (
            answer(429, Some("7"), json),
            Expected::RetryAfter(Duration::from_secs(7)),
        ),
        (
            answer(503, Some("2"), b""),
            Expected::RetryAfter(Duration::from_secs(2)),
        ),
        (answer(503, Some("soon"), b""), Expected::Retry),
        (answer(500, None, b"Internal Server Error"), Expected::Retry),
        (answer(502, None, html), Expected::Retry),
        (answer(504, None, not_utf8), Expected::Retry),
    ];
    for status in [400, 401, 403, 404, 405, 409, 410, 413, 415, 422] {
        for body in [&b""[..], html, json, not_utf8] {
            cases.push((answer(status, None, body), Expected::Permanent));
        }
    }
    cases
}

/// Checks a platform's classification of failed sends: the common HTTP answers (429 and 5xx
/// retried, honouring `Retry-After` in seconds; other 4xx permanent; whatever the body, even
/// HTML or invalid UTF-8) and then the platform's own `cases` (real error bodies of its
/// provider). Every error must say what went wrong (a non-empty message).
///
/// `classify` takes the status, the `Retry-After` header and the body.
pub fn check_send_errors<F>(classify: F, cases: &[(Answer<'_>, Expected)])
where
    F: Fn(u16, Option<&str>, &[u8]) -> SendError,
{
    let mut problems = Vec::new();
    let common = common_answers();
    for (answer, expected) in common.iter().chain(cases) {
        let error = classify(answer.status, answer.retry_after, answer.body);
        let shown = format!(
            "HTTP {}{} with body {:?}",
            answer.status,
            answer
                .retry_after
                .map(|r| format!(" (Retry-After: {r})"))
                .unwrap_or_default(),
            String::from_utf8_lossy(answer.body)
        );
        if !expected.accepts(&error) {
            problems.push(format!("{shown}: expected {expected:?}, got {error:?}"));
        }
        let message = match &error {
            SendError::Retry { message, .. }
            | SendError::Permanent { message, .. }
            | SendError::OptedOut { message, .. }
            | SendError::Ambiguous { message } => message,
        };
        if message.trim().is_empty() {
            problems.push(format!("{shown}: the error has an empty message"));
        }
    }
    report("check_send_errors", "classify", &problems);
}

/// Checks a stub: it says it is one, and its `send` fails permanently (a retryable error
/// would keep the host retrying a platform that cannot send).
pub fn check_stub(registration: &Registration) {
    let mut problems = Vec::new();
    if !registration.stub {
        problems.push("is not marked `stub: true`".to_string());
    }
    match (registration.build)(&sample_section(registration)) {
        Err(err) => problems.push(format!("does not build: {err}")),
        Ok(platform) => {
            let part = Part::plain("hello");
            match actix_web::rt::System::new().block_on(platform.send("chat", &part)) {
                Ok(receipt) => problems.push(format!("a stub sent a part: {receipt:?}")),
                Err(SendError::Permanent { .. }) => {}
                Err(other) => problems.push(format!("send must fail permanently, got: {other:?}")),
            }
        }
    }
    report("check_stub", registration.name, &problems);
}
