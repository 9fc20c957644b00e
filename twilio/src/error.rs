//! Twilio's answers mapped to the platform's typed send error.
use std::time::Duration;

use platform_api::{Advice, SendError};
use serde::Deserialize;

/// Twilio's error body: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
#[derive(Debug, Default, Deserialize)]
pub struct TwilioError {
    /// Twilio's error code.
    pub code: Option<i64>,
    /// What Twilio says went wrong.
    pub message: Option<String>,
    /// Link to the error's documentation.
    pub more_info: Option<String>,
}

/// Twilio's code for a message to a number that has opted out.
pub const OPTED_OUT: i64 = 21610;

/// Carrier filtering: the message was blocked as spam or unwanted.
pub const FILTERED: i64 = 30007;
/// The sending number is not registered for A2P 10DLC.
pub const UNREGISTERED_10DLC: i64 = 30034;

/// Twilio could not fetch a `MediaUrl` of an MMS (error, timeout or redirect loop).
pub const MEDIA_FETCH_FAILED: i64 = 11200;
/// An MMS's media is over the size the channel allows.
pub const MEDIA_TOO_LARGE: i64 = 11751;
/// More than 10 `MediaUrl`s in one message.
pub const TOO_MANY_MEDIA: i64 = 21623;
/// A `MediaUrl` answered with a content type Twilio does not send.
pub const MEDIA_TYPE_REFUSED: i64 = 12300;

/// What an operator should do about a Twilio error code seen on a send or in a status
/// callback, for the codes operators meet most.
pub fn advice(code: i64) -> Option<Advice> {
    let act = matches!(
        code,
        20003 | 21408 | FILTERED | UNREGISTERED_10DLC | MEDIA_FETCH_FAILED
    );
    let text = match code {
        20003 => {
            "TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN is wrong (`hermes gateway doctor` checks them)"
        }
        21211 | 21614 => "the recipient's number is not a valid mobile number",
        21408 => {
            "enable SMS to that country in the Twilio Console (Messaging → Settings → Geo permissions)"
        }
        OPTED_OUT => "the recipient sent STOP; they are suppressed until they send START",
        30003 => "the handset is unreachable (off or out of coverage); nothing to fix on our side",
        30005 => "the number is unknown to its carrier or no longer in service",
        30006 => "the number is a landline or cannot receive SMS",
        FILTERED => {
            "the carrier filtered the message as unwanted: register the number for A2P 10DLC or send through a Messaging Service (TWILIO_MESSAGING_SERVICE_SID), and avoid URL shorteners"
        }
        UNREGISTERED_10DLC => {
            "the sending number is not registered for A2P 10DLC: register a brand and campaign in the Twilio Console (Messaging → Regulatory compliance) and add the number to it, or send through a registered Messaging Service (TWILIO_MESSAGING_SERVICE_SID)"
        }
        MEDIA_FETCH_FAILED => {
            "Twilio could not fetch an MMS file from the gateway: its /media/ URLs must be reachable from the internet at HERMES_PUBLIC_URL (or the origin of SMS_WEBHOOK_URL), and a file is served only until HERMES_MEDIA_URL_TTL_SECS after it was queued"
        }
        MEDIA_TOO_LARGE => {
            "the MMS's files are over the size the recipient's carrier accepts; send smaller files or a link"
        }
        TOO_MANY_MEDIA => "an MMS carries at most 10 files; the rest go in the following message",
        MEDIA_TYPE_REFUSED => {
            "Twilio does not send files of this content type by MMS; send it as a link, or as a common type (JPEG, PNG, GIF, PDF, MP4)"
        }
        _ => return None,
    };
    Some(Advice { text, act })
}

/// Classifies a non-success answer of the Messages API.
///
/// 429 and 5xx were not processed and can be retried (after `Retry-After` when given); 21610
/// means the recipient opted out; every other 4xx is permanent and retrying cannot help, an
/// MMS's included (too many files, 21623; a `MediaUrl` that is not one, 21620): the same
/// files would be refused again. A file Twilio cannot fetch or send (11200, 11751, 12300) is
/// reported later, by a delivery report, not by this answer.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let parsed: TwilioError = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed.message.clone().unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(200).collect();
        if text.trim().is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {}", text.trim())
        }
    });
    let code = parsed.code;
    match status {
        429 => SendError::Retry {
            after: retry_after.and_then(parse_retry_after),
            code,
            message,
        },
        500..=599 => SendError::Retry {
            after: retry_after.and_then(parse_retry_after),
            code,
            message,
        },
        _ if code == Some(OPTED_OUT) => SendError::OptedOut { code, message },
        _ => SendError::Permanent { code, message },
    }
}

