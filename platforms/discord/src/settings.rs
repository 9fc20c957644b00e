//! Discord's settings, parsed and validated from the unified configuration, and the snowflake
//! ids they hold.
use std::fmt;

use platform_api::{
    AccessPolicy, AccessSettings, ConfigError, ConfigSection, HomeChannel, Setting, SettingKind,
    access_settings, prompt_hint, redact_url,
};

/// `DISCORD_BOT_TOKEN`.
pub const BOT_TOKEN: Setting = Setting::new(
    "DISCORD_BOT_TOKEN",
    "bot_token",
    "Bot token from the Discord Developer Portal (your app → Bot → Reset Token)",
)
.required()
.secret();

/// Who may chat, what a stranger gets, how often a sender may start a turn, and where scheduled
/// output goes: `DISCORD_ALLOWED_USERS` (user ids), `DISCORD_ALLOW_ALL_USERS`,
/// `DISCORD_HOME_CHANNEL` (a channel id), `DISCORD_HOME_CHANNEL_NAME`,
/// `DISCORD_RATE_LIMIT_PER_MINUTE` and `DISCORD_UNAUTHORIZED`.
///
/// The home channel is a channel id, a whole number, so it is declared as one: the setup wizard
/// then refuses anything else.
pub const ACCESS: AccessSettings = {
    let mut access = access_settings!("DISCORD", "Discord user ids", SettingKind::List);
    access.home_channel = access.home_channel.kind(SettingKind::Number);
    access.home_channel.help =
        "Discord channel id that cron jobs and notifications are delivered to";
    access
};

/// `DISCORD_API_BASE_URL`.
pub const API_BASE_URL: Setting = Setting::new(
    "DISCORD_API_BASE_URL",
    "api_base_url",
    "Base URL of Discord's REST API (change it only to point at a stand-in)",
)
.default(DEFAULT_API_BASE_URL)
.kind(SettingKind::Url);

/// `DISCORD_GATEWAY_URL`.
pub const GATEWAY_URL: Setting = Setting::new(
    "DISCORD_GATEWAY_URL",
    "gateway_url",
    "WebSocket URL of Discord's gateway (unset: the one GET /gateway/bot names)",
);

/// `DISCORD_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "DISCORD_ENABLED",
    "enabled",
    "false keeps Discord off even when DISCORD_BOT_TOKEN is set",
)
.kind(SettingKind::Bool);

/// `DISCORD_STREAMING`.
pub const STREAMING: Setting = Setting::new(
    "DISCORD_STREAMING",
    "streaming",
    "Show a reply as it is written: post its first text, then edit the message as more arrives (false: the finished reply only)",
)
.default("true")
.kind(SettingKind::Bool);

/// Where Discord's REST API lives, version 10.
pub const DEFAULT_API_BASE_URL: &str = "https://discord.com/api/v10";

/// `DISCORD_PROMPT_HINT`: what the agent is told about writing for Discord, after the persona.
pub const PROMPT_HINT: Setting = prompt_hint!(
    "DISCORD",
    "Your replies are sent as Discord messages: Markdown is fine; keep replies easy to read in a chat."
);
/// Every Discord setting, in the order the wizard asks and the docs list them.
pub const SETTINGS: &[Setting] = &[
    BOT_TOKEN,
    ACCESS.allowed_users,
    ACCESS.allow_all_users,
    ACCESS.home_channel,
    ACCESS.home_channel_name,
    PROMPT_HINT,
    ACCESS.rate_limit_per_minute,
    ACCESS.unauthorized,
    API_BASE_URL,
    GATEWAY_URL,
    STREAMING,
    ENABLED,
];

