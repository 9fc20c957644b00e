//! Pictures, files and voice on Telegram and Discord, black-box: the real `hermes` binary
//! against each platform's emulator and the fake LLM (chat completions and transcriptions).
//!
//! A photo, a file and a voice note reach the agent as it can use them (the largest size of a
//! Telegram photo, a transcript for a voice note); the agent's `MEDIA:` files come out as
//! Telegram photos and documents or Discord uploads with the exact bytes; a caption too long
//! for Telegram goes as its own message, more than ten files as a second Discord message; a
//! refused path still sends the text and shows in `hermes outbox list`; a file whose send meets
//! a 5xx is retried and sent once.
use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use platform_discord::emulator as discord;
use platform_telegram::emulator::{self as telegram, Person};
use serde_json::Value;
use sha1::{Digest, Sha1};
use sha2::Sha256;

const WAIT: Duration = Duration::from_secs(30);
/// The Discord user who talks to the bot.
const ALICE: &str = "2000000000000000001";
const DISCORD_TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GbLaCk.box-token-0123456789abcdefghijklmn";

fn ada() -> Person {
    Person::new(4242, "Ada")
}

/// The fake LLM as the agent and as the transcription server.
fn llm_env(llm: &FakeLlm) -> Vec<(String, String)> {
    [
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", &llm.base_url()),
        ("HERMES_AGENT_MODEL", "test-model"),
        ("HERMES_STT_URL", &llm.base_url()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A Telegram gateway over `home`, polling `emu`, the fake LLM its agent.
fn telegram_gateway(home: &Home, emu: &telegram::Emulator, llm: &FakeLlm) -> Gateway {
    let mut env = llm_env(llm);
    env.extend(
        [
            ("TELEGRAM_BOT_TOKEN", emu.token()),
            ("TELEGRAM_API_BASE_URL", emu.base_url()),
            ("TELEGRAM_ALLOWED_USERS", ada().id.to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let gateway = Gateway::start_polling(home.path(), &env);
    assert!(
        gateway.wait_for_log("[telegram] polling for updates as @", WAIT),
        "the gateway never polled; log:\n{}",
        gateway.logs()
    );
    gateway
}

/// A Discord gateway over `home`, connected to `emu`, the fake LLM its agent; `streaming`:
/// whether a reply is shown while it is written.
fn discord_gateway(
    home: &Home,
    emu: &discord::Emulator,
    llm: &FakeLlm,
    streaming: bool,
) -> Gateway {
    let mut env = llm_env(llm);
    env.push(("DISCORD_STREAMING".to_string(), streaming.to_string()));
    env.extend(
        [
            ("DISCORD_BOT_TOKEN", DISCORD_TOKEN.to_string()),
            ("DISCORD_API_BASE_URL", emu.api_base_url()),
            ("DISCORD_ALLOWED_USERS", ALICE.to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let gateway = Gateway::start_polling(home.path(), &env);
    assert!(
        emu.wait_until(WAIT, discord::Emulator::connected),
        "the gateway never connected; log:\n{}",
        gateway.logs()
    );
    gateway
}

fn telegram_emulator() -> telegram::Emulator {
    telegram::Emulator::start(Default::default()).expect("starting the Telegram emulator")
}

fn discord_emulator() -> discord::Emulator {
    let mut config = discord::EmulatorConfig::new(DISCORD_TOKEN);
    config.heartbeat_interval = Duration::from_millis(300);
    discord::Emulator::start(config).expect("starting the Discord emulator")
}

/// The text of the last user message of the agent's `n`-th request (1-based), waited for.
fn agent_read(llm: &FakeLlm, n: usize, gateway: &Gateway) -> String {
    let requests = llm.wait_for_requests(n, WAIT);
    let request = requests
        .get(n - 1)
        .unwrap_or_else(|| panic!("no request {n} to the agent; log:\n{}", gateway.logs()));
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap_or_else(|| panic!("no user message in {request}"));
    match &last["content"] {
        Value::String(text) => text.clone(),
        parts => parts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Writes `bytes` as `name` in the home's media directory (`HERMES_MEDIA_DIRS`' default);
/// returns its absolute path.
fn media_file(home: &Home, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = home.path().join("media");
    std::fs::create_dir_all(&dir).expect("creating the media directory");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writing a media file");
    path
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

fn sha256_hex(bytes: &[u8]) -> String {
    <Sha256 as sha2::Digest>::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The messages a wait (`wait_for_sent`, `wait_for_messages`) found, once there are `n`; panics
/// with them and the gateway's log otherwise.
fn at_least<T: std::fmt::Debug>(found: Vec<T>, n: usize, gateway: &Gateway) -> Vec<T> {
    if found.len() < n {
        panic!(
            "expected {n} message(s), got {found:#?}; log:\n{}",
            gateway.logs()
        );
    }
    found
}

#[test]
fn a_telegram_photo_reaches_the_agent_as_its_largest_size() {
    let (home, emu, llm) = (Home::new(), telegram_emulator(), FakeLlm::start());
    let gateway = telegram_gateway(&home, &emu, &llm);
    let small = telegram::png(90, 67);
    let large = [telegram::png(1280, 960), vec![7u8; 40_000]].concat();
    emu.send_photo_sizes(
        &ada().chat(),
        &ada(),
        &[(90, 67, &small), (1280, 960, &large)],
        Some("what is this?"),
    );
    let read = agent_read(&llm, 1, &gateway);
    assert!(
        read.starts_with("what is this?\n[attachment: photo.jpg, image/jpeg, "),
        "{read:?}"
    );
    at_least(emu.wait_for_sent(1, WAIT), 1, &gateway);
    let downloads = emu.downloads();
    assert_eq!(downloads.len(), 1, "only the largest size: {downloads:?}");
    assert_eq!(downloads[0].status, 200);
    assert_eq!(downloads[0].bytes, large.len() as u64);
    assert!(
        !gateway.logs().contains(&emu.token()),
        "the token never reaches the log"
    );
}

#[test]
fn a_telegram_voice_note_reaches_the_agent_transcribed() {
    let (home, emu, llm) = (Home::new(), telegram_emulator(), FakeLlm::start());
    let gateway = telegram_gateway(&home, &emu, &llm);
    let audio = b"OggS\x00\x02 an opus voice note".repeat(50);
    llm.set_transcript(&audio, "call me at five");
    emu.send_voice(&ada().chat(), &ada(), &audio, 3);
    let read = agent_read(&llm, 1, &gateway);
    assert_eq!(read, "[voice note] call me at five");
    let asked = llm.transcriptions();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].size, audio.len());
    assert_eq!(asked[0].model.as_deref(), Some("whisper-1"));
}

#[test]
fn the_agents_telegram_files_go_as_photos_and_documents_with_their_bytes() {
    let (home, emu, llm) = (Home::new(), telegram_emulator(), FakeLlm::start());
    let gateway = telegram_gateway(&home, &emu, &llm);
    let chart = telegram::png(640, 480);
    let path = media_file(&home, "chart.png", &chart);

    // A photo with the text as its caption.
    llm.set_reply(&format!("Here is your chart.\nMEDIA:{}", path.display()));
    emu.user_writes(&ada(), "a chart please");
    let sent = at_least(emu.wait_for_sent(1, WAIT), 1, &gateway);
    let photo = sent[0].media.as_ref().expect("a file");
    assert_eq!(photo.kind, "photo");
    assert_eq!(photo.sha1.as_deref(), Some(sha1_hex(&chart).as_str()));
    assert_eq!(sent[0].text, "Here is your chart.");

    // Text too long for a caption: the text first, then the photo.
    let long = "A long explanation of the chart. ".repeat(50);
    llm.set_reply(&format!("{}\nMEDIA:{}", long.trim(), path.display()));
    emu.user_writes(&ada(), "explain it");
    let sent = at_least(emu.wait_for_sent(3, WAIT), 3, &gateway);
    assert!(sent[1].media.is_none(), "{:?}", sent[1]);
    assert!(
        sent[1].text.starts_with("A long explanation"),
        "{:?}",
        sent[1].text
    );
    let photo = sent[2].media.as_ref().expect("the photo after the text");
    assert_eq!(photo.kind, "photo");
    assert_eq!(photo.sha1.as_deref(), Some(sha1_hex(&chart).as_str()));

    // `[[as_document]]`: the same image as a file.
    llm.set_reply(&format!(
        "The original.\nMEDIA:{}\n[[as_document]]",
        path.display()
    ));
    emu.user_writes(&ada(), "as a file");
    let sent = at_least(emu.wait_for_sent(4, WAIT), 4, &gateway);
    let document = sent[3].media.as_ref().expect("a document");
    assert_eq!(document.kind, "document");
    assert_eq!(document.file_name.as_deref(), Some("chart.png"));
    assert_eq!(document.sha1.as_deref(), Some(sha1_hex(&chart).as_str()));
    assert_eq!(sent[3].text, "The original.");
    let methods: Vec<String> = emu.attempts().into_iter().map(|a| a.method).collect();
    assert!(methods.iter().any(|m| m == "sendDocument"), "{methods:?}");
}

#[test]
fn a_refused_path_still_sends_the_text_and_shows_in_the_outbox() {
    let (home, emu, llm) = (Home::new(), telegram_emulator(), FakeLlm::start());
    let gateway = telegram_gateway(&home, &emu, &llm);
    let outside = home.path().join("secret.png");
    std::fs::write(&outside, telegram::png(10, 10)).expect("writing a file");
    llm.set_reply(&format!("Here it is.\nMEDIA:{}", outside.display()));
    emu.user_writes(&ada(), "send the secret");
    let sent = at_least(emu.wait_for_sent(1, WAIT), 1, &gateway);
    assert_eq!(sent[0].text, "Here it is.");
    assert!(sent[0].media.is_none());
    home.wait_drained(WAIT);
    assert_eq!(emu.sent().len(), 1, "nothing else was sent");
    let out = run(home.path(), &[], &["outbox", "list"], "");
    let table = text(&out.stdout);
    assert!(
        table.contains("secret.png (not sent: outside HERMES_MEDIA_DIRS)"),
        "the refused file is listed as a failed part:\n{table}"
    );
    assert!(table.contains("failed"), "{table}");
}

#[test]
fn a_telegram_file_whose_send_meets_a_5xx_is_retried_and_sent_once() {
    let (home, emu, llm) = (Home::new(), telegram_emulator(), FakeLlm::start());
    let gateway = telegram_gateway(&home, &emu, &llm);
    let chart = telegram::png(320, 240);
    let path = media_file(&home, "chart.png", &chart);
    llm.set_reply(&format!("Your chart.\nMEDIA:{}", path.display()));
    emu.push_fault(telegram::Fault::ServerError);
    emu.user_writes(&ada(), "a chart please");
    let sent = at_least(emu.wait_for_sent(1, WAIT), 1, &gateway);
    home.wait_drained(WAIT);
    assert_eq!(emu.sent().len(), 1, "sent once: {:#?}", emu.sent());
    let photo = sent[0].media.as_ref().expect("the photo");
    assert_eq!(photo.sha1.as_deref(), Some(sha1_hex(&chart).as_str()));
    let statuses: Vec<Option<u16>> = emu
        .attempts()
        .into_iter()
        .filter(|a| a.method == "sendPhoto")
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
}

#[test]
fn a_discord_attachment_and_a_voice_message_reach_the_agent() {
    let (home, emu, llm) = (Home::new(), discord_emulator(), FakeLlm::start());
    let gateway = discord_gateway(&home, &emu, &llm, true);
    let cat = telegram::png(200, 100);
    emu.post(discord::Post::dm(ALICE, "look").attach("cat.png", Some("image/png"), &cat));
    let read = agent_read(&llm, 1, &gateway);
    assert!(
        read.starts_with("look\n[attachment: cat.png, image/png, "),
        "{read:?}"
    );
    let downloads = emu.downloads();
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert_eq!(downloads[0].status, 200);
    at_least(emu.wait_for_messages(1, WAIT), 1, &gateway);

    let audio = b"OggS\x00\x02 a discord voice message".repeat(40);
    llm.set_transcript(&audio, "remind me tomorrow");
    let voice = discord::Voice {
        duration_secs: 2.5,
        waveform: "AAAA".to_string(),
    };
    emu.post(discord::Post::dm(ALICE, "").voice(&audio, voice));
    let read = agent_read(&llm, 2, &gateway);
    assert_eq!(read, "[voice note] remind me tomorrow");
    assert_eq!(llm.transcriptions().len(), 1);
}

#[test]
fn the_agents_discord_file_is_uploaded_with_the_text() {
    let (home, emu, llm) = (Home::new(), discord_emulator(), FakeLlm::start());
    let gateway = discord_gateway(&home, &emu, &llm, false);
    let chart = telegram::png(640, 480);
    let path = media_file(&home, "chart.png", &chart);
    llm.set_reply(&format!("Here is your chart.\nMEDIA:{}", path.display()));
    emu.dm(ALICE, "a chart please");
    let sent = at_least(emu.wait_for_messages(1, WAIT), 1, &gateway);
    assert_eq!(sent[0].content, "Here is your chart.");
    assert_eq!(sent[0].files.len(), 1, "{:?}\n{}", sent[0], gateway.logs());
    assert_eq!(sent[0].files[0].filename, "chart.png");
    assert_eq!(sent[0].files[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(sent[0].files[0].sha256, sha256_hex(&chart));
}

/// A streamed reply: the message that showed it is edited to its text, and its files follow,
/// ten a message.
#[test]
fn eleven_files_after_a_streamed_reply_go_in_two_messages() {
    let (home, emu, llm) = (Home::new(), discord_emulator(), FakeLlm::start());
    let gateway = discord_gateway(&home, &emu, &llm, true);
    let mut reply = "Eleven charts.".to_string();
    let mut hashes = Vec::new();
    for i in 0..11 {
        let bytes = [telegram::png(10 + i, 10), vec![i as u8; 64]].concat();
        hashes.push(sha256_hex(&bytes));
        let path = media_file(&home, &format!("chart{i:02}.png"), &bytes);
        reply.push_str(&format!("\nMEDIA:{}", path.display()));
    }
    llm.set_reply(&reply);
    emu.dm(ALICE, "all of them");
    at_least(emu.wait_for_messages(3, WAIT), 3, &gateway);
    home.wait_drained(WAIT);
    let sent = emu.messages();
    assert_eq!(sent.len(), 3, "{sent:#?}\n{}", gateway.logs());
    assert_eq!(sent[0].content, "Eleven charts.");
    assert!(sent[0].files.is_empty());
    let counts: Vec<usize> = sent[1..].iter().map(|m| m.files.len()).collect();
    assert_eq!(counts, [10, 1]);
    let uploaded: Vec<String> = sent[1..]
        .iter()
        .flat_map(|m| m.files.iter().map(|f| f.sha256.clone()))
        .collect();
    assert_eq!(uploaded, hashes, "every file, in order, bytes unchanged");
}

#[test]
fn a_discord_upload_that_meets_a_5xx_is_retried_and_posted_once() {
    let (home, emu, llm) = (Home::new(), discord_emulator(), FakeLlm::start());
    let gateway = discord_gateway(&home, &emu, &llm, false);
    let chart = telegram::png(320, 240);
    let path = media_file(&home, "chart.png", &chart);
    llm.set_reply(&format!("Your chart.\nMEDIA:{}", path.display()));
    emu.push_fault(discord::Fault::ServerError);
    emu.dm(ALICE, "a chart please");
    at_least(emu.wait_for_messages(1, WAIT), 1, &gateway);
    home.wait_drained(WAIT);
    let sent = emu.messages();
    assert_eq!(sent.len(), 1, "posted once: {sent:#?}");
    assert_eq!(sent[0].content, "Your chart.");
    let hashes: Vec<&str> = sent[0].files.iter().map(|f| f.sha256.as_str()).collect();
    assert_eq!(hashes, [sha256_hex(&chart)]);
    let statuses: Vec<u16> = emu.attempts().into_iter().map(|a| a.status).collect();
    assert_eq!(statuses, [500, 200], "{}", gateway.logs());
}
