//! Discord, black-box: the real `hermes` binary against the Discord emulator (REST API and
//! gateway WebSocket on loopback). Conversations in a DM and in a server channel, who gets an
//! answer, the socket's recoveries (a dropped socket, an invalid session, silent heartbeats),
//! Discord's rate limits and refusals, a fatal intent that leaves the other platforms running,
//! `hermes send` and cron output at the home channel, and the sandbox.
use std::process::Output;
use std::time::Duration;

use expectrl::{Eof, Expect, Session};
use gateway_tests::harness::*;
use gateway_tests::http;
use gateway_tests::json_receiver::JsonReceiver;
use platform_discord::emulator::{
    CreatedMessage, Emulator, EmulatorConfig, Fault, GENERAL_CHANNEL, Post,
};
use serde_json::json;

const TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GbLaCk.box-token-0123456789abcdefghijklmn";
const ALICE: &str = "2000000000000000001";
const BOB: &str = "2000000000000000002";
const MALLORY: &str = "2000000000000000666";
const WAIT: Duration = Duration::from_secs(30);
const WEBHOOK_SECRET: &str = "s3cret-0123456789abcdef";

/// An emulator with quick heartbeats, changed by `change`.
fn emulator_with(change: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::new(TOKEN);
    config.heartbeat_interval = Duration::from_millis(300);
    change(&mut config);
    Emulator::start(config).expect("starting the Discord emulator")
}

fn emulator() -> Emulator {
    emulator_with(|_| {})
}

