//! The Discord client (receive loop, sender, doctor) against the emulator.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use platform_api::{
    Accepted, ConfigSection, Inbound, InboundSink, Lookup, Part, Platform, SendError, SinkError,
    Verdict, async_trait,
};

use super::*;
use crate::Discord;
use crate::MAX_MESSAGE_CHARS;
use crate::settings::DiscordSettings;

mod media;

const TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GtEsT1.emulator-token-0123456789abcdefghij";
const ALICE: &str = "2000000000000000001";
const BOB: &str = "2000000000000000002";
const WAIT: Duration = Duration::from_secs(15);

fn install_crypto() {
    // The host selects the TLS provider at start-up; a test has to do it itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn emulator_with(change: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    install_crypto();
    let mut config = EmulatorConfig::new(TOKEN);
    config.heartbeat_interval = Duration::from_millis(200);
    change(&mut config);
    Emulator::start(config).expect("the emulator starts")
}

fn emulator() -> Emulator {
    emulator_with(|_| {})
}

fn platform(emulator: &Emulator, token: &str) -> Arc<Discord> {
    let api = emulator.api_base_url();
    let section = ConfigSection::from_pairs([
        ("DISCORD_BOT_TOKEN", token),
        ("DISCORD_API_BASE_URL", api.as_str()),
        ("DISCORD_ALLOW_ALL_USERS", "true"),
    ]);
    Arc::new(Discord::new(
        DiscordSettings::from_config(&section).unwrap(),
    ))
}

/// A sink that records what it accepts, and refuses while told to.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<Inbound>>,
    refuse: AtomicUsize,
}

#[async_trait(?Send)]
impl InboundSink for Recorder {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SinkError::Unavailable("disk full".into()));
        }
        let mut got = self.got.lock().unwrap();
        if got.iter().any(|m| m.provider_id == inbound.provider_id) {
            return Ok(Accepted::Duplicate);
        }
        got.push(inbound);
        Ok(Accepted::Stored)
    }
}

impl Recorder {
    fn got(&self) -> Vec<Inbound> {
        self.got.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<Inbound> {
        let deadline = Instant::now() + WAIT;
        while self.got().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.got()
    }
}

/// The real receive loop on an actix system of its own thread.
struct Receiving {
    sink: Arc<Recorder>,
    result: std::sync::mpsc::Receiver<Result<(), String>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiving {
    fn start(platform: &Arc<Discord>) -> Receiving {
        let sink = Arc::new(Recorder::default());
        let (result_tx, result) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let platform = Arc::clone(platform);
        let host_sink: Arc<dyn InboundSink> = sink.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                tokio::select! {
                    ended = platform.receive(host_sink) => { let _ = result_tx.send(ended); }
                    _ = stopped => {}
                }
            });
        });
        Receiving {
            sink,
            result,
            stop: Some(stop),
        }
    }

    /// What `receive` returned, if it returned within `timeout`.
    fn ended(&self, timeout: Duration) -> Option<Result<(), String>> {
        self.result.recv_timeout(timeout).ok()
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    actix_web::rt::System::new().block_on(future)
}

fn connected(emulator: &Emulator) {
    assert!(
        emulator.wait_until(WAIT, Emulator::connected),
        "the client never connected: {:?}",
        emulator.counters()
    );
}

#[test]
fn a_direct_message_arrives_and_the_reply_goes_back() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    let id =
        emulator.post(Post::dm(ALICE, "hello there").attach("cat.png", Some("image/png"), PNG_1X1));
    let got = receiving.sink.wait_for(1);
    assert_eq!(got.len(), 1);
    let channel = emulator.dm_channel(ALICE);
    assert_eq!(got[0].chat, channel);
    assert_eq!(got[0].sender, ALICE);
    assert_eq!(got[0].text, "hello there");
    assert_eq!(got[0].provider_id, id);
    assert_eq!(
        got[0].attachments[0].content_type.as_deref(),
        Some("image/png")
    );
    // The client hands on the attachment's URL, which serves the file's bytes.
    let (status, _, bytes) = fetch(&got[0].attachments[0].url);
    assert_eq!((status, bytes.as_slice()), (200, PNG_1X1));

    let receipt = block_on(async {
        discord.typing(&channel).await;
        discord
            .send(&channel, &Part::plain("You said: **hello there**"))
            .await
    })
    .unwrap();
    let sent = emulator.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, receipt.provider_id);
    assert_eq!(
        (sent[0].channel_id.as_str(), sent[0].content.as_str()),
        (channel.as_str(), "You said: **hello there**")
    );
    assert_eq!(emulator.typing()[0].channel_id, channel);

    // Heartbeats carry on, acknowledged, on the one connection.
    std::thread::sleep(Duration::from_millis(700));
    let counters = emulator.counters();
    assert!(counters.heartbeats >= 2, "{counters:?}");
    assert_eq!((counters.identifies, counters.connections), (1, 1));
}

