//! The SMS platform's settings: the variables of the Hermes SMS documentation and this project's
//! additions, parsed and validated from the unified configuration.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use platform_api::{
    AccessPolicy, AccessSettings, ConfigError, ConfigSection, HomeChannel, Setting, SettingKind,
    access_settings, phone, prompt_hint, redact_url,
};

use hermes_twilio::account::TwilioAccount;
pub use hermes_twilio::account::{
    ACCOUNT_SID, API_BASE_URL, AUTH_TOKEN, RECONCILE_AFTER_SECS, REQUEST_TIMEOUT_SECS,
    WEBHOOK_SHARED_KEY,
};
use hermes_twilio::signature::url_variants;
pub use hermes_twilio::webhook::WEBHOOK_HOST;

/// `TWILIO_PHONE_NUMBER`.
pub const PHONE_NUMBER: Setting = Setting::new(
    "TWILIO_PHONE_NUMBER",
    "phone_number",
    "Your Twilio number in E.164 form, e.g. +15551234567",
)
.required()
.kind(SettingKind::Phone);
/// `SMS_WEBHOOK_URL`.
pub const WEBHOOK_URL: Setting = Setting::new(
    "SMS_WEBHOOK_URL",
    "webhook_url",
    "Public URL of the webhook as set in the Twilio Console, e.g. https://bot.example.com/webhooks/twilio",
)
.required()
.kind(SettingKind::Url);
/// `SMS_FALLBACK_URL`: a second gateway on the same database takes the number's messages when
/// Twilio cannot deliver them to this one.
pub const FALLBACK_URL: Setting = Setting::new(
    "SMS_FALLBACK_URL",
    "fallback_url",
    "Public URL of a second gateway on the same database, set as the number's fallback webhook by `hermes gateway doctor --fix`",
)
.kind(SettingKind::Url);
/// `SMS_WEBHOOK_PORT`.
pub const WEBHOOK_PORT: Setting = Setting::new(
    "SMS_WEBHOOK_PORT",
    "webhook_port",
    "Port the webhook server listens on",
)
.default("8080")
.kind(SettingKind::Port);
/// `SMS_INSECURE_NO_SIGNATURE`.
pub const INSECURE_NO_SIGNATURE: Setting = Setting::new(
    "SMS_INSECURE_NO_SIGNATURE",
    "insecure_no_signature",
    "true disables signature validation while SMS_WEBHOOK_URL is unset (local development only)",
)
.kind(SettingKind::Bool);
/// Who may text the agent, what a stranger gets, how often a sender may start a turn, and
/// where scheduled output goes: `SMS_ALLOWED_USERS`, `SMS_ALLOW_ALL_USERS`, `SMS_HOME_CHANNEL`,
/// `SMS_HOME_CHANNEL_NAME`, `SMS_RATE_LIMIT_PER_MINUTE` and `SMS_UNAUTHORIZED`.
pub const ACCESS: AccessSettings = access_settings!("SMS", "phone numbers", SettingKind::PhoneList);
/// `TWILIO_MESSAGING_SERVICE_SID`.
pub const MESSAGING_SERVICE_SID: Setting = Setting::new(
    "TWILIO_MESSAGING_SERVICE_SID",
    "messaging_service_sid",
    "Send through this Messaging Service (MG…) instead of From (A2P 10DLC)",
)
.kind(SettingKind::Sid("MG"));
/// `TWILIO_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "TWILIO_ENABLED",
    "enabled",
    "false keeps SMS off even when TWILIO_ACCOUNT_SID is set",
)
.kind(SettingKind::Bool);
/// `TWILIO_MAX_SEGMENTS_PER_SECOND`.
pub const MAX_SEGMENTS_PER_SECOND: Setting = Setting::new(
    "TWILIO_MAX_SEGMENTS_PER_SECOND",
    "max_segments_per_second",
    "Outbound pacing per sending number, in segments per second (1 for a long code)",
)
.default("1")
.kind(SettingKind::Positive);

