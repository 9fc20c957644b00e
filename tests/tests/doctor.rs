//! `hermes gateway doctor [--fix]` against the Twilio emulator (the checks' outcomes) and
//! against Prism serving Twilio's OpenAPI description (every request it sends is valid).
use std::process::Output;
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use gateway_tests::prism::{Prism, twilio_spec};
use platform_api::loopback::LoopbackServer;
use platform_sms::emulator::{Emulator, EmulatorConfig};

/// A webhook URL Twilio may still have from an earlier tunnel.
const OLD_URL: &str = "https://old-tunnel.example.com/sms";
/// The public URL of a second gateway sharing the database, this one's `SMS_FALLBACK_URL`.
const STANDBY_URL: &str = "https://standby.example.com/webhooks/twilio";

/// The test account, owning [`OUR_NUMBER`] with the given Messaging webhook.
fn twilio(sms_url: Option<&str>, sms_method: &str) -> Emulator {
    Emulator::start(EmulatorConfig {
        account_sid: ACCOUNT_SID.to_string(),
        auth_token: AUTH_TOKEN.to_string(),
        phone_number: OUR_NUMBER.to_string(),
        sms_url: sms_url.map(str::to_string),
        sms_method: sms_method.to_string(),
    })
    .expect("starting the Twilio emulator")
}

