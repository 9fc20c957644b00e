//! LiteLLM's proxy, a real OpenAI-compatible server (its model a `mock_response`), behind the
//! `openai` backend of the real binary: a whole reply to SMS, and a streamed one shown on
//! Telegram as it arrives. (The client reading its stream is tested in
//! `gateway-host/tests/agent_servers.rs`.)
use std::time::Duration;

use gateway_tests::harness::*;
use gateway_tests::litellm::{self, LiteLlm};
use platform_telegram::emulator::{Emulator, EmulatorConfig, Person};

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
fn a_reply_streamed_by_litellm_grows_as_a_telegram_draft_then_is_sent_once() {
    let Some(proxy) = LiteLlm::start(REPLY) else {
        return;
    };
    let home = Home::new();
    let emu = Emulator::start(EmulatorConfig::default()).expect("the Telegram emulator");
    let ada = Person::new(4242, "Ada");
    let env: Vec<(String, String)> = [
        ("TELEGRAM_BOT_TOKEN", emu.token()),
        ("TELEGRAM_API_BASE_URL", emu.base_url()),
        ("TELEGRAM_ALLOWED_USERS", "4242".to_string()),
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", proxy.base_url()),
        ("HERMES_AGENT_MODEL", litellm::MODEL.to_string()),
        ("HERMES_AGENT_API_KEY", litellm::MASTER_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let gateway = Gateway::start_polling(home.path(), &env);
    assert!(
        gateway.wait_for_log("[telegram] polling for updates as @", WAIT),
        "{}",
        gateway.logs()
    );
    emu.user_writes(&ada, "When are you open?");
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent.len(), 1, "{}\n{}", gateway.logs(), proxy.log());
    assert_eq!(sent[0].text, REPLY);
    home.wait_drained(WAIT);
    // LiteLLM streamed it: the chat saw the reply's beginning before the message.
    let drafts = emu.drafts_to(ada.id);
    assert!(!drafts.is_empty(), "{}", gateway.logs());
    assert!(
        drafts
            .iter()
            .all(|d| REPLY.starts_with(&d.text) && d.draft_id == drafts[0].draft_id),
        "{drafts:#?}"
    );
    assert_eq!(emu.sent_to(ada.id).len(), 1);
    assert!(emu.showing(ada.id).is_none());
}