/// `SMS_PROMPT_HINT`: what the agent is told about writing for SMS, after the persona.
pub const PROMPT_HINT: Setting = prompt_hint!(
    "SMS",
    "Your replies are sent as SMS text messages: write plain text (no Markdown, tables or headings), keep it brief, and fit the answer in one message when you can."
);
/// Every SMS setting, in the order the wizard asks and the docs list them.
pub const SETTINGS: &[Setting] = &[
    ACCOUNT_SID,
    AUTH_TOKEN,
    PHONE_NUMBER,
    WEBHOOK_URL,
    WEBHOOK_SHARED_KEY,
    FALLBACK_URL,
    WEBHOOK_PORT,
    WEBHOOK_HOST,
    INSECURE_NO_SIGNATURE,
    ACCESS.allowed_users,
    ACCESS.allow_all_users,
    ACCESS.home_channel,
    ACCESS.home_channel_name,
    PROMPT_HINT,
    API_BASE_URL,
    MESSAGING_SERVICE_SID,
    ENABLED,
    ACCESS.rate_limit_per_minute,
    MAX_SEGMENTS_PER_SECOND,
    REQUEST_TIMEOUT_SECS,
    RECONCILE_AFTER_SECS,
    ACCESS.unauthorized,
];

/// Whether SMS is enabled: `TWILIO_ACCOUNT_SID` set (or `TWILIO_ENABLED=true`), unless
/// `TWILIO_ENABLED=false`.
pub fn enabled(section: &ConfigSection) -> Result<(), String> {
    section.enabled_by(ENABLED.env, ACCOUNT_SID.env)
}

