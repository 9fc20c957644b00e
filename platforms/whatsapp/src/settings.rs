//! The WhatsApp platform's settings: its sender, webhook, template and access settings, on the
//! Twilio account SMS uses too ([`hermes_twilio::account`]: `TWILIO_ACCOUNT_SID`,
//! `TWILIO_AUTH_TOKEN`, `TWILIO_API_BASE_URL`, `TWILIO_WEBHOOK_SHARED_KEY`), parsed and
//! validated.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hermes_twilio::account::{self as twilio, TwilioAccount};
use hermes_twilio::messages::Line;
use hermes_twilio::signature::url_variants;
use hermes_twilio::status::status_callback_url;
use platform_api::{
    AccessPolicy, AccessSettings, ConfigError, ConfigSection, HomeChannel, Setting, SettingKind,
    access_settings, phone, prompt_hint, redact_url,
};

/// `TWILIO_WHATSAPP_NUMBER`.
pub const WHATSAPP_NUMBER: Setting = Setting::new(
    "TWILIO_WHATSAPP_NUMBER",
    "whatsapp_number",
    "Your WhatsApp sender on the Twilio account in E.164 form (the Sandbox's is +14155238886)",
)
.required()
.kind(SettingKind::Phone);
/// `WHATSAPP_WEBHOOK_URL`.
pub const WEBHOOK_URL: Setting = Setting::new(
    "WHATSAPP_WEBHOOK_URL",
    "webhook_url",
    "Public URL of the WhatsApp webhook as set in the Twilio Console, e.g. https://bot.example.com/webhooks/whatsapp",
)
.required()
.kind(SettingKind::Url);
/// `WHATSAPP_WEBHOOK_PORT`.
pub const WEBHOOK_PORT: Setting = Setting::new(
    "WHATSAPP_WEBHOOK_PORT",
    "webhook_port",
    "Port the WhatsApp webhook listens on; equal to SMS_WEBHOOK_PORT, SMS and WhatsApp share one listener",
)
.default("8080")
.kind(SettingKind::Port);
/// `WHATSAPP_TEMPLATE_SID`.
pub const TEMPLATE_SID: Setting = Setting::new(
    "WHATSAPP_TEMPLATE_SID",
    "template_sid",
    "Approved content template (HX…) with one variable {{1}}: what goes to a chat outside WhatsApp's 24-hour window (cron, hermes send, a late reply)",
)
.kind(SettingKind::Sid("HX"));
/// `WHATSAPP_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "WHATSAPP_ENABLED",
    "enabled",
    "false keeps WhatsApp off even when TWILIO_WHATSAPP_NUMBER is set",
)
.kind(SettingKind::Bool);
/// `TWILIO_ENABLED`, the SMS platform's switch, asked here too: SMS starts whenever the account
/// is set, and an operator using it for WhatsApp alone turns SMS off. Its key in WhatsApp's
/// table is `sms_enabled` (`enabled` is `WHATSAPP_ENABLED`'s).
pub const SMS_ENABLED: Setting = Setting::new(
    "TWILIO_ENABLED",
    "sms_enabled",
    "false keeps SMS off even when TWILIO_ACCOUNT_SID is set: WhatsApp alone on the account",
)
.kind(SettingKind::Bool);
/// Who may write to the agent, what a stranger gets, how often a sender may start a turn, and
/// where scheduled output goes: `WHATSAPP_ALLOWED_USERS`, `WHATSAPP_ALLOW_ALL_USERS`,
/// `WHATSAPP_HOME_CHANNEL`, `WHATSAPP_HOME_CHANNEL_NAME`, `WHATSAPP_RATE_LIMIT_PER_MINUTE` and
/// `WHATSAPP_UNAUTHORIZED`.
pub const ACCESS: AccessSettings =
    access_settings!("WHATSAPP", "phone numbers", SettingKind::PhoneList);
/// `WHATSAPP_PROMPT_HINT`: what the agent is told about writing for WhatsApp, after the persona.
pub const PROMPT_HINT: Setting = prompt_hint!(
    "WHATSAPP",
    "Your replies are sent as WhatsApp messages: keep them conversational and short; *bold*, _italic_ and lists are shown, tables and headings are not."
);

