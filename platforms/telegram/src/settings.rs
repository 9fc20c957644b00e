//! Telegram's settings, parsed and validated from the unified configuration.
//!
//! The variable names are Hermes Agent's: `TELEGRAM_BOT_TOKEN`, the six access settings
//! (`TELEGRAM_ALLOWED_USERS` …), `TELEGRAM_API_BASE_URL`, and the webhook trio
//! `TELEGRAM_WEBHOOK_URL` / `_PORT` / `_SECRET`. Without `TELEGRAM_WEBHOOK_URL` the gateway
//! long-polls `getUpdates`, which needs no public address.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::http::Uri;
use platform_api::{
    AccessPolicy, AccessSettings, ConfigError, ConfigSection, HomeChannel, Setting, SettingKind,
    access_settings, prompt_hint, redact_url,
};

/// `TELEGRAM_BOT_TOKEN`.
pub const BOT_TOKEN: Setting = Setting::new(
    "TELEGRAM_BOT_TOKEN",
    "bot_token",
    "Bot token from @BotFather, such as 123456789:AAH…",
)
.required()
.secret();
/// The access settings: `TELEGRAM_ALLOWED_USERS` (numeric user ids), `TELEGRAM_ALLOW_ALL_USERS`,
/// `TELEGRAM_HOME_CHANNEL` (a chat id), `TELEGRAM_HOME_CHANNEL_NAME`,
/// `TELEGRAM_RATE_LIMIT_PER_MINUTE` and `TELEGRAM_UNAUTHORIZED`.
pub const ACCESS: AccessSettings =
    access_settings!("TELEGRAM", "Telegram user ids", SettingKind::List);
/// `TELEGRAM_ALLOWED_USERS`.
pub const ALLOWED_USERS: Setting = ACCESS.allowed_users;
/// `TELEGRAM_ALLOW_ALL_USERS`.
pub const ALLOW_ALL_USERS: Setting = ACCESS.allow_all_users;
/// `TELEGRAM_HOME_CHANNEL`.
pub const HOME_CHANNEL: Setting = ACCESS.home_channel;
/// `TELEGRAM_HOME_CHANNEL_NAME`.
pub const HOME_CHANNEL_NAME: Setting = ACCESS.home_channel_name;
/// `TELEGRAM_API_BASE_URL`.
pub const API_BASE_URL: Setting = Setting::new(
    "TELEGRAM_API_BASE_URL",
    "api_base_url",
    "Bot API server (a local Bot API server or an emulator in place of Telegram's)",
)
.default(DEFAULT_API_BASE_URL)
.kind(SettingKind::Url);
/// `TELEGRAM_WEBHOOK_URL`.
pub const WEBHOOK_URL: Setting = Setting::new(
    "TELEGRAM_WEBHOOK_URL",
    "webhook_url",
    "Public HTTPS URL Telegram posts updates to; unset: the gateway polls Telegram instead",
)
.kind(SettingKind::Url);
/// `TELEGRAM_WEBHOOK_PORT`.
pub const WEBHOOK_PORT: Setting = Setting::new(
    "TELEGRAM_WEBHOOK_PORT",
    "webhook_port",
    "Port the webhook server listens on, in webhook mode",
)
.default("8443")
.kind(SettingKind::Port);
/// `TELEGRAM_WEBHOOK_SECRET`.
pub const WEBHOOK_SECRET: Setting = Setting::new(
    "TELEGRAM_WEBHOOK_SECRET",
    "webhook_secret",
    "Secret Telegram sends with every webhook post (1-256 of A-Z a-z 0-9 _ -); required in webhook mode",
)
.secret();
/// `TELEGRAM_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "TELEGRAM_ENABLED",
    "enabled",
    "false keeps Telegram off even when TELEGRAM_BOT_TOKEN is set",
)
.kind(SettingKind::Bool);

/// `TELEGRAM_STREAMING`.
pub const STREAMING: Setting = Setting::new(
    "TELEGRAM_STREAMING",
    "streaming",
    "Show a reply in a private chat as it is written, as a draft (false: the finished reply only)",
)
.default("true")
.kind(SettingKind::Bool);

