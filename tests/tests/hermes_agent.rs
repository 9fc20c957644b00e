//! `HERMES_AGENT=hermes`: Hermes Agent's API server as the brain, through the real binary.
//!
//! Against the real Hermes Agent (its model the fake LLM, which shows what Hermes sends it):
//! Hermes keeps each conversation's history itself, one session per conversation, a new one
//! after `/new`. Against the fake LLM directly: what every call carries (the session headers,
//! the turn's `Idempotency-Key`, the key, only the hint and the new message), the same
//! `Idempotency-Key` when a turn is run again after a crash, and a 403 explained in the log.
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::hermes_agent::{self, HermesAgent};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The key the backend is given in the tests against the fake LLM.
const KEY: &str = "hermes-agent-key-for-tests";

fn start(home: &Home, twilio: &platform_sms::emulator::Emulator, url: &str, key: &str) -> Gateway {
    sms_gateway(
        home,
        twilio,
        &[
            ("HERMES_AGENT", "hermes"),
            ("HERMES_AGENT_URL", url),
            ("HERMES_AGENT_API_KEY", key),
        ],
    )
}

/// Each request's messages as (role, text).
fn messages(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (m["role"].as_str().unwrap_or_default().to_string(), text)
        })
        .collect()
}

/// The conversation (system messages left out) of the request that asked the model about
/// `last`, the user's newest message.
fn asked_about(llm: &FakeLlm, last: &str) -> Vec<(String, String)> {
    let found = eventually(WAIT, || {
        llm.requests().iter().map(messages).find(|m| {
            m.last()
                .is_some_and(|(role, text)| role == "user" && text == last)
        })
    });
    found
        .unwrap_or_else(|| panic!("the model was never asked about {last:?}"))
        .into_iter()
        .filter(|(role, _)| role != "system")
        .collect()
}

fn turn(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

#[test]
fn hermes_keeps_each_conversations_history_and_new_starts_another() {
    let llm = FakeLlm::start();
    let Some(hermes) = HermesAgent::start(&llm) else {
        return;
    };
    let (home, twilio) = (Home::new(), emulator());
    let gw = start(&home, &twilio, &hermes.base_url(), hermes_agent::API_KEY);
    gw.text(
        ALICE,
        "alpha my name is Ann",
        "SM70000000000000000000000000000001",
    );
    twilio.wait_for_messages(1, WAIT);
    gw.text(
        ALICE,
        "alpha what is my name",
        "SM70000000000000000000000000000002",
    );
    gw.text(BOB, "bravo hello", "SM70000000000000000000000000000003");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert!(
        sent.iter()
            .any(|m| m.to == ALICE && m.body == "You said: alpha what is my name"),
        "{sent:?}\n{}",
        hermes.log()
    );
    // The gateway sent the new message alone; Hermes gave its model the first turn too.
    assert_eq!(
        asked_about(&llm, "alpha what is my name"),
        [
            turn("user", "alpha my name is Ann"),
            turn("assistant", "You said: alpha my name is Ann"),
            turn("user", "alpha what is my name"),
        ]
    );
    // Another chat is another session.
    assert_eq!(
        asked_about(&llm, "bravo hello"),
        [turn("user", "bravo hello")]
    );
    // After /new the model no longer sees the old messages.
    gw.text(ALICE, "/new", "SM70000000000000000000000000000004");
    twilio.wait_for_messages(4, WAIT);
    gw.text(
        ALICE,
        "alpha who am I",
        "SM70000000000000000000000000000005",
    );
    twilio.wait_for_messages(5, WAIT);
    assert_eq!(
        asked_about(&llm, "alpha who am I"),
        [turn("user", "alpha who am I")]
    );
    // Hermes holds three sessions, each under the id the gateway named: Ann's two
    // conversations and Bob's, each starting with its first message.
    let sessions = hermes.get("/api/sessions");
    let mut started: Vec<&str> = sessions["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|s| s["preview"].as_str()).collect())
        .unwrap_or_default();
    started.sort();
    assert_eq!(
        started,
        ["alpha my name is Ann", "alpha who am I", "bravo hello"],
        "{sessions:#}"
    );
    assert!(
        sessions["data"].as_array().is_some_and(|d| d
            .iter()
            .all(|s| s["id"].as_str().is_some_and(|id| id.starts_with("sms-")))),
        "{sessions:#}"
    );
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 5);
}

#[test]
fn a_run_that_failed_inside_hermes_is_a_failed_turn_not_a_reply() {
    let llm = FakeLlm::start();
    let Some(hermes) = HermesAgent::start(&llm) else {
        return;
    };
    llm.require_key("not-the-key-hermes-has");
    let (home, twilio) = (Home::new(), emulator());
    let gw = start(&home, &twilio, &hermes.base_url(), hermes_agent::API_KEY);
    gw.text(
        ALICE,
        "charlie anyone there",
        "SM75000000000000000000000000000001",
    );
    let sent = twilio.wait_for_messages(1, WAIT);
    assert!(
        sent[0].body.starts_with("Sorry, I couldn't answer that"),
        "{}\n{}",
        sent[0].body,
        hermes.log()
    );
    assert!(
        gw.logs()
            .contains("the agent server reported a failed reply"),
        "{}",
        gw.logs()
    );
}

#[test]
fn every_call_names_its_session_turn_and_key_and_sends_only_the_new_message() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let gw = start(&home, &twilio, &llm.base_url(), KEY);
    let texts = [
        (ALICE, "first of Ann"),
        (ALICE, "second of Ann"),
        (BOB, "first of Bob"),
        (ALICE, "/new"),
        (ALICE, "after new"),
    ];
    for (i, (from, text)) in texts.iter().enumerate() {
        gw.text(from, text, &format!("SM71{:030}", i + 1));
        twilio.wait_for_messages(i + 1, WAIT);
    }
    gw.settle(WAIT);
    let requests = llm.requests();
    let headers = llm.headers();
    assert_eq!(requests.len(), 4, "/new never reaches the agent");
    for (request, last) in
        requests
            .iter()
            .zip(["first of Ann", "second of Ann", "first of Bob", "after new"])
    {
        let sent = messages(request);
        let (newest, before) = sent.split_last().expect("a message");
        assert_eq!(newest, &turn("user", last));
        assert!(
            before.len() <= 1 && before.iter().all(|(role, _)| role == "system"),
            "only the hint comes before the new message: {sent:?}"
        );
        assert_eq!(request["model"], "hermes-agent");
    }
    let header = |i: usize, name: &str| {
        headers[i]
            .get(name)
            .unwrap_or_else(|| panic!("request {i} has no {name}"))
            .to_string()
    };
    let session = |i| header(i, "X-Hermes-Session-Id");
    for i in 0..4 {
        assert_eq!(header(i, "Authorization"), format!("Bearer {KEY}"));
    }
    assert_eq!(session(0), session(1), "one conversation, one session");
    assert_ne!(session(2), session(0), "another chat, another session");
    assert_ne!(session(3), session(0), "/new starts another session");
    assert!(!session(0).contains(ALICE) && !session(0).contains("5550001111"));
    for i in [0, 1, 3] {
        assert_eq!(header(i, "X-Hermes-Session-Key"), format!("sms:{ALICE}"));
    }
    assert_eq!(header(2, "X-Hermes-Session-Key"), format!("sms:{BOB}"));
    let turns: Vec<String> = (0..4).map(|i| header(i, "Idempotency-Key")).collect();
    for (i, a) in turns.iter().enumerate() {
        assert!(turns[i + 1..].iter().all(|b| a != b), "{turns:?}");
    }
    // The gateway keeps the history all the same: both sides of the four exchanges, in three
    // conversations.
    assert_eq!(count(&home, "SELECT COUNT(*) FROM turns"), 8);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM conversations"), 3);
}

