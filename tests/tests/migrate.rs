//! `hermes migrate --to URL`: a single-node home that has been used (conversations, a reset,
//! a pairing code, an opt-out, delivery reports, cron jobs and a run, a reply caught mid-send)
//! is copied into PostgreSQL and compared with its SQLite table by table; a gateway on the copy
//! then carries on where the old one stopped. And the refusals that keep an operator from
//! leaving data behind or mixing two homes: a running gateway, messages still in the journal,
//! a target that already holds data, no target at all; a wrong password is named, never shown.
//!
//! The copy needs `HERMES_TEST_DATABASE_URL` (see `gateway_tests::postgres`); the refusals that
//! come before any connection do not.
use std::process::Output;
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::postgres::TestDatabase;
use platform_sms::emulator::{Emulator, Fault};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// An allowed phone that opts out.
const CAROL: &str = "+15550003333";

/// The tables `hermes migrate` copies, each with the columns compared between the two
/// databases (booleans as 0/1 on both sides).
const TABLES: &[(&str, &str)] = &[
    (
        "inbound",
        "id, platform, provider_id, chat, sender, text, attachments, control, received_at, state",
    ),
    ("conversations", "id, platform, chat, created_at, active"),
    ("turns", "id, conversation_id, role, content, created_at"),
    (
        "outbox",
        "id, platform, chat, body, encoding, segments, part_index, part_count, origin, attempts, next_attempt_at, provider_id, created_at, attempted_at",
    ),
    (
        "delivery_status",
        "platform, provider_id, status, rank, error_code, updated_at",
    ),
    ("suppressions", "platform, chat, reason, created_at"),
    (
        "pairing",
        "platform, sender, code, created_at, expires_at, approved_at",
    ),
    (
        "cron_jobs",
        "id, name, schedule, kind, payload, deliver, origin_platform, origin_chat, paused, done, next_run_at, last_status, last_run_at, created_at",
    ),
    (
        "cron_runs",
        "id, job_id, trigger, started_at, ended_at, status, output, deliveries",
    ),
];

/// The outbox columns a part caught mid-send has changed on the way.
const OUTBOX_STATE: &str = "state, lease_until, error, error_code, updated_at, reconcile_at";

/// Tables whose `id` PostgreSQL numbers from a sequence.
const SERIAL: &[&str] = &[
    "inbound",
    "conversations",
    "turns",
    "outbox",
    "cron_jobs",
    "cron_runs",
];

