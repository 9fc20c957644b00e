//! The JSON webhook's settings, parsed and validated from the unified configuration.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use platform_api::{
    AccessPolicy, AccessSettings, ConfigError, ConfigSection, HomeChannel, Setting, SettingKind,
    access_settings, prompt_hint, redact_url,
};

use crate::webhook::parse_chat;

/// `WEBHOOK_SECRET`.
pub const SECRET: Setting = Setting::new(
    "WEBHOOK_SECRET",
    "secret",
    "Shared secret both sides send in the X-Hermes-Secret header (at least 16 characters)",
)
.required()
.secret();
/// `WEBHOOK_OUTBOUND_URL`.
pub const OUTBOUND_URL: Setting = Setting::new(
    "WEBHOOK_OUTBOUND_URL",
    "outbound_url",
    "URL every reply part is POSTed to as JSON, e.g. https://bridge.example.com/hermes",
)
.required()
.kind(SettingKind::Url);
/// `WEBHOOK_PORT`.
pub const PORT: Setting = Setting::new(
    "WEBHOOK_PORT",
    "port",
    "Port the JSON webhook server listens on",
)
.default("8090")
.kind(SettingKind::Port);
/// `WEBHOOK_HOST`.
pub const HOST: Setting = Setting::new(
    "WEBHOOK_HOST",
    "host",
    "Address the JSON webhook server binds",
)
.default("0.0.0.0")
.kind(SettingKind::Ip);
/// Who may chat, what a stranger gets, how often a sender may start a turn, and where scheduled
/// output goes: `WEBHOOK_ALLOWED_USERS`, `WEBHOOK_ALLOW_ALL_USERS`, `WEBHOOK_HOME_CHANNEL`,
/// `WEBHOOK_HOME_CHANNEL_NAME`, `WEBHOOK_RATE_LIMIT_PER_MINUTE` and `WEBHOOK_UNAUTHORIZED`.
pub const ACCESS: AccessSettings = access_settings!("WEBHOOK", "sender ids", SettingKind::List);
/// `WEBHOOK_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "WEBHOOK_ENABLED",
    "enabled",
    "false keeps the JSON webhook off even when WEBHOOK_SECRET is set",
)
.kind(SettingKind::Bool);

/// `WEBHOOK_PROMPT_HINT`: what the agent is told about writing for the JSON webhook, after the persona.
pub const PROMPT_HINT: Setting = prompt_hint!(
    "WEBHOOK",
    "Your replies are delivered as text to another system through a webhook, Markdown as written."
);
/// Every JSON webhook setting, in the order the wizard asks and the docs list them.
pub const SETTINGS: &[Setting] = &[
    SECRET,
    OUTBOUND_URL,
    PORT,
    HOST,
    ACCESS.allowed_users,
    ACCESS.allow_all_users,
    ACCESS.home_channel,
    ACCESS.home_channel_name,
    PROMPT_HINT,
    ENABLED,
    ACCESS.rate_limit_per_minute,
    ACCESS.unauthorized,
];

/// Shortest shared secret accepted: anyone who guesses it can talk to the agent.
pub const MIN_SECRET_CHARS: usize = 16;

/// Whether the JSON webhook is enabled: `WEBHOOK_SECRET` set (or `WEBHOOK_ENABLED=true`),
/// unless `WEBHOOK_ENABLED=false`.
pub fn enabled(section: &ConfigSection) -> Result<(), String> {
    section.enabled_by(ENABLED.env, SECRET.env)
}

