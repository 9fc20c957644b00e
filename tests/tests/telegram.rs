//! Telegram, black-box: the real `hermes` binary against the Bot API emulator.
//!
//! A private chat round-trips through the agent; groups are answered only when the bot is
//! addressed; strangers are denied or paired; a crash loses and repeats nothing; flood control
//! is honoured and a chat that blocked the bot is suppressed; webhook mode checks its secret;
//! the typing action shows while the agent works; `hermes send`, cron, `hermes platforms` and
//! `hermes gateway doctor` know Telegram; gateways sharing a database poll one at a time.
use std::net::{SocketAddr, TcpListener};
use std::process::Output;
use std::time::{Duration, Instant};

use expectrl::{Eof, Expect, Session};
use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::http;
use platform_telegram::emulator::{Emulator, EmulatorConfig, Fault, Person, SentMessage, group};

const WAIT: Duration = Duration::from_secs(30);
/// The log line of a gateway that polls.
const POLLING: &str = "[telegram] polling for updates as @";
/// The log line of a gateway that registered its webhook.
const WEBHOOK_SET: &str = "[telegram] webhook set: Telegram posts updates to";
const SECRET: &str = "s3cret_0123456789-abcdef";

fn ada() -> Person {
    Person::new(4242, "Ada")
}

fn bob() -> Person {
    Person::new(5151, "Bob")
}

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default()).expect("starting the Telegram emulator")
}

