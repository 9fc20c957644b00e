//! The HTTP agent backends against real servers, streaming: the chat-completions client reading
//! LiteLLM's proxy, and the `hermes` backend reading Hermes Agent's own API server (its model
//! the fake LLM), as a turn that shows the reply as it is written would. Each skips itself
//! when its server is not installed, except under CI (see `gateway_tests::server_process`).
use std::time::Duration;

use gateway_host::agent::hermes::Hermes;
use gateway_host::agent::openai::ChatClient;
use gateway_host::agent::{Agent, AgentRequest, ChatMessage, Session};
use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::growing::watch_growing;
use gateway_tests::hermes_agent::{self, HermesAgent};
use gateway_tests::litellm::{self, LiteLlm};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// The hint the requests carry.
const HINT: &str = "Answer in plain text, briefly.";

/// A turn of one user message on SMS.
fn request(text: &str) -> AgentRequest {
    AgentRequest {
        platform: "sms".into(),
        platform_label: "SMS".into(),
        chat: "+15550001111".into(),
        turn_id: format!("sms-test-{}-1", text.len()),
        system: "Be brief.".into(),
        hint: Some(HINT.into()),
        chat_name: None,
        session: Session {
            id: format!("sms-test-{}", text.replace(' ', "-")),
            key: "sms:+15550001111".into(),
        },
        messages: vec![ChatMessage::new("user", text)],
        files: Vec::new(),
    }
}

/// Each text extends the one before.
fn assert_grows(seen: &[String]) {
    for pair in seen.windows(2) {
        assert!(
            pair[1].starts_with(&pair[0]) && pair[1].len() > pair[0].len(),
            "each update extends the last: {pair:?}"
        );
    }
}

#[test]
fn a_streamed_answer_is_read_as_it_grows() {
    const REPLY: &str = "Opening hours are nine to five on weekdays, and ten to two on \
                         Saturdays. We are closed on Sundays and on public holidays.";
    let Some(proxy) = LiteLlm::start(REPLY) else {
        return;
    };
    let client = ChatClient::new(&proxy.base_url(), Some(litellm::MASTER_KEY.into()), WAIT);
    let turn = request("When are you open?");
    let body = json!({
        "model": litellm::MODEL,
        "messages": [{"role": "user", "content": "When are you open?"}],
    });
    let (reply, seen) =
        watch_growing(|live| async move { client.complete(body, &turn, &[], Some(&live)).await });
    let reply = reply.unwrap_or_else(|e| panic!("{e:#}\n{}", proxy.log()));
    assert_eq!(reply, REPLY);
    assert!(seen.len() > 1, "the text came in one piece: {seen:?}");
    assert_grows(&seen);
    assert_eq!(seen.last().map(String::as_str), Some(REPLY));
}

/// Asks Hermes through the `hermes` backend, streaming.
fn ask_hermes(hermes: &HermesAgent, text: &str) -> (anyhow::Result<String>, Vec<String>) {
    let agent = Hermes::new(
        &hermes.base_url(),
        "hermes-agent".into(),
        hermes_agent::API_KEY.into(),
        WAIT,
    );
    assert!(agent.streams());
    let turn = request(text);
    watch_growing(|live| async move { agent.reply(&turn, Some(&live)).await })
}

/// The request the model got whose last message was `text`.
fn asked_about(llm: &FakeLlm, text: &str) -> Value {
    llm.requests()
        .into_iter()
        .find(|r| {
            r["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["content"] == text)
        })
        .unwrap_or_else(|| panic!("the model was never asked about {text:?}"))
}

#[test]
fn hermes_streams_its_reply_and_a_failed_run_is_an_error() {
    let llm = FakeLlm::start();
    let Some(hermes) = HermesAgent::start(&llm) else {
        return;
    };
    let (reply, seen) = ask_hermes(&hermes, "delta tell me a story");
    let reply = reply.unwrap_or_else(|e| panic!("{e:#}\n{}", hermes.log()));
    assert_eq!(reply, "You said: delta tell me a story");
    assert_eq!(seen.last(), Some(&reply), "{seen:?}");
    assert_grows(&seen);
    // Hermes put the hint after its own prompt.
    let asked = asked_about(&llm, "delta tell me a story");
    assert_eq!(asked["messages"][0]["role"], "system");
    let system = asked["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(system.trim_end().ends_with(HINT), "{system}");

    // A run that fails inside Hermes ends its stream with an error: no reply, not even half.
    llm.require_key("not-the-key-hermes-has");
    let (result, seen) = ask_hermes(&hermes, "charlie still failing");
    let error = format!("{:#}", result.expect_err("a failed run is an error"));
    assert!(
        error.contains("the agent server reported an error") && error.contains("401"),
        "Hermes' reason is told: {error}"
    );
    assert!(seen.iter().all(|s| !s.contains("You said")), "{seen:?}");
}
