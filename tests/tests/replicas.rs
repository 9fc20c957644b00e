//! Two gateways on one PostgreSQL database (SPEC section 9), each with its own `HERMES_HOME`
//! and port, behind one webhook URL as a load balancer would put them: webhooks spread over
//! both, Twilio's retries crossing from one to the other, one of them killed and restarted
//! mid-run, Twilio failing sends, and still every acknowledged message answered exactly once,
//! one turn at a time per conversation; each due cron run happens once.
//!
//! Needs `HERMES_TEST_DATABASE_URL` (see `gateway_tests::postgres`).
use std::time::{Duration, Instant};

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::postgres::{TestDatabase, answered, settle};
use platform_sms::emulator::{Emulator, Fault};

/// A gateway on the shared database, with this file's settings and `extra`.
fn replica(home: &Home, twilio: &Emulator, db: &TestDatabase, extra: &[(&str, &str)]) -> Gateway {
    let url = db.url();
    let mut all = vec![("HERMES_DATABASE_URL", url.as_str())];
    all.extend_from_slice(extra);
    sms_gateway(home, twilio, &all)
}

/// Runs `hermes ARGS` on `home` with the SMS settings of `twilio` and `extra`.
fn hermes(
    home: &Home,
    twilio: &Emulator,
    extra: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut env = sms_env(&twilio.base_url());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(home.path(), &env, args, "")
}

