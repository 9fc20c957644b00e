//! Pictures and files on the real binary: what an inbound 5 MiB photo adds to the start of the
//! turn that answers it beyond its fetch, the gateway's memory while it handles it, and how
//! fast `/media/<token>` serves a 1 MiB reply file beside a bare actix-web handler serving the
//! same bytes from memory, in the same run.
//!
//! The release `hermes gateway` (SMS) talks to the Twilio emulator, with the fake LLM as its
//! `openai` agent; all three instants of a turn are read on this process's clock: the webhook
//! answered (the emulator posts it), the agent asked (the fake LLM records each request's
//! arrival). Each run times a text and then an MMS with the same words and a 5 MiB
//! `image/jpeg` file, and then the plain download of that file from the emulator (its media
//! URL with the account's credentials, the redirect, the CDN link), so the overhead is the
//! MMS's start minus the text's minus the download, run by run.
//!
//! Run: `cargo bench -p gateway-tests --bench media` (numbers go into BENCHMARKS.md);
//! `-- inbound` or `-- serve` runs one half. The serving half needs `wrk`.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::http::serve_bare;
use gateway_tests::wrk::WrkRun;
use platform_sms::emulator::{Emulator, EmulatorConfig, MediaFile};

/// The inbound photo: 5 MiB, Twilio's limit for the media of one MMS.
const PHOTO_BYTES: usize = 5 * 1024 * 1024;
/// The reply file served at `/media/<token>`: 1 MiB.
const REPLY_BYTES: usize = 1024 * 1024;
/// Runs of text, MMS and plain download.
const RUNS: usize = 12;
/// The allowed sender (one of [`sms_env`]'s).
const SENDER: &str = "+15550002222";
/// The longest wait for one step.
const WAIT: Duration = Duration::from_secs(60);
/// How long wrk loads each server.
const LOAD: Duration = Duration::from_secs(5);
/// wrk's connections (over 2 threads), the same for both servers.
const CONNECTIONS: usize = 8;

/// Bytes that look like nothing compressible, the same every run.
fn bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A Twilio emulator whose number posts to the gateway's webhook URL.
fn twilio() -> Emulator {
    Emulator::start(EmulatorConfig {
        account_sid: ACCOUNT_SID.to_string(),
        auth_token: AUTH_TOKEN.to_string(),
        phone_number: OUR_NUMBER.to_string(),
        sms_url: Some(WEBHOOK_URL.to_string()),
        sms_method: "POST".to_string(),
    })
    .expect("the Twilio emulator")
}

