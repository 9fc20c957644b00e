//! What Telegram adds to `hermes gateway setup`: the allowlist and home channel asked up front,
//! where the token and a user id come from, and polling versus a webhook. The checks it adds to
//! `hermes gateway doctor` are in [`crate::doctor`].
use platform_api::{ConfigSection, OperatorGuide};

use crate::settings::{
    ALLOW_ALL_USERS, ALLOWED_USERS, BOT_TOKEN, HOME_CHANNEL, WEBHOOK_PORT, WEBHOOK_SECRET,
    WEBHOOK_URL,
};

inventory::submit! {
    OperatorGuide {
        platform: crate::NAME,
        essentials: &[ALLOWED_USERS.env, ALLOW_ALL_USERS.env, HOME_CHANNEL.env],
        explanations: &[
            (
                BOT_TOKEN.env,
                "Create a bot first: in Telegram, message @BotFather, send /newbot and follow the prompts. It answers with the bot's token, such as 123456789:AAH… Keep it secret: whoever has it controls the bot.",
            ),
            (
                ALLOWED_USERS.env,
                "Telegram user ids are numbers, not usernames (which change hands). To find yours, message @userinfobot in Telegram; or set TELEGRAM_UNAUTHORIZED=pair, message your bot, and approve the code it sends with `hermes pairing approve telegram CODE`.",
            ),
            (
                HOME_CHANNEL.env,
                "The chat cron output goes to: your user id for your private chat with the bot, or a group's id (negative, such as -1001234567890). Sending /sethome in a chat makes it the home channel.",
            ),
            (
                WEBHOOK_URL.env,
                "Leave it empty to poll Telegram: nothing to expose, works behind NAT, but only one gateway may poll a bot token. Or give a public HTTPS URL (port 443, 80, 88 or 8443) that reaches this gateway's TELEGRAM_WEBHOOK_PORT, and Telegram posts each update there; TELEGRAM_WEBHOOK_SECRET is then required.",
            ),
        ],
        next_steps,
        checkup: crate::doctor::checkup,
    }
}

/// What to do once the settings are written.
pub fn next_steps(section: &ConfigSection) -> String {
    let mut steps = String::from(
        "Check the token and the webhook state:\n  hermes gateway doctor\nStart the gateway, then open Telegram and send your bot a message:\n  hermes gateway\n",
    );
    if section.text(ALLOWED_USERS.env).is_none()
        && section.text(ALLOW_ALL_USERS.env) != Some("true")
    {
        steps.push_str(
            "Nobody may chat yet: add your numeric user id (message @userinfobot to learn it) to TELEGRAM_ALLOWED_USERS.\n",
        );
    }
    match section.text(WEBHOOK_URL.env) {
        Some(url) => {
            let port = section.text(WEBHOOK_PORT.env).unwrap_or("8443");
            steps.push_str(&format!(
                "Webhook mode: Telegram posts to {url}; make that HTTPS URL reach port {port} of this machine (a reverse proxy or tunnel). The gateway registers it with Telegram when it starts.\n"
            ));
            if section.text(WEBHOOK_SECRET.env).is_none() {
                steps.push_str(&format!(
                    "Set {} too (e.g. the output of `openssl rand -hex 32`): webhook mode does not start without it.\n",
                    WEBHOOK_SECRET.env
                ));
            }
        }
        None => steps.push_str(
            "Polling mode: nothing to expose. Only one gateway may poll a bot token at a time.\n",
        ),
    }
    steps.push_str("In groups the bot answers when mentioned (@yourbot) or replied to.\n");
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_follow_the_mode_and_the_allowlist() {
        let polling = next_steps(&ConfigSection::from_pairs([("TELEGRAM_BOT_TOKEN", "1:x")]));
        assert!(polling.contains("Polling mode"), "{polling}");
        assert!(polling.contains("TELEGRAM_ALLOWED_USERS"), "{polling}");
        let webhook = next_steps(&ConfigSection::from_pairs([
            ("TELEGRAM_ALLOWED_USERS", "42"),
            ("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/tg"),
            ("TELEGRAM_WEBHOOK_PORT", "8088"),
        ]));
        assert!(webhook.contains("https://bot.example.com/tg"), "{webhook}");
        assert!(webhook.contains("port 8088"), "{webhook}");
        assert!(
            webhook.contains("Set TELEGRAM_WEBHOOK_SECRET too"),
            "{webhook}"
        );
        assert!(!webhook.contains("Nobody may chat"), "{webhook}");
    }
}
