//! Every part's fate is known: Twilio's signed status callbacks are recorded per part (and
//! acted on), and a send whose outcome is unknown is looked up in Twilio's message list rather
//! than re-sent blindly or left for good.
use std::time::Duration;

use gateway_tests::harness::*;
use platform_sms::emulator::Fault;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// `hermes outbox list --json` against the gateway's home.
fn outbox(home: &Home, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["outbox", "list", "--json"];
    all.extend_from_slice(args);
    let out = run(home.path(), &[], &all, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("outbox list prints JSON")
}

/// Waits until the outbox has a part to `chat` with this state, and returns it.
fn part_in(home: &Home, chat: &str, state: &str) -> Value {
    eventually(WAIT, || {
        outbox(home, &["--chat", chat])
            .into_iter()
            .find(|p| p["state"] == state)
    })
    .unwrap_or_else(|| panic!("no {state} part to {chat}: {:?}", outbox(home, &[])))
}

#[test]
fn status_callbacks_are_signed_idempotent_and_never_move_back() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(ALICE, "hello", "SMs0000000000000000000000000000001");
    twilio.wait_for_messages(1, WAIT);
    // Every send asks for callbacks at SMS_WEBHOOK_URL + /status.
    let attempt = &twilio.attempts()[0];
    assert!(
        attempt
            .params
            .contains(&("StatusCallback".to_string(), STATUS_URL.to_string())),
        "{:?}",
        attempt.params
    );
    let part = part_in(&home, ALICE, "sent");
    let sid = part["provider_id"]
        .as_str()
        .expect("provider id")
        .to_string();
    assert_eq!(part["status"], Value::Null);
    for key in [
        "id",
        "platform",
        "chat",
        "part",
        "parts",
        "state",
        "status",
        "error_code",
        "segments",
        "provider_id",
        "created_at",
        "updated_at",
    ] {
        assert!(part.get(key).is_some(), "{key} in {part}");
    }

    // Forged: 403, nothing recorded.
    let forged = gw.post_status(
        &status_callback(&sid, ALICE, "failed", Some("30003")),
        Some("bm90IHRoZSBzaWduYXR1cmU="),
    );
    assert_eq!(forged.status, 403);
    // Signed for the inbound URL, not the callback URL: refused too.
    let wrong_url = sign(
        AUTH_TOKEN,
        WEBHOOK_URL,
        &status_callback(&sid, ALICE, "failed", None),
    );
    let answer = gw.post_status(
        &status_callback(&sid, ALICE, "failed", None),
        Some(&wrong_url),
    );
    assert_eq!(answer.status, 403);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM delivery_status"), 0);

    // In order, repeated, then a late one: the final status stays.
    for status in ["sent", "delivered", "delivered", "sent", "queued"] {
        let answer = gw.post_status(&status_callback(&sid, ALICE, status, None), None);
        assert_eq!(answer.status, 200, "{status}");
    }
    let part = part_in(&home, ALICE, "sent");
    assert_eq!(part["status"], "delivered");
    let metrics = gw.get("/metrics").body;
    assert!(
        metrics.contains(
            r#"hermes_delivery_status_total{platform="sms",status="delivered",code="none"} 1"#
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"status="queued""#), "{metrics}");

    // The chat can ask.
    gw.text(ALICE, "/status", "SMs0000000000000000000000000000002");
    let sent = twilio.wait_for_messages(2, WAIT);
    assert!(
        sent[1].body.contains("Last reply: delivered."),
        "{}",
        sent[1].body
    );

    // A carrier filter: recorded with its code, and one warning that says what to do.
    gw.text(BOB, "hi", "SMs0000000000000000000000000000003");
    twilio.wait_for_messages(3, WAIT);
    let bob = part_in(&home, BOB, "sent");
    let bob_sid = bob["provider_id"].as_str().unwrap().to_string();
    let answer = gw.post_status(
        &status_callback(&bob_sid, BOB, "undelivered", Some("30007")),
        None,
    );
    assert_eq!(answer.status, 200);
    let bob = part_in(&home, BOB, "sent");
    assert_eq!(
        (bob["status"].as_str(), bob["error_code"].as_i64()),
        (Some("undelivered"), Some(30007))
    );
    assert!(
        gw.wait_for_log("code 30007): the carrier filtered the message", WAIT),
        "{}",
        gw.logs()
    );
    assert!(gw.logs().contains("A2P 10DLC"));
    assert_eq!(
        outbox(&home, &["--state", "undelivered"]).len(),
        1,
        "filter by delivery status"
    );
}

#[test]
fn an_opt_out_reported_by_callback_suppresses_the_number() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(BOB, "first", "SMo0000000000000000000000000000001");
    twilio.wait_for_messages(1, WAIT);
    let sid = part_in(&home, BOB, "sent")["provider_id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = gw.post_status(&status_callback(&sid, BOB, "failed", Some("21610")), None);
    assert_eq!(answer.status, 200);
    assert!(gw.wait_for_log("has opted out", WAIT), "{}", gw.logs());
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM suppressions WHERE chat = '+15550002222'"
        ),
        1
    );
    gw.text(BOB, "second", "SMo0000000000000000000000000000002");
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1, "nothing more goes to Bob");
}