#[test]
fn guild_messages_are_answered_only_when_addressed_to_the_bot() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    emulator.post(Post::guild(ALICE, GENERAL_CHANNEL, "just chatting"));
    emulator.post(
        Post::guild(BOB, GENERAL_CHANNEL, "I am a bot")
            .mention()
            .from_bot(),
    );
    let mention = emulator.post(Post::guild(ALICE, GENERAL_CHANNEL, "what time is it?").mention());
    let got = receiving.sink.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].provider_id, mention);
    assert_eq!(got[0].text, "what time is it?");
    assert_eq!(got[0].chat, GENERAL_CHANNEL);

    // A reply to the bot's own message needs no mention; the bot's own message is not answered.
    let receipt = block_on(discord.send(GENERAL_CHANNEL, &Part::plain("It is noon."))).unwrap();
    let reply = emulator
        .post(Post::guild(BOB, GENERAL_CHANNEL, "and tomorrow?").reply_to(&receipt.provider_id));
    let got = receiving.sink.wait_for(2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[1].provider_id.as_str(), got[1].sender.as_str()),
        (reply.as_str(), BOB)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiving.sink.got().len(), 2);
}

#[test]
fn a_dropped_socket_is_resumed_and_nothing_is_lost() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    emulator.dm(ALICE, "before");
    receiving.sink.wait_for(1);
    emulator.drop_sockets();
    assert!(emulator.wait_until(WAIT, |e| !e.connected()));
    // Sent while no socket is connected: replayed by the resume.
    let during = emulator.dm(ALICE, "while you were away");
    let got = receiving.sink.wait_for(2);
    assert_eq!(got.len(), 2, "{:?}", emulator.counters());
    assert_eq!(got[1].provider_id, during);
    let counters = emulator.counters();
    assert_eq!(counters.identifies, 1, "{counters:?}");
    assert_eq!(counters.resumes, 1, "{counters:?}");
    assert_eq!(
        counters.resume_url_connections, 1,
        "resumed on resume_gateway_url"
    );
    connected(&emulator);
    emulator.dm(ALICE, "after");
    assert_eq!(receiving.sink.wait_for(3).len(), 3);
}

#[test]
fn missing_heartbeat_acks_close_the_socket_and_resume() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    emulator.stop_acking();
    assert!(
        emulator.wait_until(WAIT, |e| e.counters().resumes == 1),
        "{:?}",
        emulator.counters()
    );
    let counters = emulator.counters();
    assert_eq!(counters.identifies, 1);
    assert!(
        counters
            .client_close_codes
            .iter()
            .all(|code| *code != 1000 && *code != 1001),
        "the client closes with a code that keeps the session: {counters:?}"
    );
    assert!(!counters.client_close_codes.is_empty(), "{counters:?}");
    emulator.dm(ALICE, "still there?");
    assert_eq!(receiving.sink.wait_for(1).len(), 1);
}

#[test]
fn reconnect_and_invalid_session_are_obeyed() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    emulator.request_reconnect();
    assert!(emulator.wait_until(WAIT, |e| e.counters().resumes == 1 && e.connected()));
    // A resumable invalid session resumes too.
    emulator.invalidate_session(true);
    assert!(emulator.wait_until(WAIT, |e| e.counters().resumes == 2 && e.connected()));
    // A session that cannot be resumed is replaced, after a pause of 1–5 s.
    let invalidated = Instant::now();
    emulator.invalidate_session(false);
    let during = emulator.dm(ALICE, "sent while the session was invalid");
    assert!(
        emulator.wait_until(WAIT, |e| e.counters().identifies == 2 && e.connected()),
        "{:?}",
        emulator.counters()
    );
    assert!(invalidated.elapsed() >= Duration::from_millis(900));
    let got = receiving.sink.wait_for(1);
    assert_eq!(got[0].provider_id, during);
    assert_eq!(emulator.counters().resumes, 2);
}

#[test]
fn close_codes_resume_or_identify_and_op_1_is_answered_at_once() {
    // Heartbeats are a minute apart: one sent within a second was asked for.
    let emulator = emulator_with(|c| c.heartbeat_interval = Duration::from_secs(60));
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    let before = emulator.counters().heartbeats;
    emulator.request_heartbeat();
    assert!(
        emulator.wait_until(Duration::from_secs(1), |e| e.counters().heartbeats > before),
        "{:?}",
        emulator.counters()
    );

    // An unknown error resumes; a timed-out session identifies anew.
    emulator.close_sockets(4000);
    assert!(emulator.wait_until(WAIT, |e| e.counters().resumes == 1 && e.connected()));
    emulator.close_sockets(4009);
    assert!(emulator.wait_until(WAIT, |e| e.counters().identifies == 2 && e.connected()));
    emulator.dm(ALICE, "all good?");
    assert_eq!(receiving.sink.wait_for(1).len(), 1);
    assert_eq!(emulator.counters().resumes, 1);
}

/// Sends `part` to `#general` while Discord creates the message but answers too late:
/// the outcome is unknown.
fn send_unanswered(emulator: &Emulator, discord: &Discord, part: &Part) {
    emulator.push_fault(Fault::AcceptThenDelay(Duration::from_secs(3)));
    let sent = block_on(crate::sender::send_part_within(
        &discord.rest,
        GENERAL_CHANNEL,
        part,
        Duration::from_millis(300),
    ));
    assert!(matches!(sent, Err(SendError::Ambiguous { .. })), "{sent:?}");
}

/// A look-up that found the message `id`, only.
fn found_only(id: &str) -> Lookup {
    Lookup::Matches(vec![platform_api::Receipt {
        provider_id: id.to_string(),
        segments: None,
    }])
}

