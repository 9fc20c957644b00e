//! What Discord adds to `hermes gateway doctor`: live checks of the bot, its token
//! (`GET /users/@me`), the Message Content Intent (`GET /applications/@me`), the gateway
//! (`GET /gateway/bot`) and the home channel (`GET /channels/{id}`).
use std::time::Duration;

use platform_api::{Check, Checkup, ConfigSection, redact_url};
use serde::Deserialize;

use crate::client::{Answer, Rest, Route};
use crate::settings::{ACCESS, DiscordSettings};
use crate::types::{Application, GatewayBot, User, app_flags};

const BOT: &str = "Discord bot";
const INTENT: &str = "Message Content Intent";
const GATEWAY: &str = "Discord gateway";
const HOME: &str = "Discord home channel";
const TIMEOUT: Duration = Duration::from_secs(10);
const NEW_TOKEN: &str = "copy a new token from the Developer Portal → your app → Bot → Reset Token into DISCORD_BOT_TOKEN";
const ENABLE_INTENT: &str = "in the Developer Portal → your app → Bot → Privileged Gateway Intents, turn on Message Content Intent and save";

/// Live checks of the bot behind valid settings (nothing is changed: `fix` has nothing to do).
pub fn checkup(section: &ConfigSection, _fix: bool) -> Checkup<'_> {
    Box::pin(async move {
        let settings = match DiscordSettings::from_config(section) {
            Ok(settings) => settings,
            Err(err) => {
                return vec![Check::skipped(
                    BOT,
                    format!("needs valid settings first ({err})"),
                )];
            }
        };
        let rest = Rest::new(&settings.api_base_url, &settings.token);
        let home = settings.home.as_ref().map(|home| home.chat.as_str());
        checks(&rest, home).await
    })
}

/// The checks against the API behind `rest`; `home` is the home channel's id, if set.
pub async fn checks(rest: &Rest, home: Option<&str>) -> Vec<Check> {
    let mut checks = Vec::new();
    let me = match rest.get(&Route::me(), TIMEOUT).await {
        Err(err) => {
            checks.push(Check::problem(
                BOT,
                format!("cannot reach {}: {err}", redact_url(rest.base())),
                "check the network (and DISCORD_API_BASE_URL if you set it)",
            ));
            return skip_rest(checks, home, "Discord could not be reached");
        }
        Ok(answer) => answer,
    };
    match me.status {
        200..=299 => match serde_json::from_slice::<User>(&me.body) {
            Ok(user) => checks.push(Check::ok(BOT, format!("{} ({})", user.username, user.id))),
            Err(err) => checks.push(Check::problem(
                BOT,
                format!("unexpected answer to GET /users/@me: {err}"),
                "check DISCORD_API_BASE_URL",
            )),
        },
        401 => {
            checks.push(Check::problem(BOT, "token rejected (HTTP 401)", NEW_TOKEN));
            return skip_rest(checks, home, "needs a valid token");
        }
        _ => {
            checks.push(Check::problem(BOT, failure(&me), "try again later"));
            return skip_rest(checks, home, "needs the bot check to pass");
        }
    }
    checks.push(intent(rest).await);
    checks.push(gateway(rest).await);
    if let Some(home) = home {
        checks.push(home_channel(rest, home).await);
    }
    checks
}

fn skip_rest(mut checks: Vec<Check>, home: Option<&str>, why: &str) -> Vec<Check> {
    checks.push(Check::skipped(INTENT, why));
    checks.push(Check::skipped(GATEWAY, why));
    if home.is_some() {
        checks.push(Check::skipped(HOME, why));
    }
    checks
}

/// `HTTP 503: message` from a failed answer.
fn failure(answer: &Answer) -> String {
    let message = serde_json::from_slice::<crate::types::ErrorBody>(&answer.body)
        .ok()
        .and_then(|body| body.message);
    match message {
        Some(message) => format!("HTTP {}: {message}", answer.status),
        None => format!("HTTP {}", answer.status),
    }
}