#[test]
fn the_operator_lists_and_retries_failed_parts() {
    let home = Home::new();
    let twilio = emulator();
    twilio.push_fault(Fault::Error {
        status: 400,
        code: 21211,
    });
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(ALICE, "hello", "SMp0000000000000000000000000000001");
    let failed = part_in(&home, "+1 555 000 1111", "failed");
    assert_eq!(failed["error_code"], 21211);
    let id = failed["id"].as_i64().unwrap().to_string();
    let table = run(home.path(), &[], &["outbox", "list"], "");
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains("failed") && table.contains("21211"),
        "{table}"
    );
    let retried = run(home.path(), &[], &["outbox", "retry", &id], "");
    assert!(retried.status.success());
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent[0].body, "You said: hello");
    let again = run(home.path(), &[], &["outbox", "retry", &id], "");
    assert!(!again.status.success(), "a sent part is not retried");
    assert!(String::from_utf8_lossy(&again.stderr).contains("only failed or ambiguous"));
    drop(gw);
}

/// Settings that make an unknown outcome quick to reach and quick to reconcile.
const QUICK_RECONCILE: [(&str, &str); 2] = [
    ("TWILIO_REQUEST_TIMEOUT_SECS", "1"),
    ("TWILIO_RECONCILE_AFTER_SECS", "1"),
];

#[test]
fn a_reply_twilio_took_without_answering_is_found_and_not_sent_again() {
    let home = Home::new();
    let twilio = emulator();
    twilio.push_fault(Fault::AcceptThenHang);
    let gw = sms_gateway(&home, &twilio, &QUICK_RECONCILE);
    gw.text(ALICE, "hello", "SMr0000000000000000000000000000001");

    let taken = twilio.wait_for_messages(1, WAIT);
    assert_eq!(taken.len(), 1);
    let part = part_in(&home, "+1 555 000 1111", "sent");
    assert_eq!(part["provider_id"], taken[0].sid.as_str(), "{part}");
    assert!(gw.wait_for_log("was sent after all", WAIT), "{}", gw.logs());

    // Looked up in the message list, by recipient and sender.
    let queries = twilio.list_queries();
    assert!(!queries.is_empty());
    assert!(
        queries
            .iter()
            .all(|q| q.iter().any(|(k, v)| k == "To" && v == ALICE)
                && q.iter().any(|(k, v)| k == "From" && v == OUR_NUMBER))
    );

    // Never sent again: one attempt, one message, once nothing is left to send.
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1);
    assert_eq!(twilio.attempts().len(), 1);
    let metrics = gw.get("/metrics").body;
    assert!(
        metrics.contains(r#"hermes_outbound_reconciled_total{platform="sms",outcome="found"} 1"#),
        "{metrics}"
    );
    drop(gw);
}

#[test]
fn a_reply_twilio_never_created_is_sent_once_after_the_lookup() {
    let home = Home::new();
    let twilio = emulator();
    twilio.push_fault(Fault::Hang);
    let gw = sms_gateway(&home, &twilio, &QUICK_RECONCILE);
    gw.text(ALICE, "hello", "SMr0000000000000000000000000000002");

    let sent = twilio.wait_for_messages(1, Duration::from_secs(30));
    assert_eq!(sent.len(), 1, "{}", gw.logs());
    assert_eq!(sent[0].body, "You said: hello");
    let part = part_in(&home, "+1 555 000 1111", "sent");
    assert_eq!(part["provider_id"], sent[0].sid.as_str());
    assert!(
        gw.wait_for_log("is not in the provider's records", WAIT),
        "{}",
        gw.logs()
    );
    assert!(
        !twilio.list_queries().is_empty(),
        "looked up before sending again"
    );

    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1, "sent exactly once");
    let attempts = twilio.attempts();
    assert_eq!(attempts.len(), 2, "the hung try and the one send");
    assert_eq!(attempts[0].status, None);
    assert_eq!(attempts[1].status, Some(201));
    drop(gw);
}

#[test]
fn delivery_reports_from_twilio_reach_the_part() {
    let home = Home::new();
    let twilio = emulator();
    twilio.fail_delivery(BOB, "undelivered", 30007);
    let gw = sms_gateway(&home, &twilio, &[]);
    twilio.deliver_status_callbacks(Some(&format!("http://{}", gw.addr())));
    gw.text(ALICE, "hello", "SMr0000000000000000000000000000003");
    gw.text(BOB, "hello", "SMr0000000000000000000000000000004");

    let posted = twilio.wait_for_callbacks(4, WAIT);
    assert_eq!(posted.len(), 4, "{posted:?}");
    assert!(
        posted
            .iter()
            .all(|p| p.answered == Some(200) && p.url == STATUS_URL),
        "{posted:?}"
    );
    let delivered = eventually(WAIT, || {
        outbox(&home, &["--chat", ALICE])
            .into_iter()
            .find(|p| p["status"] == "delivered")
    });
    assert!(delivered.is_some(), "{:?}", outbox(&home, &[]));
    let filtered = eventually(WAIT, || {
        outbox(&home, &["--chat", BOB])
            .into_iter()
            .find(|p| p["status"] == "undelivered")
    })
    .expect("the failure is recorded");
    assert_eq!(filtered["error_code"], 30007);
    assert!(gw.wait_for_log("30007", WAIT), "{}", gw.logs());
    drop(gw);
}