/// Enabled when the bot token is set, unless `DISCORD_ENABLED=false`.
pub fn enabled(section: &ConfigSection) -> Result<(), String> {
    match section.bool(ENABLED.env) {
        Err(e) => Err(e.to_string()),
        Ok(Some(false)) => Err("DISCORD_ENABLED=false".to_string()),
        Ok(_) if section.text(BOT_TOKEN.env).is_some() => Ok(()),
        Ok(_) => Err("DISCORD_BOT_TOKEN not set".to_string()),
    }
}

/// A Discord id (a snowflake: a whole number below 2⁶⁴), as typed: surrounding space, and the
/// mention forms Discord copies (`<@123>`, `<@!123>`, `<#123>`), are accepted.
pub fn parse_snowflake(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .map(|inner| {
            inner
                .strip_prefix("@!")
                .or_else(|| inner.strip_prefix('@'))
                .or_else(|| inner.strip_prefix('#'))
                .unwrap_or(inner)
        })
        .unwrap_or(trimmed);
    if inner.is_empty() {
        return Err("empty id: expected a Discord id such as 1234567890123456789".to_string());
    }
    match inner.parse::<u64>() {
        Ok(0) | Err(_) => Err(format!(
            "{trimmed:?} is not a Discord id: expected a number such as 1234567890123456789 (turn on Developer Mode in Discord, then right-click → Copy ID)"
        )),
        Ok(id) => Ok(id.to_string()),
    }
}

/// A chat as an operator types it (`hermes send discord:CHANNEL`): a channel id.
pub fn parse_chat(chat: &str) -> Result<String, String> {
    parse_snowflake(chat)
}

/// Discord's validated settings. `Debug` never shows the token.
#[derive(Clone)]
pub struct DiscordSettings {
    /// The bot token (never logged).
    pub token: String,
    /// Base URL of the REST API, without a trailing `/`.
    pub api_base_url: String,
    /// The gateway's WebSocket URL, when configured; otherwise asked of `GET /gateway/bot`.
    pub gateway_url: Option<String>,
    /// Who may chat, and what a stranger gets.
    pub access: AccessPolicy,
    /// Where cron output and notifications go: a channel id and its display name.
    pub home: Option<HomeChannel>,
    /// Whether replies are shown as they are written, in a message edited as they grow.
    pub streaming: bool,
}

impl fmt::Debug for DiscordSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordSettings")
            .field("token", &"<redacted>")
            .field("api_base_url", &redact_url(&self.api_base_url))
            .field("gateway_url", &self.gateway_url.as_deref().map(redact_url))
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

impl DiscordSettings {
    /// Parses and validates every Discord setting.
    pub fn from_config(section: &ConfigSection) -> Result<Self, ConfigError> {
        let token = section.required(&BOT_TOKEN)?.trim();
        // The portal shows the bare token; a copy from an `Authorization` header has the scheme.
        let token = token.strip_prefix("Bot ").unwrap_or(token).trim();
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                section,
                BOT_TOKEN.env,
                "contains spaces or control characters: paste the token exactly as the Developer Portal shows it",
            ));
        }
        let api_base_url = section
            .url(API_BASE_URL.env)?
            .unwrap_or_else(|| DEFAULT_API_BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let gateway_url = match section.text(GATEWAY_URL.env).map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                let lower = url.to_ascii_lowercase();
                let ok = ["ws://", "wss://"]
                    .iter()
                    .any(|scheme| lower.starts_with(scheme) && url.len() > scheme.len());
                if !ok {
                    return Err(invalid(
                        section,
                        GATEWAY_URL.env,
                        &format!(
                            "expected a ws:// or wss:// URL such as wss://gateway.discord.gg, got {:?}",
                            redact_url(url)
                        ),
                    ));
                }
                Some(url.to_string())
            }
        };
        let access = ACCESS.policy(section, parse_snowflake)?;
        let home = ACCESS.home_channel(section, parse_chat)?;
        Ok(DiscordSettings {
            token: token.to_string(),
            api_base_url,
            gateway_url,
            access,
            home,
            streaming: section.bool(STREAMING.env)?.unwrap_or(true),
        })
    }
}