/// Discord's environment against `discord`, plus `extra`.
fn env(discord: &Emulator, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let api = discord.api_base_url();
    let allowed = format!("{ALICE}, <@{BOB}>");
    let mut env: Vec<(String, String)> = [
        ("DISCORD_BOT_TOKEN", TOKEN),
        ("DISCORD_API_BASE_URL", api.as_str()),
        ("DISCORD_ALLOWED_USERS", allowed.as_str()),
        ("DISCORD_HOME_CHANNEL", GENERAL_CHANNEL),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// A Discord gateway over `home`, connected to `discord`.
fn gateway(home: &Home, discord: &Emulator, extra: &[(&str, &str)]) -> Gateway {
    let running = Gateway::start_polling(home.path(), &env(discord, extra));
    assert!(
        discord.wait_until(WAIT, Emulator::connected),
        "the gateway never connected to the emulator; log:\n{}",
        running.logs()
    );
    running
}

/// Waits until the bot created a message in `channel` with `content`; returns every message
/// it created there.
fn reply_in(
    discord: &Emulator,
    channel: &str,
    content: &str,
    log: &Gateway,
) -> Vec<CreatedMessage> {
    let found = eventually(WAIT, || {
        let there: Vec<CreatedMessage> = discord
            .messages()
            .into_iter()
            .filter(|m| m.channel_id == channel)
            .collect();
        there.iter().any(|m| m.content == content).then_some(there)
    });
    found.unwrap_or_else(|| {
        panic!(
            "no {content:?} in {channel}; created: {:#?}\nlog:\n{}",
            discord.messages(),
            log.logs()
        )
    })
}

/// Waits until the inbound message `id` was handled (answered or refused).
fn settled(home: &Home, id: &str) {
    let done = eventually(WAIT, || {
        let n = count(
            home,
            &format!(
                "SELECT count(*) FROM inbound WHERE provider_id = '{id}' AND state != 'pending'"
            ),
        );
        (n == 1).then_some(())
    });
    assert!(done.is_some(), "message {id} was never handled");
}

#[test]
fn it_is_listed_as_a_real_platform() {
    let home = Home::new();
    let row = |out: &Output| platforms_row(out, "discord");
    let listed = row(&run(home.path(), &[], &["platforms"], ""));
    assert!(
        listed.contains("disabled") && listed.contains("DISCORD_BOT_TOKEN not set"),
        "{listed}"
    );
    assert!(!listed.contains("stub"), "{listed}");

    home.write_env(&format!("DISCORD_BOT_TOKEN={TOKEN}\n"));
    let listed = row(&run(home.path(), &[], &["platforms"], ""));
    assert!(
        listed.contains("Discord") && listed.contains("enabled") && !listed.contains("disabled"),
        "{listed}"
    );
    assert!(!listed.contains("stub"), "{listed}");

    // A home channel that is not a channel id is named, with where it came from.
    home.write_env(&format!(
        "DISCORD_BOT_TOKEN={TOKEN}\nDISCORD_HOME_CHANNEL=general\n"
    ));
    let listed = row(&run(home.path(), &[], &["platforms"], ""));
    assert!(
        listed.contains("error") && listed.contains("DISCORD_HOME_CHANNEL"),
        "{listed}"
    );
    assert!(!listed.contains(TOKEN), "{listed}");
}

#[test]
fn a_dm_and_a_mention_round_trip_and_strangers_get_nothing() {
    let (home, discord) = (Home::new(), emulator());
    let running = gateway(&home, &discord, &[]);

    let alice_dm = discord.dm_channel(ALICE);
    discord.dm(ALICE, "Hello there");
    let replies = reply_in(&discord, &alice_dm, "You said: Hello there", &running);
    assert_eq!(replies.len(), 1, "{replies:?}");

    // In a server channel only a mention gets an answer, without the mention in it.
    let unaddressed = discord.post(Post::guild(ALICE, GENERAL_CHANNEL, "just chatting"));
    let mentioned = discord.post(Post::guild(BOB, GENERAL_CHANNEL, "ping").mention());
    let replies = reply_in(&discord, GENERAL_CHANNEL, "You said: ping", &running);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        count(
            &home,
            &format!("SELECT count(*) FROM inbound WHERE provider_id = '{unaddressed}'")
        ),
        0,
        "a message not addressed to the bot is not even stored"
    );
    settled(&home, &mentioned);

    // Someone who is not allowed is stored and ignored.
    let stranger = discord.dm(MALLORY, "let me in");
    settled(&home, &stranger);
    let mallory_dm = discord.dm_channel(MALLORY);
    home.wait_drained(WAIT);
    assert!(
        discord
            .messages()
            .iter()
            .all(|m| m.channel_id != mallory_dm),
        "a stranger got an answer: {:?}",
        discord.messages()
    );
    assert_eq!(discord.messages().len(), 2);
    let counters = discord.counters();
    assert_eq!(counters.identifies, 1, "{counters:?}");
    assert!(
        !running.logs().contains(TOKEN),
        "the token never reaches the log"
    );
}

#[test]
fn the_typing_indicator_shows_while_the_agent_works() {
    let (home, discord) = (Home::new(), emulator());
    let running = gateway(
        &home,
        &discord,
        &[
            ("HERMES_AGENT", "command"),
            ("HERMES_AGENT_COMMAND", "sleep 1.5; echo Thought it over."),
        ],
    );
    discord.dm(ALICE, "Think about it");
    let dm = discord.dm_channel(ALICE);
    reply_in(&discord, &dm, "Thought it over.", &running);
    let typing: Vec<_> = discord
        .typing()
        .into_iter()
        .filter(|t| t.channel_id == dm)
        .collect();
    assert!(!typing.is_empty(), "no typing indicator in the DM");
}

#[test]
fn a_dropped_socket_is_resumed_and_a_message_sent_meanwhile_is_answered_once() {
    let (home, discord) = (Home::new(), emulator());
    let running = gateway(&home, &discord, &[]);
    discord.drop_sockets();
    let during = discord.dm(ALICE, "Are you there?");
    let dm = discord.dm_channel(ALICE);
    reply_in(&discord, &dm, "You said: Are you there?", &running);
    assert!(discord.wait_until(WAIT, Emulator::connected));
    let counters = discord.counters();
    assert_eq!(
        counters.identifies, 1,
        "resumed, not identified: {counters:?}"
    );
    assert!(counters.resumes >= 1, "{counters:?}");
    settled(&home, &during);
    home.wait_drained(WAIT);
    let replies: Vec<_> = discord
        .messages()
        .into_iter()
        .filter(|m| m.channel_id == dm)
        .collect();
    assert_eq!(replies.len(), 1, "answered once: {replies:?}");
    assert_eq!(
        count(
            &home,
            &format!("SELECT count(*) FROM inbound WHERE provider_id = '{during}'")
        ),
        1
    );
}

#[test]
fn an_invalid_session_is_replaced_by_a_new_identify() {
    let (home, discord) = (Home::new(), emulator());
    let running = gateway(&home, &discord, &[]);
    discord.invalidate_session(false);
    discord.dm(ALICE, "new session?");
    let dm = discord.dm_channel(ALICE);
    reply_in(&discord, &dm, "You said: new session?", &running);
    let counters = discord.counters();
    assert_eq!(counters.identifies, 2, "{counters:?}");
    assert_eq!(counters.failed_resumes, 0, "{counters:?}");
}

#[test]
fn heartbeats_without_acknowledgement_reconnect() {
    let (home, discord) = (Home::new(), emulator());
    let running = gateway(&home, &discord, &[]);
    discord.stop_acking();
    assert!(
        discord.wait_until(WAIT, |d| d.counters().resumes >= 1 && d.connected()),
        "{:?}\n{}",
        discord.counters(),
        running.logs()
    );
    let counters = discord.counters();
    assert_eq!(counters.identifies, 1, "{counters:?}");
    assert!(
        counters
            .client_close_codes
            .iter()
            .any(|code| *code != 1000 && *code != 1001),
        "the gateway closed the silent socket itself: {counters:?}"
    );
    assert!(running.wait_for_log("no heartbeat acknowledgement", WAIT));
    discord.dm(ALICE, "back?");
    let dm = discord.dm_channel(ALICE);
    reply_in(&discord, &dm, "You said: back?", &running);
}

#[test]
fn a_429_retry_after_is_honoured() {
    let (home, discord) = (Home::new(), emulator());
    let running = gateway(&home, &discord, &[]);
    discord.push_fault(Fault::RateLimited {
        retry_after: 2.5,
        global: false,
    });
    discord.dm(ALICE, "slowly");
    let dm = discord.dm_channel(ALICE);
    reply_in(&discord, &dm, "You said: slowly", &running);
    let attempts: Vec<_> = discord
        .attempts()
        .into_iter()
        .filter(|a| a.channel_id == dm)
        .collect();
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [429, 200],
        "{attempts:?}"
    );
    let waited = attempts[1].elapsed - attempts[0].elapsed;
    assert!(
        waited >= Duration::from_millis(2400),
        "retried after {waited:?}, before Discord's retry_after"
    );
    assert_eq!(discord.messages().len(), 1);
}

