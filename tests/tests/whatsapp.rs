//! WhatsApp through Twilio (SPEC section 13), black-box: the real binary, the Twilio emulator
//! speaking WhatsApp (`whatsapp:` addresses, the 24-hour window and 63016, templates, `read`
//! callbacks, SHA-256 signing), SQLite and PostgreSQL.
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::http;
use platform_sms::emulator::Fault;

const WAIT: Duration = Duration::from_secs(30);
const TEMPLATE: &str = "HX0123456789abcdef0123456789abcdef";
const KEY: &str = "whsk_0123456789abcdef0123456789abcdef";
const REASON: &str = "outside WhatsApp's 24-hour window: set WHATSAPP_TEMPLATE_SID";

fn whatsapp(number: &str) -> String {
    format!("whatsapp:{number}")
}

/// `http://<the gateway's listener>`, where the emulator posts as a proxy would.
fn base(gw: &Gateway) -> String {
    format!("http://{}", gw.addr())
}

/// Starts a gateway with SMS and WhatsApp talking to `twilio`, with `extra` settings, and
/// turns the emulator's status callbacks on towards it.
fn start(
    home: &Home,
    twilio: &platform_sms::emulator::Emulator,
    extra: &[(&str, &str)],
) -> Gateway {
    let mut env = whatsapp_env(&twilio.base_url());
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let gw = Gateway::start(home.path(), &env);
    twilio.deliver_status_callbacks(Some(&base(&gw)));
    gw
}

/// The environment `hermes` commands of a test use, with `extra` settings.
fn env_with(
    twilio: &platform_sms::emulator::Emulator,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = whatsapp_env(&twilio.base_url());
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// `hermes send --to <to> <message>` on `home`: whether it succeeded, and what it said.
fn send(home: &Home, env: &[(String, String)], to: &str, message: &str) -> (bool, String) {
    let out = run_hermes(home, env, &["send", "--to", to, message]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.success(), said)
}

/// The parameters Twilio posts for an inbound WhatsApp text.
fn inbound<'a>(from: &'a str, body: &'a str, sid: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ProfileName", "Ada"),
        ("MessageType", "text"),
        ("SmsSid", sid),
        ("WaId", "15550001111"),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", "whatsapp:+14155238886"),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}

fn post(gw: &Gateway, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> u16 {
    let body = encode_form(params);
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    http::request(gw.addr(), "POST", path, &all, body.as_bytes())
        .expect("POST")
        .status
}

/// The provider's delivery status of message `sid` once it is `wanted` (waiting a while).
fn status_of(home: &Home, sid: &str, wanted: &str) -> Option<(String, Option<i64>)> {
    eventually(WAIT, || {
        let row: Option<(String, Option<i64>)> = home
            .db()
            .query_row(
                "SELECT status, error_code FROM delivery_status WHERE provider_id = ?1",
                [sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        row.filter(|(status, _)| status == wanted)
    })
}

#[test]
fn a_whatsapp_conversation_runs_on_the_sms_listener_next_to_sms() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let gw = start(&home, &twilio, &[]);
    // One listener for both: the ports are equal.
    let shared = format!("Twilio WhatsApp webhook listening on {}", gw.addr());
    assert!(gw.wait_for_log(&shared, WAIT), "{}", gw.logs());

    let wrote = twilio
        .whatsapp_text(ALICE, "**hello** there", "Ada", &[], Some(&base(&gw)))
        .expect("posting the WhatsApp message");
    assert_eq!(wrote.answered, 200, "{}", gw.logs());
    let sms = gw.text(ALICE, "by text", "SMw0000000000000000000000000000001");
    assert_eq!(sms.status, 200, "{sms:?}");

    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent.len(), 2, "{}", gw.logs());
    let on_whatsapp = sent
        .iter()
        .find(|m| m.to == whatsapp(ALICE))
        .unwrap_or_else(|| panic!("no WhatsApp reply: {sent:?}"));
    assert_eq!(
        on_whatsapp.from.as_deref(),
        Some(whatsapp(WHATSAPP_NUMBER).as_str())
    );
    // The echo agent's Markdown in WhatsApp's markup.
    assert_eq!(on_whatsapp.body, "You said: *hello* there");
    assert_eq!(on_whatsapp.content_sid, None);
    let on_sms = sent.iter().find(|m| m.to == ALICE).expect("an SMS reply");
    assert_eq!(on_sms.body, "You said: by text");
    assert_eq!(on_sms.from.as_deref(), Some(OUR_NUMBER));
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM inbound WHERE platform = 'whatsapp' AND chat = '+15550001111'"
        ),
        1
    );

    // Twilio's signed callbacks, read receipt included, are recorded against the message.
    let read = status_of(&home, &on_whatsapp.sid, "read");
    assert!(read.is_some(), "{}", gw.logs());
    let posted = eventually(WAIT, || {
        twilio
            .callbacks()
            .into_iter()
            .find(|c| c.sid == on_whatsapp.sid && c.status == "read")
    });
    assert_eq!(posted.and_then(|c| c.answered), Some(200));
    // A forged one is refused and changes nothing.
    let forged = status_callback(
        &on_whatsapp.sid,
        "whatsapp:+15550001111",
        "failed",
        Some("63016"),
    );
    let signature = sign("wrong-token", WHATSAPP_STATUS_URL, &forged);
    assert_eq!(
        post(
            &gw,
            "/webhooks/whatsapp/status",
            &forged,
            &[("X-Twilio-Signature", &signature)]
        ),
        403
    );
    assert!(status_of(&home, &on_whatsapp.sid, "read").is_some());

    // /status tells the window is open.
    let asked = twilio
        .whatsapp_text(ALICE, "/status", "Ada", &[], Some(&base(&gw)))
        .expect("posting /status");
    assert_eq!(asked.answered, 200);
    let sent = twilio.wait_for_messages(3, WAIT);
    let status = &sent.last().expect("a reply").body;
    assert!(
        status.contains("Reply window: open for 2") && !status.contains("closed"),
        "{status}"
    );
}