fn invalid(section: &ConfigSection, var: &str, problem: &str) -> ConfigError {
    ConfigError::new(var, section.get(var).map(|v| v.origin.clone()), problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.0123456789abcdefghijklmnopqrstuvwxyzAB";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("DISCORD_BOT_TOKEN", TOKEN)]
    }

    #[test]
    fn parses_a_complete_configuration() {
        let mut pairs = base();
        pairs.push((
            "DISCORD_ALLOWED_USERS",
            "123456789012345678, <@!223456789012345678>",
        ));
        pairs.push(("DISCORD_HOME_CHANNEL", " <#323456789012345678> "));
        pairs.push(("DISCORD_HOME_CHANNEL_NAME", "ops"));
        let s = DiscordSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        assert_eq!(s.api_base_url, DEFAULT_API_BASE_URL);
        assert_eq!(s.gateway_url, None);
        assert!(s.access.allows("123456789012345678"));
        assert!(s.access.allows("223456789012345678"));
        assert!(!s.access.allows("999"));
        let home = s.home.clone().expect("a home channel");
        assert_eq!(
            (home.chat.as_str(), home.name.as_str()),
            ("323456789012345678", "ops")
        );
        assert!(!format!("{s:?}").contains(TOKEN));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("DISCORD_ALLOWED_USERS", "123456789012345678, alice"),
            ("DISCORD_HOME_CHANNEL", "general"),
            ("DISCORD_HOME_CHANNEL", "-1001234567890"),
            ("DISCORD_API_BASE_URL", "discord.com/api"),
            ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg"),
            ("DISCORD_BOT_TOKEN", "two words"),
            ("DISCORD_ALLOW_ALL_USERS", "maybe"),
        ] {
            let mut pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != var).collect();
            pairs.push((var, value));
            let err = DiscordSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(!err.to_string().contains(TOKEN), "{err}");
        }
        assert!(
            ACCESS.home_channel.validate("general").is_err(),
            "the wizard refuses a channel name"
        );
    }

    #[test]
    fn the_token_may_carry_its_scheme_and_urls_lose_their_slash() {
        let s = DiscordSettings::from_config(&ConfigSection::from_pairs([
            ("DISCORD_BOT_TOKEN", "Bot abc.def.ghi"),
            ("DISCORD_API_BASE_URL", "http://127.0.0.1:9/api/v10/"),
            ("DISCORD_GATEWAY_URL", "ws://127.0.0.1:9/gateway"),
        ]))
        .unwrap();
        assert_eq!(s.token, "abc.def.ghi");
        assert_eq!(s.api_base_url, "http://127.0.0.1:9/api/v10");
        assert_eq!(s.gateway_url.as_deref(), Some("ws://127.0.0.1:9/gateway"));
    }

    #[test]
    fn snowflakes_are_whole_numbers_as_discord_copies_them() {
        assert_eq!(parse_snowflake(" 42 ").as_deref(), Ok("42"));
        assert_eq!(parse_snowflake("<@42>").as_deref(), Ok("42"));
        assert_eq!(parse_snowflake("<@!42>").as_deref(), Ok("42"));
        assert_eq!(parse_snowflake("<#42>").as_deref(), Ok("42"));
        for bad in ["", " ", "0", "-5", "12a", "18446744073709551616", "<@>"] {
            assert!(parse_snowflake(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enablement_follows_the_token_unless_switched_off() {
        assert_eq!(
            enabled(&ConfigSection::from_pairs([])),
            Err("DISCORD_BOT_TOKEN not set".into())
        );
        assert_eq!(enabled(&ConfigSection::from_pairs(base())), Ok(()));
        let mut off = base();
        off.push(("DISCORD_ENABLED", "false"));
        assert_eq!(
            enabled(&ConfigSection::from_pairs(off)),
            Err("DISCORD_ENABLED=false".into())
        );
    }
}