/// An SMS gateway with the fake LLM as its agent.
fn gateway(home: &Home, twilio: &Emulator, llm: &FakeLlm) -> Gateway {
    let mut env = sms_env(&twilio.base_url());
    env.extend(
        [
            ("HERMES_AGENT", "openai".to_string()),
            ("HERMES_AGENT_URL", llm.base_url()),
            ("HERMES_AGENT_MODEL", "bench-model".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    Gateway::start(home.path(), &env)
}

/// The sender texts `files` (none: a plain text) through the emulator; returns the time from
/// the webhook's answer to the agent being asked, in seconds, and the media URLs. A text's turn
/// may start before the emulator has read the answer (the gateway answers once the message is
/// journaled, and the turn goes on beside it), so the time may be negative; what follows the
/// answer on the bench's side is the same for every message and cancels out of a difference.
/// Waits until the reply went out and the gateway is idle again, so that runs do not overlap.
fn turn(gw: &Gateway, twilio: &Emulator, llm: &FakeLlm, files: &[MediaFile]) -> (f64, Vec<String>) {
    let via = format!("http://{}", gw.addr());
    let asked = llm.arrivals().len();
    let replies = twilio.messages().len();
    let mms = twilio
        .text_with_media(SENDER, "what do you make of this?", files, Some(&via))
        .expect("the webhook is answered");
    let answered = Instant::now();
    assert_eq!(mms.answered, 200, "{}", gw.logs());
    let arrived = eventually(WAIT, || llm.arrivals().get(asked).copied())
        .unwrap_or_else(|| panic!("the agent was not asked:\n{}", gw.logs()));
    twilio.wait_for_messages(replies + 1, WAIT);
    gw.settle(WAIT);
    let start = match arrived.checked_duration_since(answered) {
        Some(after) => after.as_secs_f64(),
        None => -answered.duration_since(arrived).as_secs_f64(),
    };
    (start, mms.media_urls)
}

/// Downloads `url` as a plain client would, with the account's credentials and through the
/// redirect to the CDN link; returns the time it took and the bytes.
fn download(url: &str) -> (Duration, Vec<u8>) {
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let url = url.to_string();
    actix_rt::System::new().block_on(async move {
        let client = awc::Client::builder().disable_redirects().finish();
        let started = Instant::now();
        let moved = client
            .get(&url)
            .insert_header((header::AUTHORIZATION, auth))
            .send()
            .await
            .expect("the media URL answers");
        assert_eq!(moved.status().as_u16(), 302, "the media URL redirects");
        let location = moved
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .expect("a Location")
            .to_string();
        let mut cdn = client
            .get(&location)
            .send()
            .await
            .expect("the CDN link answers");
        let body = cdn.body().limit(2 * PHOTO_BYTES).await.expect("the bytes");
        (started.elapsed(), body.to_vec())
    })
}

/// KiB as MB (10^6 bytes), one decimal.
fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

fn inbound() {
    let twilio = twilio();
    let llm = FakeLlm::start();
    llm.set_reply("A photo of nothing in particular.");
    let home = Home::new();
    let gw = gateway(&home, &twilio, &llm);
    let photo = MediaFile {
        content_type: "image/jpeg".to_string(),
        bytes: bytes(PHOTO_BYTES),
    };
    // Warm up: connections to the agent and Twilio, the store's statements.
    for _ in 0..2 {
        turn(&gw, &twilio, &llm, &[]);
    }
    let rss_before = gw.rss_kib().expect("the gateway's RSS");
    let peak_before = gw.peak_rss_kib().expect("the gateway's peak RSS");
    let mut first_mms = None;
    let (mut texts, mut photos, mut fetches, mut overheads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let (text, _) = turn(&gw, &twilio, &llm, &[]);
        let (with_photo, urls) = turn(&gw, &twilio, &llm, std::slice::from_ref(&photo));
        if run == 0 {
            first_mms = Some((gw.rss_kib(), gw.peak_rss_kib()));
        }
        let (fetch, fetched) = download(&urls[0]);
        assert!(fetched == photo.bytes, "the emulator serves the photo");
        texts.push(text);
        photos.push(with_photo);
        fetches.push(fetch.as_secs_f64());
        overheads.push(with_photo - text - fetch.as_secs_f64());
    }
    let kept = count(
        &home,
        "SELECT COUNT(*) FROM media WHERE inbound_id IS NOT NULL AND size > 0",
    );
    assert_eq!(kept as usize, RUNS, "every photo was kept");
    for d in [&mut texts, &mut photos, &mut fetches, &mut overheads] {
        d.sort_by(f64::total_cmp);
    }
    let median = |d: &[f64]| d[d.len() / 2];
    let worst = overheads[overheads.len() - 1];
    println!(
        "\n## An inbound {PHOTO_BYTES}-byte photo: webhook answered → agent asked, {RUNS} runs\n"
    );
    println!("| | median | min | max |\n|---|---|---|---|");
    for (name, d) in [
        ("(a) text", &texts),
        ("(b) MMS with the photo", &photos),
        ("the download alone (plain client)", &fetches),
        ("b − a − download, run by run", &overheads),
    ] {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms |",
            median(d) * 1e3,
            d[0] * 1e3,
            d[d.len() - 1] * 1e3
        );
    }
    println!(
        "\nTarget ≤ 50 ms beyond the fetch: {} (worst {:.2} ms)",
        if worst <= 0.050 { "met" } else { "missed" },
        worst * 1e3
    );
    let (rss_first, peak_first) = first_mms.expect("a first run");
    let (rss_first, peak_first) = (
        rss_first.expect("RSS after the first photo"),
        peak_first.expect("peak RSS after the first photo"),
    );
    let rss_end = gw.rss_kib().expect("RSS at the end");
    let peak_end = gw.peak_rss_kib().expect("peak RSS at the end");
    let growth = peak_end.max(peak_first).saturating_sub(peak_before);
    let photo_kib = (PHOTO_BYTES / 1024) as u64;
    println!("\n| gateway memory | RSS (VmRSS) | peak (VmHWM) |\n|---|---|---|");
    println!(
        "| before the first photo | {} | {} |",
        mb(rss_before),
        mb(peak_before)
    );
    println!(
        "| after the first photo | {} | {} |",
        mb(rss_first),
        mb(peak_first)
    );
    println!(
        "| after {RUNS} photos | {} | {} |",
        mb(rss_end),
        mb(peak_end)
    );
    println!(
        "\nPeak growth {} for a {} file ({:.2}×): target ≤ 2×: {}",
        mb(growth),
        mb(photo_kib),
        growth as f64 / photo_kib as f64,
        if growth <= 2 * photo_kib {
            "met"
        } else {
            "missed"
        }
    );
}

/// A bare actix-web handler serving `file` from memory at `/media/{token}`, with the headers
/// the gateway sends, as the ceiling of this machine.
fn bare_server(file: web::Bytes) -> SocketAddr {
    serve_bare(2, move |cfg| {
        let file = file.clone();
        cfg.route(
            "/media/{token}",
            web::get().to(move || {
                let file = file.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("image/jpeg")
                        .insert_header((
                            header::CONTENT_DISPOSITION,
                            "inline; filename=\"reply.jpg\"",
                        ))
                        .insert_header((header::CACHE_CONTROL, "private, no-store"))
                        .insert_header(("X-Content-Type-Options", "nosniff"))
                        .body(file)
                }
            }),
        );
    })
}

/// Loads `url` with wrk (2 threads, [`CONNECTIONS`] connections, [`LOAD`]).
fn wrk(url: &str) -> WrkRun {
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{}s", LOAD.as_secs()),
            "--latency",
            url,
        ])
        .output()
        .expect("wrk is needed for this half (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    gateway_tests::wrk::parse(&text)
        .unwrap_or_else(|| panic!("wrk's report is incomplete:\n{text}"))
}

