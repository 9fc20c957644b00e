//! Replies that stream, black-box: the real `hermes` binary with the fake LLM streaming a long
//! reply slowly, against the Telegram and Discord emulators.
//!
//! Telegram private chats see drafts with one `draft_id` grow, then exactly one message; groups
//! see no draft; Discord sees one message posted, edited, ending with the finished reply and
//! no second message; neither gets more calls than its rate allows; a stream that breaks ends
//! in one apology and no half reply; the gateway killed mid-stream and started again ends with
//! the same single message; with streaming off the reply is posted once. The sandbox shows a
//! streamed reply growing.
use std::time::Duration;

use expectrl::{Eof, Expect, Session};
use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use platform_discord::emulator as discord;
use platform_telegram::emulator::{Draft, Emulator, EmulatorConfig, Person, group};

const WAIT: Duration = Duration::from_secs(30);
const DISCORD_TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GbLaCk.box-token-0123456789abcdefghijklmn";
const ALICE: &str = "2000000000000000001";
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

/// A gateway's environment: `platform`'s settings, `llm` as the agent, then `extra`.
fn gateway_env(
    platform: [(&str, String); 3],
    llm: &FakeLlm,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let agent = [
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", llm.base_url()),
        ("HERMES_AGENT_MODEL", "test-model".to_string()),
    ];
    let mut env: Vec<(String, String)> = platform
        .into_iter()
        .chain(agent)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// The environment of a Telegram gateway talking to `emu` with `llm` as its agent.
fn telegram_env(emu: &Emulator, llm: &FakeLlm, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let telegram = [
        ("TELEGRAM_BOT_TOKEN", emu.token()),
        ("TELEGRAM_API_BASE_URL", emu.base_url()),
        ("TELEGRAM_ALLOWED_USERS", "4242, 5151".to_string()),
    ];
    gateway_env(telegram, llm, extra)
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

#[test]
fn a_telegram_gateway_killed_mid_stream_sends_the_finished_reply_once() {
    let (home, llm) = (Home::new(), slow_llm(Duration::from_millis(300)));
    let emu = Emulator::start(EmulatorConfig::default()).expect("the Telegram emulator");
    let env = telegram_env(&emu, &llm, &[]);
    let mut first = telegram_gateway(&home, &env);
    emu.user_writes(&ada(), "tell me a long story");
    // Killed with the reply half shown as a draft.
    let shown = eventually(WAIT, || (emu.drafts_to(ada().id).len() >= 2).then_some(()));
    assert!(shown.is_some(), "{}", first.logs());
    first.kill();
    let half = emu.drafts_to(ada().id);
    assert!(
        emu.sent_to(ada().id).is_empty(),
        "{:#?}",
        emu.sent_to(ada().id)
    );

    llm.set_stream_pace(Duration::from_millis(20));
    let second = telegram_gateway(&home, &env);
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", second.logs());
    assert_eq!(sent[0].text, long_reply());
    home.wait_drained(WAIT);
    assert_eq!(emu.sent_to(ada().id).len(), 1, "one finished message");
    assert!(emu.showing(ada().id).is_none(), "the draft gave way to it");
    // The turn run again kept its draft: the same `draft_id` grew on from the start.
    let drafts = emu.drafts_to(ada().id);
    assert!(drafts.len() > half.len(), "{drafts:#?}");
    assert!(
        drafts.iter().all(|d| d.draft_id == half[0].draft_id),
        "{drafts:#?}"
    );
    assert_eq!(llm.streamed().len(), 2, "asked again after the crash");
}

/// Runs `hermes gateway --sandbox --platform NAME` with a streaming agent, types a line, and
/// expects `growing` (the reply while it is written), then `finished`.
fn sandbox_streams(platform: &str, growing: &str, finished: &str) {
    let (home, llm) = (Home::new(), slow_llm(Duration::from_millis(40)));
    let url = llm.base_url();
    let env = [
        ("TERM", "xterm"),
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", url.as_str()),
        ("HERMES_AGENT_MODEL", "test-model"),
    ];
    let mut command = command(home.path(), &env);
    command.args(["gateway", "--sandbox", "--platform", platform]);
    let mut session = Session::spawn(command).expect("spawning hermes on a pty");
    let _ = session.get_process_mut().set_window_size(400, 50);
    session.set_expect_timeout(Some(WAIT));
    session.expect("Type a message").expect("the chat is ready");
    session.send_line("a long story please").expect("typing");
    session
        .expect(growing)
        .expect("the reply shown while it is written");
    session.expect(finished).expect("then the finished reply");
    session.send("\x04").expect("Ctrl-D");
    session
        .expect("sandbox closed")
        .expect("closes on end of input");
    session.expect(Eof).expect("exits");
}

#[test]
fn the_telegram_sandbox_shows_the_reply_growing() {
    // Drafts, then the message.
    let finished = format!("← [part 1/1] {}", long_reply());
    sandbox_streams("telegram", "✎ word1", &finished);
}

#[test]
fn the_discord_sandbox_shows_the_reply_growing() {
    // The message posted with the first text, then edited to the finished reply.
    let finished = format!("✎ {}", long_reply());
    sandbox_streams("discord", "← [part 1/1] word1", &finished);
}

/// A Discord emulator with quick heartbeats.
fn discord_emulator() -> discord::Emulator {
    let mut config = discord::EmulatorConfig::new(DISCORD_TOKEN);
    config.heartbeat_interval = Duration::from_millis(300);
    discord::Emulator::start(config).expect("the Discord emulator")
}

/// A home, a fake LLM streaming [`long_reply`] a word every `pace`, and a Discord emulator.
fn discord_setup(pace: Duration) -> (Home, FakeLlm, discord::Emulator) {
    (Home::new(), slow_llm(pace), discord_emulator())
}

/// A Discord gateway over `home` with `llm` as its agent, connected to `emu`.
fn discord_gateway(
    home: &Home,
    emu: &discord::Emulator,
    llm: &FakeLlm,
    extra: &[(&str, &str)],
) -> Gateway {
    let discord = [
        ("DISCORD_BOT_TOKEN", DISCORD_TOKEN.to_string()),
        ("DISCORD_API_BASE_URL", emu.api_base_url()),
        ("DISCORD_ALLOWED_USERS", ALICE.to_string()),
    ];
    let env = gateway_env(discord, llm, extra);
    let gateway = Gateway::start_polling(home.path(), &env);
    assert!(
        emu.wait_until(WAIT, discord::Emulator::connected),
        "{}",
        gateway.logs()
    );
    gateway
}

/// The bot's messages in `channel`.
fn messages_in(emu: &discord::Emulator, channel: &str) -> Vec<discord::CreatedMessage> {
    emu.messages()
        .into_iter()
        .filter(|m| m.channel_id == channel)
        .collect()
}

/// Waits until the bot's only message in `channel` reads `content`; returns it.
fn ends_as(
    emu: &discord::Emulator,
    channel: &str,
    content: &str,
    gateway: &Gateway,
) -> discord::CreatedMessage {
    let found = eventually(WAIT, || {
        messages_in(emu, channel)
            .into_iter()
            .find(|m| m.content == content)
    });
    found.unwrap_or_else(|| {
        panic!(
            "no message reads {content:?}: {:#?}\n{}",
            messages_in(emu, channel),
            gateway.logs()
        )
    })
}

/// The message `id` showed the start of [`long_reply`] before it was changed.
fn half_reply_shown_first(emu: &discord::Emulator, id: &str) {
    let versions = emu.versions(id);
    assert!(
        versions.len() >= 2 && long_reply().starts_with(&versions[0].content),
        "the half reply was shown first: {versions:#?}"
    );
}

/// No call to Discord was refused: every creation and edit kept to the buckets.
fn within_the_rate(emu: &discord::Emulator) {
    let refused: Vec<_> = emu
        .attempts()
        .into_iter()
        .chain(emu.edit_attempts())
        .filter(|a| a.status != 200)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
}

#[test]
fn a_discord_reply_is_posted_once_and_edited_until_finished() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(60));
    let gateway = discord_gateway(&home, &emu, &llm, &[]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    let message = ends_as(&emu, &dm, &long_reply(), &gateway);
    home.wait_drained(WAIT);
    assert_eq!(messages_in(&emu, &dm).len(), 1, "one message, no second");
    let versions = emu.versions(&message.id);
    assert!(versions.len() >= 3, "{versions:#?}");
    for pair in versions.windows(2) {
        assert!(
            long_reply().starts_with(&pair[0].content)
                && pair[0].content.len() < pair[1].content.len(),
            "{versions:#?}"
        );
    }
    within_the_rate(&emu);
    // The outbox recorded the message it edited as the reply's part.
    let recorded = count(
        &home,
        &format!(
            "SELECT count(*) FROM outbox WHERE state = 'sent' AND edit = '{0}' AND provider_id = '{0}'",
            message.id
        ),
    );
    assert_eq!(recorded, 1);
}

#[test]
fn a_discord_gateway_killed_mid_stream_finishes_the_same_message() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(300));
    let mut first = discord_gateway(&home, &emu, &llm, &[]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    // Killed once the message is posted and recorded, the reply half written.
    let recorded = eventually(WAIT, || {
        let n = count(
            &home,
            "SELECT count(*) FROM inbound WHERE live_message IS NOT NULL",
        );
        (n == 1 && !emu.edits().is_empty()).then_some(())
    });
    assert!(recorded.is_some(), "{}", first.logs());
    first.kill();
    let half = messages_in(&emu, &dm);
    assert_eq!(half.len(), 1);
    assert_ne!(half[0].content, long_reply());

    llm.set_stream_pace(Duration::from_millis(20));
    let second = discord_gateway(&home, &emu, &llm, &[]);
    let message = ends_as(&emu, &dm, &long_reply(), &second);
    home.wait_drained(WAIT);
    assert_eq!(message.id, half[0].id, "the same message, edited");
    assert_eq!(messages_in(&emu, &dm).len(), 1, "{:#?}", emu.messages());
    within_the_rate(&emu);
}

