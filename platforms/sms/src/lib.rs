//! SMS over Twilio for the hermes gateway. The Twilio code it shares with WhatsApp (the
//! account, the webhook and status-callback handlers and their signatures, the Messages API
//! client and its look-ups, the emulator) is the `hermes-twilio` crate's; this crate is what
//! SMS adds:
//!
//! - [`settings`]: the variables, parsed and validated;
//! - [`webhook`]: `POST /webhooks/twilio` and its `/status`, the [`webhook::SMS`] channel;
//! - [`format`](mod@format): agent Markdown → plain, GSM-7 friendly, segment-aware parts
//!   ([`hermes_twilio::segments`]); with files, MMS parts;
//! - [`sender`] and [`error`]: sends from our number or Messaging Service, and Twilio's errors;
//! - [`guide`] and [`doctor`]: what `hermes gateway setup` asks and prints for SMS, and the
//!   number and webhook checks of `hermes gateway doctor`.
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
use tracing::{info, warn};

use crate::settings::SmsSettings;

/// The SMS platform.
pub struct Sms {
    settings: SmsSettings,
}

impl Sms {
    /// Builds the platform from validated settings.
    pub fn new(settings: SmsSettings) -> Self {
        if settings.webhook_url.is_none() {
            warn!(
                "[sms] SMS_INSECURE_NO_SIGNATURE=true and SMS_WEBHOOK_URL is unset: webhook signatures are NOT checked; anyone who can reach this port can talk to the agent. Use this for local development only."
            );
        }
        Sms { settings }
    }

    /// The validated settings.
    pub fn settings(&self) -> &SmsSettings {
        &self.settings
    }
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
    match SmsSettings::from_config(section) {
        Ok(settings) => Ok(Arc::new(Sms::new(settings))),
        Err(err) if err.var == settings::WEBHOOK_URL.env && err.origin.is_none() => {
            tracing::error!("[sms] {}", settings::REFUSAL);
            Err(err)
        }
        Err(err) => Err(err),
    }
}

inventory::submit! {
    Registration {
        name: "sms",
        label: "SMS (Twilio)",
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
impl Platform for Sms {
    fn name(&self) -> &'static str {
        "sms"
    }

    fn listen_addr(&self) -> Option<SocketAddr> {
        Some(self.settings.listen)
    }

    fn routes(&self, cfg: &mut web::ServiceConfig, sink: Arc<dyn InboundSink>) {
        webhook::configure(cfg, &self.settings, sink);
    }

    fn listening(&self, addr: SocketAddr) {
        info!(
            "[sms] Twilio webhook server listening on {addr}, from: {}",
            phone::redact(&self.settings.phone_number)
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

    /// Twilio fetches an MMS's files from their public URLs.
    fn uploads_media(&self) -> bool {
        false
    }

    /// The origin of `SMS_WEBHOOK_URL`: Twilio reaches the gateway's listener there already.
    fn public_origin(&self) -> Option<String> {
        self.settings
            .webhook_url
            .as_deref()
            .and_then(hermes_twilio::client::origin)
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

    fn home_channel(&self) -> Option<HomeChannel> {
        self.settings.home.clone()
    }

    fn redact(&self, chat: &str) -> String {
        phone::redact(chat)
    }

    fn units_per_second(&self) -> Option<f64> {
        Some(self.settings.max_segments_per_second)
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
