//! The doctor's checks of the Twilio account, shared by SMS and WhatsApp: are the credentials
//! good, and what to do when a call fails.
use platform_api::{Check, ConfigSection, redact_url};

use crate::account::{ACCOUNT_SID, API_BASE_URL, AUTH_TOKEN, DEFAULT_API_BASE_URL, TwilioAccount};
use crate::client::{self, ApiError};

/// What the credentials line of the doctor is called.
pub const CREDENTIALS: &str = "Twilio credentials";

/// The credentials line: the account fetched with them, or what to fix.
pub async fn credentials(account: &TwilioAccount, section: &ConfigSection) -> Result<Check, Check> {
    match client::fetch_account(account).await {
        Ok(found) => Ok(account_check(&found)),
        Err(err) => Err(credentials_problem(&err, &account.api_base_url, section)),
    }
}

/// The credentials check passed: the account, and whether it can send.
fn account_check(account: &client::Account) -> Check {
    let name = account
        .friendly_name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    match account.status.as_deref() {
        Some("active") | None => Check::ok(
            CREDENTIALS,
            format!("accepted for account {}{name}", account.sid),
        ),
        Some(status) => Check::problem(
            CREDENTIALS,
            format!("accepted, but account {}{name} is {status}", account.sid),
            "reactivate the account in the Twilio Console (Account → Billing / Status); a suspended or closed account cannot send or receive",
        ),
    }
}

/// The credentials check failed: rejected credentials name both settings and where they were
/// set; another failure says what to check (`api_base_url` is `TWILIO_API_BASE_URL`).
fn credentials_problem(err: &ApiError, api_base_url: &str, section: &ConfigSection) -> Check {
    if err.is_authentication() {
        return Check::problem(
            CREDENTIALS,
            format!("credentials rejected ({err})"),
            format!(
                "check {}{} / {}{}: copy both from the Twilio Console (Account Info); the auth token is the account's, not an API key secret or a test credential",
                ACCOUNT_SID.env,
                origin(section, ACCOUNT_SID.env),
                AUTH_TOKEN.env,
                origin(section, AUTH_TOKEN.env)
            ),
        );
    }
    api_problem(CREDENTIALS, err, api_base_url)
}

/// A failed call other than rejected credentials: what to check (`api_base_url` is
/// `TWILIO_API_BASE_URL`).
pub fn api_problem(subject: &str, err: &ApiError, api_base_url: &str) -> Check {
    let fix = match err {
        ApiError::Unreachable { .. } if api_base_url == DEFAULT_API_BASE_URL => {
            "check the network connection, DNS and proxies".to_string()
        }
        ApiError::Unreachable { .. } => format!(
            "check {} (now {}; Twilio's is {DEFAULT_API_BASE_URL}), the network connection and proxies",
            API_BASE_URL.env,
            redact_url(api_base_url)
        ),
        ApiError::Refused {
            code: Some(code), ..
        } => format!(
            "see https://www.twilio.com/docs/errors/{code}; then run `hermes gateway doctor` again"
        ),
        _ => format!(
            "check that {} points at Twilio's REST API ({DEFAULT_API_BASE_URL}), then run `hermes gateway doctor` again",
            API_BASE_URL.env
        ),
    };
    Check::problem(subject, err.to_string(), fix)
}

/// ` (from <where>)` for a setting's value, or nothing when it has none.
pub fn origin(section: &ConfigSection, var: &str) -> String {
    section
        .get(var)
        .map(|v| format!(" (from {})", v.origin))
        .unwrap_or_default()
}
