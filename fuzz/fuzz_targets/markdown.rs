//! Markdown → plain text never panics, and the SMS formatter stays within Twilio's limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = platform_api::text::markdown_to_plain(text);
    for part in platform_sms::format::format(text) {
        assert!(part.body.chars().count() <= platform_sms::format::MAX_PART_CHARS);
    }
});
