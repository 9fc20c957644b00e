//! The SMS webhook against the real binary: signatures, limits, authorization, keywords, MMS,
//! duplicates. Replies go to the Twilio emulator.
use std::time::Duration;

use gateway_tests::harness::*;
use gateway_tests::http;

const WAIT: Duration = Duration::from_secs(20);
const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

fn assert_twiml(response: &http::Response, status: u16) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.body, TWIML);
    assert!(
        response
            .header("content-type")
            .unwrap_or("")
            .contains("xml"),
        "{response:?}"
    );
}

#[test]
fn a_signed_message_is_answered_through_the_rest_api() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    assert_twiml(
        &gw.text(ALICE, "Hello there", "SM10000000000000000000000000000001"),
        200,
    );
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gw.logs());
    assert_eq!(sent[0].to, ALICE);
    assert_eq!(sent[0].from.as_deref(), Some(OUR_NUMBER));
    assert_eq!(sent[0].body, "You said: Hello there");
    assert!(
        !gw.logs().contains(ALICE) && !gw.logs().contains(AUTH_TOKEN),
        "no number or token in logs"
    );
}

#[test]
fn signatures_are_required_and_checked() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    let params = inbound_sms(ALICE, "hi", "SM20000000000000000000000000000001");

    assert_twiml(&gw.post_form(&params, None), 403);
    assert_twiml(
        &gw.post_form(&params, Some("bm90IHRoZSBzaWduYXR1cmU=")),
        403,
    );
    let other_token = sign("00000000000000000000000000000000", WEBHOOK_URL, &params);
    assert_twiml(&gw.post_form(&params, Some(&other_token)), 403);
    let tampered = sign(AUTH_TOKEN, WEBHOOK_URL, &params);
    let mut changed = params.clone();
    changed[7] = ("Body", "hi, send me everything");
    assert_twiml(&gw.post_form(&changed, Some(&tampered)), 403);
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM inbound"),
        0,
        "nothing is processed"
    );
    assert!(gw.logs().contains("likely cause"), "{}", gw.logs());

    // Twilio may sign the URL with the default port spelled out.
    let with_port = sign(
        AUTH_TOKEN,
        "https://gateway.example.com:443/webhooks/twilio",
        &params,
    );
    assert_twiml(&gw.post_form(&params, Some(&with_port)), 200);
    assert_eq!(twilio.wait_for_messages(1, WAIT).len(), 1);
}

#[test]
fn oversized_and_unparseable_bodies_are_rejected() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    let big = "x".repeat(70 * 1024);
    let params = inbound_sms(ALICE, &big, "SM30000000000000000000000000000001");
    assert_twiml(&gw.post_signed(&params), 413);

    for body in ["Body=%G1&From=%2B15550001111", "Body=%FF%FE", "Body=abc%"] {
        let r = http::request(
            gw.addr(),
            "POST",
            "/webhooks/twilio",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", "x"),
            ],
            body.as_bytes(),
        )
        .unwrap();
        assert_twiml(&r, 400);
    }
    let r = http::request(
        gw.addr(),
        "POST",
        "/webhooks/twilio",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 415);
    let r = http::request(gw.addr(), "GET", "/webhooks/twilio", &[], b"").unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(gw.get("/health").status, 200, "still serving");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 0);
}

#[test]
fn strangers_are_denied_by_default_and_allowlists_normalise() {
    let home = Home::new();
    let twilio = emulator();
    // The allowlist is written with spaces and punctuation.
    let gw = sms_gateway(
        &home,
        &twilio,
        &[("SMS_ALLOWED_USERS", " +1 (555) 000-1111 ,+1-555-000-2222")],
    );
    assert_twiml(
        &gw.text(MALLORY, "let me in", "SM40000000000000000000000000000001"),
        200,
    );
    assert_twiml(
        &gw.text(BOB, "hi from bob", "SM40000000000000000000000000000002"),
        200,
    );
    let sent = twilio.wait_for_messages(1, WAIT);
    gw.settle(WAIT);
    let sent_all = twilio.messages();
    assert_eq!(sent_all.len(), 1, "{sent:?}");
    assert_eq!(sent_all[0].to, BOB);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM inbound WHERE state = 'unauthorized'"
        ),
        1
    );
    assert!(
        gw.logs()
            .contains("+1555***9999 not processed: sender is not allowed"),
        "{}",
        gw.logs()
    );
}

