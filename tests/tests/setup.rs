//! `hermes gateway setup`: the wizard driven through a pseudo-terminal as a person would answer
//! it, the scripted `--non-interactive` mode, and the refusal to ask questions without a terminal.
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};
use gateway_tests::harness::*;

/// Longest a prompt may take to appear (the first one includes loading the configuration).
const PROMPT_WAIT: Duration = Duration::from_secs(20);
const SID: &str = ACCOUNT_SID;
const URL: &str = "https://abc.trycloudflare.com/webhooks/twilio";
/// An existing `.env` whose other lines setup must keep.
const EXISTING: &str = "# my notes: keep me\nOPENAI_API_KEY=sk-keep-me\n";
/// Backspace as a terminal in raw mode sends it.
const BACKSPACE: &str = "\x7f";

/// A `hermes gateway setup` session on a pseudo-terminal, with everything it printed so far.
struct Wizard {
    session: OsSession,
    transcript: String,
}

impl Wizard {
    fn start(home: &Home, args: &[&str]) -> Wizard {
        let mut command: Command = command(home.path(), &[("TERM", "xterm")]);
        command.args(["gateway", "setup"]).args(args);
        let mut session = Session::spawn(command).expect("spawning hermes on a pty");
        // Wide enough that no message is wrapped across lines.
        let _ = session.get_process_mut().set_window_size(200, 50);
        session.set_expect_timeout(Some(PROMPT_WAIT));
        Wizard {
            session,
            transcript: String::new(),
        }
    }

    /// Waits for `needle` on the terminal.
    fn expect(&mut self, needle: &str) {
        match self.session.expect(needle) {
            Ok(found) => self
                .transcript
                .push_str(&String::from_utf8_lossy(found.as_bytes())),
            Err(err) => panic!(
                "waiting for {needle:?}: {err}\n--- terminal so far ---\n{}",
                self.transcript
            ),
        }
    }

    /// Types text (a `\r` submits).
    fn send(&mut self, keys: &str) {
        self.session.send(keys).expect("typing into the pty");
    }

    /// Answers the prompt that shows `question` with `answer` and Enter.
    fn answer(&mut self, question: &str, answer: &str) {
        self.expect(question);
        self.send(&format!("{answer}\r"));
    }

    /// Reads to the end and returns the exit code.
    fn finish(mut self) -> (i32, String) {
        match self.session.expect(Eof) {
            Ok(rest) => self
                .transcript
                .push_str(&String::from_utf8_lossy(rest.before())),
            Err(err) => panic!("waiting for the end: {err}\n{}", self.transcript),
        }
        let status = self.session.get_process().wait().expect("exit status");
        let code = match status {
            WaitStatus::Exited(_, code) => code,
            other => panic!("hermes did not exit normally: {other:?}"),
        };
        (code, self.transcript)
    }
}

