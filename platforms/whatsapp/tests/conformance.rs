//! The WhatsApp platform against the `platform-api` conformance kit.
use std::time::Duration;

use platform_api::testkit::{
    Answer, Expected, Rendering, check_format, check_home_channel, check_registration,
    check_send_errors,
};
use platform_api::{Registration, registration};
use platform_whatsapp::{error, format};

fn whatsapp() -> &'static Registration {
    registration("whatsapp").expect("the WhatsApp platform registers itself")
}

#[test]
fn registration_is_well_formed() {
    check_registration(whatsapp());
}

#[test]
fn formatting_keeps_every_word_within_twilios_limit() {
    check_format(
        format::format,
        format::MAX_MESSAGE_CHARS,
        Rendering::Custom(format::render),
    );
}

#[test]
fn twilio_errors_are_classified_and_63016_is_final() {
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
                    400,
                    None,
                    r#"{"code": 63016, "message": "Failed to send freeform message because you are outside the allowed window.", "status": 400}"#,
                ),
                Expected::Permanent,
            ),
            (
                answer(
                    400,
                    None,
                    r#"{"code": 63007, "message": "Twilio could not find a Channel with the specified From address", "status": 400}"#,
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
        ],
    );
}

#[test]
fn home_channel_follows_whatsapp_home_channel() {
    check_home_channel(whatsapp());
}
