//! LiteLLM's proxy (`litellm[proxy]` from PyPI, installed by `.ci/run`): a real
//! OpenAI-compatible server, for tests of the `openai` backend and of the chat-completions
//! client against something that is not our own fake.
//!
//! Its one model answers a fixed text (`mock_response`), whole or streamed in small pieces as
//! a real model would. Its online look-ups are off: the model cost map is the one it ships
//! (`LITELLM_LOCAL_MODEL_COST_MAP`), no telemetry, and a `HOME` of its own.
use std::process::Command;
use std::time::Duration;

use crate::server_process::{self, ServerProcess};

/// The proxy's master key: every request must carry it as a bearer token.
pub const MASTER_KEY: &str = "sk-hermes-test-master-key-0123456789";

/// The model name the proxy serves.
pub const MODEL: &str = "mock-model";

/// How long the proxy may take to start (about 10 s on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running LiteLLM proxy; stopped when dropped.
#[derive(Debug)]
pub struct LiteLlm {
    server: ServerProcess,
    _home: tempfile::TempDir,
}

impl LiteLlm {
    /// Starts the proxy on a free loopback port with [`MODEL`] answering `reply`, and waits
    /// until it answers. `None` when LiteLLM is not installed and CI is not true (see
    /// [`server_process::find`]).
    pub fn start(reply: &str) -> Option<LiteLlm> {
        let bin = server_process::find(
            "HERMES_TEST_LITELLM",
            ".tools/litellm/bin/litellm",
            "LiteLLM",
        )?;
        let home = tempfile::tempdir().expect("a temporary folder for LiteLLM");
        let config_path = home.path().join("config.yaml");
        let config = format!(
            "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n      api_key: unused\n      mock_response: {}\nlitellm_settings:\n  telemetry: false\n",
            serde_json::Value::from(reply)
        );
        std::fs::write(&config_path, config).expect("writing LiteLLM's config");
        let port = server_process::free_port();
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(&config_path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("LITELLM_MASTER_KEY", MASTER_KEY)
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_TELEMETRY", "False");
        let mut server = ServerProcess::spawn("LiteLLM", command, port);
        server.wait_healthy("/health/liveliness", START_TIMEOUT);
        Some(LiteLlm {
            server,
            _home: home,
        })
    }

    /// The base URL for `HERMES_AGENT_URL`: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}
