//! Twilio's Webhook Shared Keys (SPEC section 13): a webhook or status callback that carries
//! `X-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256` is checked with HMAC-SHA256
//! keyed with `TWILIO_WEBHOOK_SHARED_KEY`; one without the header with the auth token, as
//! before. The header with no key configured, a wrong key or an unknown algorithm: 403, one
//! error line, nothing stored.
use std::time::Duration;

use gateway_tests::harness::*;
use gateway_tests::http;

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "whsk_0123456789abcdef0123456789abcdef";
const SETTINGS: &str = "X-Twilio-Webhooks-Signature-Settings";

/// Posts `params` to `path` with `headers` added to the form's.
fn post(gw: &Gateway, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> u16 {
    let body = encode_form(params);
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    http::request(gw.addr(), "POST", path, &all, body.as_bytes())
        .expect("POST")
        .status
}

/// An inbound text signed with the shared key under `algorithm`.
fn text_signed_with(gw: &Gateway, key: &str, algorithm: &str, body: &str, sid: &str) -> u16 {
    let params = inbound_sms(ALICE, body, sid);
    let signature = sign_sha256(key, WEBHOOK_URL, &params);
    let settings = format!("algorithm={algorithm}");
    post(
        gw,
        "/webhooks/twilio",
        &params,
        &[("X-Twilio-Signature", &signature), (SETTINGS, &settings)],
    )
}

/// Whether the message `provider_id` is recorded as delivered (waiting for it a while).
fn delivered(home: &Home, provider_id: &str) -> bool {
    eventually(WAIT, || {
        let status: Option<String> = home
            .db()
            .query_row(
                "SELECT status FROM delivery_status WHERE provider_id = ?1",
                [provider_id],
                |r| r.get(0),
            )
            .ok();
        status.filter(|s| s == "delivered")
    })
    .is_some()
}

#[test]
fn a_webhook_signed_with_the_shared_key_is_taken_and_the_auth_token_still_works() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[("TWILIO_WEBHOOK_SHARED_KEY", KEY)]);
    let sha256 = "SMk0000000000000000000000000000001";
    assert_eq!(
        text_signed_with(&gw, KEY, "HMAC_SHA256", "sha-256", sha256),
        200
    );
    // Without the settings header: the auth token and HMAC-SHA1, as before.
    assert_eq!(
        twilio.wait_for_messages(1, WAIT)[0].body,
        "You said: sha-256",
        "{}",
        gw.logs()
    );
    let sha1 = gw.text(ALICE, "sha-1", "SMk0000000000000000000000000000002");
    assert_eq!(sha1.status, 200, "{sha1:?}");
    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent[1].body, "You said: sha-1", "{}", gw.logs());

    // A status callback signed with the shared key is recorded.
    let provider_id = sent[0].sid.clone();
    let params = status_callback(&provider_id, ALICE, "delivered", None);
    let signature = sign_sha256(KEY, STATUS_URL, &params);
    let answered = post(
        &gw,
        "/webhooks/twilio/status",
        &params,
        &[
            ("X-Twilio-Signature", &signature),
            (SETTINGS, "algorithm=HMAC_SHA256"),
        ],
    );
    assert_eq!(answered, 200, "{}", gw.logs());
    assert!(delivered(&home, &provider_id), "{}", gw.logs());
}

#[test]
fn a_wrong_key_an_unknown_algorithm_or_no_key_configured_is_refused() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[("TWILIO_WEBHOOK_SHARED_KEY", KEY)]);
    assert_eq!(
        text_signed_with(
            &gw,
            "not-the-key",
            "HMAC_SHA256",
            "wrong key",
            "SMk1000000000000000000000000000001"
        ),
        403
    );
    assert_eq!(
        text_signed_with(
            &gw,
            KEY,
            "HMAC_SHA512",
            "unknown",
            "SMk1000000000000000000000000000002"
        ),
        403
    );
    // Signed with the auth token but claiming a shared key: the header decides.
    let params = inbound_sms(ALICE, "claims", "SMk1000000000000000000000000000003");
    let sha1 = sign(AUTH_TOKEN, WEBHOOK_URL, &params);
    let answered = post(
        &gw,
        "/webhooks/twilio",
        &params,
        &[
            ("X-Twilio-Signature", &sha1),
            (SETTINGS, "algorithm=HMAC_SHA256"),
        ],
    );
    assert_eq!(answered, 403);
    // The log is read from the process's output as it comes: wait for the line, then count.
    assert!(gw.wait_for_log("names the algorithm \"HMAC_SHA512\"", WAIT));
    let logs = gw.logs();
    assert_eq!(
        logs.matches("names the algorithm \"HMAC_SHA512\"").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("TWILIO_WEBHOOK_SHARED_KEY"), "{logs}");
    assert!(!logs.contains(KEY), "the key is never logged");

    let home2 = Home::new();
    let without = sms_gateway(&home2, &twilio, &[]);
    assert_eq!(
        text_signed_with(
            &without,
            KEY,
            "HMAC_SHA256",
            "no key",
            "SMk1000000000000000000000000000004"
        ),
        403
    );
    assert!(without.wait_for_log("TWILIO_WEBHOOK_SHARED_KEY is not set", WAIT));
    let logs = without.logs();
    assert_eq!(
        logs.matches("TWILIO_WEBHOOK_SHARED_KEY is not set").count(),
        1,
        "{logs}"
    );
    // Nothing was stored or answered by either gateway.
    gw.settle(WAIT);
    without.settle(WAIT);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 0);
    assert_eq!(count(&home2, "SELECT COUNT(*) FROM inbound"), 0);
    assert!(twilio.messages().is_empty());
}

#[test]
fn status_callbacks_the_emulator_signs_with_the_shared_key_are_recorded() {
    let home = Home::new();
    let twilio = emulator();
    twilio.sign_with_shared_key("HMAC_SHA256", KEY);
    let gw = sms_gateway(&home, &twilio, &[("TWILIO_WEBHOOK_SHARED_KEY", KEY)]);
    twilio.deliver_status_callbacks(Some(&format!("http://{}", gw.addr())));
    gw.text(ALICE, "hello", "SMk2000000000000000000000000000001");
    let sent = twilio.wait_for_messages(1, WAIT);
    let callbacks = eventually(WAIT, || {
        let callbacks = twilio.callbacks();
        callbacks
            .iter()
            .any(|c| c.status == "delivered" && c.answered.is_some())
            .then_some(callbacks)
    })
    .expect("the delivered callback was posted");
    assert!(
        callbacks.iter().all(|c| c.answered == Some(200)),
        "{callbacks:?}\n{}",
        gw.logs()
    );
    let provider_id = sent[0].sid.clone();
    assert!(delivered(&home, &provider_id), "{}", gw.logs());
}