#[test]
fn the_profile_name_is_the_chats_display_name_the_agent_is_told() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let llm = FakeLlm::start();
    llm.set_reply("Hello Ada!");
    let url = llm.base_url();
    let gw = start(
        &home,
        &twilio,
        &[
            ("HERMES_AGENT", "openai"),
            ("HERMES_AGENT_URL", url.as_str()),
            ("HERMES_AGENT_MODEL", "test-model"),
        ],
    );
    let wrote = twilio
        .whatsapp_text(ALICE, "hi", "Ada Lovelace", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(wrote.answered, 200, "{}", gw.logs());
    let asked = llm.wait_for_requests(1, WAIT);
    let system = asked[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        system.ends_with("The person you are talking with goes by the name Ada Lovelace."),
        "{system}"
    );
    assert_eq!(twilio.wait_for_messages(1, WAIT)[0].body, "Hello Ada!");
    let status = twilio
        .whatsapp_text(ALICE, "/status", "Ada Lovelace", &[], Some(&base(&gw)))
        .expect("posting /status");
    assert_eq!(status.answered, 200);
    let sent = twilio.wait_for_messages(2, WAIT);
    assert!(
        sent[1]
            .body
            .contains("This conversation with Ada Lovelace has"),
        "{}",
        sent[1].body
    );
    // The name is not logged: it is personal, like the number.
    assert!(!gw.logs().contains("Lovelace"), "{}", gw.logs());
}

