//! Twilio's answers for WhatsApp mapped to the platform's typed send error: the SMS platform's
//! classification, with WhatsApp's 24-hour window (63016) a permanent failure that says what
//! to set.
use platform_api::{Advice, SendError};

/// Twilio's code for a free-form message outside the chat's 24-hour window.
pub const WINDOW_CLOSED: i64 = 63016;
/// Why a part cannot go outside the window without a template (SPEC section 13's wording).
pub const OUTSIDE_WINDOW: &str = "outside WhatsApp's 24-hour window: set WHATSAPP_TEMPLATE_SID";

/// Classifies a non-success answer of the Messages API to a WhatsApp send: as the SMS
/// platform does ([`hermes_twilio::error::classify`]), except that 63016 is the window's
/// refusal, permanent, with the reason.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let err = hermes_twilio::error::classify(status, retry_after, body);
    if err.code() == Some(WINDOW_CLOSED) && !matches!(err, SendError::Ambiguous { .. }) {
        return SendError::Permanent {
            code: Some(WINDOW_CLOSED),
            message: OUTSIDE_WINDOW.to_string(),
        };
    }
    err
}

/// What an operator should do about a Twilio error code on WhatsApp; the SMS platform's
/// advice for the codes both share.
pub fn advice(code: i64) -> Option<Advice> {
    let (text, act) = match code {
        WINDOW_CLOSED => (
            "outside WhatsApp's 24-hour window: set WHATSAPP_TEMPLATE_SID to an approved template, or wait for the user to write",
            true,
        ),
        63007 => (
            "Twilio has no WhatsApp sender for TWILIO_WHATSAPP_NUMBER on this account (the Sandbox's is +14155238886)",
            true,
        ),
        63015 => (
            "the recipient has not joined the Twilio Sandbox for WhatsApp: they send `join <keyword>` to the Sandbox number first",
            false,
        ),
        63018 => (
            "WhatsApp's rate limit for the sender was exceeded; messages are retried",
            false,
        ),
        63024 => ("the recipient is not a WhatsApp user", false),
        63032 => (
            "WhatsApp did not deliver the template to this user (their marketing messages limit)",
            false,
        ),
        _ => return hermes_twilio::error::advice(code),
    };
    Some(Advice { text, act })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_refusal_is_permanent_with_the_reason() {
        let body = br#"{"code": 63016, "message": "Failed to send freeform message because you are outside the allowed window.", "status": 400}"#;
        let err = classify(400, None, body);
        assert_eq!(err.code(), Some(WINDOW_CLOSED));
        assert!(matches!(err, SendError::Permanent { .. }));
        assert!(err.to_string().contains(OUTSIDE_WINDOW), "{err}");
        let busy = classify(503, None, br#"{"code": 20503}"#);
        assert!(matches!(busy, SendError::Retry { .. }));
        assert!(advice(WINDOW_CLOSED).is_some_and(|a| a.act));
        assert_eq!(advice(20003), hermes_twilio::error::advice(20003));
    }
}
