//! `POST /webhooks/whatsapp` and `POST /webhooks/whatsapp/status`: Twilio's WhatsApp webhooks,
//! served by the Twilio crate's handlers for the [`WHATSAPP`] channel (the same size cap, form
//! parsing, signature schemes, dedupe on `MessageSid` and status callbacks, `read` included).
use std::sync::Arc;

use actix_web::web;
use hermes_twilio::webhook::{Channel, WebhookState};
use hermes_twilio::{status, webhook};
use platform_api::InboundSink;

use crate::settings::WhatsAppSettings;

/// The route Twilio posts incoming WhatsApp messages to.
pub const PATH: &str = "/webhooks/whatsapp";

/// WhatsApp on the Twilio account: `whatsapp:+…` addresses on [`PATH`].
pub const WHATSAPP: Channel = Channel {
    platform: "whatsapp",
    prefix: "whatsapp:",
    url_setting: "WHATSAPP_WEBHOOK_URL",
    path: PATH,
};

/// Registers both routes, signed over `WHATSAPP_WEBHOOK_URL` (and its `/status`).
pub fn configure(
    cfg: &mut web::ServiceConfig,
    settings: &WhatsAppSettings,
    sink: Arc<dyn InboundSink>,
) {
    let state = web::Data::new(WebhookState {
        channel: WHATSAPP,
        auth_token: settings.account.auth_token.clone(),
        shared_key: settings.account.shared_key.clone(),
        url_variants: settings.url_variants(),
        status_url_variants: hermes_twilio::signature::url_variants(&status::status_callback_url(
            &settings.webhook_url,
        )),
        phone_number: settings.number.clone(),
        sink,
    });
    status::configure(cfg, state.clone());
    webhook::configure(cfg, state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn whatsapp_addresses_become_numbers() {
        let inbound = webhook::to_inbound(
            &WHATSAPP,
            &params(&[
                ("From", "whatsapp:+15550001111"),
                ("To", "whatsapp:+14155238886"),
                ("ProfileName", "Ada"),
                ("WaId", "15550001111"),
                ("MessageSid", "SM1"),
                ("Body", "hello"),
            ]),
        )
        .unwrap();
        assert_eq!(inbound.platform, "whatsapp");
        assert_eq!(inbound.chat, "+15550001111");
        assert_eq!(inbound.sender, "+15550001111");
        // An SMS From posted to the WhatsApp route is not a WhatsApp message.
        assert!(
            webhook::to_inbound(
                &WHATSAPP,
                &params(&[("From", "+15550001111"), ("MessageSid", "SM2")])
            )
            .is_err()
        );
        let read = status::parse(
            &WHATSAPP,
            &params(&[
                ("MessageSid", "SM3"),
                ("MessageStatus", "read"),
                ("To", "whatsapp:+15550001111"),
            ]),
        )
        .unwrap();
        assert_eq!(read.platform, "whatsapp");
        assert_eq!(read.status, "read");
        assert_eq!(read.chat.as_deref(), Some("+15550001111"));
    }
}
