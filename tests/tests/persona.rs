//! Who the agent is, through the real binary and the fake LLM: the persona set by
//! `HERMES_SYSTEM_PROMPT`, `HERMES_SYSTEM_PROMPT_FILE` or `$HERMES_HOME/SOUL.md` (the first set
//! or present wins) reaches the model, a file edited while the gateway runs is read at the next
//! turn, `SMS_PROMPT_HINT` replaces or removes the platform's hint, a cron job's prompt gets
//! them too, and `hermes agent prompt` prints exactly the system message the model then
//! receives.
use std::time::Duration;

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// A fixed zone, so that the date line is the same for the gateway and `hermes agent prompt`.
const ZONE: &str = "Europe/Berlin";

/// The agent settings of a test: the fake LLM, a fixed time zone, and `extra`.
fn agent_env<'a>(llm_url: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("HERMES_AGENT", "openai"),
        ("HERMES_AGENT_URL", llm_url),
        ("HERMES_AGENT_MODEL", "test-model"),
        ("HERMES_TIMEZONE", ZONE),
    ];
    env.extend_from_slice(extra);
    env
}

/// What `hermes agent prompt --platform sms` prints under `env`, without the final newline.
fn agent_prompt(home: &Home, env: &[(&str, &str)]) -> String {
    let output = run(
        home.path(),
        env,
        &["agent", "prompt", "--platform", "sms"],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    text(&output.stdout)
        .strip_suffix('\n')
        .expect("a line ends the prompt")
        .to_string()
}

/// The system message of a recorded chat-completions request.
fn system_of(request: &Value) -> String {
    let first = &request["messages"][0];
    assert_eq!(first["role"], "system", "{request}");
    first["content"].as_str().expect("text content").to_string()
}

/// Sends a text from Alice, waits for the model to be asked, and checks that it was asked with
/// what `hermes agent prompt` printed just before or just after (the minute may turn between
/// the two). Returns the system message the model got.
fn turn(
    gw: &Gateway,
    llm: &FakeLlm,
    home: &Home,
    env: &[(&str, &str)],
    n: usize,
    sid: &str,
) -> String {
    let before = agent_prompt(home, env);
    gw.text(ALICE, "Hello there", sid);
    let requests = llm.wait_for_requests(n, WAIT);
    assert_eq!(requests.len(), n, "the model was not asked");
    let system = system_of(&requests[n - 1]);
    let after = agent_prompt(home, env);
    assert!(
        system == before || system == after,
        "the model got:\n{system}\n\n`hermes agent prompt` printed:\n{before}\n\nand then:\n{after}"
    );
    system
}

/// The persona: the system message up to the first blank line.
fn persona_of(system: &str) -> &str {
    system.split("\n\n").next().unwrap_or_default()
}

#[test]
fn soul_md_is_the_persona_and_an_edit_reaches_the_next_turn_without_a_restart() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    let soul = home.path().join("SOUL.md");
    std::fs::write(&soul, "You are Ada, the assistant of Rosa's flower shop.\n").unwrap();
    let url = llm.base_url();
    let env = agent_env(&url, &[]);
    let gw = sms_gateway(&home, &twilio, &env);

    let system = turn(
        &gw,
        &llm,
        &home,
        &env,
        1,
        "SM0a000000000000000000000000000001",
    );
    assert_eq!(
        persona_of(&system),
        "You are Ada, the assistant of Rosa's flower shop."
    );
    // Then SMS's built-in hint, then the date and time in the configured zone.
    let parts: Vec<&str> = system.split("\n\n").collect();
    assert_eq!(parts.len(), 3, "{system}");
    assert!(parts[1].contains("plain text"), "{system}");
    assert!(
        parts[2].starts_with("Current date and time: ")
            && parts[2].contains("(Europe/Berlin, UTC+"),
        "{system}"
    );
    twilio.wait_for_messages(1, WAIT);

    std::fs::write(
        &soul,
        "You are Bruno, who answers for Rosa's flower shop, in French.\n",
    )
    .unwrap();
    let system = turn(
        &gw,
        &llm,
        &home,
        &env,
        2,
        "SM0a000000000000000000000000000002",
    );
    assert_eq!(
        persona_of(&system),
        "You are Bruno, who answers for Rosa's flower shop, in French."
    );
}

#[test]
fn a_persona_file_wins_over_soul_md_is_read_again_and_the_hint_is_replaced() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    std::fs::write(home.path().join("SOUL.md"), "You are the SOUL.md persona.").unwrap();
    let file = home.path().join("clinic.md");
    std::fs::write(&file, "You answer for the Elm Street clinic.").unwrap();
    let url = llm.base_url();
    // A relative path is taken from HERMES_HOME.
    let env = agent_env(
        &url,
        &[
            ("HERMES_SYSTEM_PROMPT_FILE", "clinic.md"),
            ("SMS_PROMPT_HINT", "Answer in one sentence."),
        ],
    );
    let gw = sms_gateway(&home, &twilio, &env);

    let system = turn(
        &gw,
        &llm,
        &home,
        &env,
        1,
        "SM0b000000000000000000000000000001",
    );
    let parts: Vec<&str> = system.split("\n\n").collect();
    assert_eq!(
        parts[..2],
        [
            "You answer for the Elm Street clinic.",
            "Answer in one sentence."
        ],
        "{system}"
    );
    twilio.wait_for_messages(1, WAIT);

    std::fs::write(
        &file,
        "You answer for the Elm Street clinic, open 8 to 6 on weekdays.",
    )
    .unwrap();
    let system = turn(
        &gw,
        &llm,
        &home,
        &env,
        2,
        "SM0b000000000000000000000000000002",
    );
    assert_eq!(
        persona_of(&system),
        "You answer for the Elm Street clinic, open 8 to 6 on weekdays."
    );
}

