//! LiteLLM's proxy, a real OpenAI-compatible server (its model a `mock_response`), behind the
//! `openai` backend of the real binary. (The client reading its stream is tested in
//! `gateway-host/tests/agent_servers.rs`.)
use std::time::Duration;

use gateway_tests::harness::*;
use gateway_tests::litellm::{self, LiteLlm};

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
