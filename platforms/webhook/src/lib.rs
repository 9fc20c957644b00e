//! A generic JSON webhook for the hermes gateway, and the example crate of
//! `ADDING_A_PLATFORM.md`.
//!
//! Another system POSTs `{"id", "chat", "sender", "text"}` to `/webhooks/json` with the shared
//! secret in `X-Hermes-Secret`; the agent's replies are POSTed, part by part, as
//! `{"chat", "text", "part", "parts"}` to `WEBHOOK_OUTBOUND_URL` with the same header.
//!
//! - [`settings`]: the variables, parsed and validated;
//! - [`webhook`]: `POST /webhooks/json`, authenticated by the shared secret;
//! - [`format`](mod@format): agent Markdown kept, split into numbered parts of at most 4,000 characters;
//! - [`sender`] and [`error`]: the outbound POST, and its answers as typed send errors;
//! - [`guide`] and [`doctor`]: what `hermes gateway setup` asks and prints, and the check of
//!   `hermes gateway doctor`.
#![deny(missing_docs)]

pub mod doctor;
pub mod error;
pub mod format;
pub mod guide;
pub mod sender;
pub mod settings;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;
use platform_api::{
    AccessPolicy, ConfigError, ConfigSection, Formatted, HomeChannel, InboundSink, Part, PartMedia,
    Platform, Receipt, Registration, SendError, async_trait,
};
use tracing::info;

use crate::settings::WebhookSettings;

// The walk-through's examples are compiled as this crate's doc-tests; its quotations of this
// crate are checked by `tests/guide.rs`.
#[cfg(doctest)]
#[doc = include_str!("../../../ADDING_A_PLATFORM.md")]
pub struct AddingAPlatform;

/// The registered name: delivery targets are `webhook` (the home channel) and `webhook:CHAT`.
pub const NAME: &str = "webhook";

/// The JSON webhook platform.
pub struct Webhook {
    settings: WebhookSettings,
}

impl Webhook {
    /// Builds the platform from validated settings.
    pub fn new(settings: WebhookSettings) -> Self {
        Webhook { settings }
    }
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
    let settings = WebhookSettings::from_config(section)?;
    Ok(Arc::new(Webhook::new(settings)))
}

inventory::submit! {
    Registration {
        name: NAME,
        label: "JSON webhook",
        stub: false,
        settings: settings::SETTINGS,
        home_channel_setting: Some(settings::ACCESS.home_channel.env),
        prompt_hint: Some(settings::PROMPT_HINT),
        enabled: settings::enabled,
        format: format::format,
        format_media: Some(format::format_media),
        parse_chat: webhook::parse_chat,
        build,
    }
}

#[async_trait(?Send)]
impl Platform for Webhook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn listen_addr(&self) -> Option<SocketAddr> {
        Some(self.settings.listen)
    }

    fn routes(&self, cfg: &mut web::ServiceConfig, sink: Arc<dyn InboundSink>) {
        let state = web::Data::new(webhook::WebhookState {
            secret: self.settings.secret.clone(),
            sink,
        });
        webhook::configure(cfg, state);
    }

    fn listening(&self, addr: SocketAddr) {
        info!(
            "[webhook] JSON webhook server listening on {addr}, path {}",
            webhook::PATH
        );
    }

    fn access(&self) -> &AccessPolicy {
        &self.settings.access
    }

    fn format(&self, markdown: &str) -> Vec<Part> {
        format::format(markdown)
    }

    fn format_media(&self, markdown: &str, media: Vec<PartMedia>) -> Formatted {
        format::format_media(markdown, media)
    }

    fn uploads_media(&self) -> bool {
        false
    }

    async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
        sender::send_part(&self.settings, chat, part).await
    }

    fn home_channel(&self) -> Option<HomeChannel> {
        self.settings.home.clone()
    }
}
