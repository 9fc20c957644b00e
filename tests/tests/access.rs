//! Who gets in, and how often: pairing codes end to end, per-sender rate limits, and the
//! `/metrics` counters that show both.
use std::time::Duration;

use gateway_tests::harness::*;

const WAIT: Duration = Duration::from_secs(30);

fn code_in(body: &str) -> String {
    let at = body
        .find("hermes pairing approve sms ")
        .expect("approval command in the message");
    body[at + "hermes pairing approve sms ".len()..]
        .chars()
        .take(8)
        .collect()
}

#[test]
fn pairing_admits_a_stranger_once_the_owner_approves() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[("SMS_UNAUTHORIZED", "pair")]);
    gw.text(
        MALLORY,
        "hi, can I use this?",
        "SMp0000000000000000000000000000001",
    );
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent[0].to, MALLORY);
    let code = code_in(&sent[0].body);
    assert_eq!(code.len(), 8);
    assert!(
        code.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );

    // Asking again within the hour issues nothing new.
    gw.text(MALLORY, "hello??", "SMp0000000000000000000000000000002");
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1, "code requests are rate-limited");

    let listed = run(home.path(), &[], &["pairing", "list"], "");
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains(MALLORY) && listed.contains(&code) && listed.contains("pending"),
        "{listed}"
    );

    let bad = run(
        home.path(),
        &[],
        &["pairing", "approve", "sms", "WRONG123"],
        "",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no valid pairing code"));

    let ok = run(
        home.path(),
        &[],
        &["pairing", "approve", "sms", &code.to_lowercase()],
        "",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    gw.text(MALLORY, "now?", "SMp0000000000000000000000000000003");
    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent[1].body, "You said: now?");

    let revoked = run(
        home.path(),
        &[],
        &["pairing", "revoke", "sms", "+1 555 000 9999"],
        "",
    );
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    gw.text(MALLORY, "still here", "SMp0000000000000000000000000000004");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert!(
        sent[2].body.contains("hermes pairing approve sms"),
        "revoked users are strangers again: {}",
        sent[2].body
    );
}

#[test]
fn ignore_mode_sends_strangers_nothing() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(MALLORY, "hi", "SMq0000000000000000000000000000001");
    gw.settle(WAIT);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM inbound WHERE state = 'unauthorized'"
        ),
        1
    );
    assert!(twilio.messages().is_empty());
    assert_eq!(count(&home, "SELECT COUNT(*) FROM pairing"), 0);
}

#[test]
fn a_sender_over_the_rate_limit_gets_one_notice_and_no_turns() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[("SMS_RATE_LIMIT_PER_MINUTE", "2")]);
    for i in 0..6 {
        let sid = format!("SMr00000000000000000000000000000{i:02}");
        assert_eq!(
            gw.text(ALICE, &format!("msg {i}"), &sid).status,
            200,
            "stored and acknowledged"
        );
    }
    gw.settle(WAIT);
    let bodies: Vec<String> = twilio.messages().into_iter().map(|m| m.body).collect();
    let notices = bodies
        .iter()
        .filter(|b| b.contains("faster than I can answer"))
        .count();
    let answers = bodies.iter().filter(|b| b.starts_with("You said:")).count();
    assert_eq!(notices, 1, "{bodies:?}");
    assert!((1..=2).contains(&answers), "{bodies:?}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM inbound WHERE state = 'rate-limited'"
        ) as usize,
        6 - answers_messages(&home)
    );
    // Another sender is not affected.
    gw.text(BOB, "hello", "SMr0000000000000000000000000000100");
    assert!(
        eventually(WAIT, || twilio
            .messages()
            .iter()
            .any(|m| m.to == BOB)
            .then_some(()))
        .is_some()
    );
}

fn answers_messages(home: &Home) -> usize {
    count(home, "SELECT COUNT(*) FROM inbound WHERE state = 'done'") as usize
}

#[test]
fn metrics_count_what_happens() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    let metric = |name: &str| -> u64 {
        let text = gw.get("/metrics").body;
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let page = gw.get("/metrics");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    gw.text(ALICE, "hi", "SMs0000000000000000000000000000001");
    gw.text(ALICE, "hi", "SMs0000000000000000000000000000001");
    gw.post_form(
        &inbound_sms(ALICE, "forged", "SMs0000000000000000000000000000002"),
        Some("Zm9yZ2Vk"),
    );
    gw.text(MALLORY, "hi", "SMs0000000000000000000000000000003");
    twilio.wait_for_messages(1, WAIT);
    assert!(
        eventually(WAIT, || (metric(
            "hermes_outbound_sent_total{platform=\"sms\"}"
        ) == 1)
            .then_some(()))
        .is_some(),
        "{}",
        gw.get("/metrics").body
    );
    // Counted once imported: the last text may still be in the journal.
    gw.settle(WAIT);
    assert_eq!(metric("hermes_inbound_accepted_total{platform=\"sms\"}"), 2);
    assert_eq!(
        metric("hermes_inbound_rejected_total{platform=\"sms\",reason=\"duplicate\"}"),
        1
    );
    assert_eq!(
        metric("hermes_inbound_rejected_total{platform=\"sms\",reason=\"signature\"}"),
        1
    );
    assert!(
        eventually(WAIT, || (metric(
            "hermes_inbound_rejected_total{platform=\"sms\",reason=\"unauthorized\"}"
        ) == 1)
            .then_some(()))
        .is_some()
    );
    assert_eq!(
        metric("hermes_agent_turns_total{platform=\"sms\",outcome=\"ok\"}"),
        1
    );
    assert_eq!(metric("hermes_segments_sent_total{platform=\"sms\"}"), 1);
    assert_eq!(metric("hermes_agent_turn_seconds_count"), 1);
}