#[test]
fn a_whatsapp_reply_twilio_took_without_answering_is_found_in_its_message_list() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let gw = start(
        &home,
        &twilio,
        &[
            ("TWILIO_REQUEST_TIMEOUT_SECS", "1"),
            ("TWILIO_RECONCILE_AFTER_SECS", "1"),
        ],
    );
    twilio.push_fault(Fault::AcceptThenHang);
    let wrote = twilio
        .whatsapp_text(ALICE, "hello", "Ada", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(wrote.answered, 200);
    let taken = twilio.wait_for_messages(1, WAIT);
    assert!(gw.wait_for_log("was sent after all", WAIT), "{}", gw.logs());
    // Looked up by the WhatsApp addresses, and never sent again.
    let queries = twilio.list_queries();
    assert!(!queries.is_empty());
    assert!(
        queries.iter().all(|q| {
            q.iter().any(|(k, v)| k == "To" && *v == whatsapp(ALICE))
                && q.iter()
                    .any(|(k, v)| k == "From" && *v == whatsapp(WHATSAPP_NUMBER))
        }),
        "{queries:?}"
    );
    gw.settle(WAIT);
    assert_eq!(twilio.attempts().len(), 1);
    let sid: String = home
        .db()
        .query_row(
            "SELECT provider_id FROM outbox WHERE platform = 'whatsapp' AND state = 'sent'",
            [],
            |r| r.get(0),
        )
        .expect("recorded as sent");
    assert_eq!(sid, taken[0].sid);
}

#[test]
fn stop_on_whatsapp_suppresses_the_chat_until_start() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let gw = start(&home, &twilio, &[]);
    let stop = twilio
        .whatsapp_text(ALICE, "STOP", "Ada", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(stop.answered, 200);
    gw.settle(WAIT);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM suppressions WHERE platform = 'whatsapp'"
        ),
        1
    );
    let env = env_with(&twilio, &[]);
    let (_, said) = send(&home, &env, &format!("whatsapp:{ALICE}"), "news");
    assert!(said.contains("opted out"), "{said}");
    assert!(
        twilio
            .attempts()
            .iter()
            .all(|a| a.body.as_deref() != Some("news"))
    );
    let start_again = twilio
        .whatsapp_text(ALICE, "START", "Ada", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(start_again.answered, 200);
    gw.settle(WAIT);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM suppressions WHERE platform = 'whatsapp'"
        ),
        0
    );
}

#[test]
fn a_repeated_message_sid_is_answered_once_and_bad_signatures_are_refused() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let gw = start(&home, &twilio, &[]);
    let sid = "SMw0000000000000000000000000000002";
    let params = inbound("whatsapp:+15550001111", "once", sid);
    let signature = sign(AUTH_TOKEN, WHATSAPP_URL, &params);
    for _ in 0..2 {
        let answered = post(
            &gw,
            "/webhooks/whatsapp",
            &params,
            &[("X-Twilio-Signature", &signature)],
        );
        assert_eq!(answered, 200, "{}", gw.logs());
    }
    gw.settle(WAIT);
    let sent = twilio.messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].body, "You said: once");
    assert!(
        gw.wait_for_log("[whatsapp] duplicate message", WAIT),
        "{}",
        gw.logs()
    );

    // A wrong token, and a signature over the SMS route's URL: 403, nothing stored.
    let other = "SMw0000000000000000000000000000003";
    let params = inbound("whatsapp:+15550001111", "forged", other);
    for signature in [
        sign("wrong-token", WHATSAPP_URL, &params),
        sign(AUTH_TOKEN, WEBHOOK_URL, &params),
    ] {
        let answered = post(
            &gw,
            "/webhooks/whatsapp",
            &params,
            &[("X-Twilio-Signature", &signature)],
        );
        assert_eq!(answered, 403);
    }
    assert!(
        gw.wait_for_log("[whatsapp] webhook rejected: invalid signature", WAIT),
        "{}",
        gw.logs()
    );
    assert!(
        gw.wait_for_log("WHATSAPP_WEBHOOK_URL", WAIT),
        "{}",
        gw.logs()
    );
    // An SMS sender posted to the WhatsApp route, signed, is not a WhatsApp message.
    let sms_from = inbound(ALICE, "not whatsapp", other);
    let signature = sign(AUTH_TOKEN, WHATSAPP_URL, &sms_from);
    assert_eq!(
        post(
            &gw,
            "/webhooks/whatsapp",
            &sms_from,
            &[("X-Twilio-Signature", &signature)]
        ),
        400
    );
    assert_eq!(
        count(
            &home,
            &format!("SELECT COUNT(*) FROM inbound WHERE provider_id = '{other}'")
        ),
        0
    );
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1);
}