/// `columns` as selected from PostgreSQL: booleans as 0/1, as SQLite stores them.
fn pg_columns(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| match c {
            "active" | "paused" | "done" => format!("{c}::int"),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every row of a query on the home's SQLite, each column as text (NULL as `None`), sorted.
fn sqlite_rows(home: &Home, sql: &str) -> Vec<Vec<Option<String>>> {
    let db = home.db();
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    let mut rows: Vec<Vec<Option<String>>> = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    rows.sort();
    rows
}

/// Every row of a query on the PostgreSQL copy, sorted.
fn pg_rows(db: &TestDatabase, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = db.rows(sql);
    rows.sort();
    rows
}

/// Rows per copied table in the home's SQLite.
fn sqlite_counts(home: &Home) -> Vec<i64> {
    TABLES
        .iter()
        .map(|(table, _)| count(home, &format!("SELECT COUNT(*) FROM {table}")))
        .collect()
}

/// Rows per copied table in PostgreSQL.
fn pg_counts(db: &TestDatabase) -> Vec<i64> {
    TABLES
        .iter()
        .map(|(table, _)| db.count(&format!("SELECT COUNT(*) FROM {table}")))
        .collect()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `hermes migrate ARGS` on `home` and checks that it refuses, saying `expected` on stderr
/// and never the password of the test URLs.
fn refused(home: &Home, args: &[&str], expected: &[&str]) {
    let mut argv = vec!["migrate"];
    argv.extend_from_slice(args);
    let out = run(home.path(), &[], &argv, "");
    let said = stdout(&out) + &stderr(&out);
    assert!(!out.status.success(), "{said}");
    for e in expected {
        assert!(stderr(&out).contains(e), "{e:?} in:\n{said}");
    }
    assert!(!said.contains("s3cret-pw"), "{said}");
}

/// Runs a one-shot `hermes` command on `home` with `env`, which must succeed.
fn hermes_ok(home: &Home, env: &[(String, String)], args: &[&str]) -> String {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run(home.path(), &env, args, "");
    assert!(
        out.status.success(),
        "hermes {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The environment of this file's gateways: the SMS settings, the fake LLM, pairing codes for
/// strangers, and `extra`.
fn gateway_env(twilio: &Emulator, llm: &FakeLlm, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = sms_env(&twilio.base_url());
    let mut settings = vec![
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", llm.base_url()),
        ("HERMES_AGENT_MODEL", "test-model".to_string()),
        ("HERMES_TIMEZONE", "UTC".to_string()),
        ("SMS_ALLOWED_USERS", format!("{ALICE}, {BOB}, {CAROL}")),
        ("SMS_UNAUTHORIZED", "pair".to_string()),
    ];
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    for (k, v) in settings {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v));
    }
    env
}

/// `url` with its password replaced by `password`.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user_info, host) = rest.split_once('@').expect("the test URL names a user");
    let user = user_info.split(':').next().unwrap_or(user_info);
    format!("{scheme}://{user}:{password}@{host}")
}

/// The chat messages of a request to the LLM, as (role, content).
fn contents(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_used_home_moves_to_postgresql_and_the_gateway_carries_on() {
    let Some(db) = TestDatabase::new("a_used_home_moves_to_postgresql") else {
        return;
    };
    let url = db.url();
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let env = gateway_env(&twilio, &llm, &[]);
    let mut gw = Gateway::start(home.path(), &env);
    twilio.deliver_status_callbacks(Some(&format!("http://{}", gw.addr())));

    // A conversation, a reset, and a new conversation with something to remember.
    gw.text(ALICE, "Old topic.", "SMm0000000000000000000000000000001");
    twilio.wait_for_messages(1, WAIT);
    gw.text(ALICE, "/new", "SMm0000000000000000000000000000002");
    twilio.wait_for_messages(2, WAIT);
    gw.text(
        ALICE,
        "My name is Ann.",
        "SMm0000000000000000000000000000003",
    );
    twilio.wait_for_messages(3, WAIT);
    // A stranger gets a pairing code; an allowed phone opts out.
    gw.text(MALLORY, "hello?", "SMm0000000000000000000000000000004");
    let sent = twilio.wait_for_messages(4, WAIT);
    assert_eq!(sent.len(), 4, "{}", gw.logs());
    gw.text(CAROL, "STOP", "SMm0000000000000000000000000000005");
    assert!(
        eventually(WAIT, || (count(&home, "SELECT COUNT(*) FROM suppressions")
            == 1)
            .then_some(()))
        .is_some(),
        "{}",
        gw.logs()
    );
    assert!(
        eventually(WAIT, || (count(
            &home,
            "SELECT COUNT(*) FROM delivery_status WHERE status = 'delivered'"
        ) == 4)
            .then_some(()))
        .is_some(),
        "every reply's delivery reported: {}",
        gw.logs()
    );

    // Jobs: one run once, one paused.
    let added = hermes_ok(
        &home,
        &env,
        &[
            "cron",
            "add",
            "--schedule",
            "every 1d",
            "--command",
            "echo report",
            "--name",
            "report",
        ],
    );
    let report = added.split_whitespace().next().expect("an id").to_string();
    let added = hermes_ok(
        &home,
        &env,
        &[
            "cron",
            "add",
            "--schedule",
            "every 2h",
            "--prompt",
            "Summarise the news",
            "--name",
            "news",
        ],
    );
    let news = added.split_whitespace().next().expect("an id").to_string();
    hermes_ok(&home, &env, &["cron", "pause", &news]);
    let ran = hermes_ok(&home, &env, &["cron", "run", &report]);
    assert!(ran.contains("report"), "{ran}");

    // Twilio takes the next reply and never answers: the gateway stops mid-send.
    twilio.push_fault(Fault::AcceptThenHang);
    gw.text(BOB, "Are you there?", "SMm0000000000000000000000000000006");
    assert!(
        eventually(WAIT, || (count(
            &home,
            "SELECT COUNT(*) FROM outbox WHERE state = 'sending'"
        ) == 1
            && twilio.messages().len() == 5)
            .then_some(()))
        .is_some(),
        "{}",
        gw.logs()
    );
    gw.kill();

    let before = sqlite_counts(&home);
    for ((table, _), n) in TABLES.iter().zip(&before) {
        assert!(*n > 0, "the home has rows in {table} to copy");
    }
    let jobs_before = hermes_ok(&home, &env, &["cron", "list"]);
    let sending: i64 = count(&home, "SELECT id FROM outbox WHERE state = 'sending'");
    let alice_turns = count(
        &home,
        &format!(
            "SELECT COUNT(*) FROM turns t JOIN conversations c ON c.id = t.conversation_id
             WHERE c.chat = '{ALICE}' AND c.active = 1"
        ),
    );
    assert_eq!(alice_turns, 2, "the turns since /new");

    let migrated = run(home.path(), &[], &["migrate", "--to", &url], "");
    let text = stdout(&migrated);
    assert!(migrated.status.success(), "{text}{}", stderr(&migrated));
    for ((table, _), n) in TABLES.iter().zip(&before) {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [*table, &n.to_string(), "rows"]),
            "{table}: {n} rows in the summary:\n{text}"
        );
    }
    assert!(
        text.contains("1 part(s) were being sent"),
        "the caught part is reported:\n{text}"
    );
    assert!(
        text.contains("set HERMES_DATABASE_URL in")
            && text.contains(&home.path().join(".env").display().to_string()),
        "the next step:\n{text}"
    );

    // Every table as it was, row for row.
    assert_eq!(pg_counts(&db), before);
    for (table, columns) in TABLES {
        assert_eq!(
            pg_rows(&db, &format!("SELECT {} FROM {table}", pg_columns(columns))),
            sqlite_rows(&home, &format!("SELECT {columns} FROM {table}")),
            "{table}"
        );
    }
    assert_eq!(
        pg_rows(
            &db,
            &format!("SELECT {OUTBOX_STATE} FROM outbox WHERE id <> {sending}")
        ),
        sqlite_rows(
            &home,
            &format!("SELECT {OUTBOX_STATE} FROM outbox WHERE id <> {sending}")
        ),
    );
    // The part caught mid-send: its outcome is unknown, so it is looked up, now.
    let caught = db.rows(&format!(
        "SELECT state, lease_until IS NULL, claimed_by IS NULL, reconcile_at IS NOT NULL
         FROM outbox WHERE id = {sending}"
    ));
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        caught,
        [[some("ambiguous"), some("t"), some("t"), some("t")]]
    );
    // New rows are numbered after the copied ones.
    for table in SERIAL {
        assert_eq!(
            db.count(&format!("SELECT last_value FROM {table}_id_seq")),
            count(&home, &format!("SELECT MAX(id) FROM {table}")),
            "{table}_id_seq"
        );
    }

    // Again: refused, and nothing changes.
    let again = run(home.path(), &[], &["migrate", "--to", &url], "");
    assert!(!again.status.success(), "{}", stdout(&again));
    assert!(
        stderr(&again).contains("already holds a gateway's data")
            && stderr(&again).contains("nothing was copied"),
        "{}",
        stderr(&again)
    );
    assert_eq!(pg_counts(&db), before);

    // A wrong password: named as the problem, never shown.
    let wrong = with_password(&url, "Wr0ng-s3cret-pw");
    let refused = run(home.path(), &[], &["migrate", "--to", &wrong], "");
    let said = stdout(&refused) + &stderr(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("password"), "{said}");
    assert!(!said.contains("Wr0ng-s3cret-pw"), "{said}");
    assert_eq!(pg_counts(&db), before);

    // A gateway on the copy, from another home: the same jobs…
    let shared = Home::new();
    // Looked up a second after its send began, not the default minute.
    let shared_env = gateway_env(
        &twilio,
        &llm,
        &[
            ("HERMES_DATABASE_URL", url.as_str()),
            ("TWILIO_RECONCILE_AFTER_SECS", "1"),
        ],
    );
    assert_eq!(
        hermes_ok(&shared, &shared_env, &["cron", "list"]),
        jobs_before
    );
    assert!(jobs_before.contains("report") && jobs_before.contains("news"));

    // …the part caught mid-send found at Twilio, not sent again…
    let gw = Gateway::start(shared.path(), &shared_env);
    twilio.deliver_status_callbacks(Some(&format!("http://{}", gw.addr())));
    assert!(
        eventually(WAIT, || (db.count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {sending} AND state = 'sent'"
        )) == 1)
            .then_some(()))
        .is_some(),
        "{}",
        gw.logs()
    );
    let to_bob = |twilio: &Emulator| {
        twilio
            .messages()
            .into_iter()
            .filter(|m| m.to == BOB)
            .count()
    };
    assert_eq!(to_bob(&twilio), 1, "Bob's reply was sent once");

    // …and the conversation where it was.
    let requests = llm.requests().len();
    gw.text(ALICE, "/status", "SMm0000000000000000000000000000007");
    let sent = twilio.wait_for_messages(6, WAIT);
    let status = &sent.last().expect("the /status reply").body;
    assert!(
        status.contains(&format!("This conversation has {alice_turns} messages")),
        "{status}\n{}",
        gw.logs()
    );
    gw.text(
        ALICE,
        "What is my name?",
        "SMm0000000000000000000000000000008",
    );
    let asked = llm.wait_for_requests(requests + 1, WAIT);
    assert_eq!(asked.len(), requests + 1, "{}", gw.logs());
    assert_eq!(
        contents(&asked[requests])[1..],
        [
            ("user".to_string(), "My name is Ann.".to_string()),
            (
                "assistant".to_string(),
                "You said: My name is Ann.".to_string()
            ),
            ("user".to_string(), "What is my name?".to_string()),
        ]
    );
    twilio.wait_for_messages(7, WAIT);
    assert_eq!(to_bob(&twilio), 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'"),
        0
    );
}