/// Telegram's own Bot API server.
pub const DEFAULT_API_BASE_URL: &str = "https://api.telegram.org";
/// Where the webhook server listens by default (one of the four ports Telegram posts to).
pub const DEFAULT_WEBHOOK_PORT: u16 = 8443;
/// Longest webhook secret Telegram accepts.
pub const MAX_SECRET_CHARS: usize = 256;

/// `TELEGRAM_PROMPT_HINT`: what the agent is told about writing for Telegram, after the persona.
pub const PROMPT_HINT: Setting = prompt_hint!(
    "TELEGRAM",
    "Your replies are sent as Telegram messages: Markdown (bold, italics, code, links, lists) is fine; avoid tables, and keep replies easy to read on a phone."
);
/// Every Telegram setting, in the order the wizard asks and the docs list them.
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
    WEBHOOK_URL,
    WEBHOOK_PORT,
    WEBHOOK_SECRET,
    STREAMING,
    ENABLED,
];

/// Enabled when the bot token is set, unless `TELEGRAM_ENABLED=false`.
pub fn enabled(section: &ConfigSection) -> Result<(), String> {
    match section.bool(ENABLED.env) {
        Err(e) => Err(e.to_string()),
        Ok(Some(false)) => Err("TELEGRAM_ENABLED=false".to_string()),
        Ok(_) if section.text(BOT_TOKEN.env).is_some() => Ok(()),
        Ok(_) => Err("TELEGRAM_BOT_TOKEN not set".to_string()),
    }
}

/// A chat id as typed by an operator: an integer, negative for groups (`-1001234567890`).
///
/// Usernames (`@channel`) are refused: a chat keeps its id for life, and the allowlist and
/// the history are keyed by ids.
pub fn parse_chat(chat: &str) -> Result<String, String> {
    let chat = chat.trim();
    if chat.is_empty() {
        return Err("empty chat id".to_string());
    }
    match chat.parse::<i64>() {
        Ok(id) if id != 0 => Ok(id.to_string()),
        _ => Err(format!(
            "expected a numeric Telegram chat id such as 123456789 (a user) or -1001234567890 (a group), got {chat:?}"
        )),
    }
}

/// One allowlist item: a numeric user id (positive).
pub fn parse_user(user: &str) -> Result<String, String> {
    let user = user.trim();
    match user.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id.to_string()),
        _ => Err(format!(
            "expected numeric Telegram user ids such as 123456789, got {user:?} (usernames can change hands; message @userinfobot to learn your id)"
        )),
    }
}

/// Webhook mode's settings.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The public URL Telegram posts to.
    pub url: String,
    /// The path of that URL, where the route is served.
    pub path: String,
    /// Address the webhook server binds.
    pub listen: SocketAddr,
    /// The secret Telegram sends in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret: String,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &redact_url(&self.url))
            .field("listen", &self.listen)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Telegram's validated settings. `Debug` never shows the token or the secret.
#[derive(Clone)]
pub struct TelegramSettings {
    /// The bot token (never logged: it is a password, and it is in every API URL).
    pub token: String,
    /// The Bot API server, without a trailing `/`.
    pub api_base_url: String,
    /// Who may chat.
    pub access: AccessPolicy,
    /// Where scheduled output goes.
    pub home_channel: Option<HomeChannel>,
    /// Webhook mode, when `TELEGRAM_WEBHOOK_URL` is set; long polling otherwise.
    pub webhook: Option<WebhookSettings>,
    /// Whether replies in private chats are shown as drafts while they are written.
    pub streaming: bool,
}

impl fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("token", &"<redacted>")
            .field("api_base_url", &redact_url(&self.api_base_url))
            .field("home_channel", &self.home_channel)
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

fn invalid(section: &ConfigSection, var: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(var, section.get(var).map(|v| v.origin.clone()), problem)
}