/// Puts a reply file in the store the way a reply does (a turn whose answer has a `MEDIA:`
/// line); returns its token, read from `gateway.db`.
fn reply_file(home: &Home, gw: &Gateway, twilio: &Emulator, llm: &FakeLlm, file: &[u8]) -> String {
    let dir = home.path().join("media");
    std::fs::create_dir_all(&dir).expect("the media directory");
    let path = dir.join("reply.jpg");
    std::fs::write(&path, file).expect("the reply file");
    llm.set_reply(&format!("Here it is.\nMEDIA:{}", path.display()));
    turn(gw, twilio, llm, &[]);
    let token: String = home
        .db()
        .query_row(
            "SELECT token FROM media WHERE token IS NOT NULL AND size = ?1",
            [file.len() as i64],
            |r| r.get(0),
        )
        .expect("the reply file is kept under a token");
    token
}

fn serve() {
    let twilio = twilio();
    let llm = FakeLlm::start();
    let home = Home::new();
    let gw = gateway(&home, &twilio, &llm);
    let file = bytes(REPLY_BYTES);
    let token = reply_file(&home, &gw, &twilio, &llm, &file);
    let bare = bare_server(web::Bytes::from(file.clone()));
    let path = format!("/media/{token}");
    // Both serve the same bytes before either is loaded.
    for addr in [gw.addr(), bare] {
        let got = actix_rt::System::new().block_on(async {
            let mut resp = awc::Client::default()
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .expect("an answer");
            assert_eq!(resp.status().as_u16(), 200);
            resp.body().limit(2 * REPLY_BYTES).await.expect("the bytes")
        });
        assert!(got == file, "{addr} serves the file");
    }
    let rss_before = gw.rss_kib().expect("RSS");
    let b = wrk(&format!("http://{bare}{path}"));
    let g = wrk(&format!("http://{}{path}", gw.addr()));
    println!(
        "\n## Serving a {REPLY_BYTES}-byte reply file (wrk, 2 threads, {CONNECTIONS} connections, {}s each)\n",
        LOAD.as_secs()
    );
    println!(
        "| server | fetches/s (2xx) | MB/s | p50 | p99 | requests | non-2xx |\n|---|---|---|---|---|---|---|"
    );
    for (name, r) in [
        ("bare actix-web handler, the file in memory", &b),
        ("hermes gateway, `GET /media/<token>`", &g),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} | {} | {} |",
            r.rps,
            r.rps * REPLY_BYTES as f64 / 1e6,
            r.p50,
            r.p99,
            r.requests,
            r.non_2xx
        );
    }
    let ratio = g.rps / b.rps;
    println!(
        "\nGateway/bare: {:.0}%: target ≥ 50%: {}",
        ratio * 100.0,
        if ratio >= 0.5 { "met" } else { "missed" }
    );
    println!(
        "Gateway RSS {} before the load, {} after, peak {}",
        mb(rss_before),
        mb(gw.rss_kib().expect("RSS")),
        mb(gw.peak_rss_kib().expect("peak RSS"))
    );
    assert_eq!(g.non_2xx, 0, "the gateway answered every fetch 2xx");
    assert_eq!(b.non_2xx, 0, "the bare handler answered every fetch 2xx");
}

fn main() {
    // Harness flags (`--bench`) are accepted and ignored; `inbound` or `serve` runs one half.
    println!("building the release binary…");
    hermes_bin();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let only = |name: &str| {
        let chosen = args.iter().any(|a| a == "inbound" || a == "serve");
        !chosen || args.iter().any(|a| a == name)
    };
    if only("inbound") {
        inbound();
    }
    if only("serve") {
        serve();
    }
}
