//! The host foundation, black-box: discovery, unified configuration and its errors, start-up
//! refusal, the insecure development mode, health and graceful shutdown.
use std::net::TcpListener;
use std::time::Duration;

use gateway_tests::harness::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn insecure_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = sms_env("http://127.0.0.1:9")
        .into_iter()
        .filter(|(k, _)| k != "SMS_WEBHOOK_URL")
        .collect();
    env.push(("SMS_INSECURE_NO_SIGNATURE".into(), "true".into()));
    env
}

#[test]
fn every_platform_is_discovered_by_the_binary_and_the_test_crate() {
    let names: Vec<&str> = platform_api::registrations()
        .iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["discord", "sms", "telegram", "webhook"]);

    let home = Home::new();
    let out = run(home.path(), &[], &["platforms"], "");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"))
            .to_string()
    };
    assert!(
        row("sms ").contains("SMS (Twilio)")
            && row("sms ").contains("disabled")
            && row("sms ").contains("TWILIO_ACCOUNT_SID not set")
    );
    assert!(
        row("telegram").contains("Telegram")
            && row("telegram").contains("TELEGRAM_BOT_TOKEN not set")
    );
    assert!(
        row("discord").contains("Discord") && row("discord").contains("DISCORD_BOT_TOKEN not set")
    );
    // Every registered platform sends for real.
    assert!(!stdout.contains("stub"), "{stdout}");

    let out = run(
        home.path(),
        &[
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("TWILIO_ENABLED", "false"),
            ("TELEGRAM_BOT_TOKEN", "123:abc"),
        ],
        &["platforms"],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sms") && l.contains("TWILIO_ENABLED=false")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("telegram") && l.contains("enabled")),
        "{stdout}"
    );
}

#[test]
fn later_sources_win_default_config_toml_dotenv_environment() {
    let home = Home::new();
    let env = insecure_env();
    let without_port: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "SMS_WEBHOOK_PORT")
        .cloned()
        .collect();
    let (a, b, c) = (free_port(), free_port(), free_port());

    home.write_config(&format!("[platforms.sms]\nwebhook_port = {a}\n"));
    let mut gw = Gateway::start(home.path(), &without_port);
    assert_eq!(gw.addr().port(), a, "config.toml beats the default");
    assert!(gw.terminate().success());

    home.write_env(&format!("SMS_WEBHOOK_PORT={b}\n"));
    let mut gw = Gateway::start(home.path(), &without_port);
    assert_eq!(gw.addr().port(), b, ".env beats config.toml");
    assert!(gw.terminate().success());

    let mut with_env = without_port.clone();
    with_env.push(("SMS_WEBHOOK_PORT".into(), c.to_string()));
    let mut gw = Gateway::start(home.path(), &with_env);
    assert_eq!(gw.addr().port(), c, "the environment beats .env");
    assert!(gw.terminate().success());
}

#[test]
fn a_bad_setting_names_the_variable_and_where_it_came_from() {
    let home = Home::new();
    let base: Vec<(String, String)> = insecure_env()
        .into_iter()
        .filter(|(k, _)| k != "SMS_WEBHOOK_PORT")
        .collect();

    let mut env = base.clone();
    env.push(("SMS_WEBHOOK_PORT".into(), "80a".into()));
    let mut gw = Gateway::start(home.path(), &env);
    assert!(
        !gw.wait_exit(Duration::from_secs(20))
            .expect("exits")
            .success()
    );
    assert!(
        gw.logs()
            .contains("SMS_WEBHOOK_PORT (from environment): expected a port number"),
        "{}",
        gw.logs()
    );
    assert!(
        !gw.logs().contains("PLATFORMS.SMS"),
        "internal keys never reach the user"
    );

    home.write_env("SMS_WEBHOOK_PORT=eighty\n");
    let mut gw = Gateway::start(home.path(), &base);
    assert!(
        !gw.wait_exit(Duration::from_secs(20))
            .expect("exits")
            .success()
    );
    let env_path = home.path().join(".env");
    assert!(
        gw.logs().contains(&format!(
            "SMS_WEBHOOK_PORT (from {}): expected a port number",
            env_path.display()
        )),
        "{}",
        gw.logs()
    );

    std::fs::remove_file(env_path).unwrap();
    home.write_config("[platforms.sms]\nwebhook_port = 70000\n");
    let mut gw = Gateway::start(home.path(), &base);
    assert!(
        !gw.wait_exit(Duration::from_secs(20))
            .expect("exits")
            .success()
    );
    let toml = home.path().join("config.toml");
    assert!(
        gw.logs().contains(&format!(
            "SMS_WEBHOOK_PORT (from {} key `platforms.sms.webhook_port`)",
            toml.display()
        )),
        "{}",
        gw.logs()
    );

    // A host setting fails the command itself, on stderr.
    let out = run(home.path(), &[("HERMES_AGENT", "gpt")], &["gateway"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "HERMES_AGENT (from environment): expected one of echo, openai, hermes, command"
        ),
        "{stderr}"
    );
}

