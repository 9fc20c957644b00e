//! What SMS adds to `hermes gateway setup` and `hermes gateway doctor`: the allowlist and home
//! channel asked up front, why `SMS_WEBHOOK_URL` matters, the Twilio Console steps to finish, and
//! the account checks of [`crate::doctor`].
use platform_api::{ConfigSection, OperatorGuide, phone};

use crate::settings::{ACCESS, PHONE_NUMBER, WEBHOOK_PORT, WEBHOOK_URL};
use crate::webhook::PATH;
use hermes_twilio::signature::{CONNECTION_OVERRIDES, with_connection_overrides};
use hermes_twilio::webhook::tunnel_steps;

/// The port the webhook listens on when `SMS_WEBHOOK_PORT` is unset.
const DEFAULT_PORT: &str = "8080";

inventory::submit! {
    OperatorGuide {
        platform: "sms",
        essentials: &[
            ACCESS.allowed_users.env,
            ACCESS.allow_all_users.env,
            ACCESS.home_channel.env,
        ],
        explanations: &[
            (
                WEBHOOK_URL.env,
                "The public URL Twilio posts incoming texts to: your server's or tunnel's address followed by /webhooks/twilio. Every webhook's signature is checked against exactly this URL, and the gateway refuses to start without it.",
            ),
            (
                ACCESS.allowed_users.env,
                "Everyone is denied by default: only the numbers listed here (or admitted by pairing) get a reply from the agent. Leave it empty to decide on the next question.",
            ),
            (
                ACCESS.allow_all_users.env,
                "Or let anyone who texts the number chat with the agent (every reply is billed to your account).",
            ),
            (
                ACCESS.home_channel.env,
                "Where cron jobs and notifications are delivered, usually your own phone. Leave it empty to set it later with /sethome.",
            ),
        ],
        next_steps,
        checkup: crate::doctor::checkup,
    }
}

/// The Twilio Console steps with the exact webhook URL, and the tunnel commands for local use.
pub fn next_steps(section: &ConfigSection) -> String {
    let url = section
        .text(WEBHOOK_URL.env)
        .map(with_connection_overrides)
        .unwrap_or_else(|| format!("<SMS_WEBHOOK_URL>#{CONNECTION_OVERRIDES}"));
    let port = section.text(WEBHOOK_PORT.env).unwrap_or(DEFAULT_PORT);
    let number = section
        .text(PHONE_NUMBER.env)
        .map(|n| {
            phone::normalize(n)
                .map(|n| phone::redact(&n))
                .unwrap_or_default()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "your number".to_string());
    format!(
        "Point your Twilio number at the gateway, in the Twilio Console (https://console.twilio.com):
  1. Phone Numbers → Manage → Active numbers → {number}
  2. Messaging Configuration → \"A message comes in\" → Webhook
  3. URL: {url}
     HTTP: POST
     (the part after # asks Twilio to retry up to 3 times when it cannot connect, times out
     or gets a 5xx, instead of once; a repeated text is recognised and answered once)
  4. Save configuration.
  (`hermes gateway doctor --fix` does the same through the Twilio API.)

{tunnel}
(`hermes gateway setup` again, or edit .env) and run `hermes gateway doctor --fix`.
",
        tunnel = tunnel_steps(port, WEBHOOK_URL.env, PATH),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_name_the_exact_url_the_port_and_no_full_number() {
        let section = ConfigSection::from_pairs([
            (
                "SMS_WEBHOOK_URL",
                "https://abc.trycloudflare.com/webhooks/twilio",
            ),
            ("SMS_WEBHOOK_PORT", "9000"),
            ("TWILIO_PHONE_NUMBER", "+15551234567"),
        ]);
        let steps = next_steps(&section);
        assert!(
            steps
                .contains("URL: https://abc.trycloudflare.com/webhooks/twilio#rc=3&rp=ct,rt,5xx\n")
        );
        assert!(steps.contains("cloudflared tunnel --url http://localhost:9000"));
        assert!(steps.contains("ngrok http 9000"));
        assert!(steps.contains("+1555***4567") && !steps.contains("+15551234567"));
        let defaults = next_steps(&ConfigSection::from_pairs([]));
        assert!(defaults.contains("ngrok http 8080") && defaults.contains("your number"));
    }

    #[test]
    fn essentials_and_explanations_are_sms_settings() {
        let guide = platform_api::operator_guide("sms").expect("registered");
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
