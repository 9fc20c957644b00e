//! LiteLLM's proxy, a real OpenAI-compatible server (its model a `mock_response`): the `openai`
//! backend's round trip through the real binary, and the chat-completions client reading a
//! real server's stream.
use std::time::Duration;

use gateway_host::agent::openai::ChatClient;
use gateway_host::agent::{AgentRequest, ChatMessage, Session};
use gateway_tests::harness::*;
use gateway_tests::litellm::{self, LiteLlm};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

const REPLY: &str = "Opening hours are nine to five on weekdays, and ten to two on Saturdays. \
                     We are closed on Sundays and on public holidays.";

#[test]
fn the_openai_backend_answers_through_litellm() {
    let Some(proxy) = LiteLlm::start(REPLY) else {
        return;
    };
    let (home, twilio) = (Home::new(), emulator());
    let gw = sms_gateway(
        &home,
        &twilio,
        &[
            ("HERMES_AGENT", "openai"),
            ("HERMES_AGENT_URL", &proxy.base_url()),
            ("HERMES_AGENT_MODEL", litellm::MODEL),
            ("HERMES_AGENT_API_KEY", litellm::MASTER_KEY),
        ],
    );
    gw.text(
        ALICE,
        "When are you open?",
        "SM74000000000000000000000000000001",
    );
    twilio.wait_for_messages(1, WAIT);
    gw.settle(WAIT);
    let bodies: Vec<String> = twilio.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, [REPLY], "{}", proxy.log());
}

#[test]
fn a_streamed_answer_is_read_as_it_grows() {
    let Some(proxy) = LiteLlm::start(REPLY) else {
        return;
    };
    let request = AgentRequest {
        platform: "sms".into(),
        platform_label: "SMS".into(),
        chat: ALICE.into(),
        turn_id: "sms-test-1-1".into(),
        system: "Be brief.".into(),
        hint: None,
        session: Session {
            id: "sms-test-1".into(),
            key: format!("sms:{ALICE}"),
        },
        messages: vec![ChatMessage::new("user", "When are you open?")],
    };
    let client = ChatClient::new(&proxy.base_url(), Some(litellm::MASTER_KEY.into()), WAIT);
    let body = json!({
        "model": litellm::MODEL,
        "messages": [{"role": "user", "content": "When are you open?"}],
    });
    let (reply, seen) = actix_rt::System::new().block_on(async {
        let (live, mut updates) = tokio::sync::watch::channel(String::new());
        let watcher = actix_rt::spawn(async move {
            let mut seen = Vec::new();
            while updates.changed().await.is_ok() {
                seen.push(updates.borrow_and_update().clone());
            }
            seen
        });
        let reply = client.complete(body, &request, &[], Some(&live)).await;
        drop(live);
        (reply, watcher.await.expect("the watcher ends"))
    });
    let reply = reply.unwrap_or_else(|e| panic!("{e:#}\n{}", proxy.log()));
    assert_eq!(reply, REPLY);
    assert!(seen.len() > 1, "the text came in one piece: {seen:?}");
    for pair in seen.windows(2) {
        assert!(
            pair[1].starts_with(&pair[0]) && pair[1].len() > pair[0].len(),
            "each update extends the last: {pair:?}"
        );
    }
    assert_eq!(seen.last().map(String::as_str), Some(REPLY));
}