#[test]
fn a_send_without_an_answer_is_ambiguous_and_found_by_lookup() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let attempted_at = SystemTime::now();
    let part = Part::plain("Did this arrive?");
    send_unanswered(&emulator, &discord, &part);
    let found = block_on(discord.lookup(GENERAL_CHANNEL, &part, attempted_at));
    let created = emulator.messages();
    assert_eq!(created.len(), 1);
    assert_eq!(found, found_only(&created[0].id));
}

#[test]
fn a_message_the_host_cannot_store_is_received_again() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    receiving.sink.refuse.store(1, Ordering::SeqCst);
    let id = emulator.dm(ALICE, "keep me");
    let got = receiving.sink.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].provider_id, id);
    assert_eq!(emulator.counters().resumes, 1);
}

#[test]
fn a_missing_intent_or_a_bad_token_stops_receiving_with_one_clear_line() {
    let emulator = emulator_with(|c| c.message_content_intent = false);
    let receiving = Receiving::start(&platform(&emulator, TOKEN));
    let ended = receiving.ended(WAIT).expect("receive returns");
    let line = ended.unwrap_err();
    assert!(line.contains("close 4014"), "{line}");
    assert!(line.contains("Message Content Intent"), "{line}");
    assert!(!line.contains('\n') && !line.contains(TOKEN), "{line}");
    assert_eq!(emulator.counters().identifies, 0);

    // The REST API refuses the wrong token first (GET /gateway/bot).
    let emulator = self::emulator();
    let wrong = "d3Jvbmc.wrong.token-that-is-not-the-bots";
    let receiving = Receiving::start(&platform(&emulator, wrong));
    let line = receiving.ended(WAIT).expect("receive returns").unwrap_err();
    assert!(line.contains("DISCORD_BOT_TOKEN"), "{line}");
    assert!(!line.contains(wrong), "{line}");

    // With the gateway URL configured, the gateway refuses it: close 4004.
    let api = emulator.api_base_url();
    let url = emulator.gateway_url();
    let section = ConfigSection::from_pairs([
        ("DISCORD_BOT_TOKEN", wrong),
        ("DISCORD_API_BASE_URL", api.as_str()),
        ("DISCORD_GATEWAY_URL", url.as_str()),
    ]);
    let discord = Arc::new(Discord::new(
        DiscordSettings::from_config(&section).unwrap(),
    ));
    let line = Receiving::start(&discord)
        .ended(WAIT)
        .expect("receive returns")
        .unwrap_err();
    assert!(
        line.contains("close 4004") && !line.contains(wrong),
        "{line}"
    );
}

#[test]
fn send_errors_follow_discords_answers() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    emulator.block_dms(BOB);
    let bob = emulator.dm_channel(BOB);
    let results = block_on(async {
        vec![
            discord.send(&bob, &Part::plain("hi")).await,
            discord
                .send("1999999999999999999", &Part::plain("hi"))
                .await,
            discord
                .send(GENERAL_CHANNEL, &Part::plain("x".repeat(2001)))
                .await,
            discord.send(GENERAL_CHANNEL, &Part::plain("")).await,
        ]
    });
    assert!(
        matches!(
            &results[0],
            Err(SendError::OptedOut {
                code: Some(50007),
                ..
            })
        ),
        "{results:?}"
    );
    assert!(
        matches!(
            &results[1],
            Err(SendError::Permanent {
                code: Some(10003),
                ..
            })
        ),
        "{results:?}"
    );
    assert!(
        matches!(
            &results[2],
            Err(SendError::Permanent {
                code: Some(50035),
                ..
            })
        ),
        "{results:?}"
    );
    assert!(
        matches!(
            &results[3],
            Err(SendError::Permanent {
                code: Some(50006),
                ..
            })
        ),
        "{results:?}"
    );

    // Injected faults: a 429 says how long to wait, 5xx are retried.
    emulator.push_fault(Fault::RateLimited {
        retry_after: 0.3,
        global: false,
    });
    emulator.push_fault(Fault::BadGateway);
    let (limited, bad_gateway, after) = block_on(async {
        let limited = discord.send(GENERAL_CHANNEL, &Part::plain("one")).await;
        let started = Instant::now();
        let bad_gateway = discord.send(GENERAL_CHANNEL, &Part::plain("two")).await;
        (limited, bad_gateway, started.elapsed())
    });
    assert!(
        matches!(limited, Err(SendError::Retry { after: Some(after), .. }) if after == Duration::from_millis(300)),
        "{limited:?}"
    );
    assert!(
        after >= Duration::from_millis(250),
        "the 429 empties the bucket: {after:?}"
    );
    assert!(
        matches!(bad_gateway, Err(SendError::Retry { .. })),
        "{bad_gateway:?}"
    );

    // A wrong token is permanent, and the error never shows it.
    let wrong = "d3Jvbmc.wrong.token-that-is-not-the-bots";
    let err =
        block_on(platform(&emulator, wrong).send(GENERAL_CHANNEL, &Part::plain("hi"))).unwrap_err();
    assert!(matches!(err, SendError::Permanent { .. }), "{err:?}");
    assert!(!err.to_string().contains(wrong) && !format!("{err:?}").contains(wrong));
}

