//! Conversations through the real binary with an OpenAI-compatible agent (the fake LLM):
//! history, bursts, chat commands, failures, duplicates and crashes.
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn llm_env(llm: &FakeLlm) -> Vec<(&'static str, String)> {
    vec![
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", llm.base_url()),
        ("HERMES_AGENT_MODEL", "test-model".to_string()),
    ]
}

fn start(
    home: &Home,
    twilio: &platform_sms::emulator::Emulator,
    llm: &FakeLlm,
    extra: &[(&str, &str)],
) -> Gateway {
    let env = llm_env(llm);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    sms_gateway(home, twilio, &all)
}

fn contents(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn bodies(twilio: &platform_sms::emulator::Emulator) -> Vec<String> {
    twilio.messages().into_iter().map(|m| m.body).collect()
}

/// Waits until the gateway has settled, then returns everything that was sent.
fn settled_bodies(gw: &Gateway, twilio: &platform_sms::emulator::Emulator) -> Vec<String> {
    gw.settle(WAIT);
    bodies(twilio)
}

#[test]
fn history_is_sent_as_context_until_new() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let gw = start(&home, &twilio, &llm, &[]);
    gw.text(
        ALICE,
        "My name is Ann.",
        "SM01000000000000000000000000000001",
    );
    twilio.wait_for_messages(1, WAIT);
    gw.text(
        ALICE,
        "What is my name?",
        "SM01000000000000000000000000000002",
    );
    let requests = llm.wait_for_requests(2, WAIT);
    let second = contents(&requests[1]);
    assert_eq!(second[0].0, "system");
    assert!(
        second[0].1.contains("SMS"),
        "the model is told it answers by SMS: {}",
        second[0].1
    );
    assert_eq!(
        second[1..],
        [
            ("user".to_string(), "My name is Ann.".to_string()),
            (
                "assistant".to_string(),
                "You said: My name is Ann.".to_string()
            ),
            ("user".to_string(), "What is my name?".to_string()),
        ]
    );
    twilio.wait_for_messages(2, WAIT);
    gw.text(ALICE, "/new", "SM01000000000000000000000000000003");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert_eq!(sent[2].body, "Started a new conversation.");
    gw.text(ALICE, "Who am I?", "SM01000000000000000000000000000004");
    let requests = llm.wait_for_requests(3, WAIT);
    assert_eq!(requests.len(), 3, "/new did not reach the agent");
    assert_eq!(
        contents(&requests[2])[1..],
        [("user".to_string(), "Who am I?".to_string())]
    );
    // Another sender has a conversation of their own.
    gw.text(BOB, "Hi, I'm Bob.", "SM01000000000000000000000000000005");
    let requests = llm.wait_for_requests(4, WAIT);
    assert_eq!(contents(&requests[3]).len(), 2);
}

#[test]
fn texts_sent_during_a_turn_are_answered_together_none_dropped() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.set_delay(Duration::from_millis(1500));
    let gw = start(&home, &twilio, &llm, &[]);
    gw.text(ALICE, "one", "SM02000000000000000000000000000001");
    llm.wait_for_requests(1, WAIT);
    gw.text(ALICE, "two", "SM02000000000000000000000000000002");
    gw.text(ALICE, "three", "SM02000000000000000000000000000003");
    gw.text(ALICE, "four", "SM02000000000000000000000000000004");
    let requests = llm.wait_for_requests(2, WAIT);
    let last = contents(&requests[1]).pop().unwrap();
    assert_eq!(last, ("user".to_string(), "two\nthree\nfour".to_string()));
    twilio.wait_for_messages(2, WAIT);
    assert_eq!(
        settled_bodies(&gw, &twilio),
        ["You said: one", "You said: two\nthree\nfour"]
    );
    assert_eq!(llm.requests().len(), 2);
}

#[test]
fn a_long_backlog_is_answered_in_turns_of_at_most_16_kib() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.set_delay(Duration::from_millis(1500));
    let gw = start(&home, &twilio, &llm, &[]);
    gw.text(ALICE, "first", "SM02200000000000000000000000000000");
    llm.wait_for_requests(1, WAIT);
    // 24 texts of 1,000 characters arrive while the first turn runs: 24,000 bytes, more than
    // one turn takes.
    let texts: Vec<String> = (0..24)
        .map(|i| format!("t{i:02} {}", "x".repeat(996)))
        .collect();
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(gw.text(ALICE, text, &format!("SM021{i:0>29}")).status, 200);
    }
    gw.settle(WAIT);
    let asked: Vec<String> = llm
        .requests()
        .iter()
        .skip(1)
        .map(|r| contents(r).pop().unwrap().1)
        .collect();
    assert_eq!(asked.len(), 2, "two more turns: {asked:?}");
    assert!(asked.iter().all(|a| a.len() <= 16 * 1024));
    // Every text given to the agent once, in order.
    assert_eq!(asked.join("\n"), texts.join("\n"));
}

#[test]
fn stop_cancels_a_slow_turn_and_status_help_need_no_agent() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.set_delay(Duration::from_secs(4));
    let gw = start(&home, &twilio, &llm, &[]);
    gw.text(ALICE, "think hard", "SM03000000000000000000000000000001");
    llm.wait_for_requests(1, WAIT);
    gw.text(ALICE, "/status", "SM03000000000000000000000000000002");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert!(
        sent[0].body.starts_with("Status: writing a reply"),
        "{}",
        sent[0].body
    );
    gw.text(ALICE, "/stop", "SM03000000000000000000000000000003");
    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent[1].body, "Stopped.");
    gw.text(ALICE, "/help", "SM03000000000000000000000000000004");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert!(
        sent[2].body.contains("/reset") && sent[2].body.contains("/sethome"),
        "{}",
        sent[2].body
    );
    // The cancelled turn's answer never goes out.
    let sent = settled_bodies(&gw, &twilio);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(llm.requests().len(), 1, "commands never reach the agent");
    gw.text(ALICE, "/stop", "SM03000000000000000000000000000005");
    let sent = twilio.wait_for_messages(4, WAIT);
    assert!(sent[3].body.starts_with("Nothing to stop"));
}

