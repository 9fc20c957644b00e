use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web::ServiceConfig;
use async_trait::async_trait;

use crate::error::SendError;
use crate::message::{HomeChannel, Inbound, Part, Receipt};

/// A messaging platform adapter. The host holds it as `Arc<dyn Platform>`.
///
/// Async methods are `?Send`: they run on actix's per-thread runtime, where `awc` lives.
#[async_trait(?Send)]
pub trait Platform: Send + Sync + 'static {
    /// The registered name (`sms`).
    fn name(&self) -> &'static str;

    /// The address this platform's routes must be served on; `None` when it has no routes.
    /// Platforms asking for the same address share one HTTP server.
    fn listen_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Contributes the platform's routes. Handlers pass what they receive to `sink`, which
    /// stores it; a handler acknowledges the platform only after `sink` has accepted.
    fn routes(&self, cfg: &mut ServiceConfig, sink: Arc<dyn InboundSink>) {
        let _ = (cfg, sink);
    }

    /// Runs the platform's receive loop, for providers that are polled (long polling, a
    /// websocket) rather than posting to a route: hand what arrives to `sink`, and return only
    /// when receiving has ended for good. The host runs it on its actix system next to the
    /// listeners and stops it at shutdown. The default has nothing to poll.
    async fn receive(&self, sink: Arc<dyn InboundSink>) -> Result<(), String> {
        let _ = sink;
        Ok(())
    }

    /// Called once its listener is bound, with the actual address (for the listening log line).
    fn listening(&self, addr: SocketAddr) {
        let _ = addr;
    }

    /// Who may talk to the agent through this platform.
    fn access(&self) -> &AccessPolicy;

    /// Turns agent Markdown into wire-ready parts within the platform's limits.
    fn format(&self, markdown: &str) -> Vec<Part>;

    /// Sends one formatted part to one chat.
    async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError>;

    /// Where scheduled output goes, if configured.
    fn home_channel(&self) -> Option<HomeChannel>;

    /// A chat id as it may appear in logs (phone numbers are redacted).
    fn redact(&self, chat: &str) -> String {
        chat.to_string()
    }

    /// Billed units the provider lets one sender send per second, for pacing; `None` = unpaced.
    fn units_per_second(&self) -> Option<f64> {
        None
    }
}

/// What an unknown sender gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unauthorized {
    /// Nothing: the message is stored and ignored.
    #[default]
    Ignore,
    /// A one-time pairing code the owner can approve.
    Pair,
}

/// Who may talk to the agent: deny by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Everyone may talk.
    pub allow_all: bool,
    /// Senders allowed by configuration, in the platform's normalised form.
    pub allowed: HashSet<String>,
    /// What an unknown sender gets.
    pub unauthorized: Unauthorized,
    /// Agent turns allowed per sender per minute; `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

impl AccessPolicy {
    /// Whether configuration alone lets this sender in (pairing is checked by the host).
    pub fn allows(&self, sender: &str) -> bool {
        self.allow_all || self.allowed.contains(sender)
    }
}

/// What the host did with an inbound message that it took.
///
/// Either way the message is durable and the provider may be answered with success. A host that
/// deduplicates after storing (the gateway journals a message first and deduplicates it when
/// importing it into its database) answers `Stored` for a retry too, and still processes it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored; it will be processed, unless it turns out to repeat one stored before.
    Stored,
    /// Recognised at once as a repeat of a message stored before (a retry or replay); nothing
    /// more will happen.
    Duplicate,
}

/// Why the host could not take an inbound message; the platform asks the provider to retry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Too much is queued; answer 503 so the provider retries later.
    #[error("gateway overloaded")]
    Overloaded,
    /// The store failed.
    #[error("storage failed: {0}")]
    Storage(String),
}

/// The host side of receive: stores inbound messages before they are acknowledged.
#[async_trait(?Send)]
pub trait InboundSink: Send + Sync {
    /// Stores the message durably (deduplicated on platform + provider id).
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError>;

    /// Counts a request the platform rejected before it became a message (for metrics).
    fn rejected(&self, platform: &str, reason: &'static str) {
        let _ = (platform, reason);
    }
}
