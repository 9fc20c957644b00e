//! Sending replies through Twilio's REST API, against the emulator's scripted faults:
//! retryable answers are retried and delivered exactly once, permanent ones attempted once,
//! an unanswered request never re-sent.
use std::time::Duration;

use gateway_tests::harness::*;
use platform_sms::emulator::Fault;

const WAIT: Duration = Duration::from_secs(30);

fn part_states(home: &Home) -> Vec<(String, Option<i64>, i64)> {
    let db = home.db();
    let mut stmt = db
        .prepare("SELECT state, error_code, attempts FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn wait_final(home: &Home) -> Vec<(String, Option<i64>, i64)> {
    eventually(WAIT, || {
        let states = part_states(home);
        (!states.is_empty()
            && states
                .iter()
                .all(|(s, _, _)| s != "pending" && s != "sending"))
        .then_some(states)
    })
    .unwrap_or_else(|| panic!("parts never reached a final state: {:?}", part_states(home)))
}

#[test]
fn rate_limited_sends_are_retried_after_retry_after_and_delivered_once() {
    let home = Home::new();
    let twilio = emulator();
    twilio.push_fault(Fault::TooManyRequests {
        retry_after: Some(1),
    });
    twilio.push_fault(Fault::TooManyRequests {
        retry_after: Some(1),
    });
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(ALICE, "hi", "SMb0000000000000000000000000000001");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gw.logs());
    let attempts = twilio.attempts();
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(429), Some(429), Some(201)]
    );
    let gap = attempts[1].elapsed - attempts[0].elapsed;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After honoured: {gap:?}"
    );
    assert_eq!(wait_final(&home), [("sent".to_string(), Some(20429), 3)]);
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1, "delivered exactly once");
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let home = Home::new();
    let twilio = emulator();
    twilio.push_fault(Fault::ServerError);
    twilio.push_fault(Fault::ServiceUnavailable);
    let gw = sms_gateway(&home, &twilio, &[]);
    gw.text(ALICE, "hi", "SMc0000000000000000000000000000001");
    assert_eq!(twilio.wait_for_messages(1, WAIT).len(), 1, "{}", gw.logs());
    assert_eq!(twilio.attempts().len(), 3);
    assert_eq!(wait_final(&home)[0].0, "sent");
}

#[test]
fn permanent_errors_are_attempted_once_and_recorded() {
    for code in [21211, 21408, 21614] {
        let home = Home::new();
        let twilio = emulator();
        twilio.push_fault(Fault::Error { status: 400, code });
        let gw = sms_gateway(&home, &twilio, &[]);
        gw.text(ALICE, "hi", "SMd0000000000000000000000000000001");
        let states = wait_final(&home);
        assert_eq!(
            states,
            [("failed".to_string(), Some(code), 1)],
            "{}",
            gw.logs()
        );
        gw.settle(WAIT);
        assert_eq!(twilio.attempts().len(), 1, "never retried");
        assert!(
            gw.logs().contains(&format!("(code {code})")),
            "{}",
            gw.logs()
        );
    }
}

#[test]
fn bad_credentials_are_permanent() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(
        &home,
        &twilio,
        &[("TWILIO_AUTH_TOKEN", "99999999999999999999999999999999")],
    );
    // Sign with the gateway's (wrong) token so the webhook itself is accepted.
    let params = inbound_sms(ALICE, "hi", "SMe0000000000000000000000000000001");
    let sig = sign("99999999999999999999999999999999", WEBHOOK_URL, &params);
    assert_eq!(gw.post_form(&params, Some(&sig)).status, 200);
    assert_eq!(wait_final(&home), [("failed".to_string(), Some(20003), 1)]);
    assert!(
        !gw.logs().contains("99999999999999999999999999999999"),
        "the token never appears in logs"
    );
}

