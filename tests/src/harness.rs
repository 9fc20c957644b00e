//! Runs the real `hermes` binary against a throwaway `HERMES_HOME` and talks to it over
//! loopback, as Twilio and an operator would.
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::http::{self, Response};

/// A test account: shaped like real credentials.
pub const ACCOUNT_SID: &str = "ACa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6";
/// The test auth token; numeric on purpose (it must stay a string).
pub const AUTH_TOKEN: &str = "12345678901234567890123456789012";
/// Our Twilio number.
pub const OUR_NUMBER: &str = "+15551234567";
/// A phone allowed to chat.
pub const ALICE: &str = "+15550001111";
/// Another allowed phone.
pub const BOB: &str = "+15550002222";
/// A stranger.
pub const MALLORY: &str = "+15550009999";
/// The public URL the tests sign against.
pub const WEBHOOK_URL: &str = "https://gateway.example.com/webhooks/twilio";
/// Where Twilio posts status callbacks: [`WEBHOOK_URL`] with `/status` appended.
pub const STATUS_URL: &str = "https://gateway.example.com/webhooks/twilio/status";

/// The `hermes` binary, built once per test process (optimised when the caller is, so that
/// benchmarks measure a release build); `HERMES_BIN` names another one instead (an older
/// build, to measure two side by side with the same benchmark).
pub fn hermes_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HERMES_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let output = Command::new(env!("CARGO"))
            .current_dir(root)
            .args([
                "build",
                "--quiet",
                "-p",
                "gateway-host",
                "--bin",
                "hermes",
                "--message-format=json",
            ])
            .args(if cfg!(debug_assertions) {
                None
            } else {
                Some("--release")
            })
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build");
        assert!(output.status.success(), "building hermes failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"]["name"] == "hermes")
            .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
            .next_back()
            .expect("cargo reported the hermes executable")
    })
}

/// A fresh `HERMES_HOME`.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// An empty configuration folder.
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `$HERMES_HOME/.env`.
    pub fn write_env(&self, text: &str) {
        std::fs::write(self.path().join(".env"), text).expect("writing .env");
    }

    /// Writes `$HERMES_HOME/config.toml`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.path().join("config.toml"), text).expect("writing config.toml");
    }

    /// Reads `$HERMES_HOME/.env`.
    pub fn read_env(&self) -> String {
        std::fs::read_to_string(self.path().join(".env")).unwrap_or_default()
    }

    /// Waits until the gateway's database here holds nothing in progress, in one read: no
    /// inbound message waiting for its turn (a turn's messages wait until its reply is queued),
    /// no part waiting to be sent (now or later), being sent or waiting for its look-up. For a
    /// gateway without a listener, whose `/metrics` cannot be read ([`Gateway::settle`]): it
    /// does not see the inbound journal, so wait for the message to be stored first. Panics
    /// after `timeout`.
    pub fn wait_drained(&self, timeout: Duration) {
        let open = "SELECT (SELECT COUNT(*) FROM inbound WHERE state = 'pending')
                 + (SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')
                        OR (state = 'ambiguous' AND reconcile_at IS NOT NULL))";
        let drained = eventually(timeout, || (count(self, open) == 0).then_some(()));
        assert!(
            drained.is_some(),
            "{} message(s) or part(s) still in progress",
            count(self, open)
        );
    }

    /// Opens the gateway's database (read-only use in assertions).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("gateway.db")).expect("opening gateway.db")
    }
}

