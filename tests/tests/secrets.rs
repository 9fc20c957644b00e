//! Secrets never reach the logs or an error: a password in a URL's user info is shown as `***`,
//! and the agent command (which may hold a token) is named, never echoed. Each test provokes
//! the line that would show the secret and waits for it, so it proves the line is there.
use std::time::Duration;

use gateway_tests::harness::*;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_wrong_signature_warning_hides_the_webhook_password() {
    let home = Home::new();
    let twilio = emulator();
    let url = "https://hermes:Wh00kPassw0rd@gateway.example.com/webhooks/twilio";
    let gw = sms_gateway(&home, &twilio, &[("SMS_WEBHOOK_URL", url)]);
    let forged = gw.post_form(
        &inbound_sms(ALICE, "hi", "SM50000000000000000000000000000001"),
        Some("bm90IHRoZSBzaWduYXR1cmU="),
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(
        gw.wait_for_log("webhook rejected: invalid signature", WAIT),
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(
        logs.contains("https://hermes:***@gateway.example.com/webhooks/twilio"),
        "the URLs tried are still listed: {logs}"
    );
    assert!(!logs.contains("Wh00kPassw0rd"), "{logs}");
}

#[test]
fn an_invalid_url_setting_is_named_without_its_password() {
    let home = Home::new();
    let out = run(
        home.path(),
        &[
            ("HERMES_AGENT", "openai"),
            (
                "HERMES_AGENT_URL",
                "ftp://agent:AgentPassw0rd@llm.example.com/v1",
            ),
            ("HERMES_AGENT_MODEL", "m"),
        ],
        &["gateway"],
        "",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "HERMES_AGENT_URL (from environment): expected an absolute http(s) URL such as https://example.com/webhooks/twilio, got \"ftp://agent:***@llm.example.com/v1\""
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("AgentPassw0rd"), "{stderr}");
    assert!(!text(&out.stdout).contains("AgentPassw0rd"));
}

#[test]
fn an_agent_command_that_cannot_start_is_named_not_echoed() {
    let home = Home::new();
    let twilio = emulator();
    let command = "curl -s -H 'Authorization: Bearer CmdS3cretT0ken' https://llm.example.com/";
    // Without `sh` on PATH the command cannot start: the error that used to echo it.
    let gw = sms_gateway(
        &home,
        &twilio,
        &[
            ("HERMES_AGENT", "command"),
            ("HERMES_AGENT_COMMAND", command),
            ("PATH", "/nonexistent"),
        ],
    );
    let answer = gw.text(ALICE, "hi", "SM50000000000000000000000000000002");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        gw.wait_for_log("could not start `sh` to run HERMES_AGENT_COMMAND", WAIT),
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(!logs.contains("CmdS3cretT0ken"), "{logs}");
}
