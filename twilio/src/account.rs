//! The Twilio account both platforms use: its settings, declared once and read alike by SMS
//! and WhatsApp (each lists them among its own), parsed and validated.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform_api::{ConfigError, ConfigSection, Setting, SettingKind, redact_url};

/// `TWILIO_ACCOUNT_SID`.
pub const ACCOUNT_SID: Setting = Setting::new(
    "TWILIO_ACCOUNT_SID",
    "account_sid",
    "Account SID from the Twilio Console (AC followed by 32 hex digits)",
)
.required()
.kind(SettingKind::Sid("AC"));
/// `TWILIO_AUTH_TOKEN`.
pub const AUTH_TOKEN: Setting = Setting::new(
    "TWILIO_AUTH_TOKEN",
    "auth_token",
    "Auth token from the Twilio Console; also the key that validates webhook signatures",
)
.required()
.secret();
/// `TWILIO_WEBHOOK_SHARED_KEY`.
pub const WEBHOOK_SHARED_KEY: Setting = Setting::new(
    "TWILIO_WEBHOOK_SHARED_KEY",
    "webhook_shared_key",
    "Webhook Shared Key from the Twilio Console: checks webhooks Twilio signs with HMAC-SHA256 (X-Twilio-Webhooks-Signature-Settings); others are checked with the auth token",
)
.secret();
/// `TWILIO_API_BASE_URL`.
pub const API_BASE_URL: Setting = Setting::new(
    "TWILIO_API_BASE_URL",
    "api_base_url",
    "Twilio REST API base URL (tests and proxies point it elsewhere)",
)
.default(DEFAULT_API_BASE_URL)
.kind(SettingKind::Url);
/// `TWILIO_REQUEST_TIMEOUT_SECS`.
pub const REQUEST_TIMEOUT_SECS: Setting = Setting::new(
    "TWILIO_REQUEST_TIMEOUT_SECS",
    "request_timeout_secs",
    "Longest wait for Twilio to answer a send; past it the outcome is unknown and the part is not re-sent",
)
.default("20")
.kind(SettingKind::Number);
/// `TWILIO_RECONCILE_AFTER_SECS`.
pub const RECONCILE_AFTER_SECS: Setting = Setting::new(
    "TWILIO_RECONCILE_AFTER_SECS",
    "reconcile_after_secs",
    "How long after a send with an unknown outcome its message is looked up in Twilio's message list (found: recorded as sent; not found: sent once more)",
)
.default("60")
.kind(SettingKind::Number);

/// Twilio's own REST API, the default of `TWILIO_API_BASE_URL`.
pub const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";

/// The account's validated settings. `Debug` never shows the auth token, the shared key or a
/// URL's password.
#[derive(Clone)]
pub struct TwilioAccount {
    /// Account SID, the HTTP Basic user name.
    pub account_sid: String,
    /// Auth token (secret), the HTTP Basic password and the key of HMAC-SHA1 signatures.
    pub auth_token: String,
    /// Webhook Shared Key (secret), for webhooks signed with HMAC-SHA256.
    pub shared_key: Option<String>,
    /// REST API base, without a trailing slash.
    pub api_base_url: String,
    /// Longest wait for an answer to a send.
    pub request_timeout: Duration,
    /// How long after an unknown outcome the message is looked up.
    pub reconcile_after: Duration,
}

impl std::fmt::Debug for TwilioAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field(
                "shared_key",
                &self.shared_key.as_ref().map(|_| "<redacted>"),
            )
            .field("api_base_url", &redact_url(&self.api_base_url))
            .field("request_timeout", &self.request_timeout)
            .field("reconcile_after", &self.reconcile_after)
            .finish()
    }
}

impl TwilioAccount {
    /// Parses and validates the account's settings from a platform's section.
    pub fn from_config(section: &ConfigSection) -> Result<Self, ConfigError> {
        let account_sid = section.required(&ACCOUNT_SID)?.to_string();
        ACCOUNT_SID.validate(&account_sid).map_err(|problem| {
            ConfigError::new(
                ACCOUNT_SID.env,
                section.get(ACCOUNT_SID.env).map(|v| v.origin.clone()),
                problem,
            )
        })?;
        let auth_token = section.required(&AUTH_TOKEN)?.to_string();
        Ok(TwilioAccount {
            account_sid,
            auth_token,
            shared_key: section
                .text(WEBHOOK_SHARED_KEY.env)
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            api_base_url: section
                .url(API_BASE_URL.env)?
                .unwrap_or_else(|| DEFAULT_API_BASE_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
            request_timeout: Duration::from_secs(
                section
                    .number(REQUEST_TIMEOUT_SECS.env)?
                    .unwrap_or(20)
                    .clamp(1, 300),
            ),
            reconcile_after: Duration::from_secs(
                section
                    .number(RECONCILE_AFTER_SECS.env)?
                    .unwrap_or(60)
                    .clamp(1, 86_400),
            ),
        })
    }

    /// The `Authorization` header value for the account.
    pub fn basic_auth(&self) -> String {
        let raw = format!("{}:{}", self.account_sid, self.auth_token);
        format!("Basic {}", STANDARD.encode(raw))
    }

    /// The account's resource URL, `…/2010-04-01/Accounts/{SID}`.
    pub fn url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}",
            self.api_base_url, self.account_sid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_account_and_never_shows_its_secrets() {
        let account = TwilioAccount::from_config(&ConfigSection::from_pairs([
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_AUTH_TOKEN", "777777"),
            ("TWILIO_WEBHOOK_SHARED_KEY", "whsk_secret"),
            ("TWILIO_API_BASE_URL", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!(account.api_base_url, "http://127.0.0.1:9");
        assert_eq!(account.request_timeout, Duration::from_secs(20));
        assert_eq!(
            account.url(),
            "http://127.0.0.1:9/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef"
        );
        let shown = format!("{account:?}");
        assert!(
            !shown.contains("777777") && !shown.contains("whsk_secret"),
            "{shown}"
        );
        let err = TwilioAccount::from_config(&ConfigSection::from_pairs([(
            "TWILIO_ACCOUNT_SID",
            "SK0123456789abcdef0123456789abcdef",
        )]))
        .unwrap_err();
        assert_eq!(err.var, "TWILIO_ACCOUNT_SID");
    }
}