#[test]
fn a_user_who_refuses_dms_is_suppressed_not_retried() {
    let (home, discord) = (Home::new(), emulator());
    discord.block_dms(BOB);
    let running = gateway(&home, &discord, &[]);
    let id = discord.dm(BOB, "answer me");
    let dm = discord.dm_channel(BOB);
    let refused = eventually(WAIT, || {
        let n = discord
            .attempts()
            .iter()
            .filter(|a| a.channel_id == dm)
            .count();
        (n >= 1).then_some(())
    });
    assert!(refused.is_some(), "no attempt; log:\n{}", running.logs());
    settled(&home, &id);
    let suppressed = eventually(WAIT, || {
        let n = count(
            &home,
            "SELECT count(*) FROM outbox WHERE platform = 'discord' AND state = 'suppressed'",
        );
        (n == 1).then_some(())
    });
    assert!(suppressed.is_some(), "log:\n{}", running.logs());
    home.wait_drained(WAIT);
    let attempts: Vec<_> = discord
        .attempts()
        .into_iter()
        .filter(|a| a.channel_id == dm)
        .collect();
    assert_eq!(attempts.len(), 1, "not retried: {attempts:?}");
    assert_eq!((attempts[0].status, attempts[0].code), (403, Some(50007)));
    assert!(discord.messages().is_empty());
}

#[test]
fn a_missing_intent_stops_discord_with_one_line_while_the_webhook_answers() {
    let home = Home::new();
    let discord = emulator_with(|c| c.message_content_intent = false);
    let receiver = JsonReceiver::start();
    let outbound = receiver.url();
    let env = env(
        &discord,
        &[
            ("WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("WEBHOOK_OUTBOUND_URL", outbound.as_str()),
            ("WEBHOOK_HOST", "127.0.0.1"),
            ("WEBHOOK_PORT", "0"),
            ("WEBHOOK_ALLOWED_USERS", "alice"),
        ],
    );
    let gateway = Gateway::start_listening(
        home.path(),
        &env,
        "[webhook] JSON webhook server listening on ",
    );
    let expected = "[discord] receiving stopped: Discord refused the MESSAGE_CONTENT privileged intent (close 4014): enable Message Content Intent in the Developer Portal → your app → Bot → Privileged Gateway Intents";
    assert!(
        gateway.wait_for_log(expected, WAIT),
        "log:\n{}",
        gateway.logs()
    );
    let logs = gateway.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("4014")).collect();
    assert_eq!(lines.len(), 1, "one line: {lines:#?}");
    assert!(!logs.contains(TOKEN));
    // It stopped for good: the line is logged once the receive loop has returned, so nothing
    // is left that could connect again.
    assert_eq!(
        discord.counters().connections,
        1,
        "{:?}",
        discord.counters()
    );

    // The webhook runs on.
    let body = json!({"id": "w-1", "chat": "room-1", "sender": "alice", "text": "still here?"});
    let posted = http::request(
        gateway.addr(),
        "POST",
        "/webhooks/json",
        &[
            ("Content-Type", "application/json"),
            ("X-Hermes-Secret", WEBHOOK_SECRET),
        ],
        body.to_string().as_bytes(),
    )
    .expect("POST /webhooks/json");
    assert_eq!(posted.status, 200, "{posted:?}");
    let answered = eventually(WAIT, || {
        receiver
            .posts()
            .into_iter()
            .find(|p| p.body["text"] == "You said: still here?")
    });
    assert!(answered.is_some(), "log:\n{}", gateway.logs());
}