/// Every WhatsApp setting, in the order the wizard asks and the docs list them. The Twilio
/// account's settings are the SMS platform's, read from the same variables.
pub const SETTINGS: &[Setting] = &[
    twilio::ACCOUNT_SID,
    twilio::AUTH_TOKEN,
    WHATSAPP_NUMBER,
    WEBHOOK_URL,
    twilio::WEBHOOK_SHARED_KEY,
    WEBHOOK_PORT,
    hermes_twilio::webhook::WEBHOOK_HOST,
    TEMPLATE_SID,
    SMS_ENABLED,
    ACCESS.allowed_users,
    ACCESS.allow_all_users,
    ACCESS.home_channel,
    ACCESS.home_channel_name,
    PROMPT_HINT,
    twilio::API_BASE_URL,
    ENABLED,
    ACCESS.rate_limit_per_minute,
    twilio::REQUEST_TIMEOUT_SECS,
    twilio::RECONCILE_AFTER_SECS,
    ACCESS.unauthorized,
];

/// Whether WhatsApp is enabled: `TWILIO_WHATSAPP_NUMBER` set (or `WHATSAPP_ENABLED=true`),
/// unless `WHATSAPP_ENABLED=false`.
pub fn enabled(section: &ConfigSection) -> Result<(), String> {
    section.enabled_by(ENABLED.env, WHATSAPP_NUMBER.env)
}

/// The WhatsApp platform's validated settings. `Debug` never shows the auth token, the shared
/// key or a URL's password.
#[derive(Clone)]
pub struct WhatsAppSettings {
    /// The Twilio account (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, …), SMS's too.
    pub account: TwilioAccount,
    /// Our WhatsApp sender, E.164.
    pub number: String,
    /// The sender as Twilio addresses it: `whatsapp:` + [`Self::number`].
    pub from: String,
    /// Public webhook URL, which signatures are computed over.
    pub webhook_url: String,
    /// Address the webhook server binds (shared with SMS when equal).
    pub listen: SocketAddr,
    /// The template sent outside the 24-hour window.
    pub template_sid: Option<String>,
    /// Who may chat.
    pub access: AccessPolicy,
    /// Where cron output and notifications go.
    pub home: Option<HomeChannel>,
}

impl std::fmt::Debug for WhatsAppSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppSettings")
            .field("account", &self.account)
            .field("number", &phone::redact(&self.number))
            .field("webhook_url", &redact_url(&self.webhook_url))
            .field("listen", &self.listen)
            .field("template_sid", &self.template_sid)
            .finish_non_exhaustive()
    }
}

impl WhatsAppSettings {
    /// Parses and validates every WhatsApp setting.
    pub fn from_config(section: &ConfigSection) -> Result<Self, ConfigError> {
        let account = TwilioAccount::from_config(section)?;
        let number = section.phone(WHATSAPP_NUMBER.env)?.ok_or_else(|| {
            ConfigError::new(
                WHATSAPP_NUMBER.env,
                None,
                format!("is required but not set ({})", WHATSAPP_NUMBER.help),
            )
        })?;
        let webhook_url = section.url(WEBHOOK_URL.env)?.ok_or_else(|| {
            ConfigError::new(
                WEBHOOK_URL.env,
                None,
                "is required: set it to the public URL Twilio posts WhatsApp messages to, e.g. https://bot.example.com/webhooks/whatsapp (`hermes gateway setup --platform whatsapp` asks for it)",
            )
        })?;
        let template_sid = section.text(TEMPLATE_SID.env).map(str::to_string);
        if let Some(sid) = &template_sid {
            validate(section, &TEMPLATE_SID, sid)?;
        }
        let port = section.port(WEBHOOK_PORT.env)?.unwrap_or(8080);
        let host = section
            .ip(hermes_twilio::webhook::WEBHOOK_HOST.env)?
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(WhatsAppSettings {
            account,
            from: format!("whatsapp:{number}"),
            number,
            webhook_url,
            listen: SocketAddr::new(host, port),
            template_sid,
            access: ACCESS.policy(section, phone::normalize)?,
            home: ACCESS.home_channel(section, phone::normalize)?,
        })
    }

