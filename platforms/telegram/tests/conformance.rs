//! Telegram against the `platform-api` conformance kit.
//!
//! Parts are Telegram HTML; the kit reads them as [`shown`] writes them (visible text, each
//! link's target after it), which is also what the whole reply looks like before it is split
//! ([`render`]), and what the 4,096-character limit is kept on.
use std::time::Duration;

use platform_api::testkit::{
    Answer, Expected, Rendering, check_format, check_format_of, check_home_channel,
    check_registration, check_send_errors,
};
use platform_api::{Part, Registration, registration};
use platform_telegram::format::{render, shown};
use platform_telegram::{MAX_MESSAGE_CHARS, error, format};

fn telegram() -> &'static Registration {
    registration("telegram").expect("the Telegram platform registers itself")
}

/// The parts as the kit checks them: what each message shows.
fn shown_parts(markdown: &str) -> Vec<Part> {
    format(markdown)
        .iter()
        .map(|part| Part::plain(shown(&part.body)))
        .collect()
}

#[test]
fn registration_is_well_formed() {
    check_registration(telegram());
    assert!(!telegram().stub, "Telegram is a real platform");
}

#[test]
fn formatting_keeps_every_message_within_the_limit() {
    check_format(shown_parts, MAX_MESSAGE_CHARS, Rendering::Custom(render));
}

#[test]
fn formatting_a_styled_reply_split_in_the_middle_of_its_styles() {
    let code: String = (0..300)
        .map(|i| format!("    println!(\"line {i} of a long listing\");\n"))
        .collect();
    let markdown = format!(
        "**Summary:** see [the report](https://example.com/report).\n\n```rust\n{code}```\n\n> {}",
        "A long *quoted* remark that keeps going. ".repeat(200)
    );
    check_format_of(
        shown_parts,
        MAX_MESSAGE_CHARS,
        Rendering::Custom(render),
        &markdown,
    );
    assert!(format(&markdown).len() >= 4);
}

#[test]
fn home_channel_follows_telegram_home_channel() {
    check_home_channel(telegram());
}

#[test]
fn answers_are_classified() {
    let answer = |status, body: &'static [u8]| Answer {
        status,
        retry_after: None,
        body,
    };
    check_send_errors(
        error::classify,
        &[
            (
                answer(
                    429,
                    br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 11","parameters":{"retry_after":11}}"#,
                ),
                Expected::RetryAfter(Duration::from_secs(11)),
            ),
            (
                answer(
                    403,
                    br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
                ),
                Expected::OptedOut,
            ),
            (
                answer(
                    403,
                    br#"{"ok":false,"error_code":403,"description":"Forbidden: user is deactivated"}"#,
                ),
                Expected::OptedOut,
            ),
            (
                answer(
                    403,
                    br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was kicked from the group chat"}"#,
                ),
                Expected::OptedOut,
            ),
            (
                answer(
                    400,
                    br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(
                    401,
                    br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(
                    502,
                    br#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#,
                ),
                Expected::Retry,
            ),
        ],
    );
}