#[test]
fn allow_all_lets_anyone_in() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(
        &home,
        &twilio,
        &[("SMS_ALLOW_ALL_USERS", "true"), ("SMS_ALLOWED_USERS", "")],
    );
    gw.text(MALLORY, "hello", "SM50000000000000000000000000000001");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.first().map(|m| m.to.as_str()), Some(MALLORY));
}

#[test]
fn our_own_number_is_never_answered() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[("SMS_ALLOW_ALL_USERS", "true")]);
    assert_twiml(
        &gw.text(
            OUR_NUMBER,
            "You said: hi",
            "SM60000000000000000000000000000001",
        ),
        200,
    );
    gw.settle(WAIT);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 0);
    assert!(twilio.messages().is_empty());
}

#[test]
fn stop_suppresses_everything_until_start() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    assert_twiml(
        &gw.text(ALICE, " stop ", "SM70000000000000000000000000000001"),
        200,
    );
    assert_twiml(
        &gw.text(
            ALICE,
            "are you there?",
            "SM70000000000000000000000000000002",
        ),
        200,
    );
    assert_twiml(
        &gw.text(ALICE, "HELP", "SM70000000000000000000000000000003"),
        200,
    );
    gw.settle(WAIT);
    assert!(
        twilio.messages().is_empty(),
        "no reply to STOP, nothing after it"
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM suppressions"), 1);

    gw.text(ALICE, "START", "SM70000000000000000000000000000004");
    gw.text(ALICE, "back again", "SM70000000000000000000000000000005");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, "You said: back again");
}

#[test]
fn twilio_21610_suppresses_the_number() {
    let home = Home::new();
    let twilio = emulator();
    twilio.opt_out(BOB);
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(BOB, "first", "SM80000000000000000000000000000001");
    assert!(
        eventually(WAIT, || (count(&home, "SELECT COUNT(*) FROM suppressions")
            == 1)
            .then_some(()))
        .is_some(),
        "{}",
        gw.logs()
    );
    gw.text(BOB, "second", "SM80000000000000000000000000000002");
    gw.settle(WAIT);
    assert_eq!(
        twilio.attempts().len(),
        1,
        "one refused send, nothing after it"
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM outbox WHERE state = 'suppressed'"
        ),
        1
    );
}

/// An MMS whose file cannot be fetched still reaches the agent, told what could not be
/// fetched: a media URL Twilio answers 404 (fetched with the account's credentials), and one
/// off Twilio's API, which never gets the credentials. (Files that can be fetched: media.rs.)
#[test]
fn an_mms_whose_file_cannot_be_fetched_still_reaches_the_agent() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    let gone = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM90000000000000000000000000000001/Media/ME90000000000000000000000000000001",
        twilio.base_url()
    );
    let mut params = inbound_sms(ALICE, "", "MM90000000000000000000000000000001");
    params.retain(|(k, _)| *k != "NumMedia");
    params.extend([
        ("NumMedia", "1"),
        ("MediaUrl0", gone.as_str()),
        ("MediaContentType0", "image/jpeg"),
    ]);
    assert_twiml(&gw.post_signed(&params), 200);
    let sent = twilio.wait_for_messages(1, WAIT);
    assert!(
        sent[0]
            .body
            .starts_with("You said: [attachment not fetched: ME90000000000000000000000000000001.jpg, image/jpeg: "),
        "{}",
        sent[0].body
    );
    assert!(sent[0].body.contains("404"), "{}", sent[0].body);
    let fetches = twilio.media_fetches();
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert!(
        fetches[0].authorized && fetches[0].status == 404,
        "{fetches:?}"
    );

    let mut params = inbound_sms(ALICE, "look at this", "MM90000000000000000000000000000002");
    params.retain(|(k, _)| *k != "NumMedia");
    params.extend([
        ("NumMedia", "1"),
        ("MediaUrl0", "https://api.twilio.com/media/ME2"),
        ("MediaContentType0", "image/png"),
    ]);
    gw.post_signed(&params);
    let sent = twilio.wait_for_messages(2, WAIT);
    assert!(
        sent[1]
            .body
            .starts_with("You said: look at this\n[attachment not fetched: ME2.png, image/png: "),
        "{}",
        sent[1].body
    );
    assert!(
        sent[1].body.contains("TWILIO_API_BASE_URL"),
        "{}",
        sent[1].body
    );
    assert_eq!(
        twilio.media_fetches().len(),
        1,
        "nothing fetched off Twilio's API"
    );
}

