//! Scheduled jobs and `hermes send` against the real binary: delivery to home channels and
//! explicit chats through the Twilio emulator, `[SILENT]`, opt-outs, splitting, the scheduler
//! inside `hermes gateway` (due jobs, missed jobs after a restart) and the `/cron` chat command.
use std::process::Output;
use std::time::Duration;

use gateway_tests::harness::*;
use platform_sms::emulator::Emulator;

const WAIT: Duration = Duration::from_secs(30);
/// The home channel of these tests: someone other than the people who chat.
const HOME: &str = "+15550003333";

/// The SMS environment with a home channel, plus `extra`.
fn env(twilio: &Emulator, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = sms_env(&twilio.base_url());
    env.push(("SMS_HOME_CHANNEL".into(), HOME.into()));
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// Runs a one-shot `hermes` command in the SMS environment.
fn hermes(home: &Home, twilio: &Emulator, extra: &[(&str, &str)], args: &[&str]) -> Output {
    hermes_stdin(home, twilio, extra, args, "")
}

fn hermes_stdin(
    home: &Home,
    twilio: &Emulator,
    extra: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> Output {
    let env = env(twilio, extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(home.path(), &env, args, stdin)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `hermes cron add …`, returning the new job's id (printed first on its line).
fn add_job(home: &Home, twilio: &Emulator, args: &[&str]) -> String {
    let mut all = vec!["cron", "add"];
    all.extend_from_slice(args);
    let out = hermes(home, twilio, &[], &all);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let id = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        id.parse::<i64>().is_ok() && text.contains("added: next run"),
        "{text}"
    );
    id
}

fn runs(home: &Home, id: &str, status: &str) -> i64 {
    count(
        home,
        &format!("SELECT COUNT(*) FROM cron_runs WHERE job_id = {id} AND status = '{status}'"),
    )
}

/// A gateway with this file's environment.
fn gateway(home: &Home, twilio: &Emulator, extra: &[(&str, &str)]) -> Gateway {
    let gw = Gateway::start(home.path(), &env(twilio, extra));
    gw.addr();
    gw
}

#[test]
fn send_delivers_to_the_home_channel_and_explicit_numbers() {
    let (home, twilio) = (Home::new(), emulator());

    let out = hermes(
        &home,
        &twilio,
        &[],
        &["send", "--to", "sms", "Hello **home**"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = twilio.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, HOME);
    assert_eq!(sent[0].body, "Hello home", "Markdown is rendered for SMS");
    assert!(
        stdout(&out).contains(&format!("sent 1/1 part(s) ({})", sent[0].sid)),
        "{}",
        stdout(&out)
    );

    // An explicit number overrides the home channel; the text may come on stdin.
    let out = hermes_stdin(
        &home,
        &twilio,
        &[],
        &["send", "--to", "sms:+1 (555) 000-1111"],
        "From stdin\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = twilio.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[1].to.as_str(), sent[1].body.as_str()),
        (ALICE, "From stdin")
    );

    // A list naming the same chat twice delivers once.
    let out = hermes(
        &home,
        &twilio,
        &[],
        &["send", "--to", &format!("sms,sms:{HOME},local"), "once"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The command has exited and no gateway runs: nothing else can send.
    let sent = twilio.messages();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!((sent[2].to.as_str(), sent[2].body.as_str()), (HOME, "once"));
}

#[test]
fn send_reports_bad_targets_and_failed_parts() {
    let (home, twilio) = (Home::new(), emulator());
    let out = hermes(&home, &twilio, &[], &["send", "--to", "pager", "hi"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown delivery target"),
        "{}",
        stderr(&out)
    );

    let out = hermes(
        &home,
        &twilio,
        &[],
        &["send", "--to", "sms:not-a-number", "hi"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("sms:not-a-number"),
        "{}",
        stderr(&out)
    );

    twilio.push_fault(platform_sms::emulator::Fault::Error {
        status: 400,
        code: 21211,
    });
    let out = hermes(&home, &twilio, &[], &["send", "--to", "sms", "hi"]);
    assert!(!out.status.success(), "a failed part fails the command");
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    assert!(twilio.messages().is_empty());
}

#[test]
fn cron_run_delivers_and_records_every_run() {
    let (home, twilio) = (Home::new(), emulator());
    let report = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "0 9 * * 1-5",
            "--command",
            "echo 'Daily report: all good'",
            "--deliver",
            "sms",
            "--name",
            "report",
        ],
    );
    let out = hermes(&home, &twilio, &[], &["cron", "run", &report]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let sent = twilio.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].body.as_str()),
        (HOME, "Daily report: all good")
    );
    assert_eq!(runs(&home, &report, "ok"), 1);

    // [SILENT] output is recorded, not delivered.
    let silent = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "every 1h",
            "--command",
            "echo '[SILENT] nothing new'",
            "--deliver",
            "sms",
        ],
    );
    let out = hermes(&home, &twilio, &[], &["cron", "run", &silent]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("silent"), "{}", stdout(&out));
    assert_eq!(runs(&home, &silent, "silent"), 1);
    let output: String = home
        .db()
        .query_row(
            &format!("SELECT output FROM cron_runs WHERE job_id = {silent}"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(output.contains("nothing new"));

    // A failing command delivers nothing and says why.
    let failing = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "every 1h",
            "--command",
            "echo 'disk unreachable' >&2; exit 3",
            "--deliver",
            "sms",
        ],
    );
    let out = hermes(&home, &twilio, &[], &["cron", "run", &failing]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("disk unreachable"),
        "{}",
        stdout(&out)
    );
    assert_eq!(runs(&home, &failing, "failed"), 1);
    // The commands have exited and no gateway runs: nothing else can send.
    assert_eq!(twilio.messages().len(), 1, "only the report was sent");

    let list = stdout(&hermes(&home, &twilio, &[], &["cron", "list"]));
    assert!(
        list.lines().any(|l| l.starts_with(&report)
            && l.contains("report")
            && l.contains("0 9 * * 1-5")
            && l.contains("ok")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with(&failing) && l.contains("failed")),
        "{list}"
    );
}

#[test]
fn long_output_is_split_into_numbered_parts() {
    let (home, twilio) = (Home::new(), emulator());
    let job = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "every 1d",
            "--command",
            "i=0; while [ $i -lt 500 ]; do i=$((i+1)); printf 'word%d ' $i; done",
            "--deliver",
            "sms",
        ],
    );
    let out = hermes(&home, &twilio, &[], &["cron", "run", &job]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = twilio.messages();
    let n = sent.len();
    assert!(n >= 3, "{n} part(s)");
    let mut words = Vec::new();
    for (i, part) in sent.iter().enumerate() {
        let suffix = format!(" ({}/{n})", i + 1);
        assert!(part.body.ends_with(&suffix), "{}", part.body);
        assert!(part.body.chars().count() <= 1600);
        words.extend(
            part.body
                .trim_end_matches(&suffix)
                .split_whitespace()
                .map(str::to_string),
        );
    }
    let expected: Vec<String> = (1..=500).map(|i| format!("word{i}")).collect();
    assert_eq!(words, expected, "nothing is lost or cut");
}

#[test]
fn an_opted_out_home_channel_receives_nothing() {
    let (home, twilio) = (Home::new(), emulator());
    // The home channel texts STOP to a running gateway.
    let mut gw = gateway(&home, &twilio, &[("SMS_HOME_CHANNEL", ALICE)]);
    gw.text(ALICE, "STOP", "SM70000000000000000000000000000001");
    let suppressed = eventually(WAIT, || {
        (count(&home, "SELECT COUNT(*) FROM suppressions") == 1).then_some(())
    });
    assert!(suppressed.is_some(), "{}", gw.logs());
    gw.terminate();

    let extra = [("SMS_HOME_CHANNEL", ALICE)];
    let out = hermes(
        &home,
        &twilio,
        &extra,
        &["send", "--to", "sms", "are you there?"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("opted out"), "{}", stdout(&out));
    let job = {
        let out = hermes(
            &home,
            &twilio,
            &extra,
            &[
                "cron",
                "add",
                "--schedule",
                "every 1h",
                "--command",
                "echo news",
                "--deliver",
                "sms",
            ],
        );
        stdout(&out)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let out = hermes(&home, &twilio, &extra, &["cron", "run", &job]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("opted out"), "{}", stdout(&out));
    assert_eq!(runs(&home, &job, "ok"), 1, "the run is recorded");
    assert!(twilio.attempts().is_empty(), "Twilio was never asked");
}

#[test]
fn a_platform_without_a_home_channel_is_rejected_at_add_time() {
    let (home, twilio) = (Home::new(), emulator());
    let args = [
        "cron",
        "add",
        "--schedule",
        "every 1h",
        "--prompt",
        "hi",
        "--deliver",
        "telegram",
    ];
    let out = hermes(&home, &twilio, &[("TELEGRAM_BOT_TOKEN", "123:abc")], &args);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("TELEGRAM_HOME_CHANNEL"),
        "{}",
        stderr(&out)
    );
    let out = hermes(&home, &twilio, &[], &args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not enabled"), "{}", stderr(&out));
    let out = hermes(
        &home,
        &twilio,
        &[],
        &[
            "cron",
            "add",
            "--schedule",
            "every 1h",
            "--prompt",
            "hi",
            "--deliver",
            "origin",
        ],
    );
    assert!(!out.status.success());
    let out = hermes(
        &home,
        &twilio,
        &[],
        &["cron", "add", "--schedule", "at nine", "--prompt", "hi"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("every 30m"),
        "shows the accepted forms"
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM cron_jobs"), 0);
}

#[test]
fn a_job_due_while_the_gateway_runs_fires_and_delivers() {
    let (home, twilio) = (Home::new(), emulator());
    let gw = gateway(&home, &twilio, &[]);
    let job = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "2s",
            "--command",
            "echo tick",
            "--deliver",
            "sms",
        ],
    );
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gw.logs());
    assert_eq!((sent[0].to.as_str(), sent[0].body.as_str()), (HOME, "tick"));
    assert!(eventually(WAIT, || (runs(&home, &job, "ok") == 1).then_some(())).is_some());
    let list = stdout(&hermes(&home, &twilio, &[], &["cron", "list"]));
    assert!(list.contains("done"), "a one-shot job is done: {list}");
    gw.settle(WAIT);
    assert_eq!(twilio.messages().len(), 1);
}

#[test]
fn a_job_missed_while_the_gateway_was_down_runs_once_at_start() {
    let (home, twilio) = (Home::new(), emulator());
    let mut gw = gateway(&home, &twilio, &[]);
    gw.terminate();
    let once = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "1s",
            "--command",
            "echo missed",
            "--deliver",
            "sms",
        ],
    );
    let every = add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "every 1m",
            "--command",
            "echo hourly",
            "--deliver",
            "sms",
        ],
    );
    // The gateway stays down for ten minutes: ten runs of the `every 1m` job are missed.
    home.db()
        .execute(
            &format!("UPDATE cron_jobs SET next_run_at = next_run_at - 600000 WHERE id = {every}"),
            [],
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    let gw = gateway(&home, &twilio, &[]);
    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent.len(), 2, "{}", gw.logs());
    let mut bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, ["hourly", "missed"]);
    gw.settle(WAIT);
    assert_eq!(
        twilio.messages().len(),
        2,
        "each missed job ran exactly once"
    );
    assert_eq!(runs(&home, &once, "ok"), 1);
    assert_eq!(runs(&home, &every, "ok"), 1);
    assert!(gw.logs().contains("running it once now"), "{}", gw.logs());
}