/// The SMS platform's validated settings. `Debug` never shows the auth token or a URL's password.
#[derive(Clone)]
pub struct SmsSettings {
    /// The Twilio account (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, …), WhatsApp's too.
    pub account: TwilioAccount,
    /// Our number, E.164.
    pub phone_number: String,
    /// Configured public webhook URL; `None` only in insecure mode.
    pub webhook_url: Option<String>,
    /// Public URL of a second gateway sharing the database, which Twilio calls when this
    /// one fails; `doctor --fix` sets it as the number's fallback webhook.
    pub fallback_url: Option<String>,
    /// Address the webhook server binds.
    pub listen: SocketAddr,
    /// Who may chat.
    pub access: AccessPolicy,
    /// Where cron output and notifications go: a number in E.164 and its display name.
    pub home: Option<HomeChannel>,
    /// Messaging Service to send through instead of `From`.
    pub messaging_service_sid: Option<String>,
    /// Outbound pacing, segments per second.
    pub max_segments_per_second: f64,
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("account", &self.account)
            .field("phone_number", &phone::redact(&self.phone_number))
            .field("webhook_url", &self.webhook_url.as_deref().map(redact_url))
            .field(
                "fallback_url",
                &self.fallback_url.as_deref().map(redact_url),
            )
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// Why the SMS platform will not start without a webhook URL.
pub const REFUSAL: &str = "Refusing to start: SMS_WEBHOOK_URL is required";
/// What to do about it.
pub const REFUSAL_HINT: &str = "set it to the public URL Twilio posts to, e.g. https://bot.example.com/webhooks/twilio (`hermes gateway setup` asks for it); for local development only, SMS_INSECURE_NO_SIGNATURE=true runs without signature checks";

impl SmsSettings {
    /// Parses and validates every SMS setting.
    pub fn from_config(section: &ConfigSection) -> Result<Self, ConfigError> {
        let account = TwilioAccount::from_config(section)?;
        let phone_number = section.phone(PHONE_NUMBER.env)?.ok_or_else(|| {
            ConfigError::new(
                PHONE_NUMBER.env,
                None,
                format!("is required but not set ({})", PHONE_NUMBER.help),
            )
        })?;
        let webhook_url = section.url(WEBHOOK_URL.env)?;
        let insecure = section.bool(INSECURE_NO_SIGNATURE.env)?.unwrap_or(false);
        if webhook_url.is_none() && !insecure {
            return Err(ConfigError::new(
                WEBHOOK_URL.env,
                None,
                format!("is required: {REFUSAL_HINT}"),
            ));
        }
        let fallback_url = section.url(FALLBACK_URL.env)?;
        if let (Some(webhook), Some(fallback)) = (&webhook_url, &fallback_url) {
            // Variants too: Twilio would post both to one gateway, and the doctor could not
            // tell which side of the pair this gateway is.
            if url_variants(webhook).iter().any(|v| v == fallback) {
                return Err(ConfigError::new(
                    FALLBACK_URL.env,
                    section.get(FALLBACK_URL.env).map(|v| v.origin.clone()),
                    format!(
                        "is the same URL as {} ({}); set it to the public URL of the other gateway, or unset it",
                        WEBHOOK_URL.env,
                        redact_url(webhook)
                    ),
                ));
            }
        }
        let port = section.port(WEBHOOK_PORT.env)?.unwrap_or(8080);
        let host = section
            .ip(WEBHOOK_HOST.env)?
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let access = ACCESS.policy(section, phone::normalize)?;
        let home = ACCESS.home_channel(section, phone::normalize)?;
        let messaging_service_sid = section.text(MESSAGING_SERVICE_SID.env).map(str::to_string);
        if let Some(sid) = &messaging_service_sid {
            MESSAGING_SERVICE_SID.validate(sid).map_err(|problem| {
                ConfigError::new(
                    MESSAGING_SERVICE_SID.env,
                    section
                        .get(MESSAGING_SERVICE_SID.env)
                        .map(|v| v.origin.clone()),
                    problem,
                )
            })?;
        }
        Ok(SmsSettings {
            account,
            phone_number,
            webhook_url,
            fallback_url,
            listen: SocketAddr::new(host, port),
            access,
            home,
            messaging_service_sid,
            max_segments_per_second: section
                .positive(MAX_SEGMENTS_PER_SECOND.env)?
                .unwrap_or(1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_api::Unauthorized;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "777777"),
            ("TWILIO_PHONE_NUMBER", "+15551234567"),
            ("SMS_WEBHOOK_URL", "https://bot.example.com/webhooks/twilio"),
        ]
    }

    #[test]
    fn parses_a_complete_configuration() {
        let mut pairs = base();
        pairs.push(("SMS_ALLOWED_USERS", "+1 (555) 000-1111, +15550002222"));
        let s = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(s.account.auth_token, "777777");
        assert_eq!(s.phone_number, "+15551234567");
        assert_eq!(s.listen.to_string(), "0.0.0.0:8080");
        assert!(s.access.allows("+15550001111") && s.access.allows("+15550002222"));
        assert!(!s.access.allows("+15550003333"));
        assert_eq!(s.access.unauthorized, Unauthorized::Ignore);
        assert_eq!(s.home, None);
        assert!(!format!("{s:?}").contains("777777"));
    }

    #[test]
    fn the_access_block_is_read_in_e164() {
        let mut pairs = base();
        pairs.push(("SMS_HOME_CHANNEL", "+1 (555) 000-1111"));
        pairs.push(("SMS_HOME_CHANNEL_NAME", "My phone"));
        pairs.push(("SMS_UNAUTHORIZED", "Pair"));
        pairs.push(("SMS_RATE_LIMIT_PER_MINUTE", "3"));
        let s = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        let home = s.home.expect("home channel set");
        assert_eq!(home.chat, "+15550001111");
        assert_eq!(home.name, "My phone");
        assert_eq!(s.access.unauthorized, Unauthorized::Pair);
        assert_eq!(s.access.rate_limit_per_minute, Some(3));
        let mut pairs = base();
        pairs.push(("SMS_HOME_CHANNEL", "+15550001111"));
        let s = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(s.home.map(|home| home.name).as_deref(), Some("Home"));
    }

    #[test]
    fn settings_list_the_access_block_in_place() {
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
        let at = |var: &str| names.iter().position(|n| *n == var).expect(var);
        assert_eq!(
            names[at("SMS_ALLOWED_USERS")..=at("SMS_HOME_CHANNEL_NAME")],
            [
                "SMS_ALLOWED_USERS",
                "SMS_ALLOW_ALL_USERS",
                "SMS_HOME_CHANNEL",
                "SMS_HOME_CHANNEL_NAME"
            ]
        );
        assert!(at("SMS_RATE_LIMIT_PER_MINUTE") < at("SMS_UNAUTHORIZED"));
        assert_eq!(names.last(), Some(&"SMS_UNAUTHORIZED"));
        assert_eq!(ACCESS.allowed_users.kind, SettingKind::PhoneList);
        assert_eq!(ACCESS.home_channel.kind, SettingKind::Phone);
    }

    #[test]
    fn refuses_without_webhook_url_unless_insecure() {
        let mut pairs = base();
        pairs.pop();
        let err = SmsSettings::from_config(&ConfigSection::from_pairs(pairs.clone())).unwrap_err();
        assert_eq!(err.var, "SMS_WEBHOOK_URL");
        assert!(err.problem.contains("is required"));
        pairs.push(("SMS_INSECURE_NO_SIGNATURE", "true"));
        let s = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert!(s.webhook_url.is_none());
    }

    #[test]
    fn fallback_url_is_optional_and_must_differ_from_the_webhook_url() {
        let s = SmsSettings::from_config(&ConfigSection::from_pairs(base())).unwrap();
        assert_eq!(s.fallback_url, None);
        let mut pairs = base();
        pairs.push((
            "SMS_FALLBACK_URL",
            "https://standby.example.com/webhooks/twilio",
        ));
        let s = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(
            s.fallback_url.as_deref(),
            Some("https://standby.example.com/webhooks/twilio")
        );
        for same in [
            "https://bot.example.com/webhooks/twilio",
            "https://bot.example.com:443/webhooks/twilio",
        ] {
            let mut pairs = base();
            pairs.push(("SMS_FALLBACK_URL", same));
            let err = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, "SMS_FALLBACK_URL");
            assert!(
                err.to_string().contains("same URL as SMS_WEBHOOK_URL"),
                "{err}"
            );
        }
        let mut pairs = base();
        pairs.push(("SMS_FALLBACK_URL", "standby.example.com"));
        let err = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
        assert_eq!(err.var, "SMS_FALLBACK_URL", "{err}");
    }