async fn intent(rest: &Rest) -> Check {
    let answer = match rest.get(&Route::application(), TIMEOUT).await {
        Ok(answer) if answer.is_success() => answer,
        Ok(answer) => {
            return Check::problem(
                INTENT,
                format!("GET /applications/@me failed: {}", failure(&answer)),
                "try again later",
            );
        }
        Err(err) => {
            return Check::problem(
                INTENT,
                format!("GET /applications/@me failed: {err}"),
                "try again later",
            );
        }
    };
    match serde_json::from_slice::<Application>(&answer.body) {
        Err(err) => Check::problem(
            INTENT,
            format!("unexpected answer to GET /applications/@me: {err}"),
            "check DISCORD_API_BASE_URL",
        ),
        Ok(app)
            if app.flags
                & (app_flags::GATEWAY_MESSAGE_CONTENT
                    | app_flags::GATEWAY_MESSAGE_CONTENT_LIMITED)
                != 0 =>
        {
            Check::ok(INTENT, format!("enabled for {}", app.name))
        }
        Ok(app) => Check::problem(
            INTENT,
            format!(
                "off for {}: Discord will refuse the gateway connection (close 4014) and the bot cannot read messages",
                app.name
            ),
            ENABLE_INTENT,
        ),
    }
}

async fn gateway(rest: &Rest) -> Check {
    match rest.get(&Route::gateway_bot(), TIMEOUT).await {
        Ok(answer) if answer.is_success() => {
            match serde_json::from_slice::<GatewayBot>(&answer.body) {
                Ok(GatewayBot {
                    url,
                    session_start_limit: Some(limit),
                }) if limit.remaining == 0 => Check::problem(
                    GATEWAY,
                    format!("{url}: no session starts left today (of {})", limit.total),
                    "wait for the daily limit to reset; something is reconnecting far too often",
                ),
                Ok(GatewayBot {
                    url,
                    session_start_limit: Some(limit),
                }) => Check::ok(
                    GATEWAY,
                    format!(
                        "{url} ({} of {} session starts left today)",
                        limit.remaining, limit.total
                    ),
                ),
                Ok(GatewayBot { url, .. }) => Check::ok(GATEWAY, url),
                Err(err) => Check::problem(
                    GATEWAY,
                    format!("unexpected answer to GET /gateway/bot: {err}"),
                    "check DISCORD_API_BASE_URL",
                ),
            }
        }
        Ok(answer) => Check::problem(
            GATEWAY,
            format!("GET /gateway/bot failed: {}", failure(&answer)),
            "try again later",
        ),
        Err(err) => Check::problem(
            GATEWAY,
            format!("GET /gateway/bot failed: {err}"),
            "try again later",
        ),
    }
}

/// A channel as `GET /channels/{id}` describes it (only its name is read).
#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    name: Option<String>,
}

async fn home_channel(rest: &Rest, id: &str) -> Check {
    let fix = format!(
        "check {} (with Developer Mode on, right-click the channel → Copy Channel ID) and that the bot is in that server",
        ACCESS.home_channel.env
    );
    match rest.get(&Route::channel(id), TIMEOUT).await {
        Ok(answer) if answer.is_success() => {
            let name = serde_json::from_slice::<Channel>(&answer.body)
                .ok()
                .and_then(|c| c.name)
                .map(|name| format!("#{name} ({id})"))
                .unwrap_or_else(|| format!("{id} (a direct message)"));
            Check::ok(HOME, name)
        }
        Ok(answer) if matches!(answer.status, 403 | 404) => {
            Check::problem(HOME, format!("{id}: {}", failure(&answer)), fix)
        }
        Ok(answer) => Check::problem(HOME, failure(&answer), "try again later"),
        Err(err) => Check::problem(HOME, err.to_string(), "try again later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn an_unreachable_api_is_a_problem_and_the_rest_is_skipped() {
        let rest = Rest::new("http://127.0.0.1:9/api/v10", "t");
        let checks = checks(&rest, Some("5")).await;
        assert_eq!(checks.len(), 4, "{checks:?}");
        assert!(checks[0].is_problem());
        assert!(
            checks[1..]
                .iter()
                .all(|c| matches!(c.verdict, platform_api::Verdict::Skipped(_)))
        );
    }
}
