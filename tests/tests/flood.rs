//! A backlog never refuses a message: Twilio does not retry a webhook answered 503, so every
//! signed webhook that can be stored is acknowledged, however much waits. The backlog lives on
//! disk and memory stays bounded; the only refusal left is "cannot store" (free disk space
//! below HERMES_MIN_FREE_DISK_MB).
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::http::{KeepAlive, post_request};

const SENDERS: usize = 500;
const MESSAGES: usize = 50_000;
const CLIENTS: usize = 4;

fn sender(i: usize) -> String {
    format!("+1555040{:04}", i % SENDERS)
}

fn signed_request(i: usize) -> Vec<u8> {
    let from = sender(i);
    let sid = format!("SMf{i:0>31}");
    let body = format!("flood f{i}");
    let params = inbound_sms(&from, &body, &sid);
    let sig = sign(AUTH_TOKEN, WEBHOOK_URL, &params);
    post_request(
        "/webhooks/twilio",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", &sig),
        ],
        &encode_form(&params),
    )
}

#[test]
fn a_flood_while_the_agent_is_stuck_is_all_acknowledged_and_all_answered() {
    let home = Home::new();
    let twilio = emulator();
    let llm = FakeLlm::start();
    llm.hold();
    let llm_url = llm.base_url();
    let gw = sms_gateway(
        &home,
        &twilio,
        &[
            ("SMS_ALLOW_ALL_USERS", "true"),
            ("HERMES_AGENT", "openai"),
            ("HERMES_AGENT_URL", llm_url.as_str()),
            ("HERMES_AGENT_MODEL", "stuck"),
            ("HERMES_AGENT_TIMEOUT_SECS", "600"),
            ("TWILIO_MAX_SEGMENTS_PER_SECOND", "100000"),
            ("RUST_LOG", "warn,platform_sms=info"),
        ],
    );
    let rss_before = gw.rss_kib().expect("gateway RSS");
    let next = Arc::new(AtomicUsize::new(0));
    let addr = gw.addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let next = next.clone();
            std::thread::spawn(move || {
                let mut conn = KeepAlive::connect(addr).expect("connect");
                let mut answers: HashMap<u16, usize> = HashMap::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= MESSAGES {
                        return answers;
                    }
                    let status = conn.send(&signed_request(i)).expect("answered");
                    *answers.entry(status).or_default() += 1;
                }
            })
        })
        .collect();
    let mut answers: HashMap<u16, usize> = HashMap::new();
    for client in clients {
        for (status, n) in client.join().expect("client thread") {
            *answers.entry(status).or_default() += n;
        }
    }
    assert_eq!(
        answers.get(&200).copied().unwrap_or(0),
        MESSAGES,
        "every signed webhook acknowledged: {answers:?}"
    );
    // Every acknowledged message reaches the database while the agent is still stuck.
    let imported = eventually(Duration::from_secs(60), || {
        (gw.unimported() == 0 && count(&home, "SELECT COUNT(*) FROM inbound") as usize == MESSAGES)
            .then_some(())
    });
    assert!(imported.is_some(), "all {MESSAGES} imported");
    let rss_flooded = gw.rss_kib().expect("gateway RSS");
    assert!(
        rss_flooded < rss_before + 30 * 1024,
        "memory stays bounded: {rss_before} KiB before, {rss_flooded} KiB with {MESSAGES} waiting"
    );
    assert!(
        twilio.messages().is_empty(),
        "no reply while the agent is stuck"
    );

    llm.release();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let open = count(
            &home,
            "SELECT COUNT(*) FROM inbound WHERE state = 'pending'",
        ) + count(
            &home,
            "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')",
        );
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} still open after the agent recovered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM inbound WHERE state != 'done'"),
        0,
        "every message had its turn"
    );
    // Each message is answered once, to its sender (texts waiting together share a reply).
    let mut answered: HashMap<usize, Vec<String>> = HashMap::new();
    for message in twilio.messages() {
        for token in message.body.split_whitespace() {
            if let Some(i) = token
                .strip_prefix('f')
                .and_then(|n| n.parse::<usize>().ok())
            {
                answered.entry(i).or_default().push(message.to.clone());
            }
        }
    }
    for i in 0..MESSAGES {
        assert_eq!(
            answered.get(&i).map(Vec::as_slice),
            Some(&[sender(i)][..]),
            "message {i} answered once, to its sender"
        );
    }
    assert_eq!(gw.get("/health").status, 200);
    println!(
        "{MESSAGES} acknowledged; RSS {rss_before} KiB → {rss_flooded} KiB; {} replies",
        twilio.messages().len()
    );
}

#[test]
fn below_the_free_disk_floor_webhooks_are_refused_and_nothing_is_stored() {
    let home = Home::new();
    let twilio = emulator();
    // No disk has this much free: the floor is crossed from the start.
    let gw = sms_gateway(&home, &twilio, &[("HERMES_MIN_FREE_DISK_MB", "1000000000")]);
    let answer = gw.text(ALICE, "hello", "SMd0000000000000000000000000000001");
    assert_eq!(answer.status, 503, "cannot store: Twilio is told so");
    assert_eq!(gw.unimported(), 0);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM inbound"), 0);
    let logs = gw.logs();
    assert!(
        logs.contains("below HERMES_MIN_FREE_DISK_MB"),
        "the operator is told why: {logs}"
    );
    let metrics = gw.get("/metrics").body;
    assert!(
        metrics.contains(r#"hermes_inbound_rejected_total{platform="sms",reason="disk-full"} 1"#),
        "{metrics}"
    );
}