    /// The WhatsApp line: `whatsapp:` addresses, status callbacks to `WHATSAPP_WEBHOOK_URL` +
    /// `/status`; a look-up also matches the template's text around a part's.
    pub fn line(&self) -> Line<'_> {
        Line {
            account: &self.account,
            from: &self.from,
            messaging_service_sid: None,
            prefix: crate::webhook::WHATSAPP.prefix,
            status_callback: Some(status_callback_url(&self.webhook_url)),
            templated: self.template_sid.is_some(),
            classify: crate::error::classify,
        }
    }

    /// The URLs a webhook's signature may be computed over.
    pub fn url_variants(&self) -> Vec<String> {
        url_variants(&self.webhook_url)
    }
}

/// Checks a value against its setting's kind, naming the setting and where it was set.
fn validate(section: &ConfigSection, setting: &Setting, value: &str) -> Result<(), ConfigError> {
    setting.validate(value).map_err(|problem| {
        ConfigError::new(
            setting.env,
            section.get(setting.env).map(|v| v.origin.clone()),
            problem,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "777777"),
            ("TWILIO_WHATSAPP_NUMBER", "+1 415 523 8886"),
            (
                "WHATSAPP_WEBHOOK_URL",
                "https://bot.example.com/webhooks/whatsapp",
            ),
        ]
    }

    #[test]
    fn parses_a_complete_configuration_on_the_sms_account() {
        let mut pairs = base();
        pairs.push(("WHATSAPP_ALLOWED_USERS", "+15550001111"));
        pairs.push((
            "WHATSAPP_TEMPLATE_SID",
            "HX0123456789abcdef0123456789abcdef",
        ));
        pairs.push(("SMS_WEBHOOK_HOST", "127.0.0.1"));
        let s = WhatsAppSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(s.number, "+14155238886");
        assert_eq!(s.from, "whatsapp:+14155238886");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.access.allows("+15550001111") && !s.access.allows("+15550002222"));
        let line = s.line();
        assert_eq!(line.prefix, "whatsapp:");
        assert!(line.templated);
        assert_eq!(
            line.status_callback.as_deref(),
            Some("https://bot.example.com/webhooks/whatsapp/status")
        );
        assert!(!format!("{s:?}").contains("777777"));
        assert!(!format!("{s:?}").contains("4155238886"));
    }

    #[test]
    fn refuses_what_it_cannot_run_with() {
        for (drop, var) in [
            ("WHATSAPP_WEBHOOK_URL", "WHATSAPP_WEBHOOK_URL"),
            ("TWILIO_WHATSAPP_NUMBER", "TWILIO_WHATSAPP_NUMBER"),
            ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"),
        ] {
            let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != drop).collect();
            let err = WhatsAppSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, var);
        }
        let mut pairs = base();
        pairs.push((
            "WHATSAPP_TEMPLATE_SID",
            "MG0123456789abcdef0123456789abcdef",
        ));
        let err = WhatsAppSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
        assert_eq!(err.var, "WHATSAPP_TEMPLATE_SID");
    }

    #[test]
    fn every_setting_has_a_variable_and_a_key_of_its_own() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.env, b.env);
                assert_ne!(a.key, b.key, "{} and {}", a.env, b.env);
            }
        }
    }

    #[test]
    fn turning_sms_off_leaves_whatsapp_on() {
        let mut pairs = base();
        pairs.push(("TWILIO_ENABLED", "false"));
        assert!(enabled(&ConfigSection::from_pairs(pairs)).is_ok());
    }

    #[test]
    fn enabled_by_the_number_unless_turned_off() {
        assert!(enabled(&ConfigSection::from_pairs(base())).is_ok());
        assert!(enabled(&ConfigSection::from_pairs([("TWILIO_ACCOUNT_SID", SID)])).is_err());
        let mut off = base();
        off.push(("WHATSAPP_ENABLED", "false"));
        assert_eq!(
            enabled(&ConfigSection::from_pairs(off)),
            Err("WHATSAPP_ENABLED=false".to_string())
        );
    }
}