/// Runs `hermes gateway doctor` with the SMS settings pointed at `api_base`.
fn doctor(api_base: &str, extra: &[(&str, &str)], args: &[&str]) -> (Output, String) {
    let home = Home::new();
    let mut env = sms_env(api_base);
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut argv = vec!["gateway", "doctor"];
    argv.extend_from_slice(args);
    let output = run(home.path(), &env, &argv, "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Whatever the outcome, a doctor line never shows the token nor a whole phone number.
    assert!(!text.contains(AUTH_TOKEN), "{text}");
    assert!(!text.contains(OUR_NUMBER), "{text}");
    (output, text)
}

#[test]
fn a_mismatched_webhook_is_a_problem_with_its_fix() {
    let twilio = twilio(Some(OLD_URL), "POST");
    let (output, text) = doctor(&twilio.base_url(), &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for line in [
        "ok       sms: enabled, settings valid",
        &format!("ok       Twilio credentials: accepted for account {ACCOUNT_SID}"),
        "ok       Twilio number: +1555***4567 belongs to the account and can receive SMS",
        &format!("problem  Messaging webhook: is {OLD_URL}, but SMS_WEBHOOK_URL is {WEBHOOK_URL}"),
        "fix: run `hermes gateway doctor --fix`, or in the Twilio Console: Phone Numbers → Manage → Active numbers → +1555***4567",
        "1 problem(s) found",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert_eq!(
        twilio.incoming_number(),
        (Some(OLD_URL.to_string()), "POST".to_string()),
        "without --fix nothing changes"
    );
}

#[test]
fn fix_sets_the_webhook_and_method_then_checks_again() {
    let twilio = twilio(Some(OLD_URL), "GET");
    let (output, text) = doctor(&twilio.base_url(), &[], &["--fix"]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    // With Twilio's connection overrides: up to three retries instead of one.
    let with_overrides = format!("{WEBHOOK_URL}#rc=3&rp=ct,rt,5xx");
    assert!(
        text.contains(&format!(
            "fixed    Messaging webhook: was {OLD_URL}; now {with_overrides} (POST)"
        )),
        "{text}"
    );
    assert!(text.contains("All checks passed."), "{text}");
    assert_eq!(
        twilio.incoming_number(),
        (Some(with_overrides.clone()), "POST".to_string())
    );
    // Checked again as it now stands, it passes.
    let (output, text) = doctor(&twilio.base_url(), &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{text}");

    // A number with no webhook at all is fixed the same way.
    let twilio = self::twilio(None, "POST");
    let (output, text) = doctor(&twilio.base_url(), &[], &["--fix"]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("was none; now"), "{text}");
    assert_eq!(
        twilio.incoming_number().0,
        Some(format!("{WEBHOOK_URL}#rc=3&rp=ct,rt,5xx"))
    );
}

#[test]
fn fix_sets_the_fallback_pair_and_the_mirror_gateway_is_ok_as_it_stands() {
    let twilio = twilio(Some(OLD_URL), "POST");
    let primary = [("SMS_FALLBACK_URL", STANDBY_URL)];
    let (output, text) = doctor(&twilio.base_url(), &primary, &[]);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "problem  Messaging webhook: is {OLD_URL}, but SMS_WEBHOOK_URL is {WEBHOOK_URL} and SMS_FALLBACK_URL is {STANDBY_URL}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\"Primary handler fails\" → Webhook, URL {STANDBY_URL}#rc=3&rp=ct,rt,5xx, HTTP POST → Save"
        )),
        "{text}"
    );
    assert_eq!(twilio.incoming_fallback(), (None, "POST".to_string()));

    let (output, text) = doctor(&twilio.base_url(), &primary, &["--fix"]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let ours = format!("{WEBHOOK_URL}#rc=3&rp=ct,rt,5xx");
    let theirs = format!("{STANDBY_URL}#rc=3&rp=ct,rt,5xx");
    assert!(
        text.contains(&format!(
            "fixed    Messaging webhook: was primary {OLD_URL}, fallback none; now primary {ours}, fallback {theirs} (both POST)"
        )),
        "{text}"
    );
    assert_eq!(
        twilio.incoming_number(),
        (Some(ours.clone()), "POST".to_string())
    );
    assert_eq!(
        twilio.incoming_fallback(),
        (Some(theirs.clone()), "POST".to_string())
    );

    // Checked again as it now stands, this gateway is the primary.
    let (output, text) = doctor(&twilio.base_url(), &primary, &[]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "ok       Messaging webhook: primary: {WEBHOOK_URL}; fallback: {STANDBY_URL}, both POST (this gateway is the primary)"
        )),
        "{text}"
    );

    // The second machine, configured as the mirror, is the fallback: ok, and nothing is sent.
    let mirror = [
        ("SMS_WEBHOOK_URL", STANDBY_URL),
        ("SMS_FALLBACK_URL", WEBHOOK_URL),
    ];
    let (output, text) = doctor(&twilio.base_url(), &mirror, &[]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "ok       Messaging webhook: primary: {WEBHOOK_URL}; fallback: {STANDBY_URL}, both POST (this gateway is the fallback)"
        )),
        "{text}"
    );
    assert!(text.contains("All checks passed."), "{text}");
    let (output, text) = doctor(&twilio.base_url(), &mirror, &["--fix"]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains("fixed"), "{text}");
    assert_eq!(twilio.incoming_number().0, Some(ours));
    assert_eq!(twilio.incoming_fallback().0, Some(theirs));

    // Without SMS_FALLBACK_URL the fallback is mentioned, not checked: the check is today's.
    let (output, text) = doctor(&twilio.base_url(), &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "ok       Messaging webhook: {WEBHOOK_URL} (POST); the number's fallback is {STANDBY_URL}#rc=3&rp=ct,rt,5xx, not checked while SMS_FALLBACK_URL is unset"
        )),
        "{text}"
    );
}

#[test]
fn a_fallback_url_equal_to_the_webhook_url_is_a_settings_problem() {
    let twilio = twilio(Some(WEBHOOK_URL), "POST");
    let (output, text) = doctor(
        &twilio.base_url(),
        &[("SMS_FALLBACK_URL", WEBHOOK_URL)],
        &["--fix"],
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("SMS_FALLBACK_URL (from environment): is the same URL as SMS_WEBHOOK_URL"),
        "{text}"
    );
    assert_eq!(twilio.incoming_fallback(), (None, "POST".to_string()));
}

#[test]
fn a_matching_webhook_passes_also_with_the_default_port_spelled_out() {
    let twilio = twilio(
        Some("https://gateway.example.com:443/webhooks/twilio"),
        "POST",
    );
    let (output, text) = doctor(&twilio.base_url(), &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("ok       Messaging webhook: {WEBHOOK_URL} (POST)")),
        "{text}"
    );
    assert!(text.contains("All checks passed."), "{text}");
    assert!(!text.contains("problem"), "{text}");
}

