//! The splitter never exceeds its limit or loses text; the segment counter never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &str)| {
    let (limit, text) = input;
    let limit = usize::from(limit).max(20);
    let parts = platform_api::text::split(text, limit);
    let kept: String = parts
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let given: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(kept, given);
    for part in &parts {
        assert!(part.chars().count() <= limit);
        let _ = hermes_twilio::segments::segments(part);
    }
    let _ = hermes_twilio::segments::gsm_normalize(text);
});
