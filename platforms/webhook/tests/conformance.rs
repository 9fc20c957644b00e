//! The JSON webhook against the `platform-api` conformance kit.
use std::time::Duration;

use platform_api::testkit::{
    Answer, Expected, Rendering, check_format, check_home_channel, check_registration,
    check_send_errors,
};
use platform_api::{Registration, registration};
use platform_webhook::{error, format};

fn webhook() -> &'static Registration {
    registration("webhook").expect("the JSON webhook registers itself")
}

#[test]
fn registration_is_well_formed() {
    check_registration(webhook());
}

#[test]
fn formatting_keeps_markdown_within_the_part_limit() {
    check_format(format::format, format::MAX_PART_CHARS, Rendering::Markdown);
}

#[test]
fn answers_are_classified() {
    check_send_errors(
        error::classify,
        &[
            (
                Answer {
                    status: 429,
                    retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                    body: br#"{"error": "rate limited"}"#,
                },
                Expected::RetryAfter(Duration::ZERO),
            ),
            (
                Answer {
                    status: 422,
                    retry_after: None,
                    body: br#"{"message": "unknown chat"}"#,
                },
                Expected::Permanent,
            ),
        ],
    );
}

#[test]
fn home_channel_follows_webhook_home_channel() {
    check_home_channel(webhook());
}
