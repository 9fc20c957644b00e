//! Discord's answers mapped to the platform's typed send error, and what its error codes mean
//! for the operator.
use std::time::{Duration, SystemTime};

use actix_web::http::header::HttpDate;
use platform_api::{Advice, SendError};

use crate::client::{from_secs, seconds};
use crate::types::ErrorBody;

/// The recipient does not accept direct messages from the bot (closed DMs, blocked it, or
/// shares no server with it).
pub const CANNOT_MESSAGE_USER: i64 = 50007;
/// The message does not exist (any more): a message being edited was deleted.
pub const UNKNOWN_MESSAGE: i64 = 10008;
/// The channel does not exist (or the bot cannot know it).
pub const UNKNOWN_CHANNEL: i64 = 10003;
/// The bot cannot see the channel.
pub const MISSING_ACCESS: i64 = 50001;
/// The bot lacks a permission there.
pub const MISSING_PERMISSIONS: i64 = 50013;
/// The message is empty.
pub const EMPTY_MESSAGE: i64 = 50006;
/// A field of the request is invalid (content over 2,000 characters, …).
pub const INVALID_FORM_BODY: i64 = 50035;
/// An upload larger than Discord takes (HTTP 413).
pub const REQUEST_ENTITY_TOO_LARGE: i64 = 40005;

/// Classifies a non-success answer to a REST call that sends.
///
/// 429 waits for the body's `retry_after` (fractional seconds), else `Retry-After`; 5xx is
/// retried (after `Retry-After` when given); 403 with code 50007 means the user does not take
/// the bot's messages, and the host stops messaging them; every other status is permanent.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.code.filter(|code| *code != 0);
    let detail = match (&parsed.message, parsed.first_field_error()) {
        (Some(message), Some(field)) => format!("{message} ({field})"),
        (Some(message), None) => message.clone(),
        (None, _) => {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(200).collect()
        }
    };
    let mut message = if detail.is_empty() {
        format!("Discord answered HTTP {status}")
    } else {
        format!("Discord answered HTTP {status}: {detail}")
    };
    if status == 401 {
        message.push_str(" (check DISCORD_BOT_TOKEN)");
    }
    match status {
        429 => SendError::Retry {
            after: parsed
                .retry_after
                .and_then(from_secs)
                .or_else(|| retry_after.and_then(parse_retry_after)),
            code,
            message,
        },
        500..=599 => SendError::Retry {
            after: retry_after.and_then(parse_retry_after),
            code,
            message,
        },
        403 if code == Some(CANNOT_MESSAGE_USER) => SendError::OptedOut { code, message },
        _ => SendError::Permanent { code, message },
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at an hour.
fn parse_retry_after(value: &str) -> Option<Duration> {
    seconds(value).or_else(|| {
        let at = SystemTime::from(value.trim().parse::<HttpDate>().ok()?);
        from_secs(
            at.duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs_f64(),
        )
    })
}

/// What a Discord error code means for the operator, for the codes a send can meet.
pub fn advice(code: i64) -> Option<Advice> {
    let (text, act) = match code {
        CANNOT_MESSAGE_USER => (
            "The user does not accept direct messages from the bot (they closed DMs from server members, blocked the bot, or share no server with it); the gateway stops messaging them.",
            false,
        ),
        UNKNOWN_CHANNEL => (
            "No such channel: check the channel id (DISCORD_HOME_CHANNEL or the target), and that the bot is in that server.",
            true,
        ),
        MISSING_ACCESS => (
            "The bot cannot see this channel: give its role View Channel there, or add it to the private channel or thread.",
            true,
        ),
        MISSING_PERMISSIONS => (
            "The bot lacks a permission in this channel: give its role Send Messages (and Send Messages in Threads, and Attach Files for pictures and files) there.",
            true,
        ),
        EMPTY_MESSAGE => ("Discord refused an empty message.", false),
        INVALID_FORM_BODY => (
            "Discord refused the message as invalid (over 2,000 characters, or a malformed field).",
            false,
        ),
        REQUEST_ENTITY_TOO_LARGE => (
            "Discord refused an upload as too large (a bot uploads at most 10 MiB to a server without boosts).",
            false,
        ),
        _ => return None,
    };
    Some(Advice { text, act })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_bodies_decide_beside_the_status() {
        let limited =
            br#"{"message": "You are being rate limited.", "retry_after": 0.75, "global": false}"#;
        assert_eq!(
            classify(429, Some("1"), limited),
            SendError::Retry {
                after: Some(Duration::from_millis(750)),
                code: None,
                message: "Discord answered HTTP 429: You are being rate limited.".into()
            }
        );
        let blocked = br#"{"message": "Cannot send messages to this user", "code": 50007}"#;
        assert!(matches!(
            classify(403, None, blocked),
            SendError::OptedOut {
                code: Some(50007),
                ..
            }
        ));
        let missing = br#"{"message": "Missing Permissions", "code": 50013}"#;
        assert!(matches!(
            classify(403, None, missing),
            SendError::Permanent {
                code: Some(50013),
                ..
            }
        ));
        let unknown = br#"{"message": "Unknown Channel", "code": 10003}"#;
        assert_eq!(
            classify(404, None, unknown).to_string(),
            "permanent failure (code 10003): Discord answered HTTP 404: Unknown Channel"
        );
        let form = br#"{"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}"#;
        assert!(
            classify(400, None, form)
                .to_string()
                .contains("Invalid Form Body (content: Must be 2000 or fewer in length.)")
        );
        let too_large = br#"{"message": "Request entity too large", "code": 40005}"#;
        assert!(matches!(
            classify(413, None, too_large),
            SendError::Permanent {
                code: Some(REQUEST_ENTITY_TOO_LARGE),
                ..
            }
        ));
        let unauthorized = br#"{"message": "401: Unauthorized", "code": 0}"#;
        let err = classify(401, None, unauthorized);
        assert_eq!(err.code(), None, "code 0 is no code");
        assert!(err.to_string().contains("DISCORD_BOT_TOKEN"), "{err}");
    }

    #[test]
    fn codes_that_need_the_operator_say_so() {
        assert!(advice(MISSING_PERMISSIONS).is_some_and(|a| a.act));
        assert!(advice(CANNOT_MESSAGE_USER).is_some_and(|a| !a.act));
        assert_eq!(advice(12345), None);
    }
}