#[test]
fn agent_failure_and_timeout_give_one_apology() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.fail_next(1);
    let gw = start(&home, &twilio, &llm, &[("HERMES_AGENT_TIMEOUT_SECS", "1")]);
    gw.text(ALICE, "hello?", "SM04000000000000000000000000000001");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert!(
        sent[0].body.starts_with("Sorry, I couldn't answer that"),
        "{}",
        sent[0].body
    );
    assert!(sent[0].body.contains("/reset"));
    llm.set_delay(Duration::from_secs(3));
    gw.text(ALICE, "still there?", "SM04000000000000000000000000000002");
    twilio.wait_for_messages(2, WAIT);
    let all = settled_bodies(&gw, &twilio);
    assert_eq!(all.len(), 2, "one apology each, nothing more: {all:?}");
    assert_eq!(all[0], all[1]);
    assert!(
        gw.logs().contains("agent did not answer within 1s"),
        "{}",
        gw.logs()
    );
    assert!(!gw.logs().contains("panicked"));
}

#[test]
fn a_duplicate_webhook_runs_one_turn() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let gw = start(&home, &twilio, &llm, &[]);
    for _ in 0..3 {
        assert_eq!(
            gw.text(ALICE, "once", "SM05000000000000000000000000000001")
                .status,
            200
        );
    }
    twilio.wait_for_messages(1, WAIT);
    assert_eq!(settled_bodies(&gw, &twilio).len(), 1);
    assert_eq!(llm.requests().len(), 1);
}

#[test]
fn kill_during_a_turn_then_restart_replies_exactly_once() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.set_delay(Duration::from_secs(3));
    let mut gw = start(&home, &twilio, &llm, &[]);
    assert_eq!(
        gw.text(ALICE, "survive this", "SM06000000000000000000000000000001")
            .status,
        200
    );
    llm.wait_for_requests(1, WAIT);
    gw.kill();
    assert!(twilio.messages().is_empty());
    llm.set_delay(Duration::ZERO);
    let gw = start(&home, &twilio, &llm, &[]);
    twilio.wait_for_messages(1, WAIT);
    assert_eq!(settled_bodies(&gw, &twilio), ["You said: survive this"]);
}

#[test]
fn kill_between_parts_then_restart_sends_only_the_rest() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let paragraph = "Here is a long and detailed answer that keeps going for a while. ".repeat(24);
    let reply = [paragraph.trim(); 5].join("\n\n");
    llm.set_reply(&reply);
    // Slow pacing leaves a window between parts.
    let mut gw = start(
        &home,
        &twilio,
        &llm,
        &[("TWILIO_MAX_SEGMENTS_PER_SECOND", "5")],
    );
    gw.text(
        ALICE,
        "tell me everything",
        "SM07000000000000000000000000000001",
    );
    let sent_state = || count(&home, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'");
    assert!(
        eventually(WAIT, || (sent_state() >= 2).then_some(())).is_some(),
        "{}",
        gw.logs()
    );
    gw.kill();
    let before = bodies(&twilio);
    assert_eq!(before.len(), 2, "killed after part 2");
    let gw = start(
        &home,
        &twilio,
        &llm,
        &[("TWILIO_MAX_SEGMENTS_PER_SECOND", "1000")],
    );
    twilio.wait_for_messages(5, WAIT);
    let all = settled_bodies(&gw, &twilio);
    let suffixes: Vec<String> = all
        .iter()
        .map(|b| b.rsplit_once(' ').unwrap().1.to_string())
        .collect();
    assert_eq!(
        suffixes,
        ["(1/5)", "(2/5)", "(3/5)", "(4/5)", "(5/5)"],
        "each part exactly once"
    );
    assert_eq!(llm.requests().len(), 1, "the turn is not run again");
}

#[test]
fn sigterm_lets_the_running_turn_finish_and_flushes_its_reply() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.set_delay(Duration::from_millis(1500));
    let mut gw = start(&home, &twilio, &llm, &[]);
    gw.text(
        ALICE,
        "answer before you go",
        "SM08000000000000000000000000000001",
    );
    llm.wait_for_requests(1, WAIT);
    let status = gw.terminate();
    assert!(status.success(), "exit 0 after SIGTERM");
    assert_eq!(
        bodies(&twilio),
        ["You said: answer before you go"],
        "{}",
        gw.logs()
    );
    // After the signal the webhook no longer accepts anything.
    assert!(gateway_tests::http::request(gw.addr(), "GET", "/health", &[], b"").is_err());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let gw = start(&home, &twilio, &llm, &[("HERMES_LOG_FORMAT", "json")]);
    gw.text(ALICE, "hi", "SM09000000000000000000000000000001");
    twilio.wait_for_messages(1, WAIT);
    let logs = gw.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3);
    for line in lines {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
    assert!(logs.contains("Twilio webhook server listening on"));
    assert!(!logs.contains(ALICE), "numbers stay redacted in JSON too");
}
