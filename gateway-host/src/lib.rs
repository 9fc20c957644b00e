//! The hermes gateway host: everything behind the `hermes` binary.
//!
//! A message travels: a platform's route ([`runtime::server`]) or receive loop
//! ([`runtime::receivers`]) hands it to the [`runtime::ingress::Ingress`], which makes it
//! durable before the platform acknowledges and then stores it ([`store`]); the
//! [`runtime::dispatcher::Dispatcher`] screens it (carrier keywords, allowlist and pairing,
//! opt-out, rate limit), then runs it as a chat command ([`chat`]) or an agent turn
//! ([`agent`]), formats the reply with the platform and queues the parts in the outbox in the
//! same transaction; the [`outbox::sender::Sender`] delivers them in order with retries, and
//! looks parts whose send had an unknown outcome up at the provider;
//! [`outbox::delivery_report`] records what the provider later says became of each part. The
//! [`runtime::scheduler`] finds due jobs and runs them with the [`cron::runner`], whose output,
//! like `hermes send`, takes the same outbox path ([`outbox::deliver`]).
//!
//! The crate's rooms, each importing only the rooms after it and the shared ones:
//! - [`cli`]: the command line, one file per subcommand; nothing else uses it.
//! - [`runtime`]: what runs inside `hermes gateway` and wires the rest together: listeners,
//!   receive loops, ingress, the dispatcher, the scheduler, the heartbeat.
//! - [`chat`]: the chat commands, one file per command.
//! - [`cron`]: jobs, schedules, and the runner that runs one job.
//! - [`outbox`]: the one way anything is sent: delivery targets, the sender, delivery reports.
//!
//! Shared by all of them: [`config`] (loading `$HERMES_HOME`'s configuration), [`services`]
//! (the store and platforms opened from it), [`settings`], [`store`], [`agent`], [`media`] (the
//! files a reply names, speech to text), [`chat_key`] (which chat of which platform),
//! [`metrics`], [`logging`] and [`repeated`] (errors a loop meets on every pass).
pub mod agent;
pub mod chat;
pub mod chat_key;
pub mod cli;
pub mod config;
pub mod cron;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod repeated;
pub mod runtime;
pub mod services;
pub mod settings;
/// The store is its own crate (`store/`, `hermes-store`); the host names it `store`.
pub use hermes_store as store;

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
#[cfg(feature = "whatsapp")]
use platform_whatsapp as _;

/// Selects the TLS crypto provider for outgoing HTTPS (idempotent).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