#[test]
fn outside_the_window_cron_and_send_fail_at_once_without_a_template_and_go_as_it_with_one() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    // Bob never wrote: his window is closed.
    let env = env_with(&twilio, &[("WHATSAPP_HOME_CHANNEL", BOB)]);
    let (ok, said) = send(&home, &env, "whatsapp", "the news");
    assert!(!ok, "{said}");
    assert!(said.contains(&format!("not delivered: {REASON}")), "{said}");

    let add = [
        "cron",
        "add",
        "--schedule",
        "every 1h",
        "--command",
        "echo 'daily digest'",
        "--deliver",
        "whatsapp",
    ];
    let added = run_hermes(&home, &env, &add);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let id = text(&added.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let run = run_hermes(&home, &env, &["cron", "run", &id]);
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert!(!run.status.success(), "{said}");
    assert!(said.contains(REASON), "{said}");
    let recorded: (String, String) = home
        .db()
        .query_row(
            &format!("SELECT status, deliveries FROM cron_runs WHERE job_id = {id}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the run is recorded");
    assert_eq!(recorded.0, "failed");
    assert!(recorded.1.contains(REASON), "{}", recorded.1);
    // Nothing reached Twilio, nothing is queued to retry.
    assert!(twilio.attempts().is_empty());
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')"
        ),
        0
    );

    // With an approved template, the output goes as it: ContentSid and the text as {{1}}.
    twilio.add_template(TEMPLATE, "Update from your assistant: {{1}}");
    let env = env_with(
        &twilio,
        &[
            ("WHATSAPP_HOME_CHANNEL", BOB),
            ("WHATSAPP_TEMPLATE_SID", TEMPLATE),
        ],
    );
    let run = run_hermes(&home, &env, &["cron", "run", &id]);
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "{said}");
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{said}");
    assert_eq!(sent[0].to, whatsapp(BOB));
    assert_eq!(sent[0].content_sid.as_deref(), Some(TEMPLATE));
    assert_eq!(
        sent[0].content_variables.as_deref(),
        Some(r#"{"1":"daily digest"}"#)
    );
    assert_eq!(sent[0].body, "Update from your assistant: daily digest");
    let params = &twilio.attempts()[0].params;
    assert!(params.iter().all(|(k, _)| k != "Body"), "{params:?}");
    // A file cannot go in a template.
    let file = tempfile::NamedTempFile::new().expect("a file");
    std::fs::write(file.path(), b"not a picture").expect("written");
    let dir = file
        .path()
        .parent()
        .expect("its folder")
        .display()
        .to_string();
    let env = env_with(
        &twilio,
        &[
            ("WHATSAPP_TEMPLATE_SID", TEMPLATE),
            ("HERMES_MEDIA_DIRS", &dir),
        ],
    );
    let with_file = format!("Here:\nMEDIA:{}", file.path().display());
    let (ok, said) = send(&home, &env, &format!("whatsapp:{BOB}"), &with_file);
    assert!(!ok, "{said}");
    assert!(said.contains("a file cannot go in the template"), "{said}");
    assert_eq!(twilio.attempts().len(), 1);
}

#[test]
fn twilios_63016_fails_the_message_once_with_the_reason() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let gw = start(&home, &twilio, &[]);
    let wrote = twilio
        .whatsapp_text(ALICE, "hi", "Ada", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(wrote.answered, 200);
    assert_eq!(twilio.wait_for_messages(1, WAIT).len(), 1, "{}", gw.logs());
    // Twilio's clock says the window has closed, the gateway's record does not: the message
    // is accepted, then fails with 63016.
    twilio.expire_window(ALICE);
    let env = env_with(&twilio, &[]);
    let (ok, said) = send(&home, &env, &format!("whatsapp:{ALICE}"), "late news");
    assert!(ok, "{said}");
    let sent = twilio.wait_for_messages(2, WAIT);
    let late = sent
        .iter()
        .find(|m| m.body == "late news")
        .expect("sent once");
    let failed = status_of(&home, &late.sid, "failed");
    assert_eq!(
        failed.map(|(_, code)| code),
        Some(Some(63016)),
        "{}",
        gw.logs()
    );
    assert!(
        gw.wait_for_log(
            "outside WhatsApp's 24-hour window: set WHATSAPP_TEMPLATE_SID",
            WAIT
        ),
        "{}",
        gw.logs()
    );
    gw.settle(WAIT);
    assert_eq!(twilio.attempts().len(), 2, "not retried");
    let listed = run_hermes(&home, &env, &["outbox", "list", "--json"]);
    let listed = text(&listed.stdout);
    assert!(listed.contains("63016"), "{listed}");
}

