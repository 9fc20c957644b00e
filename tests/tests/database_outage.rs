//! PostgreSQL out of reach for a few seconds under traffic (SPEC section 9): two gateways keep
//! acknowledging webhooks into their own journals, import them when the database is back, and
//! every acknowledged message is answered exactly once.
//!
//! Twice: through a relay that the test cuts (closing every connection and refusing new ones, as
//! a failed network looks to a client), which runs anywhere; and by stopping the server itself
//! and starting it again, where the tests may (`HERMES_TEST_PG_CTL`, the command that stops and
//! starts it, e.g. `pg_ctlcluster 15 main`; `.ci/run` sets it). The two never run at once.
//! Needs `HERMES_TEST_DATABASE_URL`.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::postgres::{Relay, TestDatabase, answered, settle};

/// The server is stopped by one of the tests: the other waits.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A counter's value in `/metrics`, summed over its labels.
fn metric(gw: &Gateway, name: &str) -> f64 {
    gw.get("/metrics")
        .body
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_network_cut_to_the_database_under_traffic_loses_and_doubles_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(db) = TestDatabase::new("a_network_cut_to_the_database") else {
        return;
    };
    let relay = Relay::start(db.server_addr());
    let url = db.url_through(&relay);
    outage_under_traffic(&db, &url, || relay.cut(), || relay.restore());
}

#[test]
fn postgresql_stopped_and_started_under_traffic_loses_and_doubles_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(db) = TestDatabase::new("postgresql_stopped_and_started") else {
        return;
    };
    let ctl = match std::env::var("HERMES_TEST_PG_CTL") {
        Ok(ctl) if !ctl.trim().is_empty() => ctl,
        _ if platform_api::testkit::in_ci() => {
            panic!("HERMES_TEST_PG_CTL is not set: CI stops and starts PostgreSQL under traffic")
        }
        _ => {
            eprintln!(
                "HERMES_TEST_PG_CTL is not set: stopping the server is skipped (the network cut runs)"
            );
            return;
        }
    };
    let pg_ctl = |action: &str| {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{ctl} {action}"))
            .status()
            .expect("running HERMES_TEST_PG_CTL");
        assert!(status.success(), "{ctl} {action}");
    };
    let url = db.url();
    outage_under_traffic(
        &db,
        &url,
        || pg_ctl("stop -m fast"),
        || {
            pg_ctl("start");
            // Until it takes connections again.
            let ready = eventually(Duration::from_secs(30), || {
                std::net::TcpStream::connect(db.server_addr()).ok()
            });
            assert!(ready.is_some(), "PostgreSQL back");
        },
    );
}

/// A database that stops answering (a network dropping packets rather than refusing them)
/// holds what waits on it, status callbacks included; no server worker waits with them, so
/// texts are still acknowledged meanwhile (from the journal), and answered once it is back.
#[test]
fn a_stalled_database_holds_status_callbacks_but_never_the_texts() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(db) = TestDatabase::new("a_stalled_database_holds_status_callbacks") else {
        return;
    };
    let relay = Relay::start(db.server_addr());
    let url = db.url_through(&relay);
    let twilio = emulator();
    let home = Home::new();
    let extra = [
        ("HERMES_DATABASE_URL", url.as_str()),
        ("SMS_ALLOW_ALL_USERS", "true"),
    ];
    let gw = sms_gateway(&home, &twilio, &extra);
    let sid = |i: usize| format!("SMd{i:0>31}");
    assert_eq!(gw.text("+15550090000", "before", &sid(0)).status, 200);
    let sent = twilio.wait_for_messages(1, Duration::from_secs(20));
    assert_eq!(sent.len(), 1, "{}", gw.logs());

    relay.stall();
    let message = sent[0].sid.clone();
    let callback = status_callback(&message, "+15550090000", "delivered", None);
    std::thread::scope(|scope| {
        // More callbacks than the gateway has server workers (one per core), each waiting on
        // the database until it is back.
        let callbacks: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| gw.post_status(&callback, None)))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        for i in 1..=3 {
            let started = Instant::now();
            let answer = gw.text("+15550090000", &format!("during {i}"), &sid(i));
            assert_eq!(answer.status, 200, "{answer:?}");
            // The commit waits 5 s for the database, then the journal answers.
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "text {i} acknowledged after {:?}",
                started.elapsed()
            );
        }
        relay.restore();
        for callback in callbacks {
            // Recorded once the database answered, or refused (a 5xx) when it did not in time.
            let answer = callback.join().expect("a callback");
            assert!(answer.status == 200 || answer.status >= 500, "{answer:?}");
        }
    });
    assert_eq!(gw.post_status(&callback, None).status, 200);
    settle(&db, &[&gw], Duration::from_secs(60));
    assert_eq!(db.count("SELECT COUNT(*) FROM inbound"), 4);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM delivery_status WHERE status = 'delivered'"),
        1
    );
}

/// Two gateways on `url` take 120 texts from 6 senders, the database going away after 30 and
/// coming back after 90; then every message is answered exactly once, to its sender.
fn outage_under_traffic(db: &TestDatabase, url: &str, away: impl Fn(), back: impl Fn()) {
    let twilio = emulator();
    let llm = FakeLlm::start();
    llm.set_delay(Duration::from_millis(50));
    let llm_url = llm.base_url();
    let extra = [
        ("HERMES_DATABASE_URL", url),
        ("SMS_ALLOW_ALL_USERS", "true"),
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", llm_url.as_str()),
        ("HERMES_AGENT_MODEL", "outage"),
    ];
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = sms_gateway(&home_a, &twilio, &extra);
    let b = sms_gateway(&home_b, &twilio, &extra);

    let senders: Vec<String> = (0..6).map(|k| format!("+1555070{k:04}")).collect();
    let total = 120;
    let mut cut_at = None;
    for i in 0..total {
        if i == 30 {
            away();
            cut_at = Some(Instant::now());
        }
        if i == 90 {
            back();
            let down = cut_at.map(|t| t.elapsed()).unwrap_or_default();
            assert!(down >= Duration::from_secs(3), "down for {down:?}");
        }
        let from = &senders[i % senders.len()];
        let gw = if i % 2 == 0 { &a } else { &b };
        let answer = gw.text(from, &format!("m{i}"), &format!("SMo{i:0>31}"));
        assert_eq!(answer.status, 200, "message {i} acknowledged: {answer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        metric(&a, "hermes_inbound_journal_only_total")
            + metric(&b, "hermes_inbound_journal_only_total")
            > 0.0,
        "webhooks were acknowledged from the journals while the database was away"
    );

    settle(db, &[&a, &b], Duration::from_secs(120));
    a.settle(Duration::from_secs(30));
    b.settle(Duration::from_secs(30));
    assert_eq!(db.count("SELECT COUNT(*) FROM inbound"), total as i64);
    let answered = answered(&twilio);
    for i in 0..total {
        assert_eq!(
            answered.get(&i).map(Vec::as_slice).unwrap_or_default(),
            [senders[i % senders.len()].clone()],
            "message {i} answered exactly once, to its sender"
        );
    }
    assert!(
        a.logs().contains("the database is unreachable")
            || b.logs().contains("the database is unreachable"),
        "the outage is logged"
    );
}
