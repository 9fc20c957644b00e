//! WhatsApp through Twilio for the hermes gateway: the same account, Messages API, signatures
//! and status callbacks as SMS, with `whatsapp:` addresses. The Twilio code both platforms use
//! is the `hermes-twilio` crate's: its webhook and status-callback handlers
//! ([`hermes_twilio::webhook`], [`hermes_twilio::status`]) serve the WhatsApp [`Channel`], its
//! Messages API client ([`hermes_twilio::messages`]) sends and looks messages up on the
//! WhatsApp [`Line`](hermes_twilio::messages::Line), and its emulator speaks WhatsApp.
//!
//! - [`settings`]: the sender, webhook, template and access settings;
//! - [`webhook`]: `POST /webhooks/whatsapp` and `/webhooks/whatsapp/status`;
//! - [`format`](mod@format): agent Markdown → WhatsApp markup, 1,600 characters a message;
//! - [`sender`] and [`error`]: free-form sends inside the 24-hour window, the template
//!   outside it, and Twilio's 63016;
//! - [`guide`] and [`doctor`]: what `hermes gateway setup` asks and prints, and the checks of
//!   `hermes gateway doctor`;
//! - `emulator` and `sandbox` (feature `emulator`): the Twilio emulator, which speaks
//!   WhatsApp, and `hermes gateway --sandbox --platform whatsapp` on it.
//!
//! [`Channel`]: hermes_twilio::webhook::Channel
pub mod doctor;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod format;
pub mod guide;
#[cfg(feature = "emulator")]
pub mod sandbox;
pub mod sender;
pub mod settings;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::web;
use platform_api::{
    AccessPolicy, Attachment, ConfigError, ConfigSection, FetchError, Fetched, Formatted,
    HomeChannel, InboundSink, Lookup, Part, PartMedia, Platform, Receipt, Registration, SendError,
    async_trait, phone,
};
use tracing::info;

use crate::settings::WhatsAppSettings;

/// How long after a chat's last message WhatsApp lets a business write to it freely.
pub const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The WhatsApp platform.
pub struct WhatsApp {
    settings: WhatsAppSettings,
}

impl WhatsApp {
    /// Builds the platform from validated settings.
    pub fn new(settings: WhatsAppSettings) -> Self {
        WhatsApp { settings }
    }

    /// The validated settings.
    pub fn settings(&self) -> &WhatsAppSettings {
        &self.settings
    }
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
    Ok(Arc::new(WhatsApp::new(WhatsAppSettings::from_config(
        section,
    )?)))
}

inventory::submit! {
    Registration {
        name: "whatsapp",
        label: "WhatsApp (Twilio)",
        stub: false,
        settings: settings::SETTINGS,
        home_channel_setting: Some(settings::ACCESS.home_channel.env),
        prompt_hint: Some(settings::PROMPT_HINT),
        enabled: settings::enabled,
        format: format::format,
        format_media: Some(format::format_media),
        parse_chat: phone::normalize,
        build,
    }
}

#[async_trait(?Send)]
impl Platform for WhatsApp {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    fn listen_addr(&self) -> Option<SocketAddr> {
        Some(self.settings.listen)
    }

    fn routes(&self, cfg: &mut web::ServiceConfig, sink: Arc<dyn InboundSink>) {
        webhook::configure(cfg, &self.settings, sink);
    }

    fn listening(&self, addr: SocketAddr) {
        info!(
            "[whatsapp] Twilio WhatsApp webhook listening on {addr}, from: whatsapp:{}",
            phone::redact(&self.settings.number)
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

    /// Twilio fetches a WhatsApp message's file from its public URL.
    fn uploads_media(&self) -> bool {
        false
    }

    /// The origin of `WHATSAPP_WEBHOOK_URL`: Twilio reaches the gateway's listener there.
    fn public_origin(&self) -> Option<String> {
        hermes_twilio::client::origin(&self.settings.webhook_url)
    }

    async fn fetch_media(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> Result<Fetched, FetchError> {
        hermes_twilio::client::fetch_media(&self.settings.account, attachment, limit).await
    }

    async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
        sender::send(&self.settings, chat, part).await
    }

    fn reply_window(&self) -> Option<Duration> {
        Some(WINDOW)
    }

    fn check_outside_window(&self, part: &Part) -> Result<(), String> {
        match sender::outside_window_refusal(&self.settings, part) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    async fn send_outside_window(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
        sender::send_outside_window(&self.settings, chat, part).await
    }

    fn home_channel(&self) -> Option<HomeChannel> {
        self.settings.home.clone()
    }

    fn redact(&self, chat: &str) -> String {
        phone::redact(chat)
    }

    async fn lookup(&self, chat: &str, part: &Part, attempted_at: SystemTime) -> Lookup {
        hermes_twilio::messages::lookup(&self.settings.line(), chat, part, attempted_at).await
    }

    fn reconcile_after(&self) -> Duration {
        self.settings.account.reconcile_after
    }

    fn advice(&self, code: i64) -> Option<platform_api::Advice> {
        error::advice(code)
    }
}