#[test]
fn an_exhausted_bucket_is_waited_for_instead_of_hitting_429() {
    let emulator = emulator_with(|c| {
        c.messages_per_window = 2;
        c.window = Duration::from_millis(800);
    });
    let discord = platform(&emulator, TOKEN);
    let started = Instant::now();
    let results = block_on(async {
        let mut results = Vec::new();
        for i in 0..5 {
            results.push(
                discord
                    .send(GENERAL_CHANNEL, &Part::plain(format!("part {i}")))
                    .await,
            );
        }
        results
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let statuses: Vec<u16> = emulator.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200; 5], "the client waited for the bucket");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn an_unknown_outcome_is_settled_by_reading_the_channel() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let before = SystemTime::now();
    let (sent, found, other, unknown) = block_on(async {
        let part = Part::plain("The answer is 42.");
        let sent = discord.send(GENERAL_CHANNEL, &part).await.unwrap();
        let found = discord.lookup(GENERAL_CHANNEL, &part, before).await;
        let other = discord
            .lookup(GENERAL_CHANNEL, &Part::plain("Never sent."), before)
            .await;
        let unknown = discord.lookup("1999999999999999999", &part, before).await;
        (sent, found, other, unknown)
    });
    assert_eq!(found, Lookup::Matches(vec![sent]));
    assert_eq!(other, Lookup::Matches(Vec::new()));
    assert!(matches!(unknown, Lookup::Failed(_)), "{unknown:?}");
    // A user's message with the same text is not the bot's.
    emulator.post(Post::guild(ALICE, GENERAL_CHANNEL, "Never sent."));
    let still = block_on(discord.lookup(GENERAL_CHANNEL, &Part::plain("Never sent."), before));
    assert_eq!(still, Lookup::Matches(Vec::new()));
}

#[test]
fn the_doctor_checks_token_intent_gateway_and_home_channel() {
    let emulator = emulator();
    let rest = crate::client::Rest::new(&emulator.api_base_url(), TOKEN);
    let checks = block_on(crate::doctor::checks(&rest, Some(GENERAL_CHANNEL)));
    assert!(checks.iter().all(|c| !c.is_problem()), "{checks:#?}");
    assert_eq!(
        checks[0].verdict,
        Verdict::Ok("hermes (1100000000000000001)".into())
    );
    assert!(checks[3].to_string().contains("#general"), "{}", checks[3]);

    emulator.set_message_content_intent(false);
    let checks = block_on(crate::doctor::checks(&rest, Some("1999999999999999999")));
    assert!(checks[1].is_problem() && checks[1].to_string().contains("Privileged Gateway Intents"));
    assert!(checks[3].is_problem(), "{}", checks[3]);

    let wrong = crate::client::Rest::new(&emulator.api_base_url(), "d3Jvbmc.wrong.token");
    let checks = block_on(crate::doctor::checks(&wrong, None));
    assert!(
        checks[0].to_string().contains("token rejected"),
        "{}",
        checks[0]
    );
    assert!(matches!(checks[1].verdict, Verdict::Skipped(_)));
}

#[test]
fn the_emulator_refuses_what_discord_refuses() {
    let emulator = emulator();
    let url = |path: &str| format!("{}{path}", emulator.api_base_url());
    let answers = block_on(async {
        let client = awc::Client::default();
        let mut answers = Vec::new();
        for (auth, path) in [
            (None, "/users/@me"),
            (Some("Bot nope"), "/users/@me"),
            (Some("Bearer x"), "/gateway/bot"),
        ] {
            let mut request = client.get(url(path));
            if let Some(auth) = auth {
                request = request.insert_header(("Authorization", auth));
            }
            let mut response = request.send().await.unwrap();
            let body: serde_json::Value = response.json().await.unwrap();
            answers.push((response.status().as_u16(), body));
        }
        answers
    });
    for (status, body) in answers {
        assert_eq!(status, 401);
        assert_eq!(
            body,
            serde_json::json!({"message": "401: Unauthorized", "code": 0})
        );
    }
}

/// One REST call with the bot's token: status, the rate-limit bucket header and the JSON body.
fn call(emulator: &Emulator, method: &str, path: &str, body: &str) -> (u16, Headers, Value) {
    let url = format!("{}{path}", emulator.api_base_url());
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    send(
        |client| client.request(method, url),
        "application/json",
        body.as_bytes().to_vec(),
    )
}

/// Sends the request `build` makes, with the bot's token, `content_type` and `body`: status,
/// the rate-limit headers and the JSON body.
fn send(
    build: impl FnOnce(&awc::Client) -> awc::ClientRequest,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Headers, Value) {
    let content_type = content_type.to_string();
    block_on(async move {
        let mut response = build(&awc::Client::default())
            .insert_header(("Authorization", format!("Bot {TOKEN}")))
            .insert_header(("Content-Type", content_type))
            .send_body(body)
            .await
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let headers = Headers {
            bucket: header("x-ratelimit-bucket"),
            remaining: header("x-ratelimit-remaining"),
            retry_after: header("retry-after"),
        };
        let json = response.json().await.unwrap_or(Value::Null);
        (response.status().as_u16(), headers, json)
    })
}

/// The rate-limit headers a test looks at.
#[derive(Debug)]
struct Headers {
    bucket: Option<String>,
    remaining: Option<String>,
    retry_after: Option<String>,
}

fn post_text(emulator: &Emulator, channel: &str, text: &str) -> String {
    let path = format!("/channels/{channel}/messages");
    let (status, _, json) = call(
        emulator,
        "POST",
        &path,
        &json!({"content": text}).to_string(),
    );
    assert_eq!(status, 200, "{json}");
    json["id"].as_str().unwrap().to_string()
}