#[test]
fn missing_required_setting_is_named() {
    let home = Home::new();
    let env: Vec<(String, String)> = insecure_env()
        .into_iter()
        .filter(|(k, _)| k != "TWILIO_AUTH_TOKEN")
        .collect();
    let mut gw = Gateway::start(home.path(), &env);
    assert!(
        !gw.wait_exit(Duration::from_secs(20))
            .expect("exits")
            .success()
    );
    assert!(
        gw.logs()
            .contains("TWILIO_AUTH_TOKEN: is required but not set"),
        "{}",
        gw.logs()
    );
}

#[test]
fn numbers_and_numeric_tokens_stay_text() {
    let home = Home::new();
    // From .env, where a naive loader would turn both into integers.
    home.write_env(&format!(
        "TWILIO_ACCOUNT_SID={ACCOUNT_SID}\nTWILIO_AUTH_TOKEN=12345\nTWILIO_PHONE_NUMBER=+15551234567\nSMS_WEBHOOK_URL={WEBHOOK_URL}\nSMS_ALLOWED_USERS=+15550001111\n"
    ));
    let env = vec![
        ("SMS_WEBHOOK_PORT".to_string(), "0".to_string()),
        ("SMS_WEBHOOK_HOST".to_string(), "127.0.0.1".to_string()),
    ];
    let mut gw = Gateway::start(home.path(), &env);
    assert!(
        gw.logs().contains("from: +1555***4567"),
        "the + survives: {}",
        gw.logs()
    );
    let params = inbound_sms(ALICE, "hello", "SM00000000000000000000000000000001");
    let ok = gw.post_form(&params, Some(&sign("12345", WEBHOOK_URL, &params)));
    assert_eq!(ok.status, 200, "the token 12345 is used as text");
    assert!(gw.terminate().success());
}

#[test]
fn sms_refuses_to_start_without_webhook_url() {
    let home = Home::new();
    let env: Vec<(String, String)> = sms_env("http://127.0.0.1:9")
        .into_iter()
        .filter(|(k, _)| k != "SMS_WEBHOOK_URL")
        .collect();
    let mut gw = Gateway::start(home.path(), &env);
    let status = gw.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(!status.success());
    let logs = gw.logs();
    assert!(
        logs.contains("Refusing to start: SMS_WEBHOOK_URL is required"),
        "{logs}"
    );
    assert!(
        logs.contains("SMS_INSECURE_NO_SIGNATURE=true"),
        "a hint follows: {logs}"
    );
}

#[test]
fn insecure_mode_starts_warns_serves_health_and_stops_on_sigterm() {
    let home = Home::new();
    let mut gw = Gateway::start(home.path(), &insecure_env());
    let logs = gw.logs();
    assert!(logs.contains("signatures are NOT checked"), "{logs}");
    let addr = gw.addr();
    assert!(
        logs.contains(&format!(
            "[sms] Twilio webhook server listening on {addr}, from: +1555***4567"
        )),
        "{logs}"
    );
    assert!(!logs.contains(OUR_NUMBER), "numbers are redacted");
    let health = gw.get("/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    assert!(gw.terminate().success(), "exit 0 on SIGTERM");
}

#[test]
fn one_failing_platform_does_not_take_the_others_down() {
    let home = Home::new();
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut env = insecure_env();
    env.retain(|(k, _)| k != "SMS_WEBHOOK_PORT");
    env.push((
        "SMS_WEBHOOK_PORT".into(),
        blocker.local_addr().unwrap().port().to_string(),
    ));
    env.push(("TELEGRAM_BOT_TOKEN".into(), "123:abc".into()));
    let mut gw = Gateway::start(home.path(), &env);
    assert!(
        gw.wait_for_log("gateway running: telegram", Duration::from_secs(20)),
        "{}",
        gw.logs()
    );
    assert!(
        gw.logs().contains("[sms] cannot listen on"),
        "{}",
        gw.logs()
    );
    assert!(gw.terminate().success());
}

#[test]
fn readme_configuration_reference_matches_the_registrations() {
    let home = Home::new();
    let out = run(home.path(), &[], &["platforms", "--settings"], "");
    assert!(out.status.success());
    let reference = String::from_utf8_lossy(&out.stdout);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let begin = readme.find("<!-- settings:begin").expect("settings block");
    let block_start = begin + readme[begin..].find('\n').unwrap() + 1;
    let end = readme
        .find("<!-- settings:end -->")
        .expect("settings block end");
    assert_eq!(
        &readme[block_start..end],
        reference,
        "regenerate the README block with `hermes platforms --settings`"
    );
    for registration in platform_api::registrations() {
        for setting in registration.settings {
            assert!(
                readme.contains(&format!("`{}`", setting.env)),
                "{} missing from README",
                setting.env
            );
        }
    }
}
