//! What WhatsApp adds to `hermes gateway setup` and `hermes gateway doctor`: the allowlist,
//! home channel and template asked up front, the Twilio Sandbox for WhatsApp (its number and
//! the `join <keyword>` step) and the Console steps to finish, and the checks of
//! [`crate::doctor`].
use hermes_twilio::signature::{CONNECTION_OVERRIDES, with_connection_overrides};
use hermes_twilio::webhook::tunnel_steps;
use platform_api::{ConfigSection, OperatorGuide};

use crate::settings::{
    ACCESS, SMS_ENABLED, TEMPLATE_SID, WEBHOOK_PORT, WEBHOOK_URL, WHATSAPP_NUMBER,
};
use crate::webhook::PATH;

/// The Twilio Sandbox for WhatsApp's number, shared by every account that tries it.
pub const SANDBOX_NUMBER: &str = "+14155238886";

inventory::submit! {
    OperatorGuide {
        platform: "whatsapp",
        essentials: &[
            ACCESS.allowed_users.env,
            ACCESS.allow_all_users.env,
            ACCESS.home_channel.env,
            TEMPLATE_SID.env,
            SMS_ENABLED.env,
        ],
        explanations: &[
            (
                WHATSAPP_NUMBER.env,
                "Your WhatsApp sender on the Twilio account. To try it before Meta approves a sender of your own, use the Twilio Sandbox for WhatsApp: +14155238886.",
            ),
            (
                WEBHOOK_URL.env,
                "The public URL Twilio posts incoming WhatsApp messages to: your server's or tunnel's address followed by /webhooks/whatsapp. Every webhook's signature is checked against exactly this URL.",
            ),
            (
                ACCESS.allowed_users.env,
                "Everyone is denied by default: only the numbers listed here (or admitted by pairing) get a reply from the agent.",
            ),
            (
                ACCESS.allow_all_users.env,
                "Or let anyone who writes to the sender chat with the agent (every conversation is billed to your account).",
            ),
            (
                ACCESS.home_channel.env,
                "Where cron jobs and notifications are delivered, usually your own WhatsApp number. Leave it empty to set it later with /sethome.",
            ),
            (
                TEMPLATE_SID.env,
                "WhatsApp lets a business write freely only within 24 hours of a person's last message. Cron output and `hermes send` to someone quiet for longer go as this approved template (HX…, one variable {{1}} for the text); without it they fail with the reason. Leave it empty to set it later.",
            ),
            (
                SMS_ENABLED.env,
                "SMS starts too whenever TWILIO_ACCOUNT_SID is set, and needs its own number and webhook (`hermes gateway setup --platform sms`). Using the account for WhatsApp only? Answer false.",
            ),
        ],
        next_steps,
        checkup: crate::doctor::checkup,
    }
}

/// The Twilio Console steps with the exact webhook URL, the Sandbox's `join` step, and the
/// tunnel commands for local use.
pub fn next_steps(section: &ConfigSection) -> String {
    let url = section
        .text(WEBHOOK_URL.env)
        .map(with_connection_overrides)
        .unwrap_or_else(|| format!("<WHATSAPP_WEBHOOK_URL>#{CONNECTION_OVERRIDES}"));
    let port = section.text(WEBHOOK_PORT.env).unwrap_or("8080");
    format!(
        "Point your WhatsApp sender at the gateway, in the Twilio Console (https://console.twilio.com):
  With the Twilio Sandbox for WhatsApp ({SANDBOX_NUMBER}):
  1. Messaging → Try it out → Send a WhatsApp message: note the sandbox's `join <keyword>`.
  2. From each phone that will chat, send `join <keyword>` to {SANDBOX_NUMBER} on WhatsApp
     (a phone that has not joined gets nothing: Twilio error 63015).
  3. Sandbox settings → \"When a message comes in\": {url}
     Method: POST. Save.
  With a sender of your own: Messaging → Senders → WhatsApp senders → your sender →
  \"Webhook URL for incoming messages\": the same URL, POST.
  Then write to the sender from WhatsApp: a person's message opens a 24-hour window for
  replies; outside it messages go as the template {template}.

{tunnel}.
",
        template = TEMPLATE_SID.env,
        tunnel = tunnel_steps(port, WEBHOOK_URL.env, PATH),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_explain_the_sandbox_and_name_the_exact_url() {
        let section = ConfigSection::from_pairs([
            (
                "WHATSAPP_WEBHOOK_URL",
                "https://abc.trycloudflare.com/webhooks/whatsapp",
            ),
            ("WHATSAPP_WEBHOOK_PORT", "9000"),
        ]);
        let steps = next_steps(&section);
        assert!(steps.contains(
            "\"When a message comes in\": https://abc.trycloudflare.com/webhooks/whatsapp#rc=3&rp=ct,rt,5xx\n"
        ));
        assert!(steps.contains("join <keyword>") && steps.contains(SANDBOX_NUMBER));
        assert!(steps.contains("ngrok http 9000"));
    }

    #[test]
    fn essentials_and_explanations_are_whatsapp_settings() {
        let guide = platform_api::operator_guide("whatsapp").expect("registered");
        for var in guide
            .essentials
            .iter()
            .chain(guide.explanations.iter().map(|(var, _)| var))
        {
            assert!(
                crate::settings::SETTINGS.iter().any(|s| s.env == *var),
                "{var}"
            );
        }
    }
}