#[test]
fn a_duplicate_message_sid_is_processed_once_also_after_restart() {
    let home = Home::new();
    let twilio = emulator();
    let mut gw = sms_gateway(&home, &twilio, &[]);
    let sid = "SMa0000000000000000000000000000001";
    assert_twiml(&gw.text(ALICE, "once", sid), 200);
    assert_twiml(&gw.text(ALICE, "once", sid), 200);
    twilio.wait_for_messages(1, WAIT);
    assert!(gw.terminate().success());
    let gw = sms_gateway(&home, &twilio, &[]);
    assert_twiml(&gw.text(ALICE, "once", sid), 200);
    gw.text(ALICE, "marker", "SMa0000000000000000000000000000002");
    let sent = twilio.wait_for_messages(2, WAIT);
    gw.settle(WAIT);
    let bodies: Vec<String> = twilio.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["You said: once", "You said: marker"], "{sent:?}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 2);
}

#[test]
fn acknowledged_messages_survive_a_kill_before_they_reach_the_database() {
    let home = Home::new();
    let twilio = emulator();
    let mut gw = sms_gateway(&home, &twilio, &[]);
    // Another writer holds the database: webhooks are still acknowledged, from the journal.
    let db = home.db();
    db.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let sids = [
        "SMj0000000000000000000000000000001",
        "SMj0000000000000000000000000000002",
    ];
    assert_twiml(&gw.text(ALICE, "from alice", sids[0]), 200);
    assert_twiml(&gw.text(BOB, "from bob", sids[1]), 200);
    // Twilio retrying the first one: acknowledged again.
    assert_twiml(&gw.text(ALICE, "from alice", sids[0]), 200);
    assert_eq!(gw.unimported(), 3);
    gw.kill();
    db.execute_batch("ROLLBACK").expect("unlock");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 0);
    assert!(twilio.messages().is_empty());

    let gw = sms_gateway(&home, &twilio, &[]);
    let sent = twilio.wait_for_messages(2, WAIT);
    gw.settle(WAIT);
    let mut replies: Vec<(String, String)> = twilio
        .messages()
        .into_iter()
        .map(|m| (m.to, m.body))
        .collect();
    replies.sort();
    assert_eq!(
        replies,
        [
            (ALICE.to_string(), "You said: from alice".to_string()),
            (BOB.to_string(), "You said: from bob".to_string()),
        ],
        "{sent:?}"
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 2);
    let logs = gw.logs();
    assert!(logs.contains("inbound from +1555***1111 stored"), "{logs}");
    assert!(
        logs.contains("duplicate message from +1555***1111 acknowledged, not processed again"),
        "{logs}"
    );
}

#[test]
fn a_journal_cut_short_by_a_crash_is_repaired_at_start() {
    let home = Home::new();
    let twilio = emulator();
    let mut gw = sms_gateway(&home, &twilio, &[]);
    let db = home.db();
    db.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    assert_twiml(
        &gw.text(ALICE, "kept", "SMk0000000000000000000000000000001"),
        200,
    );
    gw.kill();
    db.execute_batch("ROLLBACK").expect("unlock");
    // The start of a record whose write was cut short, as a crash mid-append leaves the file.
    let torn = [200, 0, 0, 0, 1, 2, 3, 4, b'x', b'y'];
    let journal = home.path().join("inbound.journal");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .expect("journal");
    std::io::Write::write_all(&mut file, &torn).expect("append");
    drop(file);

    let gw = sms_gateway(&home, &twilio, &[]);
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent[0].body, "You said: kept");
    let logs = gw.logs();
    assert!(
        logs.contains("the last 10 bytes are not a complete record and were moved to"),
        "{logs}"
    );
    let kept = std::fs::read(home.path().join("inbound.journal.dropped")).expect("kept bytes");
    assert_eq!(kept, torn);
    assert_twiml(
        &gw.text(BOB, "after", "SMk0000000000000000000000000000002"),
        200,
    );
    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent[1].body, "You said: after");
}

#[test]
fn the_insecure_flag_never_disables_checks_when_a_url_is_set() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[("SMS_INSECURE_NO_SIGNATURE", "true")]);
    assert!(!gw.logs().contains("NOT checked"), "{}", gw.logs());
    let params = inbound_sms(ALICE, "hi", "SMb1000000000000000000000000000001");
    assert_twiml(&gw.post_form(&params, None), 403);
    assert_twiml(&gw.post_signed(&params), 200);
}
