//! The JSON webhook's settings, parsed and validated from the unified configuration.
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use platform_api::{AccessPolicy, ConfigError, ConfigSection, Setting, SettingKind};

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
/// `WEBHOOK_ALLOWED_USERS`.
pub const ALLOWED_USERS: Setting = Setting::new(
    "WEBHOOK_ALLOWED_USERS",
    "allowed_users",
    "Comma-separated sender ids allowed to chat (everyone else is denied)",
)
.kind(SettingKind::List);
/// `WEBHOOK_ALLOW_ALL_USERS`.
pub const ALLOW_ALL_USERS: Setting = Setting::new(
    "WEBHOOK_ALLOW_ALL_USERS",
    "allow_all_users",
    "true lets every sender the other system posts for chat with the agent",
)
.kind(SettingKind::Bool);
/// `WEBHOOK_HOME_CHANNEL`.
pub const HOME_CHANNEL: Setting = Setting::new(
    "WEBHOOK_HOME_CHANNEL",
    "home_channel",
    "Chat id that cron jobs and notifications are delivered to",
);
/// `WEBHOOK_HOME_CHANNEL_NAME`.
pub const HOME_CHANNEL_NAME: Setting = Setting::new(
    "WEBHOOK_HOME_CHANNEL_NAME",
    "home_channel_name",
    "Display name of the home channel",
)
.default("Home");
/// `WEBHOOK_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "WEBHOOK_ENABLED",
    "enabled",
    "false keeps the JSON webhook off even when WEBHOOK_SECRET is set",
)
.kind(SettingKind::Bool);
/// `WEBHOOK_RATE_LIMIT_PER_MINUTE`.
pub const RATE_LIMIT_PER_MINUTE: Setting = Setting::new(
    "WEBHOOK_RATE_LIMIT_PER_MINUTE",
    "rate_limit_per_minute",
    "Agent turns allowed per sender per minute (unset: no limit)",
)
.kind(SettingKind::Number);

/// Every JSON webhook setting, in the order the wizard asks and the docs list them.
pub const SETTINGS: &[Setting] = &[
    SECRET,
    OUTBOUND_URL,
    PORT,
    HOST,
    ALLOWED_USERS,
    ALLOW_ALL_USERS,
    HOME_CHANNEL,
    HOME_CHANNEL_NAME,
    ENABLED,
    RATE_LIMIT_PER_MINUTE,
];

/// Shortest shared secret accepted: anyone who guesses it can talk to the agent.
pub const MIN_SECRET_CHARS: usize = 16;

/// Whether the JSON webhook is enabled: `WEBHOOK_SECRET` set (or `WEBHOOK_ENABLED=true`),
/// unless `WEBHOOK_ENABLED=false`.
pub fn enabled(section: &ConfigSection) -> Result<(), String> {
    match section.bool(ENABLED.env) {
        Err(e) => Err(e.to_string()),
        Ok(Some(false)) => Err("WEBHOOK_ENABLED=false".to_string()),
        Ok(Some(true)) => Ok(()),
        Ok(None) if section.text(SECRET.env).is_some() => Ok(()),
        Ok(None) => Err("WEBHOOK_SECRET not set".to_string()),
    }
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
    /// Who may chat.
    pub access: AccessPolicy,
    /// Home channel chat id.
    pub home_channel: Option<String>,
    /// Home channel display name.
    pub home_channel_name: String,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secret", &"<redacted>")
            .field("outbound_url", &self.outbound_url)
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
        let allowed: HashSet<String> = section.list(ALLOWED_USERS.env).into_iter().collect();
        let rate_limit_per_minute = section
            .number(RATE_LIMIT_PER_MINUTE.env)?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let access = AccessPolicy {
            allow_all: section.bool(ALLOW_ALL_USERS.env)?.unwrap_or(false),
            allowed,
            rate_limit_per_minute,
            ..AccessPolicy::default()
        };
        let home_channel = match section.text(HOME_CHANNEL.env) {
            None => None,
            Some(chat) => Some(crate::webhook::parse_chat(chat).map_err(|problem| {
                ConfigError::new(
                    HOME_CHANNEL.env,
                    section.get(HOME_CHANNEL.env).map(|v| v.origin.clone()),
                    problem,
                )
            })?),
        };
        Ok(WebhookSettings {
            secret,
            outbound_url,
            listen: SocketAddr::new(host, port),
            access,
            home_channel,
            home_channel_name: section
                .text(HOME_CHANNEL_NAME.env)
                .unwrap_or("Home")
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.home_channel.as_deref(), Some("ops"));
        assert!(!format!("{s:?}").contains(SECRET_VALUE));
    }

    #[test]
    fn a_short_secret_or_a_bad_url_names_its_variable() {
        for (var, value) in [
            ("WEBHOOK_SECRET", "hunter2"),
            ("WEBHOOK_OUTBOUND_URL", "bridge.example.com"),
            ("WEBHOOK_PORT", "eighty"),
            ("WEBHOOK_ALLOW_ALL_USERS", "maybe"),
        ] {
            let mut pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != var).collect();
            pairs.push((var, value));
            let err = WebhookSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, var, "{err}");
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
