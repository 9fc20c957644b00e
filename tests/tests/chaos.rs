//! Chaos: about a hundred messages from a few dozen senders, a slow agent so that turns are in
//! flight, Twilio answering a share of sends with 429 and 500, hanging before it creates the
//! message or after, answering late, and the gateway killed with SIGKILL at random moments
//! (inside sends too) and restarted. Webhooks that fail while it is down are retried the way
//! Twilio does (same `MessageSid`). At the end every acknowledged message got exactly one reply,
//! to its sender: each send whose outcome was unknown was looked up in Twilio's message list
//! and either recorded as sent or sent once; no part is left ambiguous or failed.
//!
//! Seeded: set `CHAOS_SEED` to replay a run; the seed is printed.
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use platform_sms::emulator::Fault;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What is still open, one line per row: pending messages and unfinished parts.
fn open_rows(home: &Home) -> Vec<String> {
    let db = home.db();
    let mut statement = db
        .prepare(
            "SELECT 'message ' || id || ' from ' || chat FROM inbound WHERE state = 'pending'
             UNION ALL
             SELECT 'part ' || id || ' to ' || chat || ' ' || state || ', attempts ' || attempts
                    || ', next attempt in ' || (next_attempt_at - CAST(strftime('%s', 'now') AS INTEGER) * 1000) || ' ms'
                    || ', lease ' || IFNULL(lease_until, 'none') || ', reconcile ' || IFNULL(reconcile_at, 'none')
             FROM outbox WHERE state IN ('pending', 'sending', 'ambiguous')",
        )
        .expect("a query");
    statement
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("a row"))
        .collect()
}

#[test]
fn kills_faults_and_retries_lose_nothing_and_double_nothing() {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("CHAOS_SEED={seed}");
    let mut rng = Rng(seed);

    let home = Home::new();
    let twilio = emulator();
    let llm = FakeLlm::start();
    llm.set_delay(Duration::from_millis(150));
    // A bad spell about as long as the messages take to arrive (a hundred sends), then Twilio
    // recovers: a part caught in a long run of faults at the very end would otherwise back off
    // past the settling deadline (the sixth attempt waits up to 32 s) without anything being
    // wrong.
    for _ in 0..100 {
        match rng.below(12) {
            0 => twilio.push_fault(Fault::TooManyRequests {
                retry_after: Some(1),
            }),
            1 => twilio.push_fault(Fault::ServerError),
            2 => twilio.push_fault(Fault::Hang),
            3 => twilio.push_fault(Fault::AcceptThenHang),
            4 => twilio.push_fault(Fault::Delay(Duration::from_millis(300))),
            _ => twilio.push_fault(Fault::Delay(Duration::ZERO)),
        }
    }
    let llm_url = llm.base_url();
    let extra = [
        ("SMS_ALLOW_ALL_USERS", "true"),
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", llm_url.as_str()),
        ("HERMES_AGENT_MODEL", "chaos"),
        // A hung send becomes an unknown outcome after a second, looked up a second later.
        ("TWILIO_REQUEST_TIMEOUT_SECS", "1"),
        ("TWILIO_RECONCILE_AFTER_SECS", "1"),
    ];

    let senders: Vec<String> = (0..30).map(|i| format!("+1555030{i:04}")).collect();
    let messages: Vec<(String, String, String)> = (0..100)
        .map(|i| {
            let from = senders[rng.below(senders.len() as u64) as usize].clone();
            (format!("SMw{i:0>31}"), from, format!("m{i}"))
        })
        .collect();
    let kill_points: Vec<usize> = {
        let mut points: Vec<usize> = (0..4).map(|_| 10 + rng.below(85) as usize).collect();
        points.sort();
        points
    };
    println!("kills after messages {kill_points:?}");

    let mut gw = sms_gateway(&home, &twilio, &extra);
    let mut acknowledged = Vec::new();
    for (i, (sid, from, body)) in messages.iter().enumerate() {
        if kill_points.contains(&i) {
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            gw.kill();
            // Twilio keeps posting while the gateway is down: these fail and are retried.
            let down =
                gateway_tests::http::request(gw.addr(), "POST", "/webhooks/twilio", &[], b"");
            assert!(down.is_err(), "the gateway is down");
            gw = sms_gateway(&home, &twilio, &extra);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let answer =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gw.text(from, body, sid)));
            match answer {
                Ok(r) if r.status == 200 => break,
                _ if tries < 50 => std::thread::sleep(Duration::from_millis(100)),
                _ => panic!("message {i} never acknowledged"),
            }
        }
        acknowledged.push(i);
        std::thread::sleep(Duration::from_millis(rng.below(40)));
    }

    // Let everything settle: every acknowledged message imported and handled, every part final
    // (an ambiguous part is still open: it waits for its look-up).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let open = gw.unimported().max(0)
            + count(
                &home,
                "SELECT COUNT(*) FROM inbound WHERE state = 'pending'",
            )
            + count(
                &home,
                "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending', 'ambiguous')",
            );
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {open} open after the deadline ({} unimported; {:?}); seed {seed}\n{}",
            gw.unimported(),
            open_rows(&home),
            gw.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    gw.settle(Duration::from_secs(30));

    let sent = twilio.messages();
    let ambiguous: Vec<String> = {
        let db = home.db();
        let mut stmt = db
            .prepare("SELECT body FROM outbox WHERE state = 'ambiguous'")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let failed = count(&home, "SELECT COUNT(*) FROM outbox WHERE state = 'failed'");
    assert_eq!(failed, 0, "no part failed for good; seed {seed}");
    assert!(
        ambiguous.is_empty(),
        "parts left ambiguous: {ambiguous:?}; seed {seed}"
    );
    let mut replies: HashMap<usize, Vec<String>> = HashMap::new();
    for m in &sent {
        let text = m.body.strip_prefix("You said: ").unwrap_or(&m.body);
        for line in text.lines() {
            if let Some(i) = line.strip_prefix('m').and_then(|n| n.parse::<usize>().ok()) {
                replies.entry(i).or_default().push(m.to.clone());
            }
        }
    }
    for i in acknowledged {
        let to = replies.get(&i).cloned().unwrap_or_default();
        assert_eq!(
            to.len(),
            1,
            "message {i} got {} replies; seed {seed}",
            to.len()
        );
        assert_eq!(
            to[0], messages[i].1,
            "message {i} answered to its sender; seed {seed}"
        );
    }
    let hung = twilio
        .attempts()
        .iter()
        .filter(|a| a.status.is_none())
        .count();
    println!(
        "{} messages, {} replies sent, {} kills, {hung} sends left unanswered, {} look-ups",
        messages.len(),
        sent.len(),
        kill_points.len(),
        twilio.list_queries().len()
    );
}