/// The environment of a Telegram gateway talking to `emu`, plus `extra`.
fn env(emu: &Emulator, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TELEGRAM_BOT_TOKEN", emu.token()),
        ("TELEGRAM_API_BASE_URL", emu.base_url()),
        ("TELEGRAM_ALLOWED_USERS", "4242, 5151".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn llm_env(llm: &FakeLlm) -> Vec<(&'static str, String)> {
    vec![
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", llm.base_url()),
        ("HERMES_AGENT_MODEL", "test-model".to_string()),
    ]
}

/// `hermes gateway` with Telegram, started until it logs `marker` (it may have no listener:
/// it polls).
fn telegram_gateway(home: &Home, env: &[(String, String)], marker: &str) -> Gateway {
    let gateway = Gateway::start_polling(home.path(), env);
    assert!(
        gateway.wait_for_log(marker, WAIT),
        "the gateway never logged {marker:?}; log:\n{}",
        gateway.logs()
    );
    gateway
}

/// Waits until `emu` sent at least `n` messages; panics with what it has otherwise.
fn wait_sent(emu: &Emulator, n: usize, gateway: &Gateway) -> Vec<SentMessage> {
    let sent = emu.wait_for_sent(n, WAIT);
    assert!(
        sent.len() >= n,
        "expected {n} message(s), got {sent:#?}; log:\n{}",
        gateway.logs()
    );
    sent
}

/// Waits until the inbound message `provider_id` was stored and handled.
fn handled(home: &Home, provider_id: &str) -> bool {
    eventually(WAIT, || {
        let done = count(
            home,
            &format!(
                "SELECT count(*) FROM inbound WHERE provider_id = '{provider_id}' AND state != 'pending'"
            ),
        );
        (done == 1).then_some(())
    })
    .is_some()
}

fn provider_id(update: &platform_telegram::types::Update) -> String {
    let message = update.message.as_ref().expect("a message");
    format!("{}:{}", message.chat.id, message.message_id)
}

#[test]
fn it_is_listed_as_a_real_platform() {
    let home = Home::new();
    let row = |out: &Output| platforms_row(out, "telegram");
    let listed = row(&run(home.path(), &[], &["platforms"], ""));
    assert!(listed.contains("TELEGRAM_BOT_TOKEN not set"), "{listed}");
    let token = "123456:AAH-secret-token";
    let listed = row(&run(
        home.path(),
        &[("TELEGRAM_BOT_TOKEN", token)],
        &["platforms"],
        "",
    ));
    assert!(
        listed.contains("enabled") && !listed.contains("disabled"),
        "{listed}"
    );
    assert!(!listed.contains("stub"), "Telegram is real: {listed}");
    assert!(!listed.contains(token), "{listed}");
    // A setting that is wrong is named, and the token never shown.
    let bad = run(
        home.path(),
        &[
            ("TELEGRAM_BOT_TOKEN", token),
            ("TELEGRAM_ALLOWED_USERS", "@ada"),
        ],
        &["platforms"],
        "",
    );
    let listed = row(&bad);
    assert!(listed.contains("TELEGRAM_ALLOWED_USERS"), "{listed}");
    assert!(!listed.contains(token), "{listed}");
}

#[test]
fn setup_writes_its_settings_and_says_what_comes_next() {
    let home = Home::new();
    let token = "123456:AAH-setup-token";
    let out = run(
        home.path(),
        &[],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "telegram",
            "--set",
            &format!("TELEGRAM_BOT_TOKEN={token}"),
            "--set",
            "TELEGRAM_ALLOWED_USERS=4242",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        home.read_env(),
        format!("TELEGRAM_BOT_TOKEN={token}\nTELEGRAM_ALLOWED_USERS=4242\n")
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("hermes gateway doctor"), "{stdout}");
    assert!(stdout.contains("Polling mode"), "{stdout}");
    assert!(!stdout.contains(token), "{stdout}");

    // A webhook without its secret: the steps say so, and the platform refuses to start.
    let home = Home::new();
    let out = run(
        home.path(),
        &[],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "telegram",
            "--set",
            &format!("TELEGRAM_BOT_TOKEN={token}"),
            "--set",
            "TELEGRAM_WEBHOOK_URL=https://bot.example.com/telegram",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Set TELEGRAM_WEBHOOK_SECRET too"),
        "{stdout}"
    );
    let listed = text(&run(home.path(), &[], &["platforms"], "").stdout);
    let row = listed
        .lines()
        .find(|l| l.starts_with("telegram "))
        .unwrap_or_default();
    assert!(
        row.contains("error") && row.contains("TELEGRAM_WEBHOOK_SECRET: is required"),
        "{listed}"
    );
}

#[test]
fn a_private_message_round_trips_through_the_agent() {
    let (home, emu) = (Home::new(), emulator());
    let gateway = telegram_gateway(&home, &env(&emu, &[]), POLLING);
    emu.user_writes(&ada(), "Hello **there** & <you>");
    let sent = wait_sent(&emu, 1, &gateway);
    assert_eq!(sent[0].chat_id, ada().id);
    assert_eq!(sent[0].text, "You said: Hello there & <you>");
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(
        sent[0].body,
        "You said: Hello <b>there</b> &amp; &lt;you&gt;"
    );

    // A photo's caption is the text; the photo itself is an attachment without the token.
    let photo = emu.send_photo(&ada().chat(), &ada(), Some("what is this?"));
    let sent = wait_sent(&emu, 2, &gateway);
    // The agent sees the photo, fetched by the gateway, as an attachment line after the
    // caption: its name, type and size (SPEC 12), no URL.
    assert!(
        sent[1]
            .text
            .starts_with("You said: what is this?\n[attachment: photo.jpg, image/jpeg, "),
        "{:?}",
        sent[1].text
    );
    assert!(handled(&home, &provider_id(&photo)));
    let stored: String = home
        .db()
        .query_row(
            "SELECT attachments FROM inbound WHERE provider_id = ?1",
            [provider_id(&photo)],
            |r| r.get(0),
        )
        .expect("the photo's message is stored");
    assert!(stored.contains("telegram:file/"), "{stored}");
    assert!(!stored.contains(&emu.token()), "{stored}");
    assert!(
        !gateway.logs().contains(&emu.token()),
        "the token never reaches the log"
    );
}

#[test]
fn groups_are_answered_only_when_the_bot_is_addressed() {
    let (home, emu) = (Home::new(), emulator());
    let gateway = telegram_gateway(&home, &env(&emu, &[]), POLLING);
    let room = group(-1_009_000, "Ops");
    let chatter = emu.write(&room, &bob(), "hello everyone, lunch?");
    emu.write(&room, &bob(), "@hermes_test_bot what time is it?");
    let sent = wait_sent(&emu, 1, &gateway);
    assert_eq!(sent[0].chat_id, room.id);
    assert_eq!(sent[0].text, "You said: what time is it?");

    // Replying to the bot's message addresses it too.
    emu.reply_to(&sent[0], &ada(), "thanks");
    let sent = wait_sent(&emu, 2, &gateway);
    assert_eq!(sent[1].text, "You said: thanks");
    assert_eq!(emu.sent_to(room.id).len(), 2);
    // The chatter never became a message.
    let stored = count(
        &home,
        &format!(
            "SELECT count(*) FROM inbound WHERE provider_id = '{}'",
            provider_id(&chatter)
        ),
    );
    assert_eq!(stored, 0);
    assert!(
        emu.pending_updates().is_empty(),
        "every update was confirmed"
    );
}

#[test]
fn a_stranger_is_denied_or_given_a_pairing_code() {
    let (home, emu) = (Home::new(), emulator());
    let mallory = Person::new(6666, "Mallory");
    {
        let gateway = telegram_gateway(&home, &env(&emu, &[]), POLLING);
        let denied = emu.user_writes(&mallory, "let me in");
        assert!(handled(&home, &provider_id(&denied)), "{}", gateway.logs());
        emu.user_writes(&ada(), "ping");
        let sent = wait_sent(&emu, 1, &gateway);
        assert_eq!(sent[0].chat_id, ada().id, "only Ada gets an answer");
        // Ada's answer may overtake one to Mallory: wait until nothing is left to send.
        home.wait_drained(WAIT);
        assert!(emu.sent_to(mallory.id).is_empty());
    }

    let gateway = telegram_gateway(
        &home,
        &env(&emu, &[("TELEGRAM_UNAUTHORIZED", "pair")]),
        POLLING,
    );
    emu.user_writes(&mallory, "may I?");
    let code_message = eventually(WAIT, || emu.sent_to(mallory.id).into_iter().next())
        .unwrap_or_else(|| panic!("no pairing code sent; log:\n{}", gateway.logs()));
    let marker = "hermes pairing approve telegram ";
    let at = code_message
        .text
        .find(marker)
        .unwrap_or_else(|| panic!("no approval command in {:?}", code_message.text));
    let code: String = code_message.text[at + marker.len()..]
        .chars()
        .take(8)
        .collect();
    let approved = run(
        home.path(),
        &[],
        &["pairing", "approve", "telegram", &code],
        "",
    );
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    emu.user_writes(&mallory, "now?");
    let answered = eventually(WAIT, || {
        emu.sent_to(mallory.id)
            .into_iter()
            .find(|m| m.text == "You said: now?")
    });
    assert!(answered.is_some(), "{}", gateway.logs());
}

#[test]
fn a_crash_neither_loses_nor_repeats_an_update() {
    let (home, emu, llm) = (Home::new(), emulator(), FakeLlm::start());
    // Turns take a while, so that the gateway dies with work in hand.
    llm.set_delay(Duration::from_secs(2));
    let users: Vec<Person> = (1..=6)
        .map(|n| Person::new(1000 + n, &format!("User {n}")))
        .collect();
    let allowed = users
        .iter()
        .map(|u| u.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let llm = llm_env(&llm);
    let mut extra: Vec<(&str, &str)> = llm.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("TELEGRAM_ALLOWED_USERS", &allowed));
    let env = env(&emu, &extra);

    let mut first = telegram_gateway(&home, &env, POLLING);
    for (n, user) in users[..3].iter().enumerate() {
        emu.user_writes(user, &format!("m{}", n + 1));
    }
    // Fetched and confirmed: stored before the offset moved past them.
    let fetched = eventually(WAIT, || emu.pending_updates().is_empty().then_some(()));
    assert!(fetched.is_some(), "{}", first.logs());
    // One more arrives and the gateway dies at once, whatever it was doing with it.
    emu.user_writes(&users[3], "m4");
    first.kill();
    // Two more arrive while it is down.
    emu.user_writes(&users[4], "m5");
    emu.user_writes(&users[5], "m6");

    let second = telegram_gateway(&home, &env, POLLING);
    wait_sent(&emu, 6, &second);
    // Whatever is still due has been answered once the store has nothing pending.
    let settled = eventually(WAIT, || {
        let pending = count(
            &home,
            "SELECT count(*) FROM inbound WHERE state = 'pending'",
        );
        (pending == 0 && emu.pending_updates().is_empty()).then_some(())
    });
    assert!(settled.is_some(), "{}", second.logs());
    home.wait_drained(WAIT);
    let sent = emu.sent();
    for (n, user) in users.iter().enumerate() {
        let replies: Vec<&SentMessage> = sent.iter().filter(|m| m.chat_id == user.id).collect();
        assert_eq!(
            replies.len(),
            1,
            "m{} answered {} time(s)",
            n + 1,
            replies.len()
        );
        assert_eq!(replies[0].text, format!("You said: m{}", n + 1));
    }
    // The restarted gateway resumed from the saved offset: only the very first poll had none.
    let unsaved = emu.polls().iter().filter(|p| p.offset.is_none()).count();
    assert_eq!(unsaved, 1, "{:#?}", emu.polls());
}

#[test]
fn flood_control_is_waited_out() {
    let (home, emu) = (Home::new(), emulator());
    emu.push_fault(Fault::TooManyRequests { retry_after: 2 });
    let gateway = telegram_gateway(&home, &env(&emu, &[]), POLLING);
    emu.user_writes(&ada(), "are you there?");
    let sent = wait_sent(&emu, 1, &gateway);
    assert_eq!(sent[0].text, "You said: are you there?");
    let attempts = emu.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0].status, Some(429));
    assert_eq!(attempts[1].status, Some(200));
    let waited = attempts[1].elapsed - attempts[0].elapsed;
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, before retry_after"
    );
}

