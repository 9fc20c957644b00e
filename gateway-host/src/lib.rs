//! The hermes gateway host: everything behind the `hermes` binary.
//!
//! A message travels: a platform's route ([`server`]) hands it to the [`ingress::Ingress`],
//! which makes it durable before the platform acknowledges and then stores it ([`store`]); the
//! [`pipeline::Dispatcher`]
//! runs it as a chat command ([`commands`]) or an agent turn ([`agent`]), formats the reply with
//! the platform and queues the parts in the outbox in the same transaction; the
//! [`outbox::Sender`] delivers them in order with retries, and looks parts whose send had an
//! unknown outcome up at the provider; [`delivery_report`] records what the provider later
//! says became of each part. [`cron`] runs scheduled jobs whose
//! output, like `hermes send`, takes the same outbox path ([`deliver`]). [`gateway`] wires
//! these together; [`cli`] is the command line.
pub mod agent;
pub mod cli;
pub mod commands;
pub mod cron;
pub mod deliver;
pub mod delivery_report;
pub mod doctor;
pub mod gateway;
pub mod ingress;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod pairing;
pub mod pipeline;
pub mod sandbox;
pub mod server;
pub mod services;
pub mod settings;
pub mod setup;
pub mod store;

// Each platform is a crate that registers itself with `inventory`; naming it here keeps the
// linker from dropping it (and its registration) from the binary.
#[cfg(feature = "discord")]
use platform_discord as _;
#[cfg(feature = "sms")]
use platform_sms as _;
#[cfg(feature = "telegram")]
use platform_telegram as _;
#[cfg(feature = "webhook")]
use platform_webhook as _;

/// Selects the TLS crypto provider for outgoing HTTPS (idempotent).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
