//! The receiving system's answers mapped to the platform's typed send error.
use std::time::{Duration, SystemTime};

use actix_web::http::header::HttpDate;
use platform_api::SendError;
use serde::Deserialize;

/// Longest wait honoured from `Retry-After`: the host retries a part a few times, so a
/// receiver asking for days would only park it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// An error body in either common shape: `{"error": "…"}` or `{"message": "…"}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
}

/// Classifies a non-success answer to an outbound POST.
///
/// 429 and 5xx were not processed and can be retried (after `Retry-After` when given, in
/// seconds or as an HTTP date); every other status is permanent and retrying cannot help.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = match parsed.error.or(parsed.message) {
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
    match status {
        429 | 500..=599 => SendError::Retry {
            after: retry_after.and_then(parse_retry_after),
            code: None,
            message,
        },
        _ => SendError::Permanent {
            code: None,
            message,
        },
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
        }
        Ok(_) => return None,
        Err(_) => {
            let at = SystemTime::from(value.parse::<HttpDate>().ok()?);
            at.duration_since(SystemTime::now()).unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_and_bodies_explain() {
        assert_eq!(
            classify(429, Some("7"), br#"{"error": "slow down"}"#),
            SendError::Retry {
                after: Some(Duration::from_secs(7)),
                code: None,
                message: "HTTP 429: slow down".into()
            }
        );
        assert_eq!(
            classify(404, None, br#"{"message": "no such chat"}"#).to_string(),
            "permanent failure: HTTP 404: no such chat"
        );
        assert_eq!(
            classify(502, None, b"  ").to_string(),
            "temporary failure: HTTP 502"
        );
        assert!(matches!(
            classify(503, Some("86400"), b""),
            SendError::Retry { after: Some(after), .. } if after == MAX_RETRY_AFTER
        ));
    }

    #[test]
    fn retry_after_may_be_an_http_date() {
        let soon = SystemTime::now() + Duration::from_secs(120);
        let header = HttpDate::from(soon).to_string();
        let wait = parse_retry_after(&header).expect("a date parses");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        let past = HttpDate::from(SystemTime::UNIX_EPOCH).to_string();
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }
}