/// `Retry-After` in seconds (Twilio sends seconds; HTTP dates are not used by its API).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies as Twilio's Messages API returns them.
    const AUTH: &str = r#"{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#;
    const TOO_MANY: &str = r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#;
    const INVALID_TO: &str = r#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
    const NOT_ENABLED: &str = r#"{"code": 21408, "message": "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +8613800000000.", "more_info": "https://www.twilio.com/docs/errors/21408", "status": 400}"#;
    const UNSUBSCRIBED: &str = r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#;
    const NOT_MOBILE: &str = r#"{"code": 21614, "message": "'To' number is not a valid mobile number", "more_info": "https://www.twilio.com/docs/errors/21614", "status": 400}"#;
    const TOO_MANY_FILES: &str = r#"{"code": 21623, "message": "Number of media files exceeds allowed limit", "more_info": "https://www.twilio.com/docs/errors/21623", "status": 400}"#;
    const BAD_MEDIA_URL: &str = r#"{"code": 21620, "message": "Invalid media URL(s)", "more_info": "https://www.twilio.com/docs/errors/21620", "status": 400}"#;
    const UNAVAILABLE: &str = r#"{"code": 30007, "message": "Message filtered", "more_info": "https://www.twilio.com/docs/errors/30007", "status": 500}"#;

    #[test]
    fn maps_real_twilio_errors() {
        assert!(matches!(
            classify(401, None, AUTH.as_bytes()),
            SendError::Permanent {
                code: Some(20003),
                ..
            }
        ));
        assert_eq!(
            classify(429, Some("7"), TOO_MANY.as_bytes()),
            SendError::Retry {
                after: Some(Duration::from_secs(7)),
                code: Some(20429),
                message: "Too Many Requests".into()
            }
        );
        assert!(matches!(
            classify(429, None, b""),
            SendError::Retry {
                after: None,
                code: None,
                ..
            }
        ));
        assert!(matches!(
            classify(400, None, INVALID_TO.as_bytes()),
            SendError::Permanent {
                code: Some(21211),
                ..
            }
        ));
        assert!(matches!(
            classify(400, None, NOT_ENABLED.as_bytes()),
            SendError::Permanent {
                code: Some(21408),
                ..
            }
        ));
        assert!(matches!(
            classify(400, None, UNSUBSCRIBED.as_bytes()),
            SendError::OptedOut {
                code: Some(21610),
                ..
            }
        ));
        assert!(matches!(
            classify(400, None, NOT_MOBILE.as_bytes()),
            SendError::Permanent {
                code: Some(21614),
                ..
            }
        ));
        assert!(matches!(
            classify(500, None, UNAVAILABLE.as_bytes()),
            SendError::Retry {
                code: Some(30007),
                ..
            }
        ));
        assert!(matches!(
            classify(503, Some("2"), b"<html>busy</html>"),
            SendError::Retry { after: Some(_), .. }
        ));
        assert!(matches!(
            classify(400, None, TOO_MANY_FILES.as_bytes()),
            SendError::Permanent {
                code: Some(TOO_MANY_MEDIA),
                ..
            }
        ));
        assert!(matches!(
            classify(400, None, BAD_MEDIA_URL.as_bytes()),
            SendError::Permanent {
                code: Some(21620),
                ..
            }
        ));
        let err = classify(404, None, b"not json");
        assert_eq!(err.to_string(), "permanent failure: HTTP 404: not json");
    }

    #[test]
    fn media_errors_have_advice() {
        for code in [
            MEDIA_FETCH_FAILED,
            MEDIA_TOO_LARGE,
            TOO_MANY_MEDIA,
            MEDIA_TYPE_REFUSED,
        ] {
            assert!(advice(code).is_some(), "{code}");
        }
        // An unreachable media URL is the operator's to fix; a carrier's size limit is not.
        assert!(advice(MEDIA_FETCH_FAILED).is_some_and(|a| a.act));
        assert!(advice(MEDIA_TOO_LARGE).is_some_and(|a| !a.act));
        assert!(advice(MEDIA_FETCH_FAILED).is_some_and(|a| a.text.contains("HERMES_PUBLIC_URL")));
    }
}
