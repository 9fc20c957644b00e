//! Load on the real binary, beside a bare actix-web handler on the same machine in the same run:
//! signed-webhook ingress (throughput and latency with each message stored), the same from
//! allowed senders with the `echo` agent answering (every webhook must be answered 2xx while
//! the backlog of turns grows), one and two gateways on one PostgreSQL database (with
//! `HERMES_TEST_DATABASE_URL`), end-to-end reply latency with the `echo` agent, and resident
//! memory idle and under load.
//!
//! Run: `cargo bench -p gateway-tests --bench load` (numbers go into BENCHMARKS.md);
//! `cargo bench -p gateway-tests --bench load -- shared` runs the PostgreSQL rows alone, `-- allowed`
//! the allowed senders' rows, `-- replies` the end-to-end rows.
use std::net::SocketAddr;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use gateway_tests::harness::*;
use gateway_tests::http::{KeepAlive, post_request, serve_bare};
use gateway_tests::wrk::WrkRun;
use stats::{ms, percentile};

mod stats;

const CONNECTIONS: usize = 8;
const RUN: Duration = Duration::from_secs(5);
/// Connections of the fixed-rate runs: few, so that client threads do not crowd the server.
const RATE_CONNECTIONS: usize = 2;

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
fn drive(
    addr: SocketAddr,
    reqs: Vec<Vec<u8>>,
    rate: Option<f64>,
    limit: Duration,
    connections: usize,
) -> Outcome {
    let reqs = Arc::new(reqs);
    let start = Instant::now();
    let results = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let threads: Vec<_> = (0..connections)
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
                                + Duration::from_secs_f64(f64::from(k) * connections as f64 / rate);
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
                    i += connections;
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

/// Runs `wrk` (two threads, `CONNECTIONS` connections) over the given raw requests, each sent
/// once as long as fewer than `reqs.len()` are sent (one thread takes them from the front, the
/// other from the back, however unevenly they share the work); `None` when wrk is not
/// installed.
fn wrk(addr: SocketAddr, reqs: &[Vec<u8>]) -> Option<WrkRun> {
    wrk_with(addr, reqs, 2, CONNECTIONS)
}

/// [`wrk`] with its thread and connection counts.
fn wrk_with(
    addr: SocketAddr,
    reqs: &[Vec<u8>],
    threads: usize,
    connections: usize,
) -> Option<WrkRun> {
    let dir = tempfile::tempdir().ok()?;
    let script = dir.path().join("requests.lua");
    let mut lua = String::from(
        "local reqs = {}\nlocal function add(list) for _, r in ipairs(list) do reqs[#reqs + 1] = r end end\n",
    );
    for chunk in reqs.chunks(5000) {
        lua.push_str("add({\n");
        for r in chunk {
            let escaped = String::from_utf8_lossy(r)
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\r', "\\r")
                .replace('\n', "\\n");
            lua.push_str(&format!("\"{escaped}\",\n"));
        }
        lua.push_str("})\n");
    }
    lua.push_str(
        "local n = 0; id = 0\n\
         function setup(thread) thread:set('id', n); n = n + 1 end\n\
         function init(args) if id == 0 then step, i = 1, 0 else step, i = -1, #reqs + 1 end end\n\
         function request() i = i + step; return reqs[((i - 1) % #reqs) + 1] end\n",
    );
    std::fs::write(&script, lua).ok()?;
    let out = std::process::Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{}s", RUN.as_secs()),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{addr}/webhooks/twilio"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        eprintln!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    gateway_tests::wrk::parse(&text)
}

/// A bare actix-web handler answering the same TwiML, as the ceiling of this machine.
fn bare_server() -> SocketAddr {
    serve_bare(2, |cfg| {
        cfg.route(
            "/webhooks/twilio",
            web::post().to(|_body: web::Bytes| async {
                HttpResponse::Ok()
                    .content_type("text/xml; charset=utf-8")
                    .body(r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#)
            }),
        );
    })
}

fn main() {
    // Criterion-style harness flags (`--bench`) are accepted and ignored; `shared` runs only
    // the rows of several gateways on one PostgreSQL database, `replies` only the end-to-end
    // rows (each on an emulator of its own), `allowed` only the allowed senders' rows.
    println!("building the release binary…");
    hermes_bin();
    let twilio = emulator();

    let bare = bare_server();
    if std::env::args().any(|a| a == "shared") {
        shared_database(&twilio, bare);
        return;
    }
    if std::env::args().any(|a| a == "replies") {
        replies(&twilio);
        return;
    }
    if std::env::args().any(|a| a == "allowed") {
        allowed_senders(&twilio, bare);
        return;
    }
    let home = Home::new();
    let gw = sms_gateway(&home, &twilio, &[]);
    // Idle: started, listening, nothing received yet.
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = gw.rss_kib().unwrap_or(0);

    println!(
        "\n## Signed-webhook ingress ({CONNECTIONS} keep-alive connections, {}s each)\n",
        RUN.as_secs()
    );
    println!("| scenario | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|");
    // Steady 1,000 requests/s first, on a fresh database; then the maximum.
    let bare_1k = drive(
        bare,
        requests(5_000, "c", |_| MALLORY.to_string()),
        Some(1000.0),
        RUN,
        RATE_CONNECTIONS,
    );
    println!(
        "{}",
        bare_1k.row("bare actix-web handler, 1,000 req/s (2 connections)")
    );
    let gw_1k = drive(
        gw.addr(),
        requests(5_000, "h", |_| MALLORY.to_string()),
        Some(1000.0),
        RUN,
        RATE_CONNECTIONS,
    );
    println!(
        "{}",
        gw_1k.row("hermes gateway, 1,000 req/s (2 connections)")
    );
    // Maximum throughput with wrk (epoll, two threads) when it is installed; otherwise with the
    // blocking driver, whose eight threads take CPU from the server on this 2-core machine.
    // More distinct webhooks than a run sends: a repeated MessageSid would be a duplicate.
    let unique = requests(750_000, "g", |_| MALLORY.to_string());
    let (bare_rps, gw_rps, stored_max) = match (wrk(bare, &unique), wrk(gw.addr(), &unique)) {
        (Some(b), Some(g)) => {
            println!(
                "| bare actix-web handler, max (wrk) | {:.0} | {} | {} | {} |",
                b.rps, b.p50, b.p99, b.non_2xx
            );
            println!(
                "| hermes gateway (verify + store), max (wrk) | {:.0} | {} | {} | {} |",
                g.rps, g.p50, g.p99, g.non_2xx
            );
            assert_eq!(g.non_2xx, 0, "every stored webhook is answered 200");
            assert!(
                (g.requests as usize) < unique.len(),
                "wrk repeated webhooks: more than {} distinct ones are needed",
                unique.len()
            );
            (b.rps, g.rps, g.requests as usize)
        }
        _ => {
            let bare_max = drive(
                bare,
                requests(200_000, "b", |_| MALLORY.to_string()),
                None,
                RUN,
                CONNECTIONS,
            );
            println!("{}", bare_max.row("bare actix-web handler, max"));
            let gw_max = drive(gw.addr(), unique, None, RUN, CONNECTIONS);
            println!("{}", gw_max.row("hermes gateway (verify + store), max"));
            let rate = |o: &Outcome| o.count as f64 / o.elapsed.as_secs_f64();
            (rate(&bare_max), rate(&gw_max), gw_max.count)
        }
    };
    let max_ended = Instant::now();
    println!(
        "\ngateway / bare throughput: {:.0}%",
        gw_rps / bare_rps * 100.0
    );
    // Acknowledged means journaled; the importer moves messages into SQLite beside the server
    // thread. Every acknowledged one must get there once, and how long after the run that
    // takes says whether the importer kept up.
    let acknowledged = (stored_max + gw_1k.count) as i64;
    let imported_at = eventually(Duration::from_secs(120), || {
        (count(&home, "SELECT COUNT(*) FROM inbound") >= acknowledged).then(Instant::now)
    });
    let rows = count(&home, "SELECT COUNT(*) FROM inbound");
    // Requests still in flight when wrk stopped may be stored without being counted.
    assert!(
        (acknowledged..=acknowledged + CONNECTIONS as i64).contains(&rows),
        "{rows} rows for {acknowledged} acknowledged webhooks"
    );
    if let Some(at) = imported_at {
        println!(
            "every acknowledged webhook in SQLite: {rows} rows, {} after the last answer",
            ms(at.duration_since(max_ended))
        );
    }
    let loaded_rss = gw.rss_kib().unwrap_or(0);
    println!("\n## Memory\n\n| state | RSS |\n|---|---|");
    println!("| idle, SMS enabled | {:.1} MB |", idle_rss as f64 / 1024.0);
    println!(
        "| after {} stored webhooks | {:.1} MB |",
        stored_max + gw_1k.count,
        loaded_rss as f64 / 1024.0
    );
    drop(gw);

    allowed_senders(&twilio, bare);
    shared_database(&twilio, bare);
    // A fresh emulator: the one above holds every message of the runs before.
    replies(&emulator());
}

/// End to end with the `echo` agent: each reply's latency at a steady rate, then the whole
/// pipeline at full speed.
fn replies(twilio: &platform_sms::emulator::Emulator) {
    // End to end: allowed sender, echo agent, reply through the emulator.
    let home = Home::new();
    let received: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sink = received.clone();
    twilio.set_on_message(Box::new(move |m| {
        sink.lock()
            .expect("received")
            .push((m.body.clone(), Instant::now()))
    }));
    let gw = sms_gateway(&home, twilio, &[("SMS_ALLOW_ALL_USERS", "true")]);
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
    let n = 5_000;
    let (replies, took) = pipeline_throughput(twilio, n);
    println!("\n## Whole pipeline at full speed ({n} messages, one per sender, echo agent)\n");
    println!("| replies | seconds | replies/s |\n|---|---|---|");
    println!(
        "| {replies} | {:.2} | {:.0} |",
        took.as_secs_f64(),
        replies as f64 / took.as_secs_f64()
    );
}

/// Ingress from allowed senders with the `echo` agent answering, the realistic case: every
/// webhook starts a turn, the backlog of turns grows far faster than replies can be paced out,
/// and still every webhook must be answered 2xx. Beside the bare handler, in the same run.
fn allowed_senders(twilio: &platform_sms::emulator::Emulator, bare: SocketAddr) {
    const SENDERS: usize = 500;
    let sender = |i: usize| format!("+155506{:05}", i % SENDERS);
    let allowed: Vec<String> = (0..SENDERS).map(sender).collect();
    let allowed = allowed.join(",");
    let home = Home::new();
    let gw = sms_gateway(
        &home,
        twilio,
        &[
            ("SMS_ALLOWED_USERS", allowed.as_str()),
            ("HERMES_AGENT", "echo"),
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = gw.rss_kib().unwrap_or(0);
    println!(
        "\n## Allowed senders, `echo` agent ({SENDERS} senders, {CONNECTIONS} keep-alive connections, {}s each)\n",
        RUN.as_secs()
    );
    println!("| scenario | requests/s (2xx) | p50 | p99 | non-2xx |\n|---|---|---|---|---|");
    let at_1k = drive(
        gw.addr(),
        requests(5_000, "k", sender),
        Some(1000.0),
        RUN,
        RATE_CONNECTIONS,
    );
    println!(
        "{}",
        at_1k.row("hermes gateway, allowed + echo, 1,000 req/s (2 connections)")
    );
    let unique = requests(750_000, "a", sender);
    let (Some(b), Some(g)) = (wrk(bare, &unique), wrk(gw.addr(), &unique)) else {
        println!("(wrk is not installed: the maximum-throughput rows need it)");
        return;
    };
    println!(
        "| bare actix-web handler, max (wrk) | {:.0} | {} | {} | {} |",
        b.rps, b.p50, b.p99, b.non_2xx
    );
    println!(
        "| hermes gateway, allowed + echo, max (wrk) | {:.0} | {} | {} | {} |",
        g.rps, g.p50, g.p99, g.non_2xx
    );
    println!("\ngateway / bare throughput: {:.0}%", g.rps / b.rps * 100.0);
    let loaded_rss = gw.rss_kib().unwrap_or(0);
    let acknowledged = g.requests as i64 + at_1k.count as i64;
    let stored = eventually(Duration::from_secs(120), || {
        let rows = count(&home, "SELECT COUNT(*) FROM inbound");
        (rows >= acknowledged).then_some(rows)
    });
    let waiting = count(
        &home,
        "SELECT COUNT(*) FROM inbound WHERE state = 'pending'",
    );
    let peak_rss = gw.peak_rss_kib().unwrap_or(0);
    println!(
        "\n| RSS idle | RSS after the max run | peak RSS | acknowledged | in SQLite | turns still waiting |\n|---|---|---|---|---|---|"
    );
    println!(
        "| {:.1} MB | {:.1} MB | {:.1} MB | {acknowledged} | {} | {waiting} |",
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        stored.unwrap_or(0)
    );
    assert_eq!(at_1k.errors, 0, "every webhook answered 2xx at 1,000/s");
    assert_eq!(g.non_2xx, 0, "every webhook answered 2xx at full speed");
    assert!(
        stored.is_some(),
        "every acknowledged webhook reached SQLite"
    );
    drop(gw);
}

/// Connections of the steady 1,000 requests/s runs of [`shared_database`]: a webhook waits
/// for a commit there, a millisecond or two, so two connections could not carry 1,000 a
/// second however fast the commits (Twilio opens a connection per webhook).
const STEADY_CONNECTIONS: usize = 16;

/// Keep-alive connections of the middle runs of [`shared_database`]: as many as the steady runs.
const SOME_CONNECTIONS: usize = 16;

/// Keep-alive connections of the "many" runs of [`shared_database`]: a webhook waits for a
/// database commit, so how many arrive together decides how many one commit takes.
const MANY_CONNECTIONS: usize = 64;

/// Signed webhooks on one PostgreSQL database (`HERMES_TEST_DATABASE_URL`), beside the bare
/// handler and the SQLite default in the same run: one gateway, then two sharing the load (as
/// behind a load balancer), each webhook answered only once committed in PostgreSQL. Each at
/// the usual 8 connections and at 64, and at a steady 1,000 requests/s over 16.
fn shared_database(twilio: &platform_sms::emulator::Emulator, bare: SocketAddr) {
    let Some(db) = gateway_tests::postgres::TestDatabase::new("the shared-database benchmark")
    else {
        println!("\n(HERMES_TEST_DATABASE_URL is not set: the PostgreSQL rows need it)");
        return;
    };
    let url = db.url();
    println!(
        "\n## One database for several gateways (wrk, {}s each; connections in all)\n",
        RUN.as_secs()
    );
    println!(
        "| scenario | req/s (2xx), {CONNECTIONS} conn. | p99 | req/s (2xx), {SOME_CONNECTIONS} conn. | p99 | req/s (2xx), {MANY_CONNECTIONS} conn. | p99 | p99 at 1,000 req/s | non-2xx | answered from the journal |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let journal_only = |gws: &[&Gateway]| -> u64 {
        gws.iter()
            .flat_map(|gw| {
                gw.get("/metrics")
                    .body
                    .lines()
                    .filter(|l| l.starts_with("hermes_inbound_journal_only_total"))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum::<f64>() as u64
    };
    let at_1k = |addrs: &[SocketAddr], tag: &str| -> Outcome {
        // 1,000 requests/s in all, split over the gateways.
        let rate = 1000.0 / addrs.len() as f64;
        let addrs_len = addrs.len();
        let runs: Vec<_> = addrs
            .iter()
            .enumerate()
            .map(|(k, addr)| {
                let addr = *addr;
                let reqs = requests(5_000, &format!("{tag}{k}"), |_| MALLORY.to_string());
                std::thread::spawn(move || {
                    drive(addr, reqs, Some(rate), RUN, STEADY_CONNECTIONS / addrs_len)
                })
            })
            .collect();
        let mut all = Outcome {
            count: 0,
            errors: 0,
            elapsed: RUN,
            latencies: Vec::new(),
        };
        for run in runs {
            let run = run.join().expect("load thread");
            all.count += run.count;
            all.errors += run.errors;
            all.latencies.extend(run.latencies);
        }
        all.latencies.sort();
        all
    };
    // wrk on every gateway at once, the connections shared out; one thread each.
    let max = |addrs: &[SocketAddr], tag: &str, connections: usize| -> Vec<WrkRun> {
        let runs: Vec<_> = addrs
            .iter()
            .enumerate()
            .map(|(k, addr)| {
                let addr = *addr;
                let threads = (2 / addrs.len()).max(1);
                let connections = connections / addrs.len();
                let reqs = requests(600_000 / addrs.len(), &format!("{tag}{k}"), |_| {
                    MALLORY.to_string()
                });
                std::thread::spawn(move || wrk_with(addr, &reqs, threads, connections))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("wrk thread").expect("wrk runs"))
            .collect()
    };
    // Returns how many webhooks were acknowledged.
    let measure = |name: &str, addrs: &[SocketAddr], tag: &str, gws: &[&Gateway]| {
        let steady = at_1k(addrs, &format!("{tag}r"));
        let few = max(addrs, &format!("{tag}f"), CONNECTIONS);
        let some = max(addrs, &format!("{tag}s"), SOME_CONNECTIONS);
        let many = max(addrs, &format!("{tag}m"), MANY_CONNECTIONS);
        let sum = |runs: &[WrkRun]| runs.iter().map(|r| r.rps).sum::<f64>();
        let p99 = |runs: &[WrkRun]| {
            runs.iter()
                .map(|r| r.p99.as_str())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let non_2xx = few
            .iter()
            .chain(&some)
            .chain(&many)
            .map(|r| r.non_2xx)
            .sum::<u64>()
            + steady.errors as u64;
        println!(
            "| {name} | {:.0} | {} | {:.0} | {} | {:.0} | {} | {} | {non_2xx} | {} |",
            sum(&few),
            p99(&few),
            sum(&some),
            p99(&some),
            sum(&many),
            p99(&many),
            ms(percentile(&steady.latencies, 0.99)),
            journal_only(gws)
        );
        assert_eq!(non_2xx, 0, "{name}: every webhook answered 2xx");
        steady.count as u64
            + few
                .iter()
                .chain(&some)
                .chain(&many)
                .map(|r| r.requests)
                .sum::<u64>()
    };

    measure("bare actix-web handler", &[bare], "sb", &[]);
    let home = Home::new();
    let gw = sms_gateway(&home, twilio, &[]);
    measure("hermes, SQLite (the default)", &[gw.addr()], "sq", &[&gw]);
    drop(gw);

    let extra = [("HERMES_DATABASE_URL", url.as_str())];
    let home = Home::new();
    let one = sms_gateway(&home, twilio, &extra);
    let mut acknowledged = measure(
        "hermes, 1 gateway on PostgreSQL",
        &[one.addr()],
        "p1",
        &[&one],
    );
    drop(one);
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = sms_gateway(&home_a, twilio, &extra);
    let b = sms_gateway(&home_b, twilio, &extra);
    acknowledged += measure(
        "hermes, 2 gateways on PostgreSQL",
        &[a.addr(), b.addr()],
        "p2",
        &[&a, &b],
    );
    let rows = db.count("SELECT COUNT(*) FROM inbound") as u64;
    println!(
        "\n{rows} rows in PostgreSQL for {acknowledged} webhooks acknowledged by the gateways on it (requests still in flight when wrk stopped may be stored without being counted)"
    );
    assert!(rows >= acknowledged, "every acknowledged webhook committed");
}

/// The whole pipeline at full speed: `n` messages from many allowed senders sent as fast as the
/// gateway takes them, until the emulator has every reply. Returns replies per second.
fn pipeline_throughput(twilio: &platform_sms::emulator::Emulator, n: usize) -> (usize, Duration) {
    let home = Home::new();
    // Counted in the emulator's callback: copying its whole record while it serves would slow it.
    let replies = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = replies.clone();
    twilio.set_on_message(Box::new(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));
    let gw = sms_gateway(
        &home,
        twilio,
        &[
            ("SMS_ALLOW_ALL_USERS", "true"),
            // Pacing would otherwise be the limit being measured.
            ("TWILIO_MAX_SEGMENTS_PER_SECOND", "1000000"),
            ("HERMES_MAX_CONCURRENT_TURNS", "64"),
        ],
    );
    // One message per sender: texts of one sender during a turn would be answered together.
    let reqs = requests(n, "p", |i| format!("+155504{i:05}"));
    let start = Instant::now();
    let sent = drive(gw.addr(), reqs, None, Duration::from_secs(60), CONNECTIONS);
    assert_eq!(sent.count, n, "every webhook accepted");
    let deadline = Instant::now() + Duration::from_secs(120);
    let count = || replies.load(std::sync::atomic::Ordering::Relaxed);
    while count() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    (count(), start.elapsed())
}