fn env_mode(home: &Home) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(home.path().join(".env"))
        .expect(".env exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_wizard_asks_in_order_re_asks_bad_answers_and_writes_env() {
    let home = Home::new();
    home.write_env(EXISTING);
    let mut wizard = Wizard::start(&home, &[]);

    wizard.expect("Which platform");
    wizard.expect("SMS (Twilio) (sms)");
    // Typing filters the menu down to the one platform.
    wizard.send("twilio\r");

    wizard.answer("TWILIO_ACCOUNT_SID", "AC123");
    wizard.expect("expected AC followed by 32 hexadecimal digits");
    wizard.send(&BACKSPACE.repeat(5));
    wizard.send(&format!("{SID}\r"));

    wizard.expect("TWILIO_AUTH_TOKEN");
    wizard.send(&format!("{AUTH_TOKEN}\r"));

    wizard.answer("TWILIO_PHONE_NUMBER", "555");
    wizard.expect("is not a phone number in E.164 form");
    wizard.send(&BACKSPACE.repeat(3));
    wizard.send("+1 (555) 123-4567\r");

    wizard.expect("refuses to start without it");
    wizard.answer("SMS_WEBHOOK_URL", URL);

    wizard.expect("Everyone is denied by default");
    wizard.answer("SMS_ALLOWED_USERS", "+1 555 000 1111, +15550002222");
    wizard.answer("SMS_ALLOW_ALL_USERS", "n");
    wizard.answer("SMS_HOME_CHANNEL", ALICE);
    // The advanced settings stay closed unless asked for.
    wizard.answer("advanced settings?", "");
    wizard.answer("Set up the agent too", "n");

    wizard.expect("Wrote 6 setting(s)");
    wizard.expect("Phone Numbers → Manage → Active numbers → +1555***4567");
    wizard.expect(&format!("URL: {URL}"));
    wizard.expect("cloudflared tunnel --url http://localhost:8080");
    wizard.expect("ngrok http 8080");
    wizard.expect("hermes gateway doctor --fix");
    let (code, transcript) = wizard.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(
        !transcript.contains(AUTH_TOKEN),
        "the token is never echoed:\n{transcript}"
    );

    assert_eq!(
        home.read_env(),
        format!(
            "{EXISTING}TWILIO_ACCOUNT_SID={SID}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_PHONE_NUMBER={OUR_NUMBER}\nSMS_WEBHOOK_URL={URL}\nSMS_ALLOWED_USERS=+15550001111,+15550002222\nSMS_HOME_CHANNEL={ALICE}\n"
        )
    );
    assert_eq!(env_mode(&home), 0o600);
}

#[test]
fn the_wizard_offers_current_values_and_keeps_the_secret_without_showing_it() {
    let home = Home::new();
    let existing = format!(
        "{EXISTING}TWILIO_ACCOUNT_SID={SID}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_PHONE_NUMBER={OUR_NUMBER}\nSMS_WEBHOOK_URL={URL}\n"
    );
    home.write_env(&existing);
    let mut wizard = past_the_sms_questions(&home, "y");
    wizard.answer("Set up the agent too", "n");
    wizard.expect("Wrote 1 setting(s)");
    let (code, transcript) = wizard.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains(AUTH_TOKEN), "{transcript}");
    assert_eq!(
        home.read_env(),
        format!("{existing}SMS_ALLOW_ALL_USERS=true\n")
    );
}

/// A `.env` with SMS set up, so that the wizard's SMS questions are answered with Enter.
fn sms_done() -> String {
    format!(
        "{EXISTING}TWILIO_ACCOUNT_SID={SID}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_PHONE_NUMBER={OUR_NUMBER}\nSMS_WEBHOOK_URL={URL}\nSMS_ALLOW_ALL_USERS=true\n"
    )
}

/// Starts the SMS wizard on `home` whose `.env` has the SMS credentials, keeps them, and
/// answers `allow_all` to SMS_ALLOW_ALL_USERS.
fn past_the_sms_questions(home: &Home, allow_all: &str) -> Wizard {
    let mut wizard = Wizard::start(home, &["--platform", "sms"]);
    wizard.expect(SID);
    wizard.send("\r");
    wizard.answer("TWILIO_AUTH_TOKEN (keep current)", "");
    wizard.expect(OUR_NUMBER);
    wizard.send("\r");
    wizard.expect(URL);
    wizard.send("\r");
    wizard.answer("SMS_ALLOWED_USERS", "");
    wizard.answer("SMS_ALLOW_ALL_USERS", allow_all);
    wizard.answer("SMS_HOME_CHANNEL", "");
    wizard.answer("advanced settings?", "");
    wizard
}

