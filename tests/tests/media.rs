//! Pictures, files and voice over SMS through the real binary (SPEC section 12): MMS from a
//! person fetched with the account's credentials, kept, described, shown or transcribed for
//! the agent; reply files sent as MMS whose `MediaUrl` the Twilio emulator downloads from the
//! gateway's `/media/<token>`; and every refusal logged once, recorded, the text still sent.
//!
//! The gateway listens on a port chosen here, and its `SMS_WEBHOOK_URL` is that loopback
//! address, so that the emulator can both post (and sign for) the number's webhook and fetch
//! the gateway's media URLs.
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine;
use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use platform_api::loopback::LoopbackServer;
use platform_sms::emulator::{Emulator, EmulatorConfig, MediaFile};
use serde_json::Value;
use sha1::{Digest, Sha1};

const WAIT: Duration = Duration::from_secs(30);

/// A 1×1 PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// An SMS gateway whose webhook URL is its own loopback listener, with the emulator and the
/// fake LLM it talks to.
struct Mms {
    home: Home,
    twilio: Emulator,
    llm: FakeLlm,
    gw: Gateway,
    /// `http://127.0.0.1:PORT`, the gateway's public origin.
    origin: String,
}

impl Mms {
    /// A fresh home and gateway with `extra` settings (the OpenAI backend on the fake LLM
    /// unless `extra` says otherwise).
    fn start(extra: &[(&str, &str)]) -> Mms {
        let llm = FakeLlm::start();
        let (twilio, port) = emulator_for_own_port();
        let home = Home::new();
        let gw = start_gateway(&home, &twilio, &llm, port, extra);
        Mms {
            home,
            twilio,
            llm,
            gw,
            origin: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Alice sends an MMS with `files`; panics unless the webhook was answered 200.
    fn send(&self, body: &str, files: &[MediaFile]) -> platform_sms::emulator::InboundMms {
        let mms = self
            .twilio
            .text_with_media(ALICE, body, files, None)
            .expect("posting the MMS");
        assert_eq!(mms.answered, 200, "{}", self.gw.logs());
        mms
    }

    /// The new user message of the last chat-completions request, once one came.
    fn last_user_content(&self) -> Value {
        let requests = self.llm.wait_for_requests(1, WAIT);
        let request = requests
            .last()
            .unwrap_or_else(|| panic!("the agent was never asked; log:\n{}", self.gw.logs()));
        request["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .map(|m| m["content"].clone())
            .expect("a user message")
    }

    /// Panics unless the agent read `body` then that a file could not be fetched: `what`
    /// (its name, type and the reason).
    fn assert_not_fetched(&self, body: &str, what: &str) {
        assert_eq!(
            self.last_user_content(),
            Value::String(format!("{body}\n[attachment not fetched: {what}]"))
        );
    }

    /// Alice texts `body` (no files), signed for this gateway's webhook URL.
    fn text(&self, body: &str, sid: &str) {
        let params = inbound_sms(ALICE, body, sid);
        let signature = sign(
            AUTH_TOKEN,
            &format!("{}/webhooks/twilio", self.origin),
            &params,
        );
        let answered = self.gw.post_form(&params, Some(&signature));
        assert_eq!(answered.status, 200, "{}", self.gw.logs());
    }

    /// `hermes outbox list --json`.
    fn outbox(&self) -> Vec<Value> {
        let out = self.hermes(&["outbox", "list", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("outbox JSON")
    }

    /// Runs `hermes ARGS` on this gateway's home (its store; the SMS settings of its
    /// emulator).
    fn hermes(&self, args: &[&str]) -> std::process::Output {
        run_hermes(&self.home, &sms_env(&self.twilio.base_url()), args)
    }

    /// Writes `bytes` as `$HERMES_HOME/media/<name>`; its path.
    fn media_file(&self, name: &str, bytes: &[u8]) -> String {
        let dir = self.home.path().join("media");
        std::fs::create_dir_all(&dir).expect("media dir");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("writing a reply file");
        path.display().to_string()
    }
}

/// A port free now on loopback.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The webhook URL of a gateway listening on `port`.
fn webhook_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/webhooks/twilio")
}

/// An emulator whose number posts to a gateway on a port chosen now; that port.
fn emulator_for_own_port() -> (Emulator, u16) {
    let port = free_port();
    let twilio = Emulator::start(EmulatorConfig {
        account_sid: ACCOUNT_SID.to_string(),
        auth_token: AUTH_TOKEN.to_string(),
        phone_number: OUR_NUMBER.to_string(),
        sms_url: Some(webhook_url(port)),
        sms_method: "POST".to_string(),
    })
    .expect("starting the Twilio emulator");
    (twilio, port)
}

/// A gateway on `home` listening on `port` with that port's webhook URL.
fn start_gateway(
    home: &Home,
    twilio: &Emulator,
    llm: &FakeLlm,
    port: u16,
    extra: &[(&str, &str)],
) -> Gateway {
    let (url, port, llm_url) = (webhook_url(port), port.to_string(), llm.base_url());
    let mut all = vec![
        ("SMS_WEBHOOK_URL", url.as_str()),
        ("SMS_WEBHOOK_PORT", port.as_str()),
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", llm_url.as_str()),
        ("HERMES_AGENT_MODEL", "test-model"),
    ];
    all.extend_from_slice(extra);
    sms_gateway(home, twilio, &all)
}

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG_BASE64)
        .expect("PNG")
}

/// A PNG of exactly `size` bytes (the image, then padding after its end).
fn png_of(size: usize) -> Vec<u8> {
    let mut bytes = png();
    bytes.resize(size, 0);
    bytes
}

/// JPEG-looking bytes of `size`, different for each `seed`.
fn photo(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..size - 4).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

fn file(content_type: &str, bytes: &[u8]) -> MediaFile {
    MediaFile {
        content_type: content_type.to_string(),
        bytes: bytes.to_vec(),
    }
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The name the gateway gives a file Twilio serves at `url`: its media SID and extension.
fn media_name(url: &str, extension: &str) -> String {
    format!("{}.{extension}", url.rsplit('/').next().expect("a SID"))
}

/// A small web server for Markdown images: `/chart.png` is a PNG, anything else 404.
fn image_server() -> LoopbackServer {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("binding the image server");
    LoopbackServer::start(
        "images",
        listener,
        |cfg: &mut actix_web::web::ServiceConfig| {
            cfg.route(
                "/chart.png",
                actix_web::web::get().to(|| async {
                    actix_web::HttpResponse::Ok()
                        .content_type("image/png")
                        .body(png())
                }),
            )
            .default_service(actix_web::web::to(|| async {
                actix_web::HttpResponse::NotFound().finish()
            }));
        },
    )
    .expect("the image server listens")
}

/// The outbox rows carrying a file named `name`.
fn rows_with<'a>(outbox: &'a [Value], name: &str) -> Vec<&'a Value> {
    outbox
        .iter()
        .filter(|r| {
            r["media"]
                .as_array()
                .is_some_and(|m| m.iter().any(|f| f.as_str() == Some(name)))
        })
        .collect()
}

/// How many log lines contain `needle`.
fn logged(gw: &Gateway, needle: &str) -> usize {
    gw.logs().lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn an_mms_photo_is_fetched_with_credentials_kept_and_described_to_the_agent() {
    let mms = Mms::start(&[]);
    let bytes = photo(48_213, 1);
    let sent = mms.send("What is this?", &[file("image/jpeg", &bytes)]);
    let name = media_name(&sent.media_urls[0], "jpg");

    assert_eq!(
        mms.last_user_content(),
        Value::String(format!(
            "What is this?\n[attachment: {name}, image/jpeg, 48 KB]"
        ))
    );
    assert_eq!(mms.twilio.wait_for_messages(1, WAIT).len(), 1);
    mms.gw.settle(WAIT);

    // Twilio's media URL with the account's credentials, then its CDN link without.
    let fetches = mms.twilio.media_fetches();
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert!(
        sent.media_urls[0].ends_with(&fetches[0].path),
        "{fetches:?}"
    );
    assert!(
        fetches[0].authorized && fetches[0].status == 302,
        "{fetches:?}"
    );
    assert!(
        fetches[1].path.starts_with("/_emulator/media-cdn/")
            && !fetches[1].authorized
            && fetches[1].status == 200,
        "{fetches:?}"
    );

    let (kept, kept_name, content_type): (Vec<u8>, String, String) = mms
        .home
        .db()
        .query_row(
            "SELECT bytes, name, content_type FROM media WHERE inbound_id IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the photo is kept");
    assert_eq!(kept, bytes);
    assert_eq!(
        (kept_name.as_str(), content_type.as_str()),
        (name.as_str(), "image/jpeg")
    );

    // No stored URL carries a credential: not the token, not the SID-and-token pair.
    let attachments: String = mms
        .home
        .db()
        .query_row("SELECT attachments FROM inbound", [], |r| r.get(0))
        .expect("the message is stored");
    assert!(attachments.contains(&sent.media_urls[0]), "{attachments}");
    let db = std::fs::read(mms.home.path().join("gateway.db")).expect("reading gateway.db");
    let wal = std::fs::read(mms.home.path().join("gateway.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(AUTH_TOKEN), "the auth token is stored");
        assert!(
            !text.contains(&format!("{ACCOUNT_SID}:")),
            "credentials are stored"
        );
    }
    assert!(!mms.gw.logs().contains(AUTH_TOKEN));
}

#[test]
fn with_vision_the_agent_gets_the_photo_as_an_image_part() {
    let mms = Mms::start(&[("HERMES_AGENT_VISION", "true")]);
    let bytes = photo(20_000, 2);
    mms.send("Look", &[file("image/jpeg", &bytes)]);

    let content = mms.last_user_content();
    let parts = content.as_array().unwrap_or_else(|| panic!("{content}"));
    assert_eq!(parts[0]["type"], "text");
    assert_eq!(
        parts[0]["text"], "Look",
        "the picture is not described as text"
    );
    let images: Vec<&Value> = parts.iter().filter(|p| p["type"] == "image_url").collect();
    assert_eq!(images.len(), 1, "{content}");
    let url = images[0]["image_url"]["url"].as_str().expect("a URL");
    let data = url
        .strip_prefix("data:image/jpeg;base64,")
        .unwrap_or_else(|| panic!("not a JPEG data URL: {}", &url[..40.min(url.len())]));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    assert_eq!(decoded, bytes);
}

#[test]
fn a_voice_note_is_transcribed_for_the_agent() {
    let llm_for_stt = FakeLlm::start();
    let stt_url = llm_for_stt.base_url();
    let mms = Mms::start(&[("HERMES_STT_URL", stt_url.as_str())]);
    let voice = b"OggS\0\x02 a voice note, as Opus frames would be".repeat(50);
    llm_for_stt.set_transcript(&voice, "call me at five");
    mms.send("", &[file("audio/ogg", &voice)]);

    assert_eq!(
        mms.last_user_content(),
        Value::String("[voice note] call me at five".into())
    );
    mms.gw.settle(WAIT);
    let asked = llm_for_stt.transcriptions();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].model.as_deref(), Some("whisper-1"));
    assert_eq!(asked[0].size, voice.len());
    assert!(mms.llm.transcriptions().is_empty());
}

#[test]
fn without_a_transcription_server_the_agent_reads_that_the_note_was_not_transcribed() {
    let mms = Mms::start(&[]);
    mms.send("listen", &[file("audio/ogg", b"OggS\0\x02 voice")]);
    assert_eq!(
        mms.last_user_content(),
        Value::String("listen\n[voice note, not transcribed]".into())
    );
    mms.gw.settle(WAIT);
    assert!(mms.llm.transcriptions().is_empty());
}

/// The media SID a Twilio media URL ends with (`ME…`).
fn media_sid(url: &str) -> &str {
    url.rsplit('/').next().expect("a path")
}

#[test]
fn a_fetch_that_keeps_failing_is_retried_then_the_agent_is_told() {
    let mms = Mms::start(&[]);
    mms.twilio.fail_media_fetches(100);
    let sent = mms.send("see the photo", &[file("image/jpeg", &photo(1_000, 3))]);

    // Named after its media SID from the webhook on, although it was never fetched.
    mms.assert_not_fetched(
        "see the photo",
        &format!(
            "{}.jpg, image/jpeg: Twilio answered 503 Service Unavailable",
            media_sid(&sent.media_urls[0])
        ),
    );
    let answered = mms.twilio.wait_for_messages(1, WAIT);
    assert_eq!(answered.len(), 1, "the message is answered");
    mms.gw.settle(WAIT);
    // Four fetches of the media URL, three announced retries.
    let fetches = mms.twilio.media_fetches();
    assert_eq!(fetches.len(), 4, "{fetches:?}");
    assert!(fetches.iter().all(|f| f.status == 503 && f.authorized));
    assert_eq!(logged(&mms.gw, "trying again in"), 3, "{}", mms.gw.logs());
    assert_eq!(logged(&mms.gw, "not fetched: "), 1, "{}", mms.gw.logs());
    assert!(
        !mms.gw.logs().contains(&sent.media_urls[0]),
        "no media URL in logs"
    );
    assert_eq!(
        count(
            &mms.home,
            "SELECT COUNT(*) FROM media WHERE state = 'failed' AND bytes IS NULL"
        ),
        1
    );
}

#[test]
fn a_file_over_the_limit_is_refused_and_nothing_is_kept() {
    let mms = Mms::start(&[("HERMES_MEDIA_MAX_MB", "1")]);
    let sent = mms.send("big one", &[file("image/jpeg", &photo(1_200_000, 4))]);

    mms.assert_not_fetched(
        "big one",
        &format!(
            "{}.jpg, image/jpeg: the file is larger than 1.0 MB",
            media_sid(&sent.media_urls[0])
        ),
    );
    assert_eq!(mms.twilio.wait_for_messages(1, WAIT).len(), 1);
    mms.gw.settle(WAIT);
    assert_eq!(
        count(
            &mms.home,
            "SELECT COUNT(*) FROM media WHERE bytes IS NOT NULL"
        ),
        0,
        "nothing kept"
    );
    assert_eq!(
        mms.twilio
            .media_fetches()
            .iter()
            .filter(|f| f.authorized)
            .count(),
        1,
        "a file too large is not fetched again"
    );
}

#[test]
fn a_media_line_is_sent_as_one_mms_the_emulator_downloads() {
    let mms = Mms::start(&[]);
    let chart = png_of(2_000);
    let path = mms.media_file("chart.png", &chart);
    mms.llm.set_reply(&format!("Your chart\nMEDIA:{path}"));
    mms.text("chart please", "SMm6000000000000000000000000000001");

    let sent = mms.twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", mms.gw.logs());
    assert_eq!(sent[0].body, "Your chart");
    assert_eq!(sent[0].media_urls.len(), 1, "{sent:?}");
    let prefix = format!("{}/media/", mms.origin);
    assert!(sent[0].media_urls[0].starts_with(&prefix), "{sent:?}");
    let downloads = mms.twilio.wait_for_downloads(1, WAIT);
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].status, Some(200));
    assert_eq!(downloads[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(
        downloads[0].sha1.as_deref(),
        Some(sha1_hex(&chart).as_str())
    );
    mms.gw.settle(WAIT);
    assert_eq!(mms.twilio.messages().len(), 1, "one MMS");

    let outbox = mms.outbox();
    let rows = rows_with(&outbox, "chart.png");
    assert_eq!(rows.len(), 1, "{outbox:?}");
    assert_eq!(rows[0]["state"], "sent", "{outbox:?}");
    assert_eq!(rows[0]["provider_id"], sent[0].sid.as_str());

    // The doctor's last 24 hours count the MMS apart from texts.
    let doctor = mms.hermes(&["gateway", "doctor"]);
    let report = text(&doctor.stdout);
    let mms_lines: Vec<&str> = report.lines().filter(|l| l.contains("sms MMS ")).collect();
    assert_eq!(mms_lines.len(), 1, "{report}");
    assert!(
        mms_lines[0].trim_start().starts_with("1  sms MMS "),
        "{report}"
    );
}

#[test]
fn refused_reply_files_are_logged_once_and_the_text_still_goes() {
    let images = image_server();
    let mms = Mms::start(&[]);
    let loopback = format!("http://{}/chart.png", images.addr());
    mms.llm.set_reply(&format!(
        "Two files\nMEDIA:/etc/hostname\n![chart]({loopback})"
    ));
    mms.text("files please", "SMm7000000000000000000000000000001");

    let sent = mms.twilio.wait_for_messages(1, WAIT);
    mms.gw.settle(WAIT);
    assert_eq!(mms.twilio.messages().len(), 1, "{sent:?}");
    assert_eq!(sent[0].body, "Two files");
    assert!(sent[0].media_urls.is_empty(), "{sent:?}");
    assert!(mms.twilio.downloads().is_empty());

    assert_eq!(
        logged(&mms.gw, "outside HERMES_MEDIA_DIRS"),
        1,
        "{}",
        mms.gw.logs()
    );
    assert_eq!(logged(&mms.gw, "loopback address"), 1, "{}", mms.gw.logs());
    let outbox = mms.outbox();
    let hostname = rows_with(&outbox, "/etc/hostname");
    assert_eq!(hostname.len(), 1, "{outbox:?}");
    assert_eq!(hostname[0]["state"], "failed");
    assert_eq!(hostname[0]["error"], "outside HERMES_MEDIA_DIRS");
    let refused: Vec<&Value> = outbox
        .iter()
        .filter(|r| {
            r["state"] == "failed" && r["error"].as_str().is_some_and(|e| e.contains("loopback"))
        })
        .collect();
    assert_eq!(refused.len(), 1, "{outbox:?}");
    let table = mms.hermes(&["outbox", "list"]);
    let table = text(&table.stdout);
    assert!(
        table.contains("files: /etc/hostname (not sent: outside HERMES_MEDIA_DIRS)"),
        "{table}"
    );
}

#[test]
fn a_file_in_the_media_dirs_that_cannot_be_read_is_refused_and_the_text_still_goes() {
    let mms = Mms::start(&[]);
    let folder = mms.home.path().join("media").join("album.png");
    std::fs::create_dir_all(&folder).expect("a folder named like a picture");
    let missing = mms.home.path().join("media").join("missing.png");
    mms.llm.set_reply(&format!(
        "Files\nMEDIA:{}\nMEDIA:{}",
        folder.display(),
        missing.display()
    ));
    mms.text("files please", "SMm7000000000000000000000000000003");

    let sent = mms.twilio.wait_for_messages(1, WAIT);
    mms.gw.settle(WAIT);
    assert_eq!(mms.twilio.messages().len(), 1, "{sent:?}");
    assert_eq!(sent[0].body, "Files");
    assert!(sent[0].media_urls.is_empty(), "{sent:?}");
    let outbox = mms.outbox();
    for (path, reason) in [(&folder, "not a regular file"), (&missing, "not found")] {
        let rows = rows_with(&outbox, &path.display().to_string());
        assert_eq!(rows.len(), 1, "{outbox:?}");
        assert_eq!(rows[0]["state"], "failed", "{outbox:?}");
        assert_eq!(rows[0]["error"], reason, "{outbox:?}");
        assert_eq!(logged(&mms.gw, reason), 1, "{}", mms.gw.logs());
    }
}

#[test]
fn with_private_addresses_allowed_a_loopback_image_is_sent_and_a_dead_link_refused() {
    let images = image_server();
    let mms = Mms::start(&[("HERMES_MEDIA_ALLOW_PRIVATE", "true")]);
    let base = format!("http://{}", images.addr());
    mms.llm.set_reply(&format!(
        "Here\n![chart]({base}/chart.png)\n![gone]({base}/gone.png)"
    ));
    mms.text("images please", "SMm7000000000000000000000000000002");

    let sent = mms.twilio.wait_for_messages(1, WAIT);
    let downloads = mms.twilio.wait_for_downloads(1, WAIT);
    mms.gw.settle(WAIT);
    assert_eq!(mms.twilio.messages().len(), 1, "{sent:?}");
    assert_eq!(sent[0].body, "Here");
    assert_eq!(sent[0].media_urls.len(), 1, "{sent:?}");
    assert_eq!(downloads.len(), 1);
    assert_eq!(
        downloads[0].sha1.as_deref(),
        Some(sha1_hex(&png()).as_str())
    );
    assert_eq!(logged(&mms.gw, "HTTP 404"), 1, "{}", mms.gw.logs());
    let outbox = mms.outbox();
    let dead: Vec<&Value> = outbox
        .iter()
        .filter(|r| r["state"] == "failed" && r["error"] == "HTTP 404")
        .collect();
    assert_eq!(dead.len(), 1, "{outbox:?}");
}

#[test]
fn unknown_malformed_and_expired_tokens_are_not_found() {
    let mms = Mms::start(&[("HERMES_MEDIA_URL_TTL_SECS", "0")]);
    let unknown = format!("/media/{}", "A".repeat(43));
    assert_eq!(mms.gw.get(&unknown).status, 404);
    for malformed in ["/media/short", "/media/..%2F..%2Fgateway.db", "/media/%00"] {
        assert_eq!(mms.gw.get(malformed).status, 404, "{malformed}");
    }

    mms.twilio.deliver_status_callbacks(None);
    let path = mms.media_file("chart.png", &png());
    mms.llm.set_reply(&format!("Your chart\nMEDIA:{path}"));
    mms.text("chart please", "SMm8000000000000000000000000000001");
    let downloads = mms.twilio.wait_for_downloads(1, WAIT);
    assert_eq!(downloads.len(), 1, "{}", mms.gw.logs());
    assert_eq!(downloads[0].status, Some(404));
    let failed = eventually(WAIT, || {
        mms.outbox()
            .into_iter()
            .find(|r| r["status"] == "failed" && r["error_code"] == 11200)
    });
    let failed = failed.unwrap_or_else(|| panic!("no part failed with 11200: {:?}", mms.outbox()));
    assert_eq!(failed["media"][0], "chart.png");
    let callbacks = mms.twilio.callbacks();
    assert!(
        callbacks.iter().any(|c| c.status == "failed"
            && c.error_code == Some(11200)
            && c.answered == Some(200)),
        "{callbacks:?}"
    );
}

#[test]
fn more_than_ten_files_go_in_two_mms_and_a_file_too_large_is_named() {
    let mms = Mms::start(&[]);
    let mut reply = String::from("Eleven charts");
    let mut hashes = Vec::new();
    for i in 0..11 {
        let bytes = png_of(1_000 + i);
        hashes.push(sha1_hex(&bytes));
        reply.push_str(&format!(
            "\nMEDIA:{}",
            mms.media_file(&format!("c{i}.png"), &bytes)
        ));
    }
    reply.push_str(&format!(
        "\nMEDIA:{}",
        mms.media_file("big.png", &png_of(6_000_000))
    ));
    mms.llm.set_reply(&reply);
    mms.text("all of them", "SMm9000000000000000000000000000001");

    let sent = mms.twilio.wait_for_messages(2, WAIT);
    let downloads = mms.twilio.wait_for_downloads(11, WAIT);
    mms.gw.settle(WAIT);
    assert_eq!(mms.twilio.messages().len(), 2, "{sent:?}");
    assert_eq!(
        sent[0].body,
        "Eleven charts\n\n(big.png not sent: 6.0 MB, over the 5.0 MB a file that MMS allows)"
    );
    assert_eq!(sent[0].media_urls.len(), 10);
    assert_eq!(sent[1].media_urls.len(), 1);
    assert_eq!(sent[1].body, "");
    let mut got: Vec<String> = downloads.iter().filter_map(|d| d.sha1.clone()).collect();
    got.sort();
    hashes.sort();
    assert_eq!(got, hashes, "every file downloaded once, as written");
    let outbox = mms.outbox();
    let big = rows_with(&outbox, "big.png");
    assert_eq!(big.len(), 1, "{outbox:?}");
    assert_eq!(big[0]["state"], "failed");
}

#[test]
fn files_over_five_mb_together_go_in_two_mms() {
    let mms = Mms::start(&[]);
    let (first, second) = (png_of(3_000_000), png_of(3_000_001));
    mms.llm.set_reply(&format!(
        "Two photos\nMEDIA:{}\nMEDIA:{}",
        mms.media_file("first.png", &first),
        mms.media_file("second.png", &second)
    ));
    mms.text("both", "SMm9000000000000000000000000000002");

    let sent = mms.twilio.wait_for_messages(2, WAIT);
    let downloads = mms.twilio.wait_for_downloads(2, WAIT);
    mms.gw.settle(WAIT);
    assert_eq!(mms.twilio.messages().len(), 2, "{sent:?}");
    assert_eq!(sent[0].body, "Two photos");
    assert_eq!((sent[0].media_urls.len(), sent[1].media_urls.len()), (1, 1));
    // Each message's file, downloaded by the emulator as that message's media.
    for (message, bytes) in sent.iter().zip([&first, &second]) {
        let download = downloads
            .iter()
            .find(|d| d.message_sid == message.sid)
            .unwrap_or_else(|| panic!("{} not downloaded: {downloads:?}", message.sid));
        assert_eq!(download.sha1, Some(sha1_hex(bytes)), "{downloads:?}");
    }
    let outbox = mms.outbox();
    assert!(outbox.iter().all(|r| r["state"] == "sent"), "{outbox:?}");
}

#[test]
fn the_command_backend_reads_the_file_at_its_path() {
    // Prints the size of the file at `files[0].path` in its input (one line of JSON).
    let program =
        r#"path=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p'); echo "read $(wc -c < "$path") bytes""#;
    let mms = Mms::start(&[
        ("HERMES_AGENT", "command"),
        ("HERMES_AGENT_COMMAND", program),
    ]);
    mms.send("size?", &[file("image/jpeg", &photo(31_337, 5))]);
    let sent = mms.twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", mms.gw.logs());
    assert_eq!(sent[0].body, "read 31337 bytes");
}

#[test]
fn replicas_on_postgres_serve_each_others_files() {
    let Some(db) = gateway_tests::postgres::TestDatabase::new("media_replicas") else {
        return;
    };
    let url = db.url();
    let llm = FakeLlm::start();
    let (twilio, port_a) = emulator_for_own_port();
    let port_b = free_port();
    let (home_a, home_b) = (Home::new(), Home::new());
    let files = tempfile::tempdir().expect("a media dir both use");
    let dirs = files.path().display().to_string();
    let shared = [
        ("HERMES_DATABASE_URL", url.as_str()),
        ("HERMES_MEDIA_DIRS", dirs.as_str()),
    ];
    let a = start_gateway(&home_a, &twilio, &llm, port_a, &shared);
    let b = start_gateway(&home_b, &twilio, &llm, port_b, &shared);

    // A photo kept by A is in the shared database.
    let bytes = photo(10_000, 6);
    let sent = twilio
        .text_with_media(ALICE, "photo", &[file("image/jpeg", &bytes)], None)
        .expect("posting the MMS");
    assert_eq!(sent.answered, 200, "{}", a.logs());
    assert_eq!(twilio.wait_for_messages(1, WAIT).len(), 1, "{}", a.logs());
    let kept = db.rows("SELECT encode(bytes, 'hex') FROM media WHERE inbound_id IS NOT NULL");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(kept[0][0].as_deref(), Some(hex.as_str()));

    // A reply file kept by whichever runs the turn is served by both.
    let chart = png_of(3_000);
    let path = files.path().join("chart.png");
    std::fs::write(&path, &chart).expect("chart");
    llm.set_reply(&format!("Chart\nMEDIA:{}", path.display()));
    let params = inbound_sms(BOB, "chart", "SMm1100000000000000000000000000001");
    let signature = sign(AUTH_TOKEN, &webhook_url(port_a), &params);
    assert_eq!(a.post_form(&params, Some(&signature)).status, 200);
    let sent = twilio.wait_for_messages(2, WAIT);
    let media_url = sent
        .iter()
        .find_map(|m| m.media_urls.first())
        .unwrap_or_else(|| panic!("no MMS: {sent:?}\n{}\n{}", a.logs(), b.logs()));
    let token_path = &media_url[media_url.find("/media/").expect("a media path")..];
    for gw in [&a, &b] {
        let served = gw.get(token_path);
        assert_eq!(served.status, 200, "{}", gw.logs());
        assert_eq!(served.header("content-length"), Some("3000"));
        assert_eq!(served.body, String::from_utf8_lossy(&chart));
    }
}