#[test]
fn migrate_refuses_what_it_cannot_copy_whole() {
    // Nothing here connects: the URL names a port nobody listens on, and its password must
    // not appear in any answer.
    let url = "postgres://hermes:s3cret-pw@127.0.0.1:1/hermes";
    let twilio = emulator();

    // No target.
    let home = Home::new();
    refused(&home, &[], &["--to", "HERMES_DATABASE_URL"]);
    // Not a PostgreSQL URL.
    refused(
        &home,
        &["--to", "mysql://hermes:s3cret-pw@db/hermes"],
        &["--to"],
    );
    // Nothing to copy.
    refused(&home, &["--to", url], &["gateway.db does not exist"]);

    // A gateway running on the home: what it writes next would be left behind.
    let mut gw = sms_gateway(&home, &twilio, &[]);
    gw.text(ALICE, "hello", "SMn0000000000000000000000000000001");
    twilio.wait_for_messages(1, WAIT);
    refused(
        &home,
        &["--to", url],
        &["a gateway is running with this HERMES_HOME"],
    );

    // A message acknowledged but not imported when the gateway died.
    let db = home.db();
    db.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let sid = "SMn0000000000000000000000000000002";
    assert_eq!(gw.text(ALICE, "waiting", sid).status, 200);
    gw.kill();
    db.execute_batch("ROLLBACK").expect("unlock");
    refused(
        &home,
        &["--to", url],
        &["holds 1 acknowledged message(s) not imported"],
    );

    // Once imported, the checks pass and the (unreachable) target is what fails, unseen.
    let mut gw = sms_gateway(&home, &twilio, &[]);
    assert!(
        eventually(WAIT, || (gw.unimported() == 0).then_some(())).is_some(),
        "{}",
        gw.logs()
    );
    gw.terminate();
    refused(
        &home,
        &["--to", url],
        &["postgres://hermes:***@127.0.0.1:1/hermes"],
    );
}