/// A `hermes` command with a clean environment pointing at `home`.
pub fn command(home: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(hermes_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("HERMES_HOME", home)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a one-shot command (`hermes platforms`, …) with `stdin` as input.
pub fn run(home: &Path, env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut child = command(home, env)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hermes");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("waiting for hermes")
}

/// Runs `hermes ARGS` on `home` with the environment of a platform's test, no input.
pub fn run_hermes(home: &Home, env: &[(String, String)], args: &[&str]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(home.path(), &env, args, "")
}

/// What a process printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The row of `platform` in the output of `hermes platforms`; panics with the output when it
/// has none.
pub fn platforms_row(out: &Output, platform: &str) -> String {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{platform} ")))
        .unwrap_or_else(|| panic!("no {platform} row:\n{stdout}"))
        .to_string()
}

/// Adds a cron job whose command prints `output`, delivered to `deliver`, and runs it now
/// (`hermes cron run` waits until it is sent); panics with what hermes said when either fails.
pub fn run_cron_job(home: &Home, env: &[(String, String)], output: &str, deliver: &str) {
    let command = format!("echo '{output}'");
    let add = [
        "cron",
        "add",
        "--schedule",
        "every 1h",
        "--command",
        &command,
        "--deliver",
        deliver,
    ];
    let out = run_hermes(home, env, &add);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let out = run_hermes(home, env, &["cron", "run", &id]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The environment of an SMS gateway on an ephemeral port, talking to `api_base`.
pub fn sms_env(api_base: &str) -> Vec<(String, String)> {
    [
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("TWILIO_PHONE_NUMBER", OUR_NUMBER),
        ("SMS_WEBHOOK_URL", WEBHOOK_URL),
        ("SMS_WEBHOOK_HOST", "127.0.0.1"),
        ("SMS_WEBHOOK_PORT", "0"),
        ("SMS_ALLOWED_USERS", "+1 555 000 1111, +15550002222"),
        ("TWILIO_API_BASE_URL", api_base),
        ("TWILIO_MAX_SEGMENTS_PER_SECOND", "1000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The WhatsApp sender of the test account: the Twilio Sandbox for WhatsApp's number.
pub const WHATSAPP_NUMBER: &str = "+14155238886";
/// `WHATSAPP_WEBHOOK_URL` of the test gateways.
pub const WHATSAPP_URL: &str = "https://gateway.example.com/webhooks/whatsapp";
/// Where the test gateways ask Twilio to post WhatsApp status callbacks.
pub const WHATSAPP_STATUS_URL: &str = "https://gateway.example.com/webhooks/whatsapp/status";

/// The environment of a gateway with SMS and WhatsApp on one ephemeral port (the listener
/// both share), talking to `api_base`; Alice and Bob may write on both.
pub fn whatsapp_env(api_base: &str) -> Vec<(String, String)> {
    let mut env = sms_env(api_base);
    env.extend(
        [
            ("TWILIO_WHATSAPP_NUMBER", WHATSAPP_NUMBER),
            ("WHATSAPP_WEBHOOK_URL", WHATSAPP_URL),
            ("WHATSAPP_WEBHOOK_PORT", "0"),
            ("WHATSAPP_ALLOWED_USERS", "+15550001111,+15550002222"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// A Twilio emulator for the test account whose WhatsApp sender posts to [`WHATSAPP_URL`].
pub fn whatsapp_emulator() -> platform_sms::emulator::Emulator {
    let twilio = emulator();
    twilio.enable_whatsapp(WHATSAPP_NUMBER, WHATSAPP_URL);
    twilio
}

/// A running `hermes gateway`.
pub struct Gateway {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// Where the SMS webhook listens.
    pub addr: Option<SocketAddr>,
}

impl Gateway {
    /// Starts `hermes gateway` and waits until it listens (or exits).
    pub fn start(home: &Path, env: &[(String, String)]) -> Gateway {
        Self::start_listening(home, env, "Twilio webhook server listening on ")
    }

    /// Starts `hermes gateway` for platforms that fetch their messages rather than listen
    /// (Telegram's long polling, Discord's WebSocket) and waits until every platform started
    /// (or it exits). It has no address.
    pub fn start_polling(home: &Path, env: &[(String, String)]) -> Gateway {
        let mut gateway = Self::spawn(home, env);
        gateway.wait_started(|g| g.logs().contains("gateway running: ").then_some(()));
        gateway
    }

    /// Starts `hermes gateway` and waits until it logs `marker` followed by the address it
    /// listens on (or exits).
    pub fn start_listening(home: &Path, env: &[(String, String)], marker: &str) -> Gateway {
        let mut gateway = Self::spawn(home, env);
        gateway.addr = gateway.wait_started(|g| g.listening_addr(marker));
        gateway
    }

    fn spawn(home: &Path, env: &[(String, String)]) -> Gateway {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut child = command(home, &env)
            .arg("gateway")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting hermes gateway");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut log = log.lock().expect("log lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Gateway {
            child: Some(child),
            log,
            addr: None,
        }
    }

    /// Waits up to 30 s until `started` finds what it looks for in the gateway, or it exits.
    fn wait_started<T>(&mut self, started: impl Fn(&Gateway) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(found) = started(self) {
                return Some(found);
            }
            if self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some()
            {
                std::thread::sleep(Duration::from_millis(100));
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn listening_addr(&self, marker: &str) -> Option<SocketAddr> {
        let log = self.logs();
        let line = log.lines().find(|l| l.contains(marker))?;
        let rest = line.split("listening on ").nth(1)?;
        rest.split(',').next()?.trim().parse().ok()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory in KiB (Linux), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory it has had so far, in KiB (Linux), while it runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// A figure of `/proc/<pid>/status` given in KiB.
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The webhook address; panics with the log when it never listened.
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| panic!("gateway is not listening; log:\n{}", self.logs()))
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
            .expect("gateway exits after SIGTERM")
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.wait_exit(Duration::from_secs(10));
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: sending a signal to our own child process by pid.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// `GET path` on the webhook listener.
    pub fn get(&self, path: &str) -> Response {
        http::request(self.addr(), "GET", path, &[], b"").expect("GET")
    }

    /// Messages it acknowledged that are not in its database yet (still in the inbound journal),
    /// from `/metrics`.
    pub fn unimported(&self) -> i64 {
        let metrics = self.metrics();
        metrics
            .value("hermes_inbound_unimported")
            .unwrap_or_else(|| panic!("no hermes_inbound_unimported in /metrics:\n{}", metrics.0))
    }

    /// Its `/metrics` page, read now.
    pub fn metrics(&self) -> Metrics {
        Metrics(self.get("/metrics").body)
    }

    /// Waits until the gateway is idle, and panics with its `/metrics` when it is not within
    /// `timeout`: every message it acknowledged imported and handled, no turn or job under way,
    /// nothing due to be sent or looked up and nothing in flight. What a test waits for before
    /// it says that nothing more happened.
    ///
    /// Each stage is trusted only in a pass its loop began after the read that found the stage
    /// before it done (`hermes_loop_passes_total`, `hermes_loop_idle_pass`), so no figure from
    /// before the work it waits for counts. A part waiting for a later retry or look-up does not
    /// hold it up; messages a polling platform has not fetched yet are not seen.
    pub fn settle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let none = |m: &Metrics, series| m.value(series) == Some(0);
        loop {
            let imported = self.wait_metrics(deadline, "imported", |m| {
                none(m, "hermes_inbound_unimported")
            });
            let handled = self.wait_metrics(deadline, "handled", |m| {
                none(m, "hermes_inbound_unimported")
                    && none(m, "hermes_agent_turns_running")
                    && m.idle_since(&imported, "dispatcher")
                    && m.idle_since(&imported, "scheduler")
            });
            let sent = self.wait_metrics(deadline, "sent", |m| m.idle_since(&handled, "sender"));
            // Work that came meanwhile (a text, a due job) is waited for too.
            if none(&sent, "hermes_inbound_unimported")
                && none(&sent, "hermes_agent_turns_running")
                && ["dispatcher", "scheduler", "sender"]
                    .iter()
                    .all(|name| sent.idle_pass(name).is_some_and(|pass| pass > 0))
            {
                return;
            }
        }
    }

    /// Reads `/metrics` until `done` holds, and returns that read; panics at `deadline`.
    fn wait_metrics(
        &self,
        deadline: Instant,
        stage: &str,
        done: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        loop {
            let metrics = self.metrics();
            if done(&metrics) {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not settle (waiting until {stage}):\n{}",
                metrics.0
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Posts a webhook signed for [`WEBHOOK_URL`].
    pub fn post_signed(&self, params: &[(&str, &str)]) -> Response {
        let sig = sign(AUTH_TOKEN, WEBHOOK_URL, params);
        self.post_form(params, Some(&sig))
    }

    /// Posts a form with an optional `X-Twilio-Signature`.
    pub fn post_form(&self, params: &[(&str, &str)], signature: Option<&str>) -> Response {
        let body = encode_form(params);
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(sig) = signature {
            headers.push(("X-Twilio-Signature", sig));
        }
        http::request(
            self.addr(),
            "POST",
            "/webhooks/twilio",
            &headers,
            body.as_bytes(),
        )
        .expect("POST")
    }

    /// Posts a status callback, signed for [`STATUS_URL`] unless `signature` is given.
    pub fn post_status(&self, params: &[(&str, &str)], signature: Option<&str>) -> Response {
        let signed = sign(AUTH_TOKEN, STATUS_URL, params);
        let body = encode_form(params);
        http::request(
            self.addr(),
            "POST",
            "/webhooks/twilio/status",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", signature.unwrap_or(&signed)),
            ],
            body.as_bytes(),
        )
        .expect("POST")
    }

    /// Texts the gateway as `from`: a signed inbound SMS with the given `MessageSid`.
    pub fn text(&self, from: &str, body: &str, sid: &str) -> Response {
        self.post_signed(&inbound_sms(from, body, sid))
    }
}

/// One read of a gateway's `/metrics` page.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of one series, named with its labels as the page writes them
    /// (`hermes_loop_idle_pass{loop="sender"}`); `None` when the page has no such series.
    pub fn value(&self, series: &str) -> Option<i64> {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The latest pass of loop `name` if it found nothing to do, else 0.
    fn idle_pass(&self, name: &str) -> Option<i64> {
        self.value(&format!("hermes_loop_idle_pass{{loop=\"{name}\"}}"))
    }

    /// Whether loop `name` found nothing to do in a pass it began after `earlier` was read.
    fn idle_since(&self, earlier: &Metrics, name: &str) -> bool {
        let begun = earlier
            .value(&format!("hermes_loop_passes_total{{loop=\"{name}\"}}"))
            .unwrap_or(0);
        self.idle_pass(name).is_some_and(|pass| pass > begun)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The parameters Twilio posts for an inbound SMS.
pub fn inbound_sms<'a>(from: &'a str, body: &'a str, sid: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("FromCity", ""),
        ("SmsSid", sid),
        ("From", from),
        ("To", OUR_NUMBER),
        ("Body", body),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("NumSegments", "1"),
        ("ApiVersion", "2010-04-01"),
        ("SmsStatus", "received"),
    ]
}

/// The parameters Twilio posts in a status callback for message `sid` to `to`.
pub fn status_callback<'a>(
    sid: &'a str,
    to: &'a str,
    status: &'a str,
    error_code: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", to),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", OUR_NUMBER),
        ("ApiVersion", "2010-04-01"),
    ];
    if let Some(code) = error_code {
        params.push(("ErrorCode", code));
    }
    params
}

/// Percent-encodes a form.
pub fn encode_form(params: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The string Twilio signs: the URL, then each parameter's name and value, sorted by name.
fn signed_data(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

/// `X-Twilio-Signature` as Twilio computes it (an implementation independent of the gateway's).
pub fn sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("hmac key");
    mac.update(signed_data(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `X-Twilio-Signature` as Twilio computes it with a Webhook Shared Key: HMAC-SHA256 of the
/// same string (independent of the gateway's implementation).
pub fn sign_sha256(key: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("hmac key");
    mac.update(signed_data(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A Twilio emulator for the test account.
pub fn emulator() -> platform_sms::emulator::Emulator {
    platform_sms::emulator::Emulator::start(platform_sms::emulator::EmulatorConfig {
        account_sid: ACCOUNT_SID.to_string(),
        auth_token: AUTH_TOKEN.to_string(),
        phone_number: OUR_NUMBER.to_string(),
        sms_url: None,
        sms_method: "POST".to_string(),
    })
    .expect("starting the Twilio emulator")
}

/// An SMS gateway over a fresh home, sending to `twilio`, with extra settings.
pub fn sms_gateway(
    home: &Home,
    twilio: &platform_sms::emulator::Emulator,
    extra: &[(&str, &str)],
) -> Gateway {
    let mut env = sms_env(&twilio.base_url());
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let gw = Gateway::start(home.path(), &env);
    gw.addr();
    gw
}

/// Count of rows in the gateway's database matching a query returning one integer.
pub fn count(home: &Home, sql: &str) -> i64 {
    home.db().query_row(sql, [], |r| r.get(0)).expect("query")
}

/// `hermes gateway --sandbox` with `args` (`--platform …`) on a pseudo-terminal, ready for
/// typing.
pub fn sandbox_session(
    home: &Home,
    args: &[&str],
    env: &[(&str, &str)],
) -> expectrl::session::OsSession {
    let mut env = env.to_vec();
    env.push(("TERM", "xterm"));
    let mut command = command(home.path(), &env);
    command.args(["gateway", "--sandbox"]).args(args);
    let mut session = expectrl::Session::spawn(command).expect("spawning hermes on a pty");
    let _ = session.get_process_mut().set_window_size(200, 50);
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    expectrl::Expect::expect(&mut session, "Type a message").expect("the phone is ready");
    session
}

/// Ends a sandbox with Ctrl-D and waits until it has closed and exited.
pub fn close_sandbox(session: &mut expectrl::session::OsSession) {
    use expectrl::Expect;
    session.send("\x04").expect("Ctrl-D");
    session
        .expect("sandbox closed")
        .expect("closes on end of input");
    session.expect(expectrl::Eof).expect("exits");
}