#[test]
fn the_wizard_writes_the_persona_to_soul_md_and_sets_up_hermes_agent() {
    let home = Home::new();
    home.write_env(&sms_done());
    let mut wizard = past_the_sms_questions(&home, "");
    wizard.answer("Set up the agent too", "y");
    wizard.answer(
        "Who is the agent?",
        "You are Ada, the assistant of Rosa's flower shop.",
    );
    wizard.expect("Which agent answers?");
    wizard.send("hermes\r");
    wizard.expect("API_SERVER_KEY (16 characters or more)");
    // Hermes Agent's API server is reached at /v1: anything else is asked again.
    wizard.answer("HERMES_AGENT_URL", "http://hermes.internal:8642");
    wizard.expect("ending in /v1");
    wizard.send("/v1\r");
    wizard.answer("HERMES_AGENT_API_KEY", "");
    wizard.expect("HERMES_AGENT_API_KEY is required");
    wizard.send("sk-hermes-key-0123456789\r");
    wizard.expect("Wrote the persona to");
    wizard.expect("Wrote 3 setting(s)");
    let (code, transcript) = wizard.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains("sk-hermes-key"), "{transcript}");
    assert_eq!(
        home.read_env(),
        format!(
            "{}HERMES_AGENT=hermes\nHERMES_AGENT_URL=http://hermes.internal:8642/v1\nHERMES_AGENT_API_KEY=sk-hermes-key-0123456789\n",
            sms_done()
        )
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("SOUL.md")).unwrap(),
        "You are Ada, the assistant of Rosa's flower shop.\n"
    );
}

#[test]
fn the_wizard_keeps_an_existing_soul_md_and_offers_a_local_openai_server() {
    let home = Home::new();
    home.write_env(&sms_done());
    let soul = home.path().join("SOUL.md");
    std::fs::write(&soul, "You are Max, a terse butler.\n").unwrap();
    let mut wizard = past_the_sms_questions(&home, "");
    wizard.answer("Set up the agent too", "");
    wizard.expect("Keep the persona in");
    wizard.answer("It begins: You are Max, a terse butler.", "");
    wizard.expect("Which agent answers?");
    wizard.send("openai\r");
    // Ollama's address is offered; Enter takes it.
    wizard.answer("http://127.0.0.1:11434/v1", "");
    wizard.answer("HERMES_AGENT_MODEL", "llama3.2");
    wizard.answer("HERMES_AGENT_API_KEY", "");
    wizard.expect("Wrote 3 setting(s)");
    let (code, transcript) = wizard.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains("Wrote the persona"), "{transcript}");
    assert_eq!(
        home.read_env(),
        format!(
            "{}HERMES_AGENT=openai\nHERMES_AGENT_URL=http://127.0.0.1:11434/v1\nHERMES_AGENT_MODEL=llama3.2\n",
            sms_done()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&soul).unwrap(),
        "You are Max, a terse butler.\n"
    );
}

