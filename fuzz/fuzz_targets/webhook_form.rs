//! The webhook's form parser and signature check on arbitrary bodies and signatures.
#![no_main]
use hermes_twilio::signature::{url_variants, verify_signature};
use hermes_twilio::webhook::parse_form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sig, body) = data.split_at(data.len().min(28));
    if let Ok(params) = parse_form(body) {
        let variants = url_variants("https://example.com/webhooks/twilio");
        let sig = String::from_utf8_lossy(sig);
        assert!(
            verify_signature("f0f19c557067cbbe80c46d1fb6dfbdb0", &variants, &params, &sig)
                .is_none()
        );
    }
});
