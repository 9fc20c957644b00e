//! `POST /webhooks/twilio` and `POST /webhooks/twilio/status`: Twilio's SMS webhooks, served
//! by the Twilio crate's handlers ([`hermes_twilio::webhook`], [`hermes_twilio::status`]) for
//! the [`SMS`] channel: size cap, strict form parsing, signature, dedupe on `MessageSid`.
use std::sync::Arc;

use actix_web::web;
use hermes_twilio::signature::url_variants;
use hermes_twilio::status::{self, status_callback_url};
use hermes_twilio::webhook::{self, Channel, WebhookState};
use platform_api::InboundSink;

use crate::settings::SmsSettings;

/// The route Twilio posts incoming texts to.
pub const PATH: &str = "/webhooks/twilio";

/// SMS (and MMS): plain E.164 numbers on [`PATH`].
pub const SMS: Channel = Channel {
    platform: "sms",
    prefix: "",
    url_setting: "SMS_WEBHOOK_URL",
    path: PATH,
};

/// Registers both routes, signed over `SMS_WEBHOOK_URL` (and its `/status`); in insecure mode
/// (no URL) signatures are not checked.
pub fn configure(cfg: &mut web::ServiceConfig, settings: &SmsSettings, sink: Arc<dyn InboundSink>) {
    let configured = settings.webhook_url.as_deref();
    let state = web::Data::new(WebhookState {
        channel: SMS,
        auth_token: settings.account.auth_token.clone(),
        shared_key: settings.account.shared_key.clone(),
        url_variants: configured.map(url_variants).unwrap_or_default(),
        status_url_variants: configured
            .map(|url| url_variants(&status_callback_url(url)))
            .unwrap_or_default(),
        phone_number: settings.phone_number.clone(),
        sink,
    });
    status::configure(cfg, state.clone());
    webhook::configure(cfg, state);
}