#[test]
fn chat_users_manage_their_jobs_with_cron_commands() {
    let (home, twilio) = (Home::new(), emulator());
    let gw = gateway(&home, &twilio, &[]);
    gw.text(
        ALICE,
        "/cron add every 1h | hello",
        "SM71000000000000000000000000000001",
    );
    let sent = twilio.wait_for_messages(1, WAIT);
    assert_eq!(sent.len(), 1, "{}", gw.logs());
    assert_eq!(sent[0].to, ALICE);
    assert!(
        sent[0].body.starts_with("Added job 1: next run"),
        "{}",
        sent[0].body
    );
    let (deliver, origin): (String, String) = home
        .db()
        .query_row(
            "SELECT deliver, origin_chat FROM cron_jobs WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((deliver.as_str(), origin.as_str()), ("origin", ALICE));

    gw.text(ALICE, "/cron list", "SM71000000000000000000000000000002");
    let sent = twilio.wait_for_messages(2, WAIT);
    assert!(
        sent[1].body.contains("1. hello (every 1h)"),
        "{}",
        sent[1].body
    );

    // Another chat neither sees nor runs it.
    gw.text(BOB, "/cron run 1", "SM71000000000000000000000000000003");
    let sent = twilio.wait_for_messages(3, WAIT);
    assert_eq!(sent[2].to, BOB);
    assert!(sent[2].body.contains("no job 1"), "{}", sent[2].body);

    // Running it now delivers the agent's answer to the chat that created it.
    gw.text(ALICE, "/cron run 1", "SM71000000000000000000000000000004");
    let sent = twilio.wait_for_messages(5, WAIT);
    let bodies: Vec<(&str, &str)> = sent[3..]
        .iter()
        .map(|m| (m.to.as_str(), m.body.as_str()))
        .collect();
    assert!(
        bodies.contains(&(ALICE, "Running job 1 now.")),
        "{bodies:?}"
    );
    assert!(bodies.contains(&(ALICE, "You said: hello")), "{bodies:?}");

    gw.text(ALICE, "/cron pause 1", "SM71000000000000000000000000000005");
    twilio.wait_for_messages(6, WAIT);
    assert_eq!(count(&home, "SELECT paused FROM cron_jobs WHERE id = 1"), 1);
    gw.text(
        ALICE,
        "/cron remove 1",
        "SM71000000000000000000000000000006",
    );
    twilio.wait_for_messages(7, WAIT);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM cron_jobs"), 0);
}

#[test]
fn sethome_redirects_scheduled_output_without_a_restart() {
    let (home, twilio) = (Home::new(), emulator());
    let gw = gateway(&home, &twilio, &[]);
    gw.text(ALICE, "/sethome", "SM72000000000000000000000000000001");
    assert_eq!(twilio.wait_for_messages(1, WAIT).len(), 1, "{}", gw.logs());
    let dotenv = home.read_env();
    assert!(
        dotenv.contains("SMS_HOME_CHANNEL") && dotenv.contains(ALICE),
        "{dotenv}"
    );
    add_job(
        &home,
        &twilio,
        &[
            "--schedule",
            "1s",
            "--command",
            "echo for the new home",
            "--deliver",
            "sms",
        ],
    );
    let sent = twilio.wait_for_messages(2, WAIT);
    assert_eq!(sent.len(), 2, "{}", gw.logs());
    assert_eq!(
        (sent[1].to.as_str(), sent[1].body.as_str()),
        (ALICE, "for the new home")
    );
}
