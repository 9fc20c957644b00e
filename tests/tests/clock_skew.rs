//! Two gateways on one PostgreSQL database, one of them with its clock 45 s ahead, then 45 s
//! behind (libfaketime, Debian's `faketime` package): heartbeats, leases and claims are
//! measured on the database server's clock (SPEC section 14), so the gateway whose clock is
//! off takes nothing from the live one and loses nothing of its own. Under traffic, with
//! Twilio's retries crossing from one gateway to the other, every message is given to the
//! agent once and answered exactly once.
//!
//! Needs `HERMES_TEST_DATABASE_URL` (see `gateway_tests::postgres`) and libfaketime.
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::postgres::{TestDatabase, answered, settle};
use platform_sms::emulator::Fault;

/// libfaketime's multi-threaded build, where Debian's `faketime` package puts it; `None`
/// (and a note) when it is not installed, except in CI, where that is a failure.
fn libfaketime() -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketimeMT.so.1"))
        .find(|lib| lib.exists());
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
        assert!(
            !ci,
            "libfaketime is not installed: CI installs Debian's faketime package"
        );
        eprintln!("libfaketime is not installed (apt-get install faketime): skipped");
    }
    found
}

/// How many agent turns were given each message (`m<N>` in the newest user message).
fn turns_per_message(llm: &FakeLlm) -> HashMap<usize, usize> {
    let mut given: HashMap<usize, usize> = HashMap::new();
    for request in llm.requests() {
        let newest = request["messages"]
            .as_array()
            .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        for token in newest.split_whitespace() {
            if let Some(i) = token.strip_prefix('m').and_then(|n| n.parse().ok()) {
                *given.entry(i).or_default() += 1;
            }
        }
    }
    given
}

/// Runs the traffic with gateway B's clock off by `skew` (libfaketime's `FAKETIME`, such as
/// `+45s`) and checks that nothing was done twice or taken from a live gateway.
fn two_gateways_one_clock(test: &str, skew: &str) {
    let Some(db) = TestDatabase::new(test) else {
        return;
    };
    let Some(faketime) = libfaketime() else {
        return;
    };
    let twilio = emulator();
    // A few refusals, so that parts are retried, by whichever gateway claims them next.
    for i in 0..24 {
        twilio.push_fault(match i % 6 {
            1 => Fault::ServerError,
            4 => Fault::TooManyRequests {
                retry_after: Some(1),
            },
            _ => Fault::Delay(Duration::ZERO),
        });
    }
    let llm = FakeLlm::start();
    llm.set_delay(Duration::from_millis(150));
    let (llm_url, db_url) = (llm.base_url(), db.url());
    let common = [
        ("HERMES_DATABASE_URL", db_url.as_str()),
        ("SMS_ALLOW_ALL_USERS", "true"),
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", llm_url.as_str()),
        ("HERMES_AGENT_MODEL", "clock"),
        ("TWILIO_MAX_SEGMENTS_PER_SECOND", "20"),
        ("TWILIO_REQUEST_TIMEOUT_SECS", "1"),
        ("RUST_LOG", "info"),
    ];
    let lib = faketime.to_string_lossy().into_owned();
    let mut skewed = common.to_vec();
    skewed.extend([
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME", skew),
        // Timers keep the machine's steady clock: only the wall clock is off.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = sms_gateway(&home_a, &twilio, &common);
    let b = sms_gateway(&home_b, &twilio, &skewed);

    let senders: Vec<String> = (0..8).map(|k| format!("+1555070{k:04}")).collect();
    let total = 40;
    for i in 0..total {
        let k = i % senders.len();
        let (from, body, sid) = (&senders[k], format!("c{k} m{i}"), format!("SMk{i:0>31}"));
        let (first, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(first.text(from, &body, &sid).status, 200, "message {i}");
        if i % 5 == 2 {
            // Twilio's retry of the same MessageSid reaches the other gateway.
            assert_eq!(other.text(from, &body, &sid).status, 200, "retry of {i}");
        }
        // Paces the traffic over a few seconds, across several heartbeats.
        std::thread::sleep(Duration::from_millis(100));
    }
    settle(&db, &[&a, &b], Duration::from_secs(120));

    let logs = format!("A:\n{}\n----\nB ({skew}):\n{}", a.logs(), b.logs());
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbound WHERE state = 'done'"),
        total as i64,
        "each MessageSid stored once and answered\n{logs}"
    );
    let given = turns_per_message(&llm);
    let answered = answered(&twilio);
    for i in 0..total {
        assert_eq!(
            given.get(&i).copied().unwrap_or_default(),
            1,
            "message {i} given to the agent once\n{logs}"
        );
        let to = answered.get(&i).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            to,
            [senders[i % senders.len()].clone()],
            "message {i} answered exactly once, to its sender\n{logs}"
        );
    }
    assert_eq!(llm.most_at_once(), 1, "one turn at a time per conversation");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM outbox WHERE error LIKE 'interrupted%'"),
        0,
        "no part was taken from a live gateway\n{logs}"
    );
    for taken in ["reply dropped", "lapsed", "taken for interrupted"] {
        assert!(!logs.contains(taken), "{taken:?} in the logs\n{logs}");
    }
    for (name, log) in [("A", a.logs()), ("B", b.logs())] {
        assert!(
            log.contains("reply queued"),
            "{name} took turns too\n{logs}"
        );
    }
}

#[test]
fn a_gateway_whose_clock_runs_ahead_takes_nothing_from_a_live_one() {
    two_gateways_one_clock("clock_ahead", "+45s");
}

#[test]
fn a_gateway_whose_clock_runs_behind_takes_nothing_from_a_live_one() {
    two_gateways_one_clock("clock_behind", "-45s");
}