#[test]
fn whatsapp_webhooks_signed_with_the_shared_key_are_taken_and_checked() {
    let home = Home::new();
    let twilio = whatsapp_emulator();
    let gw = start(&home, &twilio, &[("TWILIO_WEBHOOK_SHARED_KEY", KEY)]);
    twilio.sign_with_shared_key("HMAC_SHA256", KEY);
    let wrote = twilio
        .whatsapp_text(ALICE, "sha-256", "Ada", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(wrote.answered, 200, "{}", gw.logs());
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent[0].body, "You said: sha-256");
    // Its status callbacks are signed the same way, and recorded.
    assert!(
        status_of(&home, &sent[0].sid, "read").is_some(),
        "{}",
        gw.logs()
    );

    for (algorithm, key) in [("HMAC_SHA256", "whsk_wrong"), ("HMAC_SHA512", KEY)] {
        twilio.sign_with_shared_key(algorithm, key);
        let refused = twilio
            .whatsapp_text(ALICE, "refused", "Ada", &[], Some(&base(&gw)))
            .expect("posting");
        assert_eq!(refused.answered, 403, "{algorithm}");
    }
    assert!(
        gw.wait_for_log("[whatsapp] webhook rejected", WAIT)
            && gw.wait_for_log("TWILIO_WEBHOOK_SHARED_KEY", WAIT),
        "{}",
        gw.logs()
    );
    drop(gw);

    // No key configured: the header is refused, naming the variable.
    let home = Home::new();
    let gw = start(&home, &twilio, &[]);
    twilio.sign_with_shared_key("HMAC_SHA256", KEY);
    let refused = twilio
        .whatsapp_text(ALICE, "no key", "Ada", &[], Some(&base(&gw)))
        .expect("posting");
    assert_eq!(refused.answered, 403);
    assert!(
        gw.wait_for_log("TWILIO_WEBHOOK_SHARED_KEY", WAIT),
        "{}",
        gw.logs()
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 0);
}

#[test]
fn two_gateways_on_postgresql_share_a_chats_window() {
    let Some(db) = gateway_tests::postgres::TestDatabase::new("whatsapp_window") else {
        return;
    };
    let url = db.url();
    let twilio = whatsapp_emulator();
    let (home_a, home_b) = (Home::new(), Home::new());
    let shared = [("HERMES_DATABASE_URL", url.as_str())];
    let a = start(&home_a, &twilio, &shared);
    let b = start(&home_b, &twilio, &shared);
    // Alice writes to A.
    let wrote = twilio
        .whatsapp_text(ALICE, "hello A", "Ada", &[], Some(&base(&a)))
        .expect("posting");
    assert_eq!(wrote.answered, 200, "{}", a.logs());
    assert_eq!(
        twilio.wait_for_messages(1, WAIT).len(),
        1,
        "{}{}",
        a.logs(),
        b.logs()
    );

    // B's side knows her window is open: a free-form message, no template needed.
    let env = env_with(&twilio, &shared);
    let (ok, said) = send(&home_b, &env, &format!("whatsapp:{ALICE}"), "from B");
    assert!(ok, "{said}");
    let sent = twilio.wait_for_messages(2, WAIT);
    let from_b = sent.iter().find(|m| m.body == "from B").expect("sent");
    assert_eq!(from_b.content_sid, None);
    // Bob never wrote to either: closed on both.
    let (ok, said) = send(&home_b, &env, &format!("whatsapp:{BOB}"), "hi Bob");
    assert!(!ok && said.contains(REASON), "{said}");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM chat_windows WHERE platform = 'whatsapp' AND chat = '+15550001111'"),
        1
    );
    drop((a, b));
}