#[test]
fn a_chat_that_blocked_the_bot_is_suppressed_until_it_writes_again() {
    let (home, emu, llm) = (Home::new(), emulator(), FakeLlm::start());
    // The user blocks the bot while the agent is thinking.
    llm.set_delay(Duration::from_secs(1));
    let llm = llm_env(&llm);
    let extra: Vec<(&str, &str)> = llm.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gateway = telegram_gateway(&home, &env(&emu, &extra), POLLING);
    emu.user_writes(&ada(), "bye");
    let fetched = eventually(WAIT, || emu.pending_updates().is_empty().then_some(()));
    assert!(fetched.is_some(), "{}", gateway.logs());
    emu.block(ada().id);
    let suppressed = eventually(WAIT, || {
        let rows = count(
            &home,
            "SELECT count(*) FROM outbox WHERE platform = 'telegram' AND chat = '4242' AND state = 'suppressed'",
        );
        (rows == 1).then_some(())
    });
    assert!(suppressed.is_some(), "{}", gateway.logs());
    let refused = emu.attempts();
    assert_eq!(refused.len(), 1, "refused once, not retried: {refused:#?}");
    assert_eq!(refused[0].status, Some(403));
    assert!(emu.sent().is_empty());

    // Writing to the bot again means it was unblocked: the conversation resumes.
    emu.user_writes(&ada(), "I'm back");
    let sent = wait_sent(&emu, 1, &gateway);
    assert_eq!(
        (sent[0].chat_id, sent[0].text.as_str()),
        (ada().id, "You said: I'm back")
    );
    // The emulator records an attempt once it has answered it, a moment after the message.
    let answered = eventually(WAIT, || (emu.attempts().len() >= 2).then_some(()));
    assert!(answered.is_some(), "{:#?}", emu.attempts());
    home.wait_drained(WAIT);
    assert_eq!(emu.attempts().len(), 2, "{:#?}", emu.attempts());
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

#[test]
fn webhook_mode_checks_the_secret_and_answers_what_telegram_posts() {
    let (home, emu) = (Home::new(), emulator());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/telegram/hook");
    let port_text = port.to_string();
    let env = env(
        &emu,
        &[
            ("TELEGRAM_WEBHOOK_URL", &url),
            ("TELEGRAM_WEBHOOK_PORT", &port_text),
            ("TELEGRAM_WEBHOOK_SECRET", SECRET),
        ],
    );
    let gateway = telegram_gateway(&home, &env, WEBHOOK_SET);
    assert!(gateway.wait_for_log("[telegram] webhook server listening on ", WAIT));
    assert_eq!(emu.webhook_info().url, url);

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let update = serde_json::json!({
        "update_id": 1,
        "message": {
            "message_id": 1, "date": 0, "text": "forged",
            "from": {"id": 4242, "is_bot": false, "first_name": "Ada"},
            "chat": {"id": 4242, "type": "private"}
        }
    })
    .to_string();
    for secret in [None, Some("s3cret_0123456789-abcdeX"), Some("")] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(secret) = secret {
            headers.push(("X-Telegram-Bot-Api-Secret-Token", secret));
        }
        let answer = http::request(addr, "POST", "/telegram/hook", &headers, update.as_bytes())
            .expect("the webhook answers");
        assert_eq!(answer.status, 401, "{answer:?}");
    }
    assert_eq!(count(&home, "SELECT count(*) FROM inbound"), 0);

    // Telegram's own post carries the secret and is answered.
    emu.user_writes(&ada(), "over the webhook");
    let sent = wait_sent(&emu, 1, &gateway);
    assert_eq!(sent[0].text, "You said: over the webhook");
    let posts = emu.webhook_posts();
    assert_eq!(posts.last().and_then(|p| p.status), Some(200), "{posts:#?}");
    assert!(
        !gateway.logs().contains(SECRET),
        "the secret never reaches the log"
    );
}

