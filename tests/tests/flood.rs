//! Bounded resources: past HERMES_MAX_PENDING waiting messages the webhook answers 503 at once
//! (Twilio retries later) instead of queueing without bound; nothing acknowledged is lost.
use std::time::{Duration, Instant};

use gateway_tests::harness::*;
use gateway_tests::http::{KeepAlive, post_request};

#[test]
fn a_flood_past_the_backlog_limit_is_answered_503_quickly() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(
        &home,
        &twilio,
        &[
            ("SMS_ALLOW_ALL_USERS", "true"),
            ("HERMES_MAX_PENDING", "40"),
            ("HERMES_MAX_CONCURRENT_TURNS", "1"),
            // A slow agent: the backlog cannot drain during the flood.
            ("HERMES_AGENT", "command"),
            ("HERMES_AGENT_COMMAND", "sleep 20"),
            ("HERMES_AGENT_TIMEOUT_SECS", "30"),
        ],
    );
    let rss_before = gw.rss_kib().unwrap_or(0);
    let mut conn = KeepAlive::connect(gw.addr()).unwrap();
    let (mut ok, mut busy, mut slowest) = (0, 0, Duration::ZERO);
    for i in 0..400 {
        let sid = format!("SMv{i:0>31}");
        let from = format!("+1555020{i:04}");
        let params = inbound_sms(&from, "flood", &sid);
        let sig = sign(AUTH_TOKEN, WEBHOOK_URL, &params);
        let req = post_request(
            "/webhooks/twilio",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &sig),
            ],
            &encode_form(&params),
        );
        let started = Instant::now();
        match conn.send(&req).unwrap() {
            200 => ok += 1,
            503 => busy += 1,
            other => panic!("answered {other}"),
        }
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        busy > 300,
        "past the limit the gateway sheds load: {ok} stored, {busy} refused"
    );
    assert!(
        (40..=60).contains(&ok),
        "about HERMES_MAX_PENDING stored: {ok}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "refusals are quick: slowest {slowest:?}"
    );
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM inbound") as usize,
        ok,
        "every 200 was stored, no 503 was"
    );
    let rss_after = gw.rss_kib().unwrap_or(0);
    assert!(
        rss_after < rss_before + 20 * 1024,
        "memory stays bounded: {rss_before} KiB → {rss_after} KiB"
    );
    assert_eq!(gw.get("/health").status, 200);
    assert!(gw.logs().contains("overloaded"), "{}", gw.logs());
}