#[test]
fn two_gateways_share_the_work_and_answer_every_message_once() {
    let Some(db) = TestDatabase::new("two_gateways_share_the_work") else {
        return;
    };
    let twilio = emulator();
    // Twilio has a bad spell: refusals, errors, sends that hang before or after it creates
    // the message (unknown outcomes, looked up before anything is sent again).
    for i in 0..60 {
        twilio.push_fault(match i % 10 {
            1 => Fault::ServerError,
            4 => Fault::TooManyRequests {
                retry_after: Some(1),
            },
            6 => Fault::AcceptThenHang,
            8 => Fault::Hang,
            _ => Fault::Delay(Duration::ZERO),
        });
    }
    let llm = FakeLlm::start();
    llm.set_delay(Duration::from_millis(150));
    let llm_url = llm.base_url();
    let extra = [
        ("SMS_ALLOW_ALL_USERS", "true"),
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", llm_url.as_str()),
        ("HERMES_AGENT_MODEL", "replicas"),
        ("TWILIO_REQUEST_TIMEOUT_SECS", "1"),
        ("TWILIO_RECONCILE_AFTER_SECS", "1"),
        ("RUST_LOG", "info"),
    ];
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = replica(&home_a, &twilio, &db, &extra);
    let mut b = Some(replica(&home_b, &twilio, &db, &extra));
    let mut logs_b = String::new();

    let senders: Vec<String> = (0..8).map(|k| format!("+1555060{k:04}")).collect();
    let total = 80;
    for i in 0..total {
        let k = i % senders.len();
        let (from, body, sid) = (&senders[k], format!("c{k} m{i}"), format!("SMr{i:0>31}"));
        if i == 30 {
            // B dies without a word, with whatever it holds: the load balancer (or Twilio's
            // fallback URL) sends everything to A meanwhile.
            let mut dead = b.take().expect("B runs");
            dead.kill();
            logs_b.push_str(&dead.logs());
        }
        if i == 50 {
            b = Some(replica(&home_b, &twilio, &db, &extra));
        }
        let first = match (&b, i % 2) {
            (Some(b), 1) => b,
            _ => &a,
        };
        let answer = first.text(from, &body, &sid);
        assert_eq!(answer.status, 200, "message {i}: {answer:?}");
        if i % 7 == 3 {
            // Twilio's retry of the same MessageSid reaches the other gateway: acknowledged,
            // and not run again.
            let other = match &b {
                Some(b) if std::ptr::eq(first, &a) => b,
                _ => &a,
            };
            assert_eq!(other.text(from, &body, &sid).status, 200, "retry of {i}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = b.expect("B was restarted");
    settle(&db, &[&a, &b], Duration::from_secs(120));
    a.settle(Duration::from_secs(30));
    b.settle(Duration::from_secs(30));

    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbound"),
        total as i64,
        "each MessageSid stored once"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbound WHERE state <> 'done'"),
        0,
        "every message had its turn"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM outbox WHERE state = 'failed'"),
        0
    );
    let answered = answered(&twilio);
    for i in 0..total {
        let to = answered.get(&i).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            to,
            [senders[i % senders.len()].clone()],
            "message {i} answered exactly once, to its sender"
        );
    }
    assert_eq!(
        llm.most_at_once(),
        1,
        "one turn at a time per conversation across gateways"
    );
    logs_b.push_str(&b.logs());
    for (name, logs) in [("A", a.logs()), ("B", logs_b)] {
        assert!(
            logs.contains("reply queued"),
            "gateway {name} took turns too:\n{logs}"
        );
    }
}

#[test]
fn each_due_cron_run_happens_once_across_gateways() {
    let Some(db) = TestDatabase::new("each_due_cron_run_happens_once") else {
        return;
    };
    let twilio = emulator();
    let url = db.url();
    let extra = [
        ("HERMES_DATABASE_URL", url.as_str()),
        ("SMS_HOME_CHANNEL", "+15550003333"),
    ];
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = sms_gateway(&home_a, &twilio, &extra);
    let b = sms_gateway(&home_b, &twilio, &extra);
    // Four one-shot jobs due within seconds, and a repeating one that missed ten runs.
    for (i, schedule) in ["1s", "2s", "2s", "3s", "every 1m"].iter().enumerate() {
        let command = format!("echo job{i}");
        let out = hermes(
            &home_a,
            &twilio,
            &extra,
            &[
                "cron",
                "add",
                "--schedule",
                schedule,
                "--command",
                &command,
                "--deliver",
                "sms",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    db.rows("UPDATE cron_jobs SET next_run_at = next_run_at - 600000 WHERE schedule = 'every 1m'");
    let sent = twilio.wait_for_messages(5, Duration::from_secs(30));
    assert_eq!(sent.len(), 5, "{}\n----\n{}", a.logs(), b.logs());
    a.settle(Duration::from_secs(30));
    b.settle(Duration::from_secs(30));
    let mut bodies: Vec<String> = twilio.messages().into_iter().map(|m| m.body).collect();
    bodies.sort();
    assert_eq!(bodies, ["job0", "job1", "job2", "job3", "job4"]);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM cron_runs"),
        5,
        "one run per due time"
    );
}

#[test]
fn a_bad_or_unreachable_database_url_is_named_and_its_password_never_shown() {
    let twilio = emulator();
    let home = Home::new();
    for (url, expected) in [
        (
            "mysql://hermes:s3cret-pw@db.example.com/hermes",
            "expected a PostgreSQL URL",
        ),
        (
            "postgres://hermes:s3cret-pw@127.0.0.1:1/hermes",
            "127.0.0.1:1",
        ),
    ] {
        let out = hermes(
            &home,
            &twilio,
            &[("HERMES_DATABASE_URL", url)],
            &["gateway"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{url}: {stderr}");
        assert!(stderr.contains("HERMES_DATABASE_URL"), "{stderr}");
        assert!(stderr.contains("environment"), "names the source: {stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    }
    let help = run(home.path(), &[], &["gateway", "--help"], "");
    assert!(!String::from_utf8_lossy(&help.stdout).contains("s3cret-pw"));
}

#[test]
fn a_numbers_pace_rate_limits_and_home_channel_are_shared_across_gateways() {
    let Some(db) = TestDatabase::new("limits_are_shared") else {
        return;
    };
    let twilio = emulator();
    let url = db.url();
    let extra = [
        ("HERMES_DATABASE_URL", url.as_str()),
        ("SMS_ALLOW_ALL_USERS", "true"),
        ("SMS_HOME_CHANNEL", "+15550003333"),
        ("SMS_RATE_LIMIT_PER_MINUTE", "2"),
        ("TWILIO_MAX_SEGMENTS_PER_SECOND", "2"),
    ];
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = sms_gateway(&home_a, &twilio, &extra);
    let b = sms_gateway(&home_b, &twilio, &extra);

    // Eight one-segment replies, half through each gateway: at two segments a second for the
    // number they take 3.5 s at least (twice as fast were the budget each gateway's own).
    let started = Instant::now();
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let from = format!("+1555080{i:04}");
        assert_eq!(gw.text(&from, "hi", &format!("SMp{i:0>31}")).status, 200);
    }
    let sent = twilio.wait_for_messages(8, Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(sent.len(), 8);
    assert!(
        took >= Duration::from_millis(3000),
        "the number's pace is shared: 8 segments in {took:?}"
    );

    // One sender, three texts over both gateways within a minute, limit two: the third is not
    // answered and the sender is told once.
    let carol = "+15550081111";
    for (i, gw) in [&a, &b, &a, &b].iter().enumerate() {
        assert_eq!(gw.text(carol, "again", &format!("SMq{i:0>31}")).status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    a.settle(Duration::from_secs(30));
    b.settle(Duration::from_secs(30));
    let to_carol: Vec<String> = twilio
        .messages()
        .into_iter()
        .filter(|m| m.to == carol)
        .map(|m| m.body)
        .collect();
    assert_eq!(
        to_carol.len(),
        3,
        "two answers and one notice: {to_carol:?}"
    );
    assert_eq!(
        to_carol
            .iter()
            .filter(|b| b.contains("faster than I can answer"))
            .count(),
        1,
        "{to_carol:?}"
    );

    // /sethome through A moves the home channel for B and for the command line too.
    assert_eq!(
        a.text(ALICE, "/sethome", &format!("SMs{:0>31}", 1)).status,
        200
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            twilio
                .messages()
                .iter()
                .any(|m| m.to == ALICE && m.body.contains("home channel"))
                .then_some(())
        })
        .is_some()
    );
    let out = hermes(
        &home_b,
        &twilio,
        &extra,
        &["send", "--to", "sms", "to the new home"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let home = eventually(Duration::from_secs(10), || {
        twilio
            .messages()
            .into_iter()
            .find(|m| m.body == "to the new home")
    })
    .expect("delivered");
    assert_eq!(home.to, ALICE);
}

#[test]
fn the_doctor_reports_the_database_and_the_gateways_alive_on_it() {
    let Some(db) = TestDatabase::new("the_doctor_reports_the_database") else {
        return;
    };
    let twilio = emulator();
    let url = db.url();
    let extra = [("HERMES_DATABASE_URL", url.as_str())];
    let (home_a, home_b) = (Home::new(), Home::new());
    let mut a = sms_gateway(&home_a, &twilio, &extra);
    let b = sms_gateway(&home_b, &twilio, &extra);
    let name = |home: &Home| {
        std::fs::read_to_string(home.path().join("replica"))
            .expect("a gateway names its home")
            .trim()
            .to_string()
    };
    let (name_a, name_b) = (name(&home_a), name(&home_b));
    assert_ne!(name_a, name_b);
    let out = hermes(&home_b, &twilio, &extra, &["gateway", "doctor"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |subject: &str| {
        stdout
            .lines()
            .find(|l| l.contains(subject))
            .unwrap_or_else(|| panic!("no {subject} line:\n{stdout}"))
            .to_string()
    };
    let database = line("database:");
    assert!(
        database.contains("reachable, schema version 6"),
        "{database}"
    );
    assert!(
        database.contains(":***@"),
        "the password is masked: {database}"
    );
    assert!(!stdout.contains("hermes_test:hermes_test"), "{stdout}");
    let gateways = line("gateways:");
    assert!(gateways.contains("2 alive"), "{gateways}");
    assert!(
        gateways.contains(&name_a) && gateways.contains(&name_b),
        "{gateways}"
    );
    assert!(
        line("inbound journal").contains("every acknowledged message is in the database"),
        "{stdout}"
    );

    // One stops (SIGTERM): it leaves, and is no longer counted.
    a.terminate();
    let gone = eventually(Duration::from_secs(10), || {
        let out = hermes(&home_b, &twilio, &extra, &["gateway", "doctor"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout.contains("1 alive").then_some(stdout)
    });
    assert!(gone.is_some(), "a gateway that stopped is not alive");
    drop(b);

    // Unreachable: one line that names the variable and how to fix it.
    let unreachable = [(
        "HERMES_DATABASE_URL",
        "postgres://hermes:s3cret-pw@127.0.0.1:1/hermes",
    )];
    let out = hermes(&home_b, &twilio, &unreachable, &["gateway", "doctor"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success());
    assert!(stdout.contains("HERMES_DATABASE_URL"), "{stdout}");
    assert!(stdout.contains("pg_hba.conf"), "{stdout}");
    assert!(!stdout.contains("s3cret-pw"), "{stdout}");
}
