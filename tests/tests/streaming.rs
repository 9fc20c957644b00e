//! Replies that stream, black-box: the real `hermes` binary with the fake LLM streaming a long
//! reply slowly, against the Telegram and Discord emulators.
//!
//! Telegram private chats see drafts with one `draft_id` grow, then exactly one message; groups
//! see no draft; Discord sees one message posted, edited, ending with the finished reply and
//! no second message; neither gets more calls than its rate allows; a stream that breaks ends
//! in one apology and no half reply; the gateway killed mid-stream and started again ends with
//! the same single message; with streaming off the reply is posted once.
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use platform_telegram::emulator::{Draft, Emulator, EmulatorConfig, Person, group};

const WAIT: Duration = Duration::from_secs(30);
/// What a user gets when a turn fails (the host's `APOLOGY`).
const APOLOGY: &str = "Sorry, I couldn't answer that just now. Please try again in a moment, or send /reset to start over.";

/// A reply of 60 words, streamed word by word.
fn long_reply() -> String {
    (1..=60)
        .map(|n| format!("word{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fake LLM that streams [`long_reply`], a word every `pace`.
fn slow_llm(pace: Duration) -> FakeLlm {
    let llm = FakeLlm::start();
    llm.set_reply(&long_reply());
    llm.set_stream_pace(pace);
    llm
}

fn ada() -> Person {
    Person::new(4242, "Ada")
}

/// The environment of a Telegram gateway talking to `emu` with `llm` as its agent.
fn telegram_env(emu: &Emulator, llm: &FakeLlm, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TELEGRAM_BOT_TOKEN", emu.token()),
        ("TELEGRAM_API_BASE_URL", emu.base_url()),
        ("TELEGRAM_ALLOWED_USERS", "4242, 5151".to_string()),
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", llm.base_url()),
        ("HERMES_AGENT_MODEL", "test-model".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn telegram_gateway(home: &Home, env: &[(String, String)]) -> Gateway {
    let gateway = Gateway::start_polling(home.path(), env);
    assert!(
        gateway.wait_for_log("[telegram] polling for updates as @", WAIT),
        "{}",
        gateway.logs()
    );
    gateway
}

/// The most drafts of `drafts` within any one second.
fn most_in_a_second(drafts: &[Draft]) -> usize {
    drafts
        .iter()
        .map(|first| {
            drafts
                .iter()
                .filter(|d| d.elapsed >= first.elapsed)
                .filter(|d| d.elapsed - first.elapsed < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_telegram_private_chat_sees_one_draft_grow_then_one_message() {
    let (home, llm) = (Home::new(), slow_llm(Duration::from_millis(50)));
    let emu = Emulator::start(EmulatorConfig::default()).expect("the Telegram emulator");
    let gateway = telegram_gateway(&home, &telegram_env(&emu, &llm, &[]));
    emu.user_writes(&ada(), "tell me a long story");
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gateway.logs());
    assert_eq!(sent[0].text, long_reply());
    home.wait_drained(WAIT);

    let drafts = emu.drafts_to(ada().id);
    assert!(drafts.len() >= 3, "{drafts:#?}\n{}", gateway.logs());
    let draft_id = drafts[0].draft_id;
    assert_ne!(draft_id, 0);
    assert!(drafts.iter().all(|d| d.draft_id == draft_id), "{drafts:#?}");
    // Each draft holds more of the reply than the one before, all of it the reply's start.
    for pair in drafts.windows(2) {
        assert!(pair[0].text.len() < pair[1].text.len(), "{drafts:#?}");
    }
    assert!(drafts.iter().all(|d| long_reply().starts_with(&d.text)));
    // Within the rate: no draft refused, never more than two in a second.
    let attempts = emu.draft_attempts();
    assert!(
        attempts.iter().all(|a| a.status == Some(200)),
        "{attempts:#?}"
    );
    assert!(most_in_a_second(&drafts) <= 2, "{drafts:#?}");
    // The message replaced the draft; one message, no more.
    assert!(emu.showing(ada().id).is_none());
    assert_eq!(emu.sent_to(ada().id).len(), 1);
    assert_eq!(
        llm.streamed().len(),
        1,
        "the agent was asked once, streaming"
    );
}

#[test]
fn a_telegram_group_gets_the_finished_reply_only() {
    let (home, llm) = (Home::new(), slow_llm(Duration::from_millis(20)));
    let emu = Emulator::start(EmulatorConfig::default()).expect("the Telegram emulator");
    let gateway = telegram_gateway(&home, &telegram_env(&emu, &llm, &[]));
    let room = group(-1_009_000, "Ops");
    emu.write(&room, &ada(), "@hermes_test_bot a long story please");
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gateway.logs());
    assert_eq!(sent[0].chat_id, room.id);
    assert_eq!(sent[0].text, long_reply());
    home.wait_drained(WAIT);
    assert!(
        emu.draft_attempts().is_empty(),
        "{:#?}",
        emu.draft_attempts()
    );
}

#[test]
fn telegram_streaming_off_sends_the_finished_reply_only() {
    let (home, llm) = (Home::new(), slow_llm(Duration::from_millis(20)));
    let emu = Emulator::start(EmulatorConfig::default()).expect("the Telegram emulator");
    let env = telegram_env(&emu, &llm, &[("TELEGRAM_STREAMING", "false")]);
    let gateway = telegram_gateway(&home, &env);
    emu.user_writes(&ada(), "tell me a long story");
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gateway.logs());
    assert_eq!(sent[0].text, long_reply());
    home.wait_drained(WAIT);
    assert!(emu.draft_attempts().is_empty());
}

#[test]
fn a_broken_stream_on_telegram_ends_in_one_apology() {
    let (home, llm) = (Home::new(), slow_llm(Duration::from_millis(100)));
    llm.break_stream_after(12);
    let emu = Emulator::start(EmulatorConfig::default()).expect("the Telegram emulator");
    let gateway = telegram_gateway(&home, &telegram_env(&emu, &llm, &[]));
    emu.user_writes(&ada(), "tell me a long story");
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gateway.logs());
    home.wait_drained(WAIT);
    // The half reply was shown as a draft, then gave way to the apology: nothing of it stays.
    assert!(!emu.drafts_to(ada().id).is_empty(), "{}", gateway.logs());
    assert!(emu.showing(ada().id).is_none());
    let sent = emu.sent_to(ada().id);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].text, APOLOGY);
}