#[test]
fn a_home_made_anew_never_names_an_old_session() {
    let (twilio, llm) = (emulator(), FakeLlm::start());
    for (i, home) in [Home::new(), Home::new()].iter().enumerate() {
        let gw = start(home, &twilio, &llm.base_url(), KEY);
        gw.text(ALICE, "hello again", &format!("SM76{:030}", i + 1));
        twilio.wait_for_messages(i + 1, WAIT);
    }
    let headers = llm.headers();
    let sessions: Vec<Option<&str>> = headers
        .iter()
        .map(|h| h.get("X-Hermes-Session-Id"))
        .collect();
    assert_eq!(sessions.len(), 2);
    assert!(sessions[0].is_some());
    assert_ne!(
        sessions[0], sessions[1],
        "the first conversation of each home"
    );
}

#[test]
fn a_turn_run_again_after_a_crash_carries_the_same_idempotency_key() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.hold();
    let mut gw = start(&home, &twilio, &llm.base_url(), KEY);
    gw.text(ALICE, "survive this", "SM72000000000000000000000000000001");
    llm.wait_for_requests(1, WAIT);
    gw.kill();
    let gw = start(&home, &twilio, &llm.base_url(), KEY);
    assert_eq!(llm.wait_for_requests(2, WAIT).len(), 2);
    llm.release();
    twilio.wait_for_messages(1, WAIT);
    gw.settle(WAIT);
    let headers = llm.headers();
    for name in ["Idempotency-Key", "X-Hermes-Session-Id"] {
        let first = headers[0].get(name);
        assert!(first.is_some(), "{name} sent");
        assert_eq!(headers[1].get(name), first, "{name} again");
    }
    let bodies: Vec<String> = twilio.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["You said: survive this"]);
}

#[test]
fn a_refused_session_is_explained_in_the_log() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.refuse_sessions();
    let gw = start(&home, &twilio, &llm.base_url(), KEY);
    gw.text(ALICE, "hello?", "SM73000000000000000000000000000001");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert!(
        sent[0].body.starts_with("Sorry, I couldn't answer that"),
        "{}",
        sent[0].body
    );
    let logs = gw.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("agent failed"))
        .unwrap_or_else(|| panic!("no failure logged:\n{logs}"));
    for needed in [
        "403",
        "API_SERVER_KEY",
        "HERMES_AGENT_API_KEY",
        "X-Hermes-Session-Id",
    ] {
        assert!(line.contains(needed), "{needed} in {line}");
    }
    assert!(!logs.contains(KEY), "the key is never logged");
}

#[test]
fn the_url_and_the_key_are_required() {
    let home = Home::new();
    for (env, missing) in [
        (
            vec![("HERMES_AGENT", "hermes"), ("HERMES_AGENT_API_KEY", KEY)],
            "HERMES_AGENT_URL",
        ),
        (
            vec![
                ("HERMES_AGENT", "hermes"),
                ("HERMES_AGENT_URL", "http://127.0.0.1:8642/v1"),
            ],
            "HERMES_AGENT_API_KEY",
        ),
    ] {
        let out = run(home.path(), &env, &["gateway"], "");
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("HERMES_AGENT=hermes needs {missing}")),
            "{stderr}"
        );
    }
}