#[test]
fn typing_shows_while_the_agent_works() {
    let (home, emu, llm) = (Home::new(), emulator(), FakeLlm::start());
    llm.set_delay(Duration::from_secs(3));
    let llm = llm_env(&llm);
    let extra: Vec<(&str, &str)> = llm.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gateway = telegram_gateway(&home, &env(&emu, &extra), POLLING);
    emu.user_writes(&ada(), "think hard");
    let sent = wait_sent(&emu, 1, &gateway);
    let actions = emu.chat_actions();
    assert!(
        !actions.is_empty(),
        "no typing action; log:\n{}",
        gateway.logs()
    );
    assert!(
        actions
            .iter()
            .all(|a| a.chat_id == ada().id && a.action == "typing")
    );
    assert!(
        actions[0].elapsed < sent[0].elapsed,
        "typing shows before the reply"
    );
}

#[test]
fn send_and_cron_deliver_to_the_home_channel() {
    let (home, emu) = (Home::new(), emulator());
    let room = group(-1_001_234_567_890, "Ops");
    emu.add_chat(&room);
    emu.add_chat(&ada().chat());
    let env = env(&emu, &[("TELEGRAM_HOME_CHANNEL", "-1001234567890")]);

    let out = run_hermes(&home, &env, &["send", "--to", "telegram", "Hello **home**"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sent = emu.wait_for_sent(1, WAIT);
    assert_eq!(sent[0].chat_id, room.id);
    assert_eq!(sent[0].body, "Hello <b>home</b>");

    let out = run_hermes(&home, &env, &["send", "--to", "telegram:4242", "Direct"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sent = emu.wait_for_sent(2, WAIT);
    assert_eq!(
        (sent[1].chat_id, sent[1].text.as_str()),
        (ada().id, "Direct")
    );

    run_cron_job(&home, &env, "Nightly report: all green", "telegram");
    let sent = emu.wait_for_sent(3, WAIT);
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert_eq!(
        (sent[2].chat_id, sent[2].text.as_str()),
        (room.id, "Nightly report: all green")
    );
}

#[test]
fn a_second_poller_is_reported_once_and_a_rejected_token_clearly() {
    let emu = emulator();
    let (one, two) = (Home::new(), Home::new());
    let first = telegram_gateway(&one, &env(&emu, &[]), POLLING);
    let second = telegram_gateway(&two, &env(&emu, &[]), POLLING);
    let line = "another gateway is polling this bot token (409 Conflict";
    let reported = eventually(WAIT, || {
        (first.logs().contains(line) && second.logs().contains(line)).then_some(())
    });
    assert!(
        reported.is_some(),
        "first:\n{}\nsecond:\n{}",
        first.logs(),
        second.logs()
    );
    // The two keep taking the poll from each other; each says so once, not once per retry.
    let conflicts = || emu.polls().iter().filter(|p| p.status == 409).count();
    let later = eventually(WAIT, || (conflicts() >= 6).then_some(()));
    assert!(later.is_some(), "{:#?}", emu.polls());
    for gateway in [&first, &second] {
        assert_eq!(
            gateway.logs().matches(line).count(),
            1,
            "{}",
            gateway.logs()
        );
    }

    let home = Home::new();
    let wrong = "7000000001:AAE-not-the-token";
    let gateway = telegram_gateway(
        &home,
        &env(&emu, &[("TELEGRAM_BOT_TOKEN", wrong)]),
        "[telegram] receiving stopped:",
    );
    let logs = gateway.logs();
    assert!(logs.contains("the bot token was rejected"), "{logs}");
    assert!(logs.contains("TELEGRAM_BOT_TOKEN"), "{logs}");
    assert!(!logs.contains("AAE-not-the-token"), "{logs}");
}

#[test]
fn the_doctor_checks_the_bot_and_deletes_a_stale_webhook() {
    let emu = emulator();
    let doctor = |args: &[&str]| {
        let home = Home::new();
        let mut argv = vec!["gateway", "doctor"];
        argv.extend_from_slice(args);
        let out = run_hermes(&home, &env(&emu, &[]), &argv);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(&emu.token()), "{all}");
        (out.status.code(), all)
    };
    let (code, report) = doctor(&[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("ok       Telegram bot: @hermes_test_bot (7000000001)"),
        "{report}"
    );
    assert!(
        report.contains("ok       Telegram webhook: none set"),
        "{report}"
    );

    emu.set_webhook("https://old.example.com/telegram", None);
    let (code, report) = doctor(&[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("problem  Telegram webhook: a webhook is set (https://old.example.com/telegram), so polling would get 409 Conflict"),
        "{report}"
    );
    assert!(report.contains("hermes gateway doctor --fix"), "{report}");
    let (code, report) = doctor(&["--fix"]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains(
            "fixed    Telegram webhook: deleted the webhook https://old.example.com/telegram"
        ),
        "{report}"
    );
    assert_eq!(emu.webhook_info().url, "");

    let started = Instant::now();
    let wrong = Home::new();
    let out = run_hermes(
        &wrong,
        &env(&emu, &[("TELEGRAM_BOT_TOKEN", "7000000001:AAE-wrong")]),
        &["gateway", "doctor"],
    );
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("problem  Telegram bot: token rejected"),
        "{report}"
    );
    assert!(!report.contains("AAE-wrong"), "{report}");
    assert!(started.elapsed() < WAIT);
}

#[test]
fn the_sandbox_chats_with_the_gateway_through_the_emulator() {
    let home = Home::new();
    let mut command = command(home.path(), &[("TERM", "xterm")]);
    command.args(["gateway", "--sandbox", "--platform", "telegram"]);
    let mut session = Session::spawn(command).expect("spawning hermes on a pty");
    let _ = session.get_process_mut().set_window_size(200, 50);
    session.set_expect_timeout(Some(WAIT));
    session
        .expect("hermes sandbox: telegram")
        .expect("the Telegram sandbox starts");
    session.expect("Type a message").expect("the chat is ready");
    session.send_line("Hello **there**").expect("typing");
    session
        .expect("[part 1/1] You said: Hello there")
        .expect("the reply as the chat shows it, formatting applied");
    session.send("\x04").expect("Ctrl-D");
    session
        .expect("sandbox closed")
        .expect("closes on end of input");
    session.expect(Eof).expect("exits");
}

#[test]
fn gateways_sharing_a_database_poll_one_at_a_time_and_take_over() {
    let Some(db) = gateway_tests::postgres::TestDatabase::new("telegram_two_gateways") else {
        return;
    };
    let emu = emulator();
    let url = db.url();
    let env = env(&emu, &[("HERMES_DATABASE_URL", &url)]);
    let (home_a, home_b) = (Home::new(), Home::new());
    let mut a = telegram_gateway(&home_a, &env, POLLING);
    let b = telegram_gateway(&home_b, &env, "another gateway receives for this account");

    for n in 1..=3 {
        emu.user_writes(&ada(), &format!("a{n}"));
        emu.user_writes(&bob(), &format!("b{n}"));
    }
    // Texts that arrive during a turn are answered together: count texts, not replies.
    let answered = |texts: &[&str]| {
        let replies: Vec<String> = emu.sent().into_iter().map(|m| m.text).collect();
        texts
            .iter()
            .map(|text| {
                replies
                    .iter()
                    .filter(|reply| {
                        reply
                            .trim_start_matches("You said: ")
                            .lines()
                            .any(|line| line == *text)
                    })
                    .count()
            })
            .collect::<Vec<usize>>()
    };
    let first = ["a1", "a2", "a3", "b1", "b2", "b3"];
    let all_in = eventually(WAIT, || {
        answered(&first).iter().all(|&n| n > 0).then_some(())
    });
    assert!(all_in.is_some(), "{:#?}\n{}", emu.sent(), a.logs());
    // The holder of the lease dies; the other takes over once it is seen to be gone.
    a.kill();
    emu.user_writes(&ada(), "after");
    let taken_over = eventually(Duration::from_secs(60), || {
        (answered(&["after"]) == [1]).then_some(())
    });
    assert!(taken_over.is_some(), "{}", b.logs());
    assert!(b.logs().contains(POLLING), "{}", b.logs());

    // Each message answered once, and never a poller turned away with 409.
    let texts = ["a1", "a2", "a3", "b1", "b2", "b3", "after"];
    assert_eq!(answered(&texts), [1; 7], "{:#?}", emu.sent());
    for gateway in [&a, &b] {
        assert!(
            !gateway.logs().contains("409 Conflict"),
            "{}",
            gateway.logs()
        );
    }
}
