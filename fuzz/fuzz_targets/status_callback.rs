//! Twilio's status callbacks: form parsing, the callback parser's invariants on both channels
//! (SMS, and WhatsApp's `whatsapp:` addresses), and the signature check over the
//! status-callback URL, on arbitrary bodies, tokens, URLs and signatures.
//!
//! Input layout: `token \n url \n signature \n body` (missing parts are empty).
#![no_main]
use hermes_twilio::signature::{compute_signature, url_variants, verify_signature};
use hermes_twilio::status::{parse, status_callback_url};
use hermes_twilio::webhook::parse_form;
use libfuzzer_sys::fuzz_target;
use platform_api::{DeliveryStatus, phone};
use platform_sms::webhook::SMS;
use platform_whatsapp::webhook::WHATSAPP;

/// Twilio's "recipient opted out" error code.
const OPTED_OUT: i64 = 21610;

fn field<'a>(fields: &mut impl Iterator<Item = &'a [u8]>) -> String {
    String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(4, |&b| b == b'\n');
    let token = field(&mut fields);
    let url = field(&mut fields);
    let sig = field(&mut fields);
    let body = fields.next().unwrap_or_default();

    let callback_url = status_callback_url(&url);
    assert!(
        callback_url.contains("/status"),
        "{url:?} → {callback_url:?}"
    );
    let variants = url_variants(&callback_url);
    assert_eq!(variants.first(), Some(&callback_url));

    let Ok(params) = parse_form(body) else {
        // The signature check must not panic on whatever the request carries.
        let _ = verify_signature(&token, &variants, &[], &sig);
        return;
    };

    // Never panics; and what Twilio would sign over the callback URL always verifies.
    let _ = verify_signature(&token, &variants, &params, &sig);
    let genuine = compute_signature(&token, &callback_url, &params);
    assert_eq!(
        verify_signature(&token, &variants, &params, &genuine),
        Some(callback_url.as_str())
    );

    let channel = if body.first().is_some_and(|b| b % 2 == 1) {
        WHATSAPP
    } else {
        SMS
    };
    let Ok(status) = parse(&channel, &params) else {
        return;
    };
    assert_eq!(status.platform, channel.platform);

    let sid = param(&params, "MessageSid")
        .or_else(|| param(&params, "SmsSid"))
        .map(str::trim);
    assert_eq!(sid, Some(status.provider_id.as_str()));
    assert!(!status.provider_id.is_empty());
    assert!(status.provider_id.len() <= 64);
    assert!(
        status
            .provider_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric()),
        "{:?}",
        status.provider_id
    );

    assert!(!status.status.is_empty());
    assert!(
        status
            .status
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_'),
        "{:?}",
        status.status
    );
    let word = param(&params, "MessageStatus")
        .or_else(|| param(&params, "SmsStatus"))
        .map(|s| s.trim().to_ascii_lowercase());
    assert_eq!(word.as_deref(), Some(status.status.as_str()));
    let _ = DeliveryStatus::rank(&status.status);

    assert_eq!(status.opted_out, status.error_code == Some(OPTED_OUT));
    match param(&params, "ErrorCode").map(str::trim) {
        None | Some("") => assert_eq!(status.error_code, None),
        Some(code) => assert_eq!(status.error_code, code.parse().ok(), "{code:?}"),
    }

    if let Some(chat) = &status.chat {
        let digits = chat.strip_prefix('+').expect("E.164 starts with +");
        assert!((8..=15).contains(&digits.len()), "{chat:?}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{chat:?}");
        assert!(!digits.starts_with('0'), "{chat:?}");
        assert_eq!(phone::normalize(chat).as_deref(), Ok(chat.as_str()));
    }
});