#[test]
fn an_unanswered_send_is_ambiguous_and_never_resent_blindly() {
    let home = Home::new();
    let twilio = emulator();
    twilio.push_fault(Fault::Hang);
    // The look-up comes a minute later (TWILIO_RECONCILE_AFTER_SECS); until then nothing of
    // that chat is sent, so that its parts keep their order.
    let gw = sms_gateway(&home, &twilio, &[("TWILIO_REQUEST_TIMEOUT_SECS", "1")]);
    gw.text(ALICE, "hi", "SMf0000000000000000000000000000001");
    assert_eq!(wait_final(&home)[0].0, "ambiguous", "{}", gw.logs());
    assert!(
        gw.logs()
            .contains("not re-sent: looked up at the provider in 60s"),
        "{}",
        gw.logs()
    );
    // Other chats go on; Alice's next reply waits behind the unknown one.
    gw.text(ALICE, "again", "SMf0000000000000000000000000000002");
    gw.text(BOB, "me too", "SMf0000000000000000000000000000003");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent[0].body, "You said: me too");
    assert_eq!(sent[0].to, BOB);
    gw.settle(WAIT);
    assert_eq!(
        twilio.messages().len(),
        1,
        "nothing of Alice's is sent meanwhile"
    );
    assert_eq!(twilio.attempts().len(), 2, "the hung send is not repeated");
}

#[test]
fn messaging_service_sid_replaces_from() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(
        &home,
        &twilio,
        &[(
            "TWILIO_MESSAGING_SERVICE_SID",
            "MG0123456789abcdef0123456789abcdef",
        )],
    );
    gw.text(ALICE, "hi", "SMg0000000000000000000000000000001");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(
        sent[0].messaging_service_sid.as_deref(),
        Some("MG0123456789abcdef0123456789abcdef")
    );
    // The request names the service and no sender: the service picks the number.
    let request = &twilio.attempts()[0].params;
    assert!(request.iter().all(|(k, _)| k != "From"), "{request:?}");
    assert!(
        request
            .iter()
            .any(|(k, v)| k == "MessagingServiceSid" && v == "MG0123456789abcdef0123456789abcdef")
    );
}

#[test]
fn long_replies_go_out_as_numbered_parts_in_order() {
    let home = Home::new();
    let twilio = emulator();
    let gw = sms_gateway(&home, &twilio, &[]);
    let sentence = "This sentence is part of a long message that keeps going. ";
    let long: String = sentence.repeat(60);
    gw.text(ALICE, long.trim(), "SMh0000000000000000000000000000001");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert_eq!(sent.len(), 3, "{}", gw.logs());
    for (i, m) in sent.iter().enumerate() {
        assert!(m.body.chars().count() <= 1600);
        assert!(m.body.ends_with(&format!("({}/3)", i + 1)), "{}", m.body);
        assert_eq!(m.encoding, "GSM-7");
    }
    let joined: String = sent
        .iter()
        .map(|m| m.body.rsplit_once(" (").unwrap().0)
        .collect::<Vec<_>>()
        .join(" ");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        squash(&joined),
        squash(&format!("You said: {}", long.trim())),
        "nothing lost"
    );
}

#[test]
fn parts_are_paced_by_their_segments_per_sending_number() {
    let home = Home::new();
    let twilio = emulator();
    // 20 segments per second: a 10-segment part occupies the number for half a second.
    let gw = sms_gateway(&home, &twilio, &[("TWILIO_MAX_SEGMENTS_PER_SECOND", "20")]);
    let long = "Pacing keeps the carrier queue from overflowing. ".repeat(90);
    gw.text(ALICE, long.trim(), "SMi0000000000000000000000000000001");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert_eq!(sent.len(), 3, "{}", gw.logs());
    let attempts = twilio.attempts();
    for pair in attempts.windows(2) {
        let segments = sent
            .iter()
            .find(|m| Some(&m.sid) == pair[0].sid.as_ref())
            .map(|m| m.segments)
            .unwrap();
        let gap = pair[1].elapsed - pair[0].elapsed;
        let due = Duration::from_secs_f64(f64::from(segments) / 20.0);
        assert!(
            gap + Duration::from_millis(30) >= due,
            "gap {gap:?} after {segments} segments, expected about {due:?}"
        );
        assert!(
            gap < due + Duration::from_millis(900),
            "the allowed rate is used: gap {gap:?}, due {due:?}"
        );
    }
}
