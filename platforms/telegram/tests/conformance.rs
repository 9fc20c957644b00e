//! The Telegram stub against the `platform-api` conformance kit.
use platform_api::testkit::{
    Rendering, check_format, check_home_channel, check_registration, check_stub,
};
use platform_api::{Registration, registration};
use platform_telegram::{MAX_MESSAGE_CHARS, format};

fn telegram() -> &'static Registration {
    registration("telegram").expect("the Telegram platform registers itself")
}

#[test]
fn registration_is_well_formed() {
    check_registration(telegram());
}

#[test]
fn formatting_keeps_markdown_within_the_message_limit() {
    check_format(format, MAX_MESSAGE_CHARS, Rendering::Markdown);
}

#[test]
fn home_channel_follows_its_setting() {
    check_home_channel(telegram());
}

#[test]
fn the_stub_refuses_to_send_permanently() {
    check_stub(telegram());
}