#[test]
fn a_discord_gateway_killed_between_the_post_and_its_record_finishes_the_same_message() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(300));
    // Discord makes the message but its answer is late: the gateway dies before it knows the id.
    emu.push_fault(discord::Fault::AcceptThenDelay(Duration::from_secs(20)));
    let mut first = discord_gateway(&home, &emu, &llm, &[]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    let posted = eventually(WAIT, || (messages_in(&emu, &dm).len() == 1).then_some(()));
    assert!(posted.is_some(), "{}", first.logs());
    first.kill();
    let unrecorded = "SELECT count(*) FROM inbound WHERE live_message IS NOT NULL";
    assert_eq!(
        count(&home, unrecorded),
        0,
        "killed before the id was recorded"
    );
    let half = messages_in(&emu, &dm);

    llm.set_stream_pace(Duration::from_millis(20));
    let second = discord_gateway(&home, &emu, &llm, &[]);
    let message = ends_as(&emu, &dm, &long_reply(), &second);
    home.wait_drained(WAIT);
    assert_eq!(
        message.id, half[0].id,
        "the same message, found by its nonce"
    );
    assert_eq!(messages_in(&emu, &dm).len(), 1, "{:#?}", emu.messages());
}

#[test]
fn a_reply_stopped_mid_stream_on_discord_gives_way_to_the_answer_of_stop() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(300));
    let gateway = discord_gateway(&home, &emu, &llm, &[]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    let shown = eventually(WAIT, || (!emu.edits().is_empty()).then_some(()));
    assert!(shown.is_some(), "{}", gateway.logs());
    emu.dm(ALICE, "/stop");
    let message = ends_as(&emu, &dm, "Stopped.", &gateway);
    home.wait_drained(WAIT);
    assert_eq!(messages_in(&emu, &dm).len(), 1, "{:#?}", emu.messages());
    half_reply_shown_first(&emu, &message.id);
}

