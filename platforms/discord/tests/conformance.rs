//! Discord against the `platform-api` conformance kit.
use std::time::Duration;

use platform_api::testkit::{
    Answer, Expected, Rendering, check_format, check_home_channel, check_registration,
    check_send_errors,
};
use platform_api::{Registration, registration};
use platform_discord::{MAX_MESSAGE_CHARS, error, format};

fn discord() -> &'static Registration {
    registration("discord").expect("the Discord platform registers itself")
}

#[test]
fn registration_is_well_formed_and_real() {
    check_registration(discord());
    assert!(!discord().stub, "Discord can send");
}

#[test]
fn formatting_keeps_markdown_within_the_message_limit() {
    check_format(format, MAX_MESSAGE_CHARS, Rendering::Markdown);
}

#[test]
fn home_channel_follows_its_setting() {
    check_home_channel(discord());
}

#[test]
fn discords_answers_are_classified() {
    let answer = |status, retry_after, body: &'static [u8]| Answer {
        status,
        retry_after,
        body,
    };
    check_send_errors(
        error::classify,
        &[
            // A route's limit: the body's fractional retry_after wins over the rounded header.
            (
                answer(
                    429,
                    Some("2"),
                    br#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#,
                ),
                Expected::RetryAfter(Duration::from_millis(1500)),
            ),
            // The global limit.
            (
                answer(
                    429,
                    Some("1"),
                    br#"{"message": "You are being rate limited.", "retry_after": 0.25, "global": true}"#,
                ),
                Expected::RetryAfter(Duration::from_millis(250)),
            ),
            // Cloudflare's limit: HTML and only the header.
            (
                answer(429, Some("60"), b"<html><body>error code: 1015</body></html>"),
                Expected::RetryAfter(Duration::from_secs(60)),
            ),
            (
                answer(
                    403,
                    None,
                    br#"{"message": "Cannot send messages to this user", "code": 50007}"#,
                ),
                Expected::OptedOut,
            ),
            (
                answer(
                    403,
                    None,
                    br#"{"message": "Missing Permissions", "code": 50013}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(404, None, br#"{"message": "Unknown Channel", "code": 10003}"#),
                Expected::Permanent,
            ),
            (
                answer(
                    400,
                    None,
                    br#"{"message": "Invalid Form Body", "code": 50035, "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(401, None, br#"{"message": "401: Unauthorized", "code": 0}"#),
                Expected::Permanent,
            ),
            // An upload over the bot's limit.
            (
                answer(
                    413,
                    None,
                    br#"{"message": "Request entity too large", "code": 40005}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(502, None, br#"{"message": "502: Bad Gateway", "code": 0}"#),
                Expected::Retry,
            ),
        ],
    );
}