#[test]
fn the_inbound_journal_says_what_waits_and_what_a_crash_cut() {
    let twilio = twilio(Some(WEBHOOK_URL), "POST");
    let home = Home::new();
    let env = sms_env(&twilio.base_url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let doctor = || {
        let output = run(home.path(), &env, &["gateway", "doctor"], "");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        (output.status.code(), text)
    };
    let (code, text) = doctor();
    assert!(
        text.contains("ok       inbound journal: none yet"),
        "{text}"
    );
    assert_eq!(code, Some(0), "{text}");

    // A webhook acknowledged while the database was locked, then the gateway killed.
    let mut gw = sms_gateway(&home, &twilio, &[]);
    let db = home.db();
    db.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let sid = "SMd0000000000000000000000000000001";
    assert_eq!(gw.text(ALICE, "waiting", sid).status, 200);
    gw.kill();
    db.execute_batch("ROLLBACK").expect("unlock");
    std::fs::write(home.path().join("inbound.journal.dropped"), b"torn").expect("dropped");
    let (code, text) = doctor();
    assert!(
        text.contains(
            "ok       inbound journal: 1 acknowledged message(s) not in the database yet"
        ),
        "{text}"
    );
    assert!(
        text.contains("inbound.journal.dropped holds 4 byte(s) cut from the journal's end"),
        "{text}"
    );
    assert_eq!(code, Some(1), "{text}");

    // The gateway imports it when it starts; the operator deletes the dropped bytes.
    let gw = sms_gateway(&home, &twilio, &[]);
    assert!(
        eventually(Duration::from_secs(10), || (gw.unimported() == 0)
            .then_some(()))
        .is_some()
    );
    std::fs::remove_file(home.path().join("inbound.journal.dropped")).expect("delete");
    let (code, text) = doctor();
    assert!(
        text.contains("ok       inbound journal: every acknowledged message is in the database"),
        "{text}"
    );
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_wrong_token_is_a_credentials_problem() {
    let twilio = twilio(Some(WEBHOOK_URL), "POST");
    let (output, text) = doctor(
        &twilio.base_url(),
        &[("TWILIO_AUTH_TOKEN", "00000000000000000000000000000000")],
        &["--fix"],
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    for line in [
        "problem  Twilio credentials: credentials rejected (Twilio answered HTTP 401, code 20003",
        "fix: check TWILIO_ACCOUNT_SID (from environment) / TWILIO_AUTH_TOKEN (from environment)",
        "skipped  Twilio number: needs working credentials",
        "skipped  Messaging webhook: needs working credentials",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert!(!text.contains("00000000000000000000000000000000"), "{text}");
}

#[test]
fn a_number_the_account_does_not_own_is_a_problem() {
    let twilio = twilio(Some(WEBHOOK_URL), "POST");
    let (output, text) = doctor(
        &twilio.base_url(),
        &[("TWILIO_PHONE_NUMBER", "+15559990000")],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "problem  Twilio number: +1555***0000 is not among the account's active numbers"
        ),
        "{text}"
    );
    assert!(text.contains("fix: check TWILIO_PHONE_NUMBER"), "{text}");
}

#[test]
fn configuration_problems_name_the_setting_and_skip_the_account() {
    let twilio = twilio(Some(WEBHOOK_URL), "POST");
    let (output, text) = doctor(&twilio.base_url(), &[("SMS_WEBHOOK_PORT", "80a")], &[]);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("problem  sms: SMS_WEBHOOK_PORT (from environment): expected a port"),
        "{text}"
    );
    assert!(
        text.contains("fix: correct SMS_WEBHOOK_PORT in the environment"),
        "{text}"
    );
    assert!(!text.contains("Twilio credentials"), "{text}");
}

/// Doctor's requests (account, number lookup, webhook update) are valid for Twilio's own API
/// description. Prism answers with the spec's examples, so the checks' outcomes are not
/// asserted: only that Prism accepted every request.
#[test]
fn doctor_requests_match_twilios_openapi_description() {
    let Some(prism) = Prism::start(&twilio_spec()) else {
        return;
    };
    // The spec's example account owns +18089255327; using it makes doctor go on to the
    // webhook update.
    let number = "+18089255327";
    let extra = [
        ("TWILIO_ACCOUNT_SID", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("TWILIO_PHONE_NUMBER", number),
    ];
    let with_fallback = [extra[0], extra[1], ("SMS_FALLBACK_URL", STANDBY_URL)];
    for (env, args) in [
        (&extra[..], &[][..]),
        (&extra[..], &["--fix"][..]),
        // The fix that also sets the fallback, in one request.
        (&with_fallback[..], &["--fix"][..]),
    ] {
        let (_, text) = doctor(&prism.base_url(), env, args);
        assert!(!text.contains("422"), "{text}");
        assert!(!text.contains("could not reach"), "{text}");
    }
    let requests = prism.requests();
    let rejected: Vec<_> = requests.iter().filter(|r| !r.valid).collect();
    assert!(rejected.is_empty(), "{rejected:#?}\n{}", prism.log());
    let seen = |method: &str, path: &str| {
        requests
            .iter()
            .any(|r| r.method == method && r.path.contains(path))
    };
    assert!(
        seen("get", "/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"),
        "{requests:#?}"
    );
    assert!(seen("get", "/IncomingPhoneNumbers.json"), "{requests:#?}");
    let updates = requests
        .iter()
        .filter(|r| {
            r.method == "post"
                && r.path
                    .contains("/IncomingPhoneNumbers/PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json")
        })
        .count();
    // One update per --fix run: the pair is set in the same request as the webhook.
    assert_eq!(updates, 2, "{requests:#?}");
}

/// Runs `hermes gateway doctor` on `home` with only the agent's settings (no platform).
fn agent_doctor(home: &Home, env: &[(&str, &str)]) -> String {
    let output = run(home.path(), env, &["gateway", "doctor"], "");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_agent_server_its_model_and_the_persona_are_checked() {
    let llm = FakeLlm::start();
    let url = llm.base_url();
    let home = Home::new();
    std::fs::write(home.path().join("SOUL.md"), "You are Ada.\n").unwrap();
    let openai = |model: &'static str| {
        vec![
            ("HERMES_AGENT", "openai"),
            ("HERMES_AGENT_URL", url.as_str()),
            ("HERMES_AGENT_MODEL", model),
        ]
    };
    let text = agent_doctor(&home, &openai("fake-llm"));
    for line in [
        "\nAgent\n".to_string(),
        format!(
            "ok       persona: {}, 12 characters",
            home.path().join("SOUL.md").display()
        ),
        format!("ok       agent server: {url} answers (1 model(s) listed)"),
        "ok       model: fake-llm is served".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }

    let text = agent_doctor(&home, &openai("llama3.2"));
    for line in [
        "problem  model: llama3.2 (HERMES_AGENT_MODEL) is not among the models the server lists: fake-llm",
        "fix: set HERMES_AGENT_MODEL to one of them",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }

    llm.stop();
    let text = agent_doctor(&home, &openai("fake-llm"));
    assert!(
        text.contains(&format!("problem  agent server: cannot reach {url}: ")),
        "{text}"
    );
}

#[test]
fn the_hermes_backend_needs_a_key_and_hermes_agents_session_header() {
    // An OpenAI-compatible server that is not Hermes Agent: it has no capabilities to show.
    let llm = FakeLlm::start();
    let url = llm.base_url();
    let home = Home::new();
    let hermes = [
        ("HERMES_AGENT", "hermes"),
        ("HERMES_AGENT_URL", url.as_str()),
    ];
    let text = agent_doctor(&home, &hermes);
    for line in [
        "problem  API key: HERMES_AGENT=hermes needs HERMES_AGENT_API_KEY: Hermes Agent refuses X-Hermes-Session-Id (403) from a caller without its key",
        "ok       model: Hermes Agent's own (fake-llm)",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    let mut env = hermes.to_vec();
    env.push(("HERMES_AGENT_API_KEY", "a-key-of-16-chars-or-more"));
    let text = agent_doctor(&home, &env);
    let line = format!(
        "problem  session header: {url} is not Hermes Agent's API server (GET /capabilities answers 404)"
    );
    assert!(text.contains(&line), "{line:?} in:\n{text}");
    assert!(text.contains("use HERMES_AGENT=openai"), "{text}");
}

#[test]
fn a_missing_persona_file_is_a_problem_with_its_fix() {
    let home = Home::new();
    let text = agent_doctor(&home, &[("HERMES_SYSTEM_PROMPT_FILE", "gone.md")]);
    let line = format!(
        "problem  persona: HERMES_SYSTEM_PROMPT_FILE (from environment): cannot read the persona file {}",
        home.path().join("gone.md").display()
    );
    assert!(text.contains(&line), "{line:?} in:\n{text}");
    assert!(
        text.contains("fix: create the file, or unset HERMES_SYSTEM_PROMPT_FILE"),
        "{text}"
    );
    let text = agent_doctor(&home, &[]);
    assert!(
        text.contains("ok       persona: the built-in default (none of HERMES_SYSTEM_PROMPT"),
        "{text}"
    );
    assert!(text.contains("ok       agent: echo (built in"), "{text}");
}

/// Hermes Agent's API server as far as the doctor asks it, as `hermes-agent` 0.19.0 answers
/// (`gateway/platforms/api_server.py`): `GET /v1/models` and `GET /v1/capabilities`, each 401
/// without the bearer key when the server has one (`API_SERVER_KEY`), and its capabilities
/// saying whether the key is required.
fn hermes_api_server(key: Option<&'static str>) -> (LoopbackServer, String) {
    use actix_web::{HttpRequest, HttpResponse, web};
    let authorized = move |req: &HttpRequest| {
        let given = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        key.is_none() || given == key
    };
    let refused = || {
        HttpResponse::Unauthorized().json(serde_json::json!({
            "error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}
        }))
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let server = LoopbackServer::start("hermes-api", listener, move |cfg: &mut web::ServiceConfig| {
        cfg.route(
            "/v1/models",
            web::get().to(move |req: HttpRequest| async move {
                if !authorized(&req) {
                    return refused();
                }
                HttpResponse::Ok().json(serde_json::json!({
                    "object": "list",
                    "data": [{"id": "hermes-agent", "object": "model", "created": 0, "owned_by": "hermes"}]
                }))
            }),
        )
        .route(
            "/v1/capabilities",
            web::get().to(move |req: HttpRequest| async move {
                if !authorized(&req) {
                    return refused();
                }
                HttpResponse::Ok().json(serde_json::json!({
                    "object": "hermes.api_server.capabilities",
                    "platform": "hermes-agent",
                    "model": "hermes-agent",
                    "auth": {"type": "bearer", "required": key.is_some()},
                    "features": {
                        "chat_completions": true,
                        "session_continuity_header": "X-Hermes-Session-Id",
                        "session_key_header": "X-Hermes-Session-Key"
                    }
                }))
            }),
        );
    })
    .unwrap();
    let url = format!("http://{}/v1", server.addr());
    (server, url)
}

#[test]
fn hermes_agents_session_header_is_accepted_only_with_its_key() {
    const KEY: &str = "hermes-api-server-key-0123";
    let home = Home::new();
    let (_server, url) = hermes_api_server(Some(KEY));
    let doctor_with = |url: &str, key: &str| {
        let env = [
            ("HERMES_AGENT", "hermes"),
            ("HERMES_AGENT_URL", url),
            ("HERMES_AGENT_API_KEY", key),
        ];
        agent_doctor(&home, &env)
    };
    let text = doctor_with(&url, KEY);
    for line in [
        format!("ok       agent server: {url} answers (1 model(s) listed)"),
        "ok       model: Hermes Agent's own (hermes-agent)".to_string(),
        "ok       session header: Hermes Agent keeps each conversation by X-Hermes-Session-Id (the key is accepted)".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    let text = doctor_with(&url, "not-the-key-of-this-server");
    assert!(
        text.contains(&format!(
            "problem  agent server: {url} refuses the API key (401): Invalid API key"
        )) && text.contains(
            "fix: set HERMES_AGENT_API_KEY to the server's key (Hermes Agent's API_SERVER_KEY)"
        ),
        "{text}"
    );
    assert!(!text.contains("not-the-key-of-this-server"), "{text}");

    // A server without a key of its own takes any caller, and refuses the session header.
    let (_open, url) = hermes_api_server(None);
    let text = doctor_with(&url, KEY);
    assert!(
        text.contains("problem  session header: Hermes Agent's API server has no API key, and refuses X-Hermes-Session-Id (403) without one")
            && text.contains("fix: set API_SERVER_KEY in Hermes Agent's ~/.hermes/.env"),
        "{text}"
    );
}