#[test]
fn non_interactive_setup_takes_the_agents_settings_and_names_what_a_backend_lacks() {
    let home = Home::new();
    home.write_env(&sms_done());
    let setup = |sets: &[&str]| {
        let mut args = vec!["gateway", "setup", "--non-interactive", "--platform", "sms"];
        for set in sets {
            args.extend(["--set", set]);
        }
        // The environment's HERMES_AGENT is this run's, never written.
        run(home.path(), &[("HERMES_AGENT", "echo")], &args, "")
    };
    let output = setup(&["HERMES_AGENT=command"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("nothing was written")
            && stderr.contains("HERMES_AGENT=command needs HERMES_AGENT_COMMAND"),
        "{stderr}"
    );
    assert_eq!(home.read_env(), sms_done());

    let output = setup(&[
        "HERMES_AGENT=openai",
        "HERMES_AGENT_URL=http://127.0.0.1:11434/v1",
        "HERMES_AGENT_MODEL=qwen3",
        "HERMES_SYSTEM_PROMPT=You are terse.",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        home.read_env(),
        format!(
            "{}HERMES_AGENT=openai\nHERMES_AGENT_URL=http://127.0.0.1:11434/v1\nHERMES_AGENT_MODEL=qwen3\nHERMES_SYSTEM_PROMPT='You are terse.'\n",
            sms_done()
        )
    );
}

#[test]
fn non_interactive_setup_writes_flags_and_the_platforms_own_environment() {
    let home = Home::new();
    home.write_env(EXISTING);
    let output = run(
        home.path(),
        &[
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
            ("SMS_WEBHOOK_URL", URL),
            // Not a variable of the platform: never written.
            ("UNRELATED_SECRET", "do-not-copy"),
        ],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "sms",
            "--set",
            &format!("TWILIO_ACCOUNT_SID={SID}"),
            "--set",
            "TWILIO_PHONE_NUMBER=+1 555 123 4567",
            "--set",
            "SMS_ALLOWED_USERS=+15550001111",
        ],
        "",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        home.read_env(),
        format!(
            "{EXISTING}TWILIO_ACCOUNT_SID={SID}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_PHONE_NUMBER={OUR_NUMBER}\nSMS_WEBHOOK_URL={URL}\nSMS_ALLOWED_USERS=+15550001111\n"
        )
    );
    assert_eq!(env_mode(&home), 0o600);
    assert!(stdout.contains(&format!("URL: {URL}")), "{stdout}");
    assert!(!stdout.contains(AUTH_TOKEN), "{stdout}");
}

#[test]
fn whatsapp_setup_writes_its_settings_and_explains_the_twilio_sandbox() {
    let home = Home::new();
    let url = "https://abc.trycloudflare.com/webhooks/whatsapp";
    let output = run(
        home.path(),
        &[("TWILIO_AUTH_TOKEN", AUTH_TOKEN)],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "whatsapp",
            "--set",
            &format!("TWILIO_ACCOUNT_SID={SID}"),
            "--set",
            "TWILIO_WHATSAPP_NUMBER=+1 415 523 8886",
            "--set",
            &format!("WHATSAPP_WEBHOOK_URL={url}"),
            "--set",
            "WHATSAPP_ALLOWED_USERS=+15550001111",
            "--set",
            "TWILIO_ENABLED=false",
        ],
        "",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        home.read_env(),
        format!(
            "TWILIO_ACCOUNT_SID={SID}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_WHATSAPP_NUMBER=+14155238886\nWHATSAPP_WEBHOOK_URL={url}\nTWILIO_ENABLED=false\nWHATSAPP_ALLOWED_USERS=+15550001111\n"
        )
    );
    assert!(
        stdout.contains("send `join <keyword>` to +14155238886"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("\"When a message comes in\": {url}#rc=3")),
        "{stdout}"
    );
    assert!(!stdout.contains(AUTH_TOKEN), "{stdout}");
    // The doctor, on these settings: SMS off, WhatsApp on, the template missing said plainly.
    let doctor = run(
        home.path(),
        &[("TWILIO_API_BASE_URL", "http://127.0.0.1:9")],
        &["gateway", "doctor"],
        "",
    );
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains("sms: not enabled (TWILIO_ENABLED=false)"),
        "{said}"
    );
    assert!(said.contains("whatsapp: enabled, settings valid"), "{said}");
    assert!(said.contains("WhatsApp template: not set"), "{said}");
    assert!(said.contains("WHATSAPP_TEMPLATE_SID"), "{said}");
}

#[test]
fn non_interactive_setup_names_what_is_missing_or_wrong_and_writes_nothing() {
    let home = Home::new();
    home.write_env(EXISTING);
    let output = run(
        home.path(),
        &[],
        &[
            "gateway",
            "setup",
            "--non-interactive",
            "--platform",
            "sms",
            "--set",
            "TWILIO_ACCOUNT_SID=AC123",
            "--set",
            "SMS_WEBHOOK_PORT=80a",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for part in [
        "nothing was written",
        "TWILIO_ACCOUNT_SID (from --set): expected AC followed by 32 hexadecimal digits",
        "SMS_WEBHOOK_PORT (from --set): expected a port",
        "missing required settings for sms",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PHONE_NUMBER",
        "SMS_WEBHOOK_URL",
    ] {
        assert!(stderr.contains(part), "{part:?} in:\n{stderr}");
    }
    assert_eq!(home.read_env(), EXISTING);

    let output = run(
        home.path(),
        &[],
        &["gateway", "setup", "--non-interactive"],
        "",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--platform"), "{stderr}");
}

#[test]
fn without_a_terminal_setup_says_to_use_non_interactive_instead_of_hanging() {
    let home = Home::new();
    let mut child = command(home.path(), &[])
        .args(["gateway", "setup"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hermes");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling hermes") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("hermes gateway setup hung without a terminal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(!status.success());
    assert!(
        stderr.contains("standard input is not a terminal") && stderr.contains("--non-interactive"),
        "{stderr}"
    );
    assert!(!home.path().join(".env").exists());
}
