//! What Telegram adds to `hermes gateway doctor`: live checks of the bot (`getMe`) and of its
//! webhook (`getWebhookInfo`) against the configured mode, which `--fix` repairs.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform_api::{Check, Checkup, ConfigSection, redact_url};

use crate::client::{Api, CallError};
use crate::receive::{ALLOWED_UPDATES, SetWebhook};
use crate::settings::{BOT_TOKEN, TelegramSettings, WEBHOOK_SECRET, WEBHOOK_URL};
use crate::types::{User, WebhookInfo};

const BOT: &str = "Telegram bot";
const WEBHOOK: &str = "Telegram webhook";
const TIMEOUT: Duration = Duration::from_secs(15);

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
