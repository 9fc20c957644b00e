use std::time::Duration;

use crate::origin::Origin;

/// Why a part could not be delivered, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not delivered, safe to try again (rate limit, provider outage, connection refused).
    #[error("temporary failure{}: {message}", code_suffix(*.code))]
    Retry {
        /// Wait at least this long, when the provider said (`Retry-After`).
        after: Option<Duration>,
        /// The provider's error code, if any.
        code: Option<i64>,
        /// What went wrong, for the operator.
        message: String,
    },
    /// Not delivered and never will be as it stands (bad number, bad credentials).
    #[error("permanent failure{}: {message}", code_suffix(*.code))]
    Permanent {
        /// The provider's error code, if any.
        code: Option<i64>,
        /// What went wrong, for the operator.
        message: String,
    },
    /// The recipient has opted out; the host stops messaging them.
    #[error("recipient has opted out{}: {message}", code_suffix(*.code))]
    OptedOut {
        /// The provider's error code (Twilio 21610).
        code: Option<i64>,
        /// What went wrong, for the operator.
        message: String,
    },
    /// The request went out but its outcome is unknown (timeout after sending): it may have
    /// been delivered, so it must not be re-sent blindly.
    #[error("outcome unknown: {message}")]
    Ambiguous {
        /// What went wrong, for the operator.
        message: String,
    },
}

fn code_suffix(code: Option<i64>) -> String {
    code.map(|c| format!(" (code {c})")).unwrap_or_default()
}

impl SendError {
    /// The provider's error code, if the error carries one.
    pub fn code(&self) -> Option<i64> {
        match self {
            SendError::Retry { code, .. }
            | SendError::Permanent { code, .. }
            | SendError::OptedOut { code, .. } => *code,
            SendError::Ambiguous { .. } => None,
        }
    }
}

/// A setting that is missing or invalid, named as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}{}: {problem}", origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
pub struct ConfigError {
    /// The variable the user sets (`SMS_WEBHOOK_PORT`), never an internal key.
    pub var: String,
    /// Where the offending value came from; `None` when the setting is missing.
    pub origin: Option<Origin>,
    /// What is wrong and what is expected.
    pub problem: String,
}

impl ConfigError {
    /// A problem with a setting's value or absence.
    pub fn new(var: impl Into<String>, origin: Option<Origin>, problem: impl Into<String>) -> Self {
        ConfigError {
            var: var.into(),
            origin,
            problem: problem.into(),
        }
    }
}
