//! The JSON webhook platform, black-box: a platform added as one crate and one feature line
//! shows up in `hermes platforms` with its settings from `.env`, is offered by the setup wizard,
//! receives cron and `hermes send` output at its home channel, and carries a conversation with
//! the agent both ways, refusing requests without its shared secret.
//!
//! A small receiving server (`gateway_tests::json_receiver`) plays the system at
//! `WEBHOOK_OUTBOUND_URL`.
use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};
use gateway_tests::harness::*;
use gateway_tests::http::{self, Response};
use gateway_tests::json_receiver::JsonReceiver;
use serde_json::{Value, json};

const SECRET: &str = "s3cret-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);
/// Where scheduled output goes in these tests.
const HOME_CHAT: &str = "ops-room";

/// The webhook's environment, sending to `receiver`, plus `extra`.
fn env(receiver: &JsonReceiver, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_OUTBOUND_URL", receiver.url().as_str()),
        ("WEBHOOK_HOST", "127.0.0.1"),
        ("WEBHOOK_PORT", "0"),
        ("WEBHOOK_ALLOWED_USERS", "alice, bob"),
        ("WEBHOOK_HOME_CHANNEL", HOME_CHAT),
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

/// `hermes gateway` with only the JSON webhook, stopped when dropped.
struct WebhookGateway {
    gateway: Gateway,
    addr: SocketAddr,
}

impl WebhookGateway {
    fn start(home: &Home, env: &[(String, String)]) -> WebhookGateway {
        let gateway = Gateway::start_listening(
            home.path(),
            env,
            "[webhook] JSON webhook server listening on ",
        );
        let addr = gateway
            .addr
            .unwrap_or_else(|| panic!("the webhook never listened; log:\n{}", gateway.logs()));
        WebhookGateway { gateway, addr }
    }

    fn logs(&self) -> String {
        self.gateway.logs()
    }

    /// Posts a message to the route, as the other system would.
    fn post(&self, secret: Option<&str>, message: &Value) -> Response {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(secret) = secret {
            headers.push(("X-Hermes-Secret", secret));
        }
        let body = message.to_string();
        http::request(
            self.addr,
            "POST",
            "/webhooks/json",
            &headers,
            body.as_bytes(),
        )
        .expect("POST /webhooks/json")
    }
}

fn message(id: &str, chat: &str, sender: &str, text: &str) -> Value {
    json!({"id": id, "chat": chat, "sender": sender, "text": text})
}

#[test]
fn it_is_listed_with_its_settings_from_dotenv() {
    let home = Home::new();
    let row = |out: &Output| platforms_row(out, "webhook");
    let out = run(home.path(), &[], &["platforms"], "");
    assert!(out.status.success());
    let listed = row(&out);
    assert!(
        listed.contains("JSON webhook") && listed.contains("disabled"),
        "{listed}"
    );
    assert!(listed.contains("WEBHOOK_SECRET not set"), "{listed}");

    home.write_env(&format!(
        "WEBHOOK_SECRET={SECRET}\nWEBHOOK_OUTBOUND_URL=https://bridge.example.com/hermes\n"
    ));
    let listed = row(&run(home.path(), &[], &["platforms"], ""));
    assert!(
        listed.contains("enabled") && !listed.contains("disabled"),
        "{listed}"
    );

    let off = run(
        home.path(),
        &[("WEBHOOK_ENABLED", "false")],
        &["platforms"],
        "",
    );
    assert!(row(&off).contains("WEBHOOK_ENABLED=false"), "{}", row(&off));

    // A weak secret is named, with the file it came from, and never shown.
    home.write_env(
        "WEBHOOK_SECRET=hunter2\nWEBHOOK_OUTBOUND_URL=https://bridge.example.com/hermes\n",
    );
    let listed = row(&run(home.path(), &[], &["platforms"], ""));
    assert!(
        listed.contains("error") && listed.contains("WEBHOOK_SECRET") && listed.contains(".env"),
        "{listed}"
    );
    assert!(!listed.contains("hunter2"), "{listed}");
}

#[test]
fn the_setup_wizard_offers_it_and_writes_its_settings() {
    let home = Home::new();
    let out = run(
        home.path(),
        &[],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "webhook",
            "--set",
            &format!("WEBHOOK_SECRET={SECRET}"),
            "--set",
            "WEBHOOK_OUTBOUND_URL=https://bridge.example.com/hermes",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        home.read_env(),
        format!(
            "WEBHOOK_SECRET={SECRET}\nWEBHOOK_OUTBOUND_URL=https://bridge.example.com/hermes\n"
        )
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("curl -X POST http://localhost:8090/webhooks/json"),
        "the guide's next steps are printed:\n{stdout}"
    );
    assert!(!stdout.contains(SECRET), "{stdout}");

    // Interactively, it is one of the platforms to pick.
    let home = Home::new();
    let mut command = command(home.path(), &[("TERM", "xterm")]);
    command.args(["gateway", "setup"]);
    let mut wizard = Session::spawn(command).expect("spawning hermes on a pty");
    let _ = wizard.get_process_mut().set_window_size(200, 50);
    wizard.set_expect_timeout(Some(Duration::from_secs(20)));
    let expect = |wizard: &mut OsSession, needle: &str| {
        if let Err(err) = wizard.expect(needle) {
            panic!("waiting for {needle:?}: {err}");
        }
    };
    expect(&mut wizard, "JSON webhook (webhook)");
    wizard.send("JSON web\r").expect("typing");
    expect(&mut wizard, "A shared secret");
    expect(&mut wizard, "WEBHOOK_SECRET");
    wizard.send(format!("{SECRET}\r")).expect("typing");
    expect(&mut wizard, "WEBHOOK_OUTBOUND_URL");
    wizard
        .send("https://bridge.example.com/hermes\r")
        .expect("typing");
    expect(&mut wizard, "WEBHOOK_ALLOWED_USERS");
    wizard.send("alice\r").expect("typing");
    expect(&mut wizard, "WEBHOOK_ALLOW_ALL_USERS");
    wizard.send("n\r").expect("typing");
    expect(&mut wizard, "WEBHOOK_HOME_CHANNEL");
    wizard.send("ops-room\r").expect("typing");
    expect(&mut wizard, "advanced settings?");
    wizard.send("\r").expect("typing");
    expect(&mut wizard, "Set up the agent too");
    wizard.send("n\r").expect("typing");
    expect(&mut wizard, "Wrote 4 setting(s)");
    let _ = wizard.expect(Eof);
    let status = wizard.get_process().wait().expect("exit status");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    assert_eq!(
        home.read_env(),
        format!(
            "WEBHOOK_SECRET={SECRET}\nWEBHOOK_OUTBOUND_URL=https://bridge.example.com/hermes\nWEBHOOK_ALLOWED_USERS=alice\nWEBHOOK_HOME_CHANNEL=ops-room\n"
        )
    );
}

#[test]
fn send_and_cron_deliver_to_its_home_channel() {
    let (home, receiver) = (Home::new(), JsonReceiver::start());
    let env = env(&receiver, &[]);

    let out = run_hermes(&home, &env, &["send", "--to", "webhook", "Hello **home**"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let posts = receiver.wait_for(1, WAIT);
    assert_eq!(
        posts[0].body,
        json!({"chat": HOME_CHAT, "text": "Hello **home**", "part": 1, "parts": 1}),
        "Markdown is kept for the receiving system"
    );
    assert_eq!(posts[0].secret.as_deref(), Some(SECRET));
    assert!(text(&out.stdout).contains("rcv-1"), "{}", text(&out.stdout));

    // An explicit chat, and a reply long enough to be split: each part says where it stands.
    let long = "A sentence that keeps the parts honest. ".repeat(150);
    let out = run_hermes(&home, &env, &["send", "--to", "webhook:room-9", &long]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let posts = receiver.wait_for(3, WAIT);
    for (i, post) in posts[1..].iter().enumerate() {
        assert_eq!(post.body["chat"], "room-9");
        assert_eq!(
            (post.body["part"].as_u64(), post.body["parts"].as_u64()),
            (Some(i as u64 + 1), Some(2))
        );
        let body = post.body["text"].as_str().unwrap_or_default();
        assert!(body.ends_with(&format!(" ({}/2)", i + 1)), "{body}");
        assert!(body.chars().count() <= 4000);
    }

    // A cron job delivers to the home channel through the same path.
    run_cron_job(&home, &env, "Nightly report: all green", "webhook");
    let posts = receiver.wait_for(4, WAIT);
    assert_eq!(
        posts[3].body,
        json!({"chat": HOME_CHAT, "text": "Nightly report: all green", "part": 1, "parts": 1})
    );
}

#[test]
fn a_message_round_trips_through_the_agent_and_the_secret_is_enforced() {
    let (home, receiver) = (Home::new(), JsonReceiver::start());
    // The first reply is refused once: the part is retried, not lost.
    receiver.fail_next(1);
    let gateway = WebhookGateway::start(&home, &env(&receiver, &[]));

    let stored = gateway.post(
        Some(SECRET),
        &message("m-1", "room-1", "alice", "Hello there"),
    );
    assert_eq!(stored.status, 200, "{stored:?}");
    let posts = receiver.wait_for(2, WAIT);
    assert_eq!(posts[0].status, 500);
    assert_eq!(posts[1].status, 200);
    for post in &posts {
        assert_eq!(
            post.body,
            json!({"chat": "room-1", "text": "You said: Hello there", "part": 1, "parts": 1})
        );
        assert_eq!(post.secret.as_deref(), Some(SECRET));
    }

    // A retried delivery of the same message is acknowledged and not answered twice.
    let again = gateway.post(
        Some(SECRET),
        &message("m-1", "room-1", "alice", "Hello there"),
    );
    assert_eq!(again.status, 200);

    // Without the secret, or with a wrong one: 403 and nothing stored.
    let inbound = || count(&home, "SELECT count(*) FROM inbound");
    let before = inbound();
    for secret in [None, Some("s3cret-0123456789abcdeX"), Some("")] {
        let refused = gateway.post(secret, &message("m-2", "room-1", "alice", "let me in"));
        assert_eq!(refused.status, 403, "{refused:?}");
    }
    assert_eq!(inbound(), before);

    // Malformed messages are refused with the reason.
    let bad = gateway.post(Some(SECRET), &json!({"id": "m-3", "chat": "room-1"}));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("sender"), "{}", bad.body);

    // A sender who is not allowed gets no agent turn; bob, who is, gets his answer.
    let stranger = gateway.post(Some(SECRET), &message("m-4", "room-2", "mallory", "hi"));
    assert_eq!(stranger.status, 200);
    let bob = gateway.post(Some(SECRET), &message("m-5", "room-3", "bob", "ping"));
    assert_eq!(bob.status, 200);
    let posts = receiver.wait_for(3, WAIT);
    assert_eq!(
        posts[2].body,
        json!({"chat": "room-3", "text": "You said: ping", "part": 1, "parts": 1})
    );
    let settled = eventually(WAIT, || {
        let done = count(
            &home,
            "SELECT count(*) FROM inbound WHERE provider_id = 'm-4' AND state != 'pending'",
        );
        (done == 1).then_some(())
    });
    assert!(settled.is_some(), "mallory's message is handled");
    let replies = |chat: &str| {
        count(
            &home,
            &format!("SELECT count(*) FROM outbox WHERE platform = 'webhook' AND chat = '{chat}'"),
        )
    };
    assert_eq!(replies("room-2"), 0, "no reply to a stranger");
    assert_eq!(
        replies("room-1"),
        1,
        "a redelivered message is answered once"
    );
    assert_eq!(receiver.posts().len(), 3);
    assert!(
        !gateway.logs().contains(SECRET),
        "the secret never reaches the log"
    );
}
