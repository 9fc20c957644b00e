//! Harness for black-box tests of the `hermes` binary.
pub mod fake_llm;
pub mod growing;
pub mod harness;
pub mod hermes_agent;
pub mod http;
pub mod json_receiver;
pub mod litellm;
pub mod postgres;
pub mod prism;
pub mod server_process;
pub mod wrk;

// The adapters register themselves with `inventory`; naming them keeps them linked into the
// test binaries so that discovery can be checked here too.
use platform_discord as _;
use platform_sms as _;
use platform_telegram as _;
use platform_webhook as _;
