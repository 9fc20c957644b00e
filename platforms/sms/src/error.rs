//! SMS's answers are the Twilio Messages API's: the Twilio crate ([`hermes_twilio::error`])
//! classifies them and says what each code means for the operator.
use platform_api::SendError;

pub use hermes_twilio::error::advice;

/// Classifies a non-success answer of the Messages API to an SMS send: 429 and 5xx retried,
/// 21610 an opt-out, other 4xx permanent ([`hermes_twilio::error::classify`]).
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    hermes_twilio::error::classify(status, retry_after, body)
}