#[test]
fn send_and_cron_deliver_to_the_home_channel() {
    let (home, discord) = (Home::new(), emulator());
    let ops = discord.add_channel("ops");
    let env = env(&discord, &[("DISCORD_HOME_CHANNEL", ops.as_str())]);

    let out = run_hermes(&home, &env, &["send", "--to", "discord", "Hello **home**"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let sent = discord.wait_for_messages(1, WAIT);
    assert_eq!(
        (sent[0].channel_id.as_str(), sent[0].content.as_str()),
        (ops.as_str(), "Hello **home**"),
        "Markdown is kept: Discord renders it"
    );
    assert!(
        text(&out.stdout).contains(&sent[0].id),
        "{}",
        text(&out.stdout)
    );

    // An explicit channel, and a reply long enough to be split at Discord's 2,000 characters.
    let long = "A sentence that keeps the parts honest. ".repeat(80);
    let target = format!("discord:{GENERAL_CHANNEL}");
    let out = run_hermes(&home, &env, &["send", "--to", &target, &long]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sent = discord.wait_for_messages(3, WAIT);
    for (i, message) in sent[1..].iter().enumerate() {
        assert_eq!(message.channel_id, GENERAL_CHANNEL);
        assert!(message.content.chars().count() <= 2000);
        assert!(
            message.content.ends_with(&format!(" ({}/2)", i + 1)),
            "{}",
            message.content
        );
    }

    // A channel that does not exist is a permanent failure, reported.
    let out = run_hermes(
        &home,
        &env,
        &["send", "--to", "discord:1999999999999999999", "hi"],
    );
    assert!(!out.status.success());
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(report.contains("10003"), "{report}");

    // A cron job delivers to the home channel through the same path.
    run_cron_job(&home, &env, "Nightly report: all green", "discord");
    let sent = discord.wait_for_messages(4, WAIT);
    assert_eq!(
        (sent[3].channel_id.as_str(), sent[3].content.as_str()),
        (ops.as_str(), "Nightly report: all green")
    );
}

#[test]
fn setup_prints_the_portal_steps_and_the_doctor_checks_the_bot() {
    let home = Home::new();
    let out = run(
        home.path(),
        &[],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "discord",
            "--set",
            &format!("DISCORD_BOT_TOKEN={TOKEN}"),
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "https://discord.com/oauth2/authorize?client_id=1100000000000000001&scope=bot"
        ),
        "the invite link names the bot:\n{stdout}"
    );
    assert!(stdout.contains("Message Content Intent"), "{stdout}");
    assert!(!stdout.contains(TOKEN), "{stdout}");

    let discord = emulator();
    let settings = env(&discord, &[]);
    let out = run_hermes(&home, &settings, &["gateway", "doctor"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok       Discord bot: hermes (1100000000000000001)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok       Message Content Intent"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok       Discord home channel: #general"),
        "{stdout}"
    );

    discord.set_message_content_intent(false);
    let out = run_hermes(&home, &settings, &["gateway", "doctor"]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("problem  Message Content Intent")
            && stdout.contains("Privileged Gateway Intents"),
        "{stdout}"
    );

    let wrong = env(
        &discord,
        &[("DISCORD_BOT_TOKEN", "d3Jvbmc.wrong.token-not-the-bots")],
    );
    let out = run_hermes(&home, &wrong, &["gateway", "doctor"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("token rejected"), "{stdout}");
    assert!(!stdout.contains("d3Jvbmc.wrong"), "{stdout}");
}

#[test]
fn the_sandbox_talks_to_the_emulated_discord() {
    let home = Home::new();
    let mut command = command(home.path(), &[("TERM", "xterm")]);
    command.args(["gateway", "--sandbox", "--platform", "discord"]);
    let mut session = Session::spawn(command).expect("spawning hermes on a pty");
    let _ = session.get_process_mut().set_window_size(200, 50);
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
        .expect("Type a message")
        .expect("the sandbox is ready");
    session
        .send_line("Hello from the terminal")
        .expect("typing");
    session
        .expect("You said: Hello from the terminal")
        .expect("the bot's reply");
    session.send("\x04").expect("Ctrl-D");
    session
        .expect("sandbox closed")
        .expect("closes on end of input");
    session.expect(Eof).expect("exits");
}
