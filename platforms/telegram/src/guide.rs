//! What Telegram adds to `hermes gateway setup` and `hermes gateway doctor`: the allowlist and
//! home channel asked up front, where the token and a user id come from, polling versus a
//! webhook, and live checks of the bot (`getMe`) and of its webhook (`getWebhookInfo`), which
//! `--fix` repairs.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform_api::{Check, Checkup, ConfigSection, OperatorGuide, redact_url};

use crate::api::{Api, CallError};
use crate::receive::{ALLOWED_UPDATES, SetWebhook};
use crate::settings::{
    ALLOW_ALL_USERS, ALLOWED_USERS, BOT_TOKEN, HOME_CHANNEL, TelegramSettings, WEBHOOK_PORT,
    WEBHOOK_SECRET, WEBHOOK_URL,
};
use crate::types::{User, WebhookInfo};

const BOT: &str = "Telegram bot";
const WEBHOOK: &str = "Telegram webhook";
const TIMEOUT: Duration = Duration::from_secs(15);

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
        checkup,
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

/// The bot behind the token, and its webhook against the configured mode.
pub fn checkup(section: &ConfigSection, fix: bool) -> Checkup<'_> {
    Box::pin(async move {
        let settings = match TelegramSettings::from_config(section) {
            Ok(settings) => settings,
            Err(err) => {
                return vec![Check::skipped(
                    BOT,
                    format!("needs valid settings first ({err})"),
                )];
            }
        };
        let api = Api::new(&settings.api_base_url, &settings.token);
        let bot = bot_check(&api).await;
        if bot.is_problem() {
            return vec![
                bot,
                Check::skipped(WEBHOOK, "needs a working bot token first"),
            ];
        }
        vec![bot, webhook_check(&api, &settings, fix).await]
    })
}

async fn bot_check(api: &Api) -> Check {
    match api
        .call::<_, User>("getMe", &serde_json::json!({}), TIMEOUT)
        .await
    {
        Ok(user) => Check::ok(
            BOT,
            format!("@{} ({})", user.username.unwrap_or_default(), user.id),
        ),
        Err(err) if matches!(err.status(), Some(401 | 404)) => Check::problem(
            BOT,
            format!("token rejected ({err})"),
            format!(
                "copy the token again from @BotFather (/mybots → your bot → API Token) into {}; a revoked token must be replaced",
                BOT_TOKEN.env
            ),
        ),
        Err(err) => Check::problem(
            BOT,
            format!(
                "cannot reach the Bot API at {}: {err}",
                redact_url(api.base())
            ),
            "check the network, or TELEGRAM_API_BASE_URL".to_string(),
        ),
    }
}

/// How long ago a Unix time was, in words.
fn ago(unix: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secs = (now - unix).max(0);
    match secs {
        0..=119 => format!("{secs}s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

async fn webhook_check(api: &Api, settings: &TelegramSettings, fix: bool) -> Check {
    let info = match api
        .call::<_, WebhookInfo>("getWebhookInfo", &serde_json::json!({}), TIMEOUT)
        .await
    {
        Ok(info) => info,
        Err(err) => {
            return Check::problem(
                WEBHOOK,
                format!("getWebhookInfo failed: {err}"),
                "run the doctor again in a moment".to_string(),
            );
        }
    };
    match &settings.webhook {
        None if info.url.is_empty() => Check::ok(
            WEBHOOK,
            "none set: the gateway polls getUpdates".to_string(),
        ),
        None if fix => match api
            .call::<_, bool>("deleteWebhook", &serde_json::json!({}), TIMEOUT)
            .await
        {
            Ok(_) => Check::fixed(
                WEBHOOK,
                format!(
                    "deleted the webhook {}; its {} pending update(s) are kept for polling",
                    redact_url(&info.url),
                    info.pending_update_count
                ),
            ),
            Err(err) => failed_fix("deleteWebhook", &err),
        },
        None => Check::problem(
            WEBHOOK,
            format!(
                "a webhook is set ({}), so polling would get 409 Conflict",
                redact_url(&info.url)
            ),
            format!(
                "run `hermes gateway doctor --fix` to delete it, or set {} to that URL to use webhook mode",
                WEBHOOK_URL.env
            ),
        ),
        Some(webhook) if info.url != webhook.url => {
            if fix {
                let params = SetWebhook {
                    url: &webhook.url,
                    secret_token: &webhook.secret,
                    allowed_updates: ALLOWED_UPDATES,
                };
                return match api.call::<_, bool>("setWebhook", &params, TIMEOUT).await {
                    Ok(_) => Check::fixed(WEBHOOK, format!("set to {}", redact_url(&webhook.url))),
                    Err(err) => failed_fix("setWebhook", &err),
                };
            }
            let now = if info.url.is_empty() {
                "no webhook is set".to_string()
            } else {
                format!("Telegram posts to {}", redact_url(&info.url))
            };
            Check::problem(
                WEBHOOK,
                format!(
                    "{now}, not to {} ({})",
                    redact_url(&webhook.url),
                    WEBHOOK_URL.env
                ),
                "run `hermes gateway doctor --fix` (calls setWebhook), or start the gateway, which sets it".to_string(),
            )
        }
        Some(webhook) => match (&info.last_error_message, info.last_error_date) {
            (Some(message), date) => Check::problem(
                WEBHOOK,
                format!(
                    "set to {}, but Telegram's last delivery failed{}: {message} ({} update(s) waiting)",
                    redact_url(&webhook.url),
                    date.map(|d| format!(" {}", ago(d))).unwrap_or_default(),
                    info.pending_update_count
                ),
                format!(
                    "make sure {} reaches port {} of this machine over HTTPS, and that {} matches what the gateway was started with",
                    redact_url(&webhook.url),
                    webhook.listen.port(),
                    WEBHOOK_SECRET.env
                ),
            ),
            (None, _) => Check::ok(
                WEBHOOK,
                format!(
                    "set to {} ({} update(s) waiting)",
                    redact_url(&webhook.url),
                    info.pending_update_count
                ),
            ),
        },
    }
}

fn failed_fix(method: &str, err: &CallError) -> Check {
    Check::problem(
        WEBHOOK,
        format!("{method} failed: {err}"),
        "run `hermes gateway doctor --fix` again in a moment".to_string(),
    )
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

    #[test]
    fn times_read_as_ages() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(ago(now - 30), "30s ago");
        assert_eq!(ago(now - 600), "10 min ago");
        assert_eq!(ago(now - 7200), "2 h ago");
    }

    #[actix_web::test]
    async fn an_unreachable_api_is_a_problem_and_the_webhook_check_waits_for_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let section = ConfigSection::from_pairs([
            ("TELEGRAM_BOT_TOKEN", "123:secret-token"),
            ("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9"),
        ]);
        let checks = checkup(&section, false).await;
        assert!(checks[0].is_problem(), "{}", checks[0]);
        assert!(
            !checks[0].to_string().contains("secret-token"),
            "{}",
            checks[0]
        );
        assert!(matches!(
            checks[1].verdict,
            platform_api::Verdict::Skipped(_)
        ));
    }
}
