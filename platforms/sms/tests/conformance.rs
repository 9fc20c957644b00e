//! The SMS platform against the `platform-api` conformance kit.
use std::time::Duration;

use hermes_twilio::segments::gsm_normalize;
use platform_api::testkit::{
    Answer, Expected, Rendering, check_format, check_home_channel, check_registration,
    check_send_errors,
};
use platform_api::{Registration, registration, text};
use platform_sms::{error, format};

fn sms() -> &'static Registration {
    registration("sms").expect("the SMS platform registers itself")
}

/// What SMS sends before splitting: plain text with GSM-7 typography.
fn rendered(markdown: &str) -> String {
    gsm_normalize(&text::markdown_to_plain(markdown))
}

#[test]
fn registration_is_well_formed() {
    check_registration(sms());
}

#[test]
fn formatting_keeps_every_word_within_twilio_limits() {
    check_format(
        format::format,
        format::MAX_PART_CHARS,
        Rendering::Custom(rendered),
    );
}

#[test]
fn twilio_errors_are_classified() {
    let answer = |status, retry_after, body: &'static str| Answer {
        status,
        retry_after,
        body: body.as_bytes(),
    };
    check_send_errors(
        error::classify,
        &[
            (
                answer(
                    429,
                    Some("3"),
                    r#"{"code": 20429, "message": "Too Many Requests", "status": 429}"#,
                ),
                Expected::RetryAfter(Duration::from_secs(3)),
            ),
            (
                answer(
                    401,
                    None,
                    r#"{"code": 20003, "message": "Authenticate", "status": 401}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(
                    400,
                    None,
                    r#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "status": 400}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(
                    400,
                    None,
                    r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}"#,
                ),
                Expected::OptedOut,
            ),
            (
                answer(
                    500,
                    None,
                    r#"{"code": 30007, "message": "Message filtered", "status": 500}"#,
                ),
                Expected::Retry,
            ),
        ],
    );
}

#[test]
fn home_channel_follows_sms_home_channel() {
    check_home_channel(sms());
}
