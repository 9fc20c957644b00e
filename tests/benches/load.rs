//! Load on the real binary, beside a bare actix-web handler on the same machine in the same run:
//! signed-webhook ingress (throughput and latency with each message stored), end-to-end reply
//! latency with the `echo` agent, and resident memory idle and under load.
//!
//! Run: `cargo bench -p gateway-tests --bench load` (numbers go into BENCHMARKS.md).
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use gateway_tests::harness::*;
use gateway_tests::http::{KeepAlive, post_request};

const CONNECTIONS: usize = 8;
const RUN: Duration = Duration::from_secs(5);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Signed webhook requests from a sender who is not allowed: stored, acknowledged, no reply.
fn requests(n: usize, tag: &str, from: impl Fn(usize) -> String) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let from = from(i);
            let sid = format!("SM{tag}{i:0>30}");
            let body_text = format!("load message {i}");
            let params = inbound_sms(&from, &body_text, &sid);
            let sig = sign(AUTH_TOKEN, WEBHOOK_URL, &params);
            post_request(
                "/webhooks/twilio",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("X-Twilio-Signature", &sig),
                ],
                &encode_form(&params),
            )
        })
        .collect()
}

struct Outcome {
    count: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {:.0} | {} | {} | {} |",
            self.count as f64 / self.elapsed.as_secs_f64(),
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
            self.errors
        )
    }
}

/// Sends `reqs` over `CONNECTIONS` connections; `rate` = total requests per second (open loop,
/// latency counted from the scheduled time) or `None` = as fast as answers come (closed loop).
fn drive(addr: SocketAddr, reqs: Vec<Vec<u8>>, rate: Option<f64>, limit: Duration) -> Outcome {
    let reqs = Arc::new(reqs);
    let start = Instant::now();
    let results = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let reqs = reqs.clone();
            let results = results.clone();
            std::thread::spawn(move || {
                let mut conn = KeepAlive::connect(addr).expect("connect");
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut i = c;
                let mut k = 0u32;
                while i < reqs.len() && start.elapsed() < limit {
                    let scheduled = match rate {
                        Some(rate) => {
                            let at = start
                                + Duration::from_secs_f64(f64::from(k) * CONNECTIONS as f64 / rate);
                            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            at
                        }
                        None => Instant::now(),
                    };
                    match conn.send(&reqs[i]) {
                        Ok(200) => latencies.push(scheduled.elapsed()),
                        _ => {
                            errors += 1;
                            conn = KeepAlive::connect(addr).expect("reconnect");
                        }
                    }
                    i += CONNECTIONS;
                    k += 1;
                }
                let mut all = results.lock().expect("results");
                all.0.extend(latencies);
                all.1 += errors;
            })
        })
        .collect();
    for t in threads {
        t.join().expect("load thread");
    }
    let elapsed = start.elapsed();
    let (mut latencies, errors) = std::mem::take(&mut *results.lock().expect("results"));
    latencies.sort();
    Outcome {
        count: latencies.len(),
        errors,
        elapsed,
        latencies,
    }
}

/// A bare actix-web handler answering the same TwiML, as the ceiling of this machine.
fn bare_server() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(|| {
                App::new().route(
                    "/webhooks/twilio",
                    web::post().to(|_body: web::Bytes| async {
                        HttpResponse::Ok()
                            .content_type("text/xml; charset=utf-8")
                            .body(r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#)
                    }),
                )
            })
            .workers(2)
            .bind("127.0.0.1:0")
            .expect("bind");
            tx.send(server.addrs()[0]).expect("send addr");
            server.run().await.expect("bare server");
        });
    });
    rx.recv().expect("bare server address")
}

fn main() {
    // Criterion-style harness flags (`--bench`) are accepted and ignored.
    println!("building the release binary…");
    hermes_bin();
    let twilio = emulator();

    let bare = bare_server();
    let home = Home::new();
    let gw = sms_gateway(&home, &twilio, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = gw.rss_kib().unwrap_or(0);

    println!(
        "\n## Signed-webhook ingress ({CONNECTIONS} keep-alive connections, {}s each)\n",
        RUN.as_secs()
    );
    println!("| scenario | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|");
    let bare_max = drive(
        bare,
        requests(200_000, "b", |_| MALLORY.to_string()),
        None,
        RUN,
    );
    println!("{}", bare_max.row("bare actix-web handler, max"));
    let gw_max = drive(
        gw.addr(),
        requests(200_000, "g", |_| MALLORY.to_string()),
        None,
        RUN,
    );
    println!("{}", gw_max.row("hermes gateway (verify + store), max"));
    let bare_1k = drive(
        bare,
        requests(5_000, "c", |_| MALLORY.to_string()),
        Some(1000.0),
        RUN,
    );
    println!("{}", bare_1k.row("bare actix-web handler, 1,000 req/s"));
    let gw_1k = drive(
        gw.addr(),
        requests(5_000, "h", |_| MALLORY.to_string()),
        Some(1000.0),
        RUN,
    );
    println!("{}", gw_1k.row("hermes gateway, 1,000 req/s"));
    let ratio = (gw_max.count as f64 / gw_max.elapsed.as_secs_f64())
        / (bare_max.count as f64 / bare_max.elapsed.as_secs_f64());
    println!("\ngateway / bare throughput: {:.0}%", ratio * 100.0);
    let loaded_rss = gw.rss_kib().unwrap_or(0);
    println!("\n## Memory\n\n| state | RSS |\n|---|---|");
    println!("| idle, SMS enabled | {:.1} MB |", idle_rss as f64 / 1024.0);
    println!(
        "| after {} stored webhooks | {:.1} MB |",
        gw_max.count + gw_1k.count,
        loaded_rss as f64 / 1024.0
    );
    drop(gw);

    // End to end: allowed sender, echo agent, reply through the emulator.
    let home = Home::new();
    let received: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sink = received.clone();
    twilio.set_on_message(Box::new(move |m| {
        sink.lock()
            .expect("received")
            .push((m.body.clone(), Instant::now()))
    }));
    let gw = sms_gateway(&home, &twilio, &[("SMS_ALLOW_ALL_USERS", "true")]);
    let n = 250;
    let mut sent_at = Vec::with_capacity(n);
    let start = Instant::now();
    let mut conn = KeepAlive::connect(gw.addr()).expect("connect");
    // Many senders, so that replies are not batched into one conversation's turns.
    let reqs = requests(n, "e", |i| format!("+1555010{:04}", i % 50));
    for (i, req) in reqs.iter().enumerate() {
        let at = start + Duration::from_millis(20 * i as u64);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent_at.push(Instant::now());
        assert_eq!(conn.send(req).expect("send"), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().expect("received").len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut latencies: Vec<Duration> = received
        .lock()
        .expect("received")
        .iter()
        .filter_map(|(body, at)| {
            let i: usize = body.rsplit(' ').next()?.parse().ok()?;
            at.checked_duration_since(sent_at[i])
        })
        .collect();
    latencies.sort();
    println!(
        "\n## End to end (webhook → echo agent → Twilio emulator), {n} messages at 50/s, 50 senders\n"
    );
    println!("| replies | p50 | p99 | max |\n|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} |",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
}