/// The JSON webhook's validated settings. `Debug` never shows the secret.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The shared secret (never logged).
    pub secret: String,
    /// Where reply parts are POSTed.
    pub outbound_url: String,
    /// Address the inbound server binds.
    pub listen: SocketAddr,
    /// Who may chat, and what a stranger gets.
    pub access: AccessPolicy,
    /// Where cron output and notifications go: a chat id and its display name.
    pub home: Option<HomeChannel>,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secret", &"<redacted>")
            .field("outbound_url", &redact_url(&self.outbound_url))
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl WebhookSettings {
    /// Parses and validates every JSON webhook setting.
    pub fn from_config(section: &ConfigSection) -> Result<Self, ConfigError> {
        let secret = section.required(&SECRET)?.to_string();
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(ConfigError::new(
                SECRET.env,
                section.get(SECRET.env).map(|v| v.origin.clone()),
                format!(
                    "is too short: use at least {MIN_SECRET_CHARS} characters, e.g. the output of `openssl rand -hex 32`"
                ),
            ));
        }
        let outbound_url = section.url(OUTBOUND_URL.env)?.ok_or_else(|| {
            ConfigError::new(
                OUTBOUND_URL.env,
                None,
                format!("is required but not set ({})", OUTBOUND_URL.help),
            )
        })?;
        let port = section.port(PORT.env)?.unwrap_or(8090);
        let host = section
            .ip(HOST.env)?
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let access = ACCESS.policy(section, parse_chat)?;
        let home = ACCESS.home_channel(section, parse_chat)?;
        Ok(WebhookSettings {
            secret,
            outbound_url,
            listen: SocketAddr::new(host, port),
            access,
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_api::Unauthorized;

    const SECRET_VALUE: &str = "0123456789abcdef0123456789abcdef";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("WEBHOOK_SECRET", SECRET_VALUE),
            ("WEBHOOK_OUTBOUND_URL", "https://bridge.example.com/hermes"),
        ]
    }

    #[test]
    fn parses_a_complete_configuration() {
        let mut pairs = base();
        pairs.push(("WEBHOOK_ALLOWED_USERS", "alice, bob ,"));
        pairs.push(("WEBHOOK_HOME_CHANNEL", " ops "));
        let s = WebhookSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:8090");
        assert!(s.access.allows("alice") && s.access.allows("bob"));
        assert!(!s.access.allows("mallory"));
        assert_eq!(s.access.unauthorized, Unauthorized::Ignore);
        let home = s.home.as_ref().expect("home channel set");
        assert_eq!((home.chat.as_str(), home.name.as_str()), ("ops", "Home"));
        assert!(!format!("{s:?}").contains(SECRET_VALUE));
    }

    #[test]
    fn strangers_can_be_offered_pairing() {
        let s = WebhookSettings::from_config(&ConfigSection::from_pairs(base())).unwrap();
        assert_eq!(s.access.unauthorized, Unauthorized::Ignore);
        let mut pairs = base();
        pairs.push(("WEBHOOK_UNAUTHORIZED", "pair"));
        pairs.push(("WEBHOOK_RATE_LIMIT_PER_MINUTE", "4"));
        pairs.push(("WEBHOOK_HOME_CHANNEL", "ops"));
        pairs.push(("WEBHOOK_HOME_CHANNEL_NAME", "Operations"));
        let s = WebhookSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(s.access.unauthorized, Unauthorized::Pair);
        assert_eq!(s.access.rate_limit_per_minute, Some(4));
        assert_eq!(s.home.map(|home| home.name).as_deref(), Some("Operations"));
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
        assert!(names.contains(&"WEBHOOK_UNAUTHORIZED"));
        assert_eq!(ACCESS.home_channel.kind, SettingKind::Text);
    }

    #[test]
    fn a_bad_value_names_its_variable_and_origin() {
        for (var, value) in [
            ("WEBHOOK_SECRET", "hunter2"),
            ("WEBHOOK_OUTBOUND_URL", "bridge.example.com"),
            ("WEBHOOK_PORT", "eighty"),
            ("WEBHOOK_ALLOW_ALL_USERS", "maybe"),
            ("WEBHOOK_ALLOWED_USERS", "alice, bad\u{7}id"),
            ("WEBHOOK_HOME_CHANNEL", "ops\u{0}room"),
            ("WEBHOOK_RATE_LIMIT_PER_MINUTE", "lots"),
            ("WEBHOOK_UNAUTHORIZED", "allow"),
        ] {
            let mut pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != var).collect();
            pairs.push((var, value));
            let err = WebhookSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.origin.is_some(), "{err}");
        }
    }

    #[test]
    fn enablement_follows_the_secret_unless_switched_off() {
        let none = ConfigSection::from_pairs([]);
        assert_eq!(enabled(&none), Err("WEBHOOK_SECRET not set".into()));
        let set = ConfigSection::from_pairs([("WEBHOOK_SECRET", SECRET_VALUE)]);
        assert_eq!(enabled(&set), Ok(()));
        let off = ConfigSection::from_pairs([
            ("WEBHOOK_SECRET", SECRET_VALUE),
            ("WEBHOOK_ENABLED", "false"),
        ]);
        assert_eq!(enabled(&off), Err("WEBHOOK_ENABLED=false".into()));
    }
}