#[test]
fn a_broken_stream_on_discord_turns_the_half_reply_into_the_apology() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(100));
    llm.break_stream_after(15);
    let gateway = discord_gateway(&home, &emu, &llm, &[]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    let message = ends_as(&emu, &dm, APOLOGY, &gateway);
    home.wait_drained(WAIT);
    assert_eq!(messages_in(&emu, &dm).len(), 1, "{:#?}", emu.messages());
    half_reply_shown_first(&emu, &message.id);
}

#[test]
fn discord_streaming_off_posts_the_finished_reply_once() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(20));
    let gateway = discord_gateway(&home, &emu, &llm, &[("DISCORD_STREAMING", "false")]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    ends_as(&emu, &dm, &long_reply(), &gateway);
    home.wait_drained(WAIT);
    assert_eq!(messages_in(&emu, &dm).len(), 1);
    assert!(emu.edit_attempts().is_empty(), "{:#?}", emu.edit_attempts());
}

#[test]
fn a_discord_post_whose_answer_is_lost_is_found_and_finished_not_posted_twice() {
    let (home, llm, emu) = discord_setup(Duration::from_millis(20));
    // Discord creates the live message but answers after the client gave up on it.
    emu.push_fault(discord::Fault::AcceptThenDelay(Duration::from_secs(20)));
    let gateway = discord_gateway(&home, &emu, &llm, &[]);
    let dm = emu.dm_channel(ALICE);
    emu.dm(ALICE, "tell me a long story");
    let message = ends_as(&emu, &dm, &long_reply(), &gateway);
    home.wait_drained(WAIT);
    assert_eq!(messages_in(&emu, &dm).len(), 1, "{:#?}", emu.messages());
    let recorded = count(
        &home,
        &format!(
            "SELECT count(*) FROM inbound WHERE live_message = '{}'",
            message.id
        ),
    );
    assert_eq!(recorded, 1, "{}", gateway.logs());
}