fn edit_text(emulator: &Emulator, channel: &str, id: &str, text: &str) -> (u16, Headers, Value) {
    let path = format!("/channels/{channel}/messages/{id}");
    call(
        emulator,
        "PATCH",
        &path,
        &json!({"content": text}).to_string(),
    )
}

#[test]
fn edits_change_the_bots_own_messages_as_discord_does() {
    // Room for every edit below in the bucket (its headers start at the default, 5).
    let emulator = emulator_with(|c| c.edits_per_window = 50);
    let since = Instant::now();
    let id = post_text(&emulator, GENERAL_CHANNEL, "Hel");
    let posted = Instant::now();
    let (status, headers, message) = edit_text(&emulator, GENERAL_CHANNEL, &id, "Hello wor");
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["id"], id.as_str());
    assert_eq!(message["content"], "Hello wor");
    assert!(message["edited_timestamp"].is_string(), "{message}");
    assert_eq!(message["author"]["id"], emulator.bot_id());
    assert_eq!(headers.remaining.as_deref(), Some("49"));
    let edit_bucket = headers.bucket.clone().expect("a bucket");
    assert_ne!(
        Some(edit_bucket),
        call(
            &emulator,
            "POST",
            &format!("/channels/{GENERAL_CHANNEL}/messages"),
            r#"{"content":"x"}"#
        )
        .1
        .bucket,
        "edits have a bucket of their own"
    );
    assert_eq!(
        edit_text(&emulator, GENERAL_CHANNEL, &id, "Hello world").0,
        200
    );

    let versions: Vec<String> = emulator
        .versions(&id)
        .into_iter()
        .map(|v| v.content)
        .collect();
    assert_eq!(versions, ["Hel", "Hello wor", "Hello world"]);
    assert!(
        emulator
            .versions(&id)
            .windows(2)
            .all(|v| v[0].elapsed <= v[1].elapsed)
    );
    assert_eq!(emulator.messages()[0].content, "Hello world");
    assert_eq!(emulator.edits().len(), 2);
    assert_eq!(emulator.edits()[1].content, "Hello world");
    let visible = emulator
        .first_visible(GENERAL_CHANNEL, since)
        .expect("posted");
    assert!(visible >= since && visible <= posted);
    let listed = call(
        &emulator,
        "GET",
        &format!("/channels/{GENERAL_CHANNEL}/messages"),
        "",
    )
    .2;
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(listed["content"], "Hello world");
    assert!(listed["edited_timestamp"].is_string());

    // What Discord refuses.
    let theirs = emulator.post(Post::guild(ALICE, GENERAL_CHANNEL, "mine"));
    let other = emulator.add_channel("other");
    let path = format!("/channels/{GENERAL_CHANNEL}/messages/{id}");
    for (channel, message, body, status, code) in [
        (
            GENERAL_CHANNEL,
            theirs.as_str(),
            json!({"content": "x"}).to_string(),
            403,
            50005,
        ),
        (
            GENERAL_CHANNEL,
            "1999999999999999999",
            json!({"content": "x"}).to_string(),
            404,
            10008,
        ),
        (
            other.as_str(),
            id.as_str(),
            json!({"content": "x"}).to_string(),
            404,
            10008,
        ),
        (
            "1999999999999999999",
            id.as_str(),
            json!({"content": "x"}).to_string(),
            404,
            10003,
        ),
        (
            GENERAL_CHANNEL,
            id.as_str(),
            json!({"content": "x".repeat(2001)}).to_string(),
            400,
            50035,
        ),
        (
            GENERAL_CHANNEL,
            id.as_str(),
            json!({"content": ""}).to_string(),
            400,
            50006,
        ),
        (
            GENERAL_CHANNEL,
            id.as_str(),
            "{not json".to_string(),
            400,
            50109,
        ),
    ] {
        let path = format!("/channels/{channel}/messages/{message}");
        let (got, _, json) = call(&emulator, "PATCH", &path, &body);
        assert_eq!(
            (got, json["code"].as_i64()),
            (status, Some(code)),
            "{path} {json}"
        );
    }
    let (_, _, json) = call(
        &emulator,
        "PATCH",
        &path,
        &json!({"content": ""}).to_string(),
    );
    assert_eq!(json["message"], "Cannot send an empty message");
    let (_, _, json) = edit_text(&emulator, GENERAL_CHANNEL, &theirs, "x");
    assert_eq!(
        json["message"],
        "Cannot edit a message authored by another user"
    );
    let (_, _, json) = edit_text(&emulator, GENERAL_CHANNEL, "1999999999999999999", "x");
    assert_eq!(json["message"], "Unknown Message");
    assert_eq!(
        emulator.versions(&id).len(),
        3,
        "a refused edit changes nothing"
    );
    let longest = "y".repeat(MAX_MESSAGE_CHARS);
    assert_eq!(edit_text(&emulator, GENERAL_CHANNEL, &id, &longest).0, 200);

    let statuses: Vec<u16> = emulator.edit_attempts().iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            200, 200, 403, 404, 404, 404, 400, 400, 400, 400, 403, 404, 200
        ]
    );
    assert!(
        emulator
            .edit_attempts()
            .iter()
            .all(|a| a.message_id.is_some())
    );
    assert_eq!(emulator.attempts().len(), 2, "edits are not creations");
}

