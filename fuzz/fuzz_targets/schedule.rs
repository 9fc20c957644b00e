//! Schedule parsing never panics, and what parses displays as something that parses again.
#![no_main]
use gateway_host::cron::schedule::Schedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(schedule) = text.parse::<Schedule>() {
        let shown = schedule.to_string();
        assert!(shown.parse::<Schedule>().is_ok(), "{text:?} → {shown:?}");
    }
});
