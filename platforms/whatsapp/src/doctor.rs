//! `hermes gateway doctor` for WhatsApp: are the Twilio credentials good, and is the template
//! for messages outside the 24-hour window set. Twilio's REST API v2010 does not show a
//! WhatsApp sender's webhook (the Sandbox's lives only in the Console), so the doctor names
//! the exact URL to set there instead of reading it back.
use hermes_twilio::doctor::credentials;
use platform_api::{Check, Checkup, ConfigSection, phone, redact_url};

use crate::guide::SANDBOX_NUMBER;
use crate::settings::{TEMPLATE_SID, WhatsAppSettings};

/// The WhatsApp checkup, as the host runs it for a configuration that builds.
pub fn checkup(section: &ConfigSection, fix: bool) -> Checkup<'_> {
    let _ = fix;
    Box::pin(async move {
        match WhatsAppSettings::from_config(section) {
            Ok(settings) => checks(&settings, section).await,
            Err(err) => vec![Check::skipped(
                "Twilio account",
                format!("needs valid settings first ({err})"),
            )],
        }
    })
}

/// Checks the account and the settings WhatsApp needs beyond SMS's.
pub async fn checks(settings: &WhatsAppSettings, section: &ConfigSection) -> Vec<Check> {
    let mut checks = vec![match credentials(&settings.account, section).await {
        Ok(check) | Err(check) => check,
    }];
    let sender = if settings.number == SANDBOX_NUMBER {
        "the Twilio Sandbox for WhatsApp: each phone sends `join <keyword>` to it first".to_string()
    } else {
        format!("whatsapp:{}", phone::redact(&settings.number))
    };
    checks.push(Check::ok(
        "WhatsApp webhook",
        format!(
            "sender {sender}; set its \"When a message comes in\" URL in the Twilio Console to {} (POST)",
            redact_url(&settings.webhook_url)
        ),
    ));
    checks.push(match &settings.template_sid {
        Some(sid) => Check::ok(
            "WhatsApp template",
            format!("{sid} goes to chats outside the 24-hour window"),
        ),
        None => Check::problem(
            "WhatsApp template",
            "not set: cron output and `hermes send` to a chat quiet for 24 hours fail (outside WhatsApp's 24-hour window)",
            format!(
                "create a template with one variable {{{{1}}}} in the Twilio Console (Messaging → Content Template Builder), get it approved for WhatsApp, and set {} to its SID (HX…)",
                TEMPLATE_SID.env
            ),
        ),
    });
    checks
}