#[test]
fn edits_have_a_rate_limit_bucket_per_channel() {
    let emulator = emulator_with(|c| {
        c.edits_per_window = 2;
        c.window = Duration::from_millis(800);
    });
    let id = post_text(&emulator, GENERAL_CHANNEL, "one");
    let elsewhere = emulator.add_channel("elsewhere");
    let other = post_text(&emulator, &elsewhere, "two");
    let answers: Vec<(u16, Headers, Value)> = (0..3)
        .map(|i| edit_text(&emulator, GENERAL_CHANNEL, &id, &format!("one {i}")))
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 429]);
    let (_, headers, json) = &answers[2];
    assert_eq!(headers.remaining.as_deref(), Some("0"));
    assert_eq!(headers.bucket, answers[0].1.bucket);
    assert_eq!(headers.retry_after.as_deref(), Some("1"));
    assert_eq!(json["message"], "You are being rate limited.");
    assert_eq!(json["global"], false);
    let retry_after = json["retry_after"].as_f64().unwrap();
    assert!(retry_after > 0.0 && retry_after <= 0.8, "{retry_after}");
    assert_eq!(
        emulator.versions(&id).len(),
        3,
        "the refused edit changed nothing"
    );
    // Another channel, and creations, have buckets of their own.
    assert_eq!(edit_text(&emulator, &elsewhere, &other, "two 1").0, 200);
    post_text(&emulator, GENERAL_CHANNEL, "three");
    // The window passes, and scripted faults answer edits too.
    std::thread::sleep(Duration::from_secs_f64(retry_after));
    emulator.push_edit_fault(Fault::ServerError);
    assert_eq!(edit_text(&emulator, GENERAL_CHANNEL, &id, "one 3").0, 500);
    assert_eq!(edit_text(&emulator, GENERAL_CHANNEL, &id, "one 4").0, 200);
    let edits_here = emulator
        .edit_attempts()
        .iter()
        .filter(|a| a.channel_id == GENERAL_CHANNEL)
        .count();
    assert_eq!(edits_here, 5);
}

#[test]
fn the_sandbox_shows_a_live_message_growing() {
    install_crypto();
    let provider = platform_api::sandbox::sandbox_providers()
        .into_iter()
        .find(|p| p.platform == "discord")
        .expect("the Discord sandbox is registered");
    let sandbox = (provider.start)(0).expect("the sandbox starts");
    let settings = sandbox.settings();
    let section = ConfigSection::from_pairs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let discord = Discord::new(DiscordSettings::from_config(&section).expect("valid settings"));
    let replies = Arc::new(Mutex::new(Vec::new()));
    let updates = Arc::new(Mutex::new(Vec::new()));
    let (seen_replies, seen_updates) = (replies.clone(), updates.clone());
    sandbox.on_reply(Box::new(move |r| seen_replies.lock().unwrap().push(r.body)));
    sandbox.on_update(Box::new(move |u| seen_updates.lock().unwrap().push(u.body)));
    let user = sandbox.user();
    block_on(async {
        let mut view = platform_api::LiveView::default();
        for written in ["Once", "Once upon", "Once upon a time"] {
            discord
                .show_live(&user, &mut view, written)
                .await
                .expect("shown to the sandbox user");
        }
        assert!(view.message.is_some(), "the live message was posted");
    });
    assert_eq!(*replies.lock().unwrap(), ["Once"], "posted once");
    assert_eq!(*updates.lock().unwrap(), ["Once upon", "Once upon a time"]);
}

#[test]
fn a_creation_with_an_enforced_nonce_is_made_once() {
    let emulator = emulator();
    let path = format!("/channels/{GENERAL_CHANNEL}/messages");
    let once = r#"{"content":"Hel","nonce":"live42","enforce_nonce":true}"#;
    let (status, _, first) = call(&emulator, "POST", &path, once);
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().expect("an id").to_string();
    assert_eq!(edit_text(&emulator, GENERAL_CHANNEL, &id, "Hello").0, 200);
    // The same nonce again: the message it made, as it stands now, and no new one.
    let (status, _, again) = call(&emulator, "POST", &path, once);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["content"], "Hello");
    assert_eq!(emulator.messages().len(), 1);
    // Without enforce_nonce, or with another nonce or channel, a message is made each time.
    let loose = r#"{"content":"x","nonce":"live42"}"#;
    assert_ne!(call(&emulator, "POST", &path, loose).2["id"], id.as_str());
    let other = r#"{"content":"x","nonce":"live43","enforce_nonce":true}"#;
    assert_ne!(call(&emulator, "POST", &path, other).2["id"], id.as_str());
    assert_eq!(emulator.messages().len(), 3);
    // Discord refuses a nonce over 25 characters.
    let long = r#"{"content":"x","nonce":"abcdefghijklmnopqrstuvwxyz","enforce_nonce":true}"#;
    let (status, _, refused) = call(&emulator, "POST", &path, long);
    assert_eq!(status, 400);
    assert_eq!(refused["code"], 50035);
}

