//! Prism serving an OpenAPI description as a mock server, for contract tests: it answers every
//! request the spec describes with example data, and rejects with 422 any request that does not
//! match the spec. Its log says for each request whether it passed validation and why not.
//!
//! Prism is an npm package installed into the workspace's `.tools` (see `.ci/run`). When it is
//! missing, [`Prism::start`] panics under CI (`CI=true`) and otherwise prints how
//! to install it and returns `None`, so that a contract test can skip itself.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::server_process::{self, ServerProcess};

/// How long Prism may take to load a spec and listen (Twilio's takes about 3 s on one core).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The log line Prism prints once it listens.
const LISTENING: &str = "Prism is listening on";
/// How to install Prism where the tests look for it.
const INSTALL: &str = "npm install --prefix .tools @stoplight/prism-cli@5";

/// Where `.ci/run` installs Prism.
pub fn prism_bin() -> PathBuf {
    server_process::workspace_root().join(".tools/node_modules/.bin/prism")
}

/// Twilio's OpenAPI description of REST API v2010, kept in the repository as a test fixture.
pub fn twilio_spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/twilio_api_v2010.json")
}

/// One request as Prism's log reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, lower case as Prism logs it (`get`, `post`).
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Whether it passed the spec's validation rules.
    pub valid: bool,
    /// What was wrong with it, one line per rule broken.
    pub violations: Vec<String>,
}

/// A running Prism mock server; killed (with its process group) when dropped.
pub struct Prism {
    server: ServerProcess,
}

impl Prism {
    /// Starts `prism mock` for `spec` on a free loopback port and waits until it listens.
    ///
    /// Returns `None`, after saying why on stderr, when Prism is not installed and `CI` is
    /// not true; panics when it is missing under CI or does not come up.
    pub fn start(spec: &Path) -> Option<Prism> {
        let bin = prism_bin();
        if !bin.exists() {
            let why = format!(
                "Prism is not installed at {}; install it with `{INSTALL}` in {}",
                bin.display(),
                server_process::workspace_root().display()
            );
            if platform_api::testkit::in_ci() {
                panic!("{why} (.ci/run does this)");
            }
            eprintln!("skipping the contract test: {why}");
            return None;
        }
        let port = server_process::free_port();
        let mut command = Command::new(&bin);
        command
            .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec);
        let mut server = ServerProcess::spawn("Prism", command, port);
        server.wait_until("listening", START_TIMEOUT, |s| s.log().contains(LISTENING));
        Some(Prism { server })
    }

    /// The mock's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Everything Prism logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Every request received so far, in order, with its validation verdict.
    pub fn requests(&self) -> Vec<Request> {
        parse_requests(&self.log())
    }
}

/// Reads requests and their verdicts from Prism's log.
///
/// A request starts with `[HTTP SERVER] get /path ℹ  info  Request received`; the validator's
/// lines that follow say `The request passed the validation rules` or
/// `Request did not pass the validation rules`, then one `✖  error` line per broken rule.
fn parse_requests(log: &str) -> Vec<Request> {
    let mut requests: Vec<Request> = Vec::new();
    let mut collecting = false;
    for line in log.lines() {
        if let Some(rest) = line.split("[HTTP SERVER] ").nth(1) {
            if rest.contains("Request received") {
                let mut words = rest.split_whitespace();
                let method = words.next().unwrap_or_default().to_string();
                let path = words.next().unwrap_or_default().to_string();
                requests.push(Request {
                    method,
                    path,
                    valid: true,
                    violations: Vec::new(),
                });
            }
            collecting = false;
            continue;
        }
        let Some(request) = requests.last_mut() else {
            continue;
        };
        if !line.contains("[VALIDATOR]") {
            collecting = false;
            continue;
        }
        if line.contains("Request did not pass the validation rules") {
            request.valid = false;
            collecting = true;
        } else if collecting && line.contains("error") {
            let detail = line.split("error").nth(1).unwrap_or(line).trim();
            request.violations.push(detail.to_string());
        } else {
            collecting = false;
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_verdicts_from_prisms_log() {
        let log = "\
[12:43:38 AM] › [HTTP SERVER] get /2010-04-01/Accounts/AC1.json ℹ  info      Request received
[12:43:38 AM] ›     [NEGOTIATOR] ℹ  info      Request contains an accept header: */*
[12:43:38 AM] ›     [VALIDATOR] ✔  success   The request passed the validation rules. Looking for the best response
[12:43:38 AM] ›     [VALIDATOR] ✖  error     Violation: response.body.uri Response body property uri must match format \"uri\"
[12:43:38 AM] › [HTTP SERVER] post /2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1.json ℹ  info      Request received
[12:43:38 AM] ›     [NEGOTIATOR] ℹ  info      Request contains an accept header: */*
[12:43:38 AM] ›     [VALIDATOR] ⚠  warning   Request did not pass the validation rules
[12:43:38 AM] ›     [VALIDATOR] ✖  error     Request body property SmsMethod must be equal to one of the allowed values: GET, POST
[12:43:38 AM] ›     [VALIDATOR] ✖  error     Request body property SmsUrl must match format \"uri\"
[12:43:38 AM] › [HTTP SERVER] post /2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1.json ✖  error     Request terminated with error: https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY: Invalid request
";
        let requests = parse_requests(log);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].method, "get");
        assert_eq!(requests[0].path, "/2010-04-01/Accounts/AC1.json");
        assert!(requests[0].valid, "response violations are Prism's own");
        assert!(requests[0].violations.is_empty());
        assert!(!requests[1].valid);
        assert_eq!(
            requests[1].violations,
            [
                "Request body property SmsMethod must be equal to one of the allowed values: GET, POST",
                "Request body property SmsUrl must match format \"uri\""
            ]
        );
    }
}