/// Checks that a token can go into a URL path. Its shape (`<bot id>:<secret>`) is left to
/// Telegram, which answers 401 for a wrong one: `hermes gateway doctor` says so.
fn check_token(section: &ConfigSection, token: &str) -> Result<(), ConfigError> {
    let unsafe_char = |c: char| c.is_whitespace() || c.is_control() || "/?#%\\".contains(c);
    if token.chars().any(unsafe_char) {
        return Err(invalid(
            section,
            BOT_TOKEN.env,
            "contains spaces or URL characters (/ ? # %): paste the token exactly as @BotFather shows it, such as 123456789:AAH… (the value is not shown)",
        ));
    }
    Ok(())
}

/// Whether a webhook secret is one Telegram accepts.
pub fn valid_secret(secret: &str) -> bool {
    (1..=MAX_SECRET_CHARS).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn webhook_settings(section: &ConfigSection) -> Result<Option<WebhookSettings>, ConfigError> {
    let Some(url) = section.url(WEBHOOK_URL.env)? else {
        return Ok(None);
    };
    let uri: Uri = url.parse().map_err(|_| {
        invalid(
            section,
            WEBHOOK_URL.env,
            format!("is not a valid URL: {:?}", redact_url(&url)),
        )
    })?;
    let path = match uri.path() {
        "" => "/".to_string(),
        path => path.to_string(),
    };
    let port = section
        .port(WEBHOOK_PORT.env)?
        .unwrap_or(DEFAULT_WEBHOOK_PORT);
    let secret = match section.text(WEBHOOK_SECRET.env) {
        Some(secret) => secret.to_string(),
        None => {
            return Err(ConfigError::new(
                WEBHOOK_SECRET.env,
                None,
                "is required when TELEGRAM_WEBHOOK_URL is set: without it anyone who finds the URL could post messages as any user; generate one with `openssl rand -hex 32`",
            ));
        }
    };
    if !valid_secret(&secret) {
        return Err(invalid(
            section,
            WEBHOOK_SECRET.env,
            format!(
                "Telegram accepts 1-{MAX_SECRET_CHARS} characters of A-Z, a-z, 0-9, _ and -, e.g. the output of `openssl rand -hex 32` (the value is not shown)"
            ),
        ));
    }
    Ok(Some(WebhookSettings {
        url,
        path,
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        secret,
    }))
}

impl TelegramSettings {
    /// Parses and validates every Telegram setting.
    pub fn from_config(section: &ConfigSection) -> Result<Self, ConfigError> {
        let token = section.required(&BOT_TOKEN)?.to_string();
        check_token(section, &token)?;
        let api_base_url = section
            .url(API_BASE_URL.env)?
            .unwrap_or_else(|| DEFAULT_API_BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let access = ACCESS.policy(section, parse_user)?;
        let home_channel = ACCESS.home_channel(section, parse_chat)?;
        let webhook = webhook_settings(section)?;
        Ok(TelegramSettings {
            token,
            api_base_url,
            access,
            home_channel,
            webhook,
            streaming: section.bool(STREAMING.env)?.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn with(extra: &[(&'static str, &'static str)]) -> ConfigSection {
        let mut pairs = vec![("TELEGRAM_BOT_TOKEN", TOKEN)];
        pairs.extend_from_slice(extra);
        ConfigSection::from_pairs(pairs)
    }

    #[test]
    fn polling_is_the_default_and_nothing_secret_shows_in_debug() {
        let s = TelegramSettings::from_config(&with(&[
            ("TELEGRAM_ALLOWED_USERS", "42, 1001 ,"),
            ("TELEGRAM_HOME_CHANNEL", " -1001234567890 "),
            ("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081/"),
        ]))
        .unwrap();
        assert!(s.webhook.is_none());
        assert_eq!(s.api_base_url, "http://127.0.0.1:8081");
        assert!(s.access.allows("42") && s.access.allows("1001"));
        assert!(!s.access.allows("7"));
        let home = s.home_channel.clone().unwrap();
        assert_eq!(
            (home.chat.as_str(), home.name.as_str()),
            ("-1001234567890", "Home")
        );
        assert!(!format!("{s:?}").contains("AAHdq"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("TELEGRAM_ALLOWED_USERS", "42, @alice"),
            ("TELEGRAM_HOME_CHANNEL", "@mychannel"),
            ("TELEGRAM_WEBHOOK_PORT", "eighty"),
            ("TELEGRAM_API_BASE_URL", "api.telegram.org"),
            ("TELEGRAM_UNAUTHORIZED", "allow"),
        ] {
            let mut pairs = vec![(var, value)];
            if var == "TELEGRAM_WEBHOOK_PORT" {
                pairs.push(("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/telegram"));
                pairs.push(("TELEGRAM_WEBHOOK_SECRET", "s3cret"));
            }
            let err = TelegramSettings::from_config(&with(&pairs)).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
        let err = TelegramSettings::from_config(&with(&[("TELEGRAM_ALLOWED_USERS", "alice")]))
            .unwrap_err();
        assert!(err.to_string().contains("numeric"), "{err}");
    }

    #[test]
    fn webhook_mode_needs_a_valid_secret() {
        let url = (
            "TELEGRAM_WEBHOOK_URL",
            "https://bot.example.com/hooks/telegram",
        );
        let err = TelegramSettings::from_config(&with(&[url])).unwrap_err();
        assert_eq!(err.var, "TELEGRAM_WEBHOOK_SECRET");
        assert!(err.problem.contains("required"), "{err}");
        for bad in ["has space", "dots.are.not.allowed", &"x".repeat(257)] {
            let section = ConfigSection::from_pairs([
                ("TELEGRAM_BOT_TOKEN", TOKEN),
                url,
                ("TELEGRAM_WEBHOOK_SECRET", bad),
            ]);
            let err = TelegramSettings::from_config(&section).unwrap_err();
            assert_eq!(err.var, "TELEGRAM_WEBHOOK_SECRET");
            assert!(!err.to_string().contains(bad), "{err}");
        }
        let s = TelegramSettings::from_config(&with(&[
            url,
            ("TELEGRAM_WEBHOOK_SECRET", "Abc_123-xyz"),
            ("TELEGRAM_WEBHOOK_PORT", "8088"),
        ]))
        .unwrap();
        let webhook = s.webhook.unwrap();
        assert_eq!(webhook.path, "/hooks/telegram");
        assert_eq!(webhook.listen.port(), 8088);
        assert!(!format!("{webhook:?}").contains("Abc_123"));
    }

    #[test]
    fn a_token_that_cannot_be_in_a_url_is_refused_without_being_shown() {
        let section = ConfigSection::from_pairs([("TELEGRAM_BOT_TOKEN", "123:abc/def")]);
        let err = TelegramSettings::from_config(&section).unwrap_err();
        assert_eq!(err.var, "TELEGRAM_BOT_TOKEN");
        assert!(!err.to_string().contains("abc/def"), "{err}");
    }

    #[test]
    fn chats_and_users_are_numeric() {
        assert_eq!(parse_chat(" -100123 "), Ok("-100123".to_string()));
        assert_eq!(parse_chat("+42"), Ok("42".to_string()));
        assert!(parse_chat("").is_err());
        assert!(parse_chat("0").is_err());
        assert!(parse_chat("@channel").is_err());
        assert_eq!(parse_user("42"), Ok("42".to_string()));
        assert!(parse_user("-42").is_err());
    }

    #[test]
    fn enablement_follows_the_token_unless_switched_off() {
        assert_eq!(
            enabled(&ConfigSection::from_pairs([])),
            Err("TELEGRAM_BOT_TOKEN not set".into())
        );
        assert_eq!(enabled(&with(&[])), Ok(()));
        assert_eq!(
            enabled(&with(&[("TELEGRAM_ENABLED", "false")])),
            Err("TELEGRAM_ENABLED=false".into())
        );
    }
}