    #[test]
    fn enablement_says_why_not() {
        assert_eq!(
            enabled(&ConfigSection::from_pairs([])),
            Err("TWILIO_ACCOUNT_SID not set".into())
        );
        assert_eq!(
            enabled(&ConfigSection::from_pairs([
                ("TWILIO_ACCOUNT_SID", SID),
                ("TWILIO_ENABLED", "false")
            ])),
            Err("TWILIO_ENABLED=false".into())
        );
        assert_eq!(
            enabled(&ConfigSection::from_pairs([("TWILIO_ACCOUNT_SID", SID)])),
            Ok(())
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_PHONE_NUMBER", "call me"),
            ("SMS_WEBHOOK_PORT", "eighty"),
            ("SMS_WEBHOOK_HOST", "localhost:80"),
            ("SMS_ALLOWED_USERS", "+15550001111, nope"),
            ("SMS_ALLOW_ALL_USERS", "maybe"),
            ("SMS_HOME_CHANNEL", "my phone"),
            ("SMS_RATE_LIMIT_PER_MINUTE", "lots"),
            ("SMS_UNAUTHORIZED", "allow"),
        ] {
            let mut pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != var).collect();
            pairs.push((var, value));
            let err = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.origin.is_some(), "{err}");
        }
    }
}