/// A real 1×1 PNG.
const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\nIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\r\n-\xb4\x00\x00\x00\x00IEND\xaeB`\x82";

/// A GET of `url`: status, `Content-Type` and body.
fn fetch(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let url = url.to_string();
    block_on(async move {
        let mut response = awc::Client::default().get(url).send().await.unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.body().limit(64 << 20).await.unwrap();
        (response.status().as_u16(), content_type, body.to_vec())
    })
}

/// The stored message `id` in `channel`, as `GET /channels/{id}/messages` shows it.
fn stored(emulator: &Emulator, channel: &str, id: &str) -> Value {
    let (status, _, page) = call(
        emulator,
        "GET",
        &format!("/channels/{channel}/messages"),
        "",
    );
    assert_eq!(status, 200, "{page}");
    page.as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap()
}

#[test]
fn a_users_files_are_served_at_signed_urls_until_they_expire() {
    let emulator = emulator();
    let waveform =
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let id = emulator.post(
        Post::dm(ALICE, "")
            .attach("holiday photo.png", Some("image/png"), PNG_1X1)
            .voice(
                b"OggS voice bytes",
                Voice {
                    duration_secs: 3.5,
                    waveform: waveform.to_string(),
                },
            ),
    );
    let channel = emulator.dm_channel(ALICE);
    let message = stored(&emulator, &channel, &id);
    assert_eq!(message["flags"], 8192);
    let [image, voice] = message["attachments"].as_array().unwrap().as_slice() else {
        panic!("two attachments: {message}");
    };
    assert_eq!(image["filename"], "holiday_photo.png");
    assert_eq!(image["title"], "holiday photo.png");
    assert!(voice.get("title").is_none(), "{voice}");
    assert_eq!(image["content_type"], "image/png");
    assert_eq!(image["size"], PNG_1X1.len());
    assert_eq!(
        (image["width"].clone(), image["height"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(voice["filename"], "voice-message.ogg");
    assert_eq!(voice["duration_secs"], 3.5);
    assert_eq!(voice["waveform"], waveform);
    assert!(voice.get("width").is_none(), "{voice}");
    let url = image["url"].as_str().unwrap();
    let prefix = format!(
        "/attachments/{channel}/{}/holiday_photo.png?ex=",
        image["id"].as_str().unwrap()
    );
    assert!(
        url.contains(&prefix) && url.contains("&is=") && url.contains("&hm="),
        "{url}"
    );
    assert_eq!(image["proxy_url"], url);

    assert_eq!(
        fetch(url),
        (200, Some("image/png".into()), PNG_1X1.to_vec())
    );
    let (status, _, body) = fetch(voice["url"].as_str().unwrap());
    assert_eq!(
        (status, body.as_slice()),
        (200, b"OggS voice bytes".as_slice())
    );
    // A URL whose signature was changed, or without one, is not served.
    let tampered = url.replace("&hm=", "&hm=0");
    assert_eq!(fetch(&tampered).0, 404);
    assert_eq!(fetch(url.split('?').next().unwrap()).0, 404);
    emulator.expire_attachments();
    let (status, _, body) = fetch(url);
    assert_eq!(
        (status, body.as_slice()),
        (404, b"This content is no longer available.".as_slice())
    );

    let statuses: Vec<(String, u16)> = emulator
        .downloads()
        .into_iter()
        .map(|d| (d.filename, d.status))
        .collect();
    let photo = "holiday_photo.png".to_string();
    assert_eq!(
        statuses,
        [
            (photo.clone(), 200),
            ("voice-message.ogg".into(), 200),
            (photo.clone(), 404),
            (photo.clone(), 404),
            (photo, 404)
        ]
    );
}

/// A file part of a multipart upload: its field name, file name, media type and bytes.
type FilePart<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

/// `POST /channels/{channel}/messages` as multipart/form-data: `payload_json`, then `files`.
fn upload(
    emulator: &Emulator,
    channel: &str,
    payload: &Value,
    files: &[FilePart],
) -> (u16, Headers, Value) {
    const BOUNDARY: &str = "hermes-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{payload}\r\n"
        )
        .as_bytes(),
    );
    for (name, filename, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let url = format!("{}/channels/{channel}/messages", emulator.api_base_url());
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    send(|client| client.post(url), &content_type, body)
}

#[test]
fn the_bot_uploads_files_with_payload_json() {
    let emulator = emulator();
    let payload = json!({
        "content": "Here you are",
        "attachments": [{"id": 0, "filename": "report.txt"}, {"id": "1", "filename": "cat.png"}],
    });
    let files = [
        ("files[1]", "upload.png", "image/png", PNG_1X1),
        ("files[0]", "draft.txt", "text/plain", b"abc".as_slice()),
    ];
    let (status, headers, message) = upload(&emulator, GENERAL_CHANNEL, &payload, &files);
    assert_eq!(status, 200, "{message}");
    assert_eq!(headers.remaining.as_deref(), Some("4"));
    assert_eq!(message["content"], "Here you are");
    let attachments = message["attachments"].as_array().unwrap();
    let names: Vec<&str> = attachments
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["report.txt", "cat.png"]);
    assert_eq!(attachments[1]["width"], 1);
    let (status, content_type, bytes) = fetch(attachments[0]["url"].as_str().unwrap());
    assert_eq!(
        (status, content_type.as_deref(), bytes.as_slice()),
        (200, Some("text/plain"), b"abc".as_slice())
    );
    assert_eq!(fetch(attachments[1]["url"].as_str().unwrap()).2, PNG_1X1);

    let sent = emulator.messages();
    assert_eq!(sent.len(), 1);
    let report = &sent[0].files[0];
    assert_eq!(
        (
            report.filename.as_str(),
            report.content_type.as_deref(),
            report.size
        ),
        ("report.txt", Some("text/plain"), 3)
    );
    assert_eq!(report.id, attachments[0]["id"].as_str().unwrap());
    assert_eq!(
        report.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(sent[0].files[1].size, PNG_1X1.len());

    // A file alone makes a message; the stored message lists it.
    let (status, _, alone) = upload(&emulator, GENERAL_CHANNEL, &json!({}), &files[1..]);
    assert_eq!(status, 200, "{alone}");
    let listed = stored(&emulator, GENERAL_CHANNEL, alone["id"].as_str().unwrap());
    assert_eq!(listed["attachments"], alone["attachments"]);
    assert_eq!(listed["attachments"][0]["filename"], "draft.txt");
}

#[test]
fn uploads_are_refused_as_discord_refuses_them() {
    let emulator = emulator_with(|config| config.messages_per_window = 6);
    let big = vec![7u8; MAX_UPLOAD_BYTES + 1];
    let exact = vec![7u8; MAX_UPLOAD_BYTES];
    let names: Vec<String> = (0..=MAX_FILES).map(|n| format!("files[{n}]")).collect();
    let eleven: Vec<FilePart> = names
        .iter()
        .map(|name| (name.as_str(), "a.txt", "text/plain", b"a".as_slice()))
        .collect();
    let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
    let cases: Vec<(Value, Vec<FilePart>, u16, Value)> = vec![
        (
            json!({"content": "big"}),
            vec![(
                "files[0]",
                "big.bin",
                "application/octet-stream",
                big.as_slice(),
            )],
            413,
            json!(40005),
        ),
        (json!({}), eleven, 400, json!(50035)),
        (
            json!({"content": long}),
            vec![("files[0]", "a.txt", "text/plain", b"a".as_slice())],
            400,
            json!(50035),
        ),
        (json!({}), vec![], 400, json!(50006)),
        (
            json!({"content": "at the limit"}),
            vec![(
                "files[0]",
                "exact.bin",
                "application/octet-stream",
                exact.as_slice(),
            )],
            200,
            Value::Null,
        ),
    ];
    for (payload, files, status, code) in cases {
        let (got, headers, body) = upload(&emulator, GENERAL_CHANNEL, &payload, &files);
        assert_eq!((got, &body["code"]), (status, &code), "{body}");
        assert_eq!(
            headers.bucket.as_deref(),
            Some("80c17d2f203122d936070c88c8d10f33")
        );
    }
    let sent = emulator.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].files[0].size, MAX_UPLOAD_BYTES);
    let codes: Vec<Option<i64>> = emulator.attempts().iter().map(|a| a.code).collect();
    assert_eq!(
        codes,
        [Some(40005), Some(50035), Some(50035), Some(50006), None]
    );

    // Text and files share the channel's bucket: the sixth creation is the last one allowed.
    post_text(&emulator, GENERAL_CHANNEL, "text");
    let (status, headers, body) = upload(
        &emulator,
        GENERAL_CHANNEL,
        &json!({}),
        &[("files[0]", "a.txt", "text/plain", b"a")],
    );
    assert_eq!(status, 429, "{body}");
    assert!(headers.retry_after.is_some());
    assert_eq!(emulator.messages().len(), 2);
}

#[test]
fn the_bot_sends_a_voice_message_as_discord_takes_one() {
    let emulator = emulator();
    let ogg: &[u8] = b"OggS\x00\x02 opus voice";
    let voice_meta =
        json!({"id": 0, "filename": "voice-message.ogg", "duration_secs": 2.5, "waveform": "AAAA"});
    let voice = |content: &str, meta: &Value| json!({"content": content, "flags": 8192, "attachments": [meta]});
    let audio = ("files[0]", "voice.ogg", "audio/ogg", ogg);
    let cases: Vec<(Value, Vec<FilePart>, i64)> = vec![
        (voice("listen", &voice_meta), vec![audio], 50159),
        (
            voice("", &voice_meta),
            vec![audio, ("files[1]", "b.ogg", "audio/ogg", ogg)],
            50160,
        ),
        (
            voice("", &voice_meta),
            vec![("files[0]", "a.txt", "text/plain", b"a")],
            50160,
        ),
        (voice("", &json!({"id": 0})), vec![audio], 50161),
    ];
    for (payload, files, code) in cases {
        let (status, _, body) = upload(&emulator, GENERAL_CHANNEL, &payload, &files);
        assert_eq!((status, body["code"].as_i64()), (400, Some(code)), "{body}");
    }
    assert!(emulator.messages().is_empty());

    let (status, _, message) = upload(
        &emulator,
        GENERAL_CHANNEL,
        &voice("", &voice_meta),
        &[audio],
    );
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["flags"], 8192);
    let attachment = &message["attachments"][0];
    assert_eq!(
        (
            &attachment["filename"],
            &attachment["duration_secs"],
            &attachment["waveform"]
        ),
        (&json!("voice-message.ogg"), &json!(2.5), &json!("AAAA"))
    );
    assert_eq!(fetch(attachment["url"].as_str().unwrap()).2, ogg);
    let id = message["id"].as_str().unwrap();
    let (status, _, body) = edit_text(&emulator, GENERAL_CHANNEL, id, "edited");
    assert_eq!(
        (status, body["code"].as_i64()),
        (400, Some(50162)),
        "{body}"
    );
}
