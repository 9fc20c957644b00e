//! Hermes Agent's own API server (`hermes-agent` from PyPI, installed by `.ci/run`), for the
//! tests of `HERMES_AGENT=hermes` against the real thing.
//!
//! Each server gets a `HERMES_HOME` of its own in a temporary folder: `config.yaml` names its
//! model, a [`FakeLlm`] on loopback (which records what Hermes sends it), with a
//! `model.context_length` so that Hermes does not look the model up, and one attempt per call
//! (`agent.api_max_retries`) so that a failing model fails a turn quickly; the environment turns the
//! API server on (`API_SERVER_ENABLED`, `API_SERVER_KEY`, `API_SERVER_PORT`) and keeps it
//! offline (`HERMES_DISABLE_LAZY_INSTALLS`, `TIRITH_ENABLED=false`, no supervisor, a `HOME` of
//! its own so nothing of the machine's user is read).
use std::process::Command;
use std::time::Duration;

use crate::fake_llm::FakeLlm;
use crate::http;
use crate::server_process::{self, ServerProcess};

/// The API server's key (`API_SERVER_KEY`): Hermes refuses to start with one shorter than 16
/// characters.
pub const API_KEY: &str = "hermes-test-key-0123456789abcdef";

/// How long Hermes may take to start its gateway (about 10 s on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The context length declared for the fake model: Hermes refuses a model under 64K tokens.
const CONTEXT_LENGTH: u32 = 131_072;

/// A running Hermes Agent API server; stopped when dropped.
#[derive(Debug)]
pub struct HermesAgent {
    server: ServerProcess,
    home: tempfile::TempDir,
}

impl HermesAgent {
    /// Starts Hermes' gateway with its API server on a free loopback port, its model `model`,
    /// and waits until `GET /health` answers. `None` when Hermes Agent is not installed and
    /// CI is not true (see [`server_process::find`]).
    pub fn start(model: &FakeLlm) -> Option<HermesAgent> {
        let bin = server_process::find(
            "HERMES_TEST_HERMES_AGENT",
            ".tools/hermes-agent/bin/hermes",
            "Hermes Agent",
        )?;
        let home = tempfile::tempdir().expect("a temporary HERMES_HOME");
        let config = format!(
            "model:\n  default: fake-model\n  provider: custom\n  base_url: {}\n  api_key: fake-llm-key\n  context_length: {CONTEXT_LENGTH}\nagent:\n  api_max_retries: 1\n",
            model.base_url()
        );
        std::fs::write(home.path().join("config.yaml"), config).expect("writing config.yaml");
        let port = server_process::free_port();
        let mut command = Command::new(bin);
        command
            .args(["gateway", "run", "--no-supervise"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("HERMES_HOME", home.path())
            .env("API_SERVER_ENABLED", "true")
            .env("API_SERVER_KEY", API_KEY)
            .env("API_SERVER_HOST", "127.0.0.1")
            .env("API_SERVER_PORT", port.to_string())
            .env("HERMES_DISABLE_LAZY_INSTALLS", "1")
            .env("TIRITH_ENABLED", "false")
            .env("HERMES_GATEWAY_NO_SUPERVISE", "1");
        let mut server = ServerProcess::spawn("Hermes Agent", command, port);
        server.wait_healthy("/health", START_TIMEOUT);
        Some(HermesAgent { server, home })
    }

    /// The base URL for `HERMES_AGENT_URL`: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// `GET path` of its API, authenticated, as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let auth = format!("Bearer {API_KEY}");
        let response = http::request(
            self.server.addr(),
            "GET",
            path,
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap_or_else(|e| panic!("GET {path} of Hermes Agent: {e}"));
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("GET {path} answered non-JSON ({e}): {}", response.body))
    }

    /// Everything it printed so far, and its own logs.
    pub fn log(&self) -> String {
        let mut log = self.server.log();
        for file in ["gateway.log", "errors.log"] {
            if let Ok(text) = std::fs::read_to_string(self.home.path().join("logs").join(file)) {
                log.push_str(&format!("--- {file}\n{text}"));
            }
        }
        log
    }
}