#[test]
fn the_text_variable_wins_over_both_files_and_an_empty_hint_removes_it() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    std::fs::write(home.path().join("SOUL.md"), "You are the SOUL.md persona.").unwrap();
    std::fs::write(home.path().join("file.md"), "You are the file persona.").unwrap();
    // The hint removed in .env, the way an operator would.
    home.write_env("SMS_PROMPT_HINT=\n");
    let url = llm.base_url();
    let env = agent_env(
        &url,
        &[
            ("HERMES_SYSTEM_PROMPT", "You are Max, a terse butler."),
            ("HERMES_SYSTEM_PROMPT_FILE", "file.md"),
        ],
    );
    let gw = sms_gateway(&home, &twilio, &env);
    let system = turn(
        &gw,
        &llm,
        &home,
        &env,
        1,
        "SM0c000000000000000000000000000001",
    );
    let parts: Vec<&str> = system.split("\n\n").collect();
    assert_eq!(parts.len(), 2, "no hint between them: {system}");
    assert_eq!(parts[0], "You are Max, a terse butler.");
    assert!(parts[1].starts_with("Current date and time: "), "{system}");
}

#[test]
fn a_missing_persona_file_stops_start_up_naming_it_and_its_source() {
    let home = Home::new();
    home.write_env("HERMES_SYSTEM_PROMPT_FILE=/nonexistent/persona.md\n");
    let twilio = emulator();
    let env = sms_env(&twilio.base_url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for args in [
        &["gateway"][..],
        &["agent", "prompt", "--platform", "sms"][..],
    ] {
        let output = run(home.path(), &env, args, "");
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        let named = format!(
            "HERMES_SYSTEM_PROMPT_FILE (from {}): cannot read the persona file /nonexistent/persona.md",
            home.path().join(".env").display()
        );
        assert!(stderr.contains(&named), "{args:?}: {stderr}");
    }
    assert!(twilio.messages().is_empty());
}

#[test]
fn agent_prompt_shows_the_default_persona_and_refuses_an_unknown_platform() {
    let home = Home::new();
    let env = [
        ("HERMES_TIMEZONE", ZONE),
        ("TELEGRAM_PROMPT_HINT", "Use emoji."),
    ];
    let output = run(
        home.path(),
        &env,
        &["agent", "prompt", "--platform", "telegram"],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    let system = text(&output.stdout);
    let parts: Vec<&str> = system.trim_end().split("\n\n").collect();
    assert_eq!(parts.len(), 3, "{system}");
    assert!(
        parts[0].contains("helpful assistant") && parts[0].contains("Telegram"),
        "{system}"
    );
    assert_eq!(parts[1], "Use emoji.");

    let output = run(
        home.path(),
        &env,
        &["agent", "prompt", "--platform", "pager"],
        "",
    );
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("unknown platform \"pager\"") && stderr.contains("sms"),
        "{stderr}"
    );
}

#[test]
fn a_scheduled_prompt_is_asked_with_the_persona_and_the_platforms_hint() {
    let (home, twilio, llm) = (Home::new(), emulator(), FakeLlm::start());
    std::fs::write(
        home.path().join("SOUL.md"),
        "You are Ada, Rosa's assistant.",
    )
    .unwrap();
    let url = llm.base_url();
    let api = twilio.base_url();
    let mut env = agent_env(&url, &[]);
    let sms = sms_env(&api);
    env.extend(sms.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let deliver = format!("sms:{ALICE}");
    let add = [
        "cron",
        "add",
        "--schedule",
        "every 1d",
        "--prompt",
        "Remind Rosa to water the ferns.",
        "--deliver",
        deliver.as_str(),
    ];
    let output = run(home.path(), &env, &add, "");
    assert!(output.status.success(), "{output:?}");
    let id = text(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let output = run(home.path(), &env, &["cron", "run", &id], "");
    assert!(output.status.success(), "{output:?}");
    let requests = llm.wait_for_requests(1, WAIT);
    let system = system_of(&requests[0]);
    let expected = agent_prompt(&home, &env);
    // The minute may have turned between the run and the look.
    let (persona_and_hint, _) = system.rsplit_once("\n\n").expect("a date line");
    assert!(
        expected.starts_with(&format!("{persona_and_hint}\n\nCurrent date and time: ")),
        "the job's system message:\n{system}\n\n`hermes agent prompt`:\n{expected}"
    );
    assert!(persona_and_hint.starts_with("You are Ada, Rosa's assistant.\n\n"));
}
