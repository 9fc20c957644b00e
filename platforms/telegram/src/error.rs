//! Telegram's answers to a send, as the platform's typed send error.
//!
//! Telegram answers errors as `{"ok": false, "error_code": N, "description": "…"}`, with
//! `parameters.retry_after` on flood control. What they mean for the host:
//!
//! | answer                                             | error                         |
//! |----------------------------------------------------|-------------------------------|
//! | 429 `Too Many Requests: retry after N`             | `Retry`, after `N` seconds    |
//! | 5xx, or no answer at all                           | `Retry`                       |
//! | 403 `bot was blocked by the user`, `user is deactivated`, `bot was kicked …`, `bot is not a member …`, `bot can't initiate conversation …` | `OptedOut`: the chat refuses the bot |
//! | 400 `can't parse entities` (the HTML)              | resent once as plain text by the sender |
//! | any other 4xx (`chat not found`, 401 bad token, 413 or `file is too big` for an upload, `IMAGE_PROCESS_FAILED` for a photo that is not one …) | `Permanent` |
use std::time::Duration;

use platform_api::SendError;

use crate::types::ApiResponse;

/// Longest wait honoured: the host retries a part a few times, so a wait of days would only
/// park it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Descriptions of a 403 that mean the chat will not take messages from the bot.
const REFUSALS: &[&str] = &[
    "bot was blocked by the user",
    "user is deactivated",
    "bot was kicked",
    "bot is not a member",
    "can't initiate conversation",
    "bot can't send messages to bots",
];

/// Whether a 400 says Telegram could not parse the message's HTML.
pub fn is_parse_error(status: u16, description: &str) -> bool {
    status == 400 && description.contains("can't parse entities")
}

/// Classifies an error answer to `sendMessage` from its status, `Retry-After` header and body.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let parsed: Option<ApiResponse<serde_json::Value>> = serde_json::from_slice(body).ok();
    let (description, code, parameters) = match parsed {
        Some(p) => (
            p.description,
            p.error_code,
            p.parameters.unwrap_or_default(),
        ),
        None => (None, None, Default::default()),
    };
    let message = match &description {
        Some(text) => format!("HTTP {status}: {text}"),
        None => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(200).collect();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        }
    };
    let code = code.or(Some(i64::from(status)));
    let header_wait = retry_after.and_then(parse_seconds);
    match status {
        429 => SendError::Retry {
            after: parameters
                .retry_after
                .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
                .or(header_wait),
            code,
            message,
        },
        500..=599 => SendError::Retry {
            after: header_wait,
            code,
            message,
        },
        403 if description
            .as_deref()
            .is_some_and(|d| REFUSALS.iter().any(|r| d.contains(r))) =>
        {
            SendError::OptedOut { code, message }
        }
        400 if parameters.migrate_to_chat_id.is_some() => SendError::Permanent {
            code,
            message: format!(
                "{message}: the group became a supergroup with the chat id {}; use that id (e.g. in TELEGRAM_HOME_CHANNEL)",
                parameters.migrate_to_chat_id.unwrap_or_default()
            ),
        },
        401 => SendError::Permanent {
            code,
            message: format!("{message}: the bot token was rejected; check TELEGRAM_BOT_TOKEN"),
        },
        _ => SendError::Permanent { code, message },
    }
}

/// `Retry-After` in seconds, capped at [`MAX_RETRY_AFTER`]; Telegram never sends dates.
fn parse_seconds(value: &str) -> Option<Duration> {
    let secs = value.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_control_waits_as_long_as_telegram_says() {
        let body = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#;
        assert_eq!(
            classify(429, None, body),
            SendError::Retry {
                after: Some(Duration::from_secs(5)),
                code: Some(429),
                message: "HTTP 429: Too Many Requests: retry after 5".into()
            }
        );
        // The body wins over the header; the header serves when the body says nothing.
        assert!(matches!(
            classify(429, Some("9"), body),
            SendError::Retry { after: Some(d), .. } if d == Duration::from_secs(5)
        ));
        assert!(matches!(
            classify(429, Some("9"), b""),
            SendError::Retry { after: Some(d), .. } if d == Duration::from_secs(9)
        ));
    }

    #[test]
    fn a_chat_that_refuses_the_bot_is_opted_out_and_other_403s_are_permanent() {
        for description in [
            "Forbidden: bot was blocked by the user",
            "Forbidden: user is deactivated",
            "Forbidden: bot was kicked from the supergroup chat",
        ] {
            let body = format!(r#"{{"ok":false,"error_code":403,"description":"{description}"}}"#);
            assert!(
                matches!(
                    classify(403, None, body.as_bytes()),
                    SendError::OptedOut { .. }
                ),
                "{description}"
            );
        }
        let other = br#"{"ok":false,"error_code":403,"description":"Forbidden: not enough rights to send text messages to the chat"}"#;
        assert!(matches!(
            classify(403, None, other),
            SendError::Permanent { .. }
        ));
    }

    #[test]
    fn other_answers() {
        let body = br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
        assert_eq!(
            classify(400, None, body).to_string(),
            "permanent failure (code 400): HTTP 400: Bad Request: chat not found"
        );
        let migrated = br#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#;
        assert!(
            classify(400, None, migrated)
                .to_string()
                .contains("-1001234")
        );
        let unauthorized = br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
        assert!(
            classify(401, None, unauthorized)
                .to_string()
                .contains("TELEGRAM_BOT_TOKEN")
        );
        assert!(matches!(
            classify(502, None, b"<html>"),
            SendError::Retry { after: None, .. }
        ));
        // Uploads Telegram will never take.
        let too_big =
            br#"{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}"#;
        for (status, body) in [
            (
                413,
                &b"<html><h1>413 Request Entity Too Large</h1></html>"[..],
            ),
            (400, &too_big[..]),
        ] {
            assert!(
                matches!(classify(status, None, body), SendError::Permanent { code: Some(c), .. } if c == i64::from(status)),
                "{status}"
            );
        }
        assert!(is_parse_error(
            400,
            "Bad Request: can't parse entities: Unsupported start tag \"foo\" at byte offset 0"
        ));
        assert!(!is_parse_error(400, "Bad Request: chat not found"));
    }
}
