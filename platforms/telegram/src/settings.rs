//! Telegram settings.
use platform_api::{ConfigSection, Setting, SettingKind};

/// `TELEGRAM_BOT_TOKEN`.
pub const BOT_TOKEN: Setting =
    Setting::new("TELEGRAM_BOT_TOKEN", "bot_token", "Bot token from Telegram")
        .required()
        .secret();
/// `TELEGRAM_ALLOWED_USERS`.
pub const ALLOWED_USERS: Setting = Setting::new(
    "TELEGRAM_ALLOWED_USERS",
    "allowed_users",
    "Comma-separated Telegram user ids allowed to chat",
)
.kind(SettingKind::List);
/// `TELEGRAM_HOME_CHANNEL`.
pub const HOME_CHANNEL: Setting = Setting::new(
    "TELEGRAM_HOME_CHANNEL",
    "home_channel",
    "Telegram chat id that cron jobs are delivered to",
);
/// `TELEGRAM_HOME_CHANNEL_NAME`.
pub const HOME_CHANNEL_NAME: Setting = Setting::new(
    "TELEGRAM_HOME_CHANNEL_NAME",
    "home_channel_name",
    "Display name of the home channel",
)
.default("Home");
/// `TELEGRAM_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "TELEGRAM_ENABLED",
    "enabled",
    "false keeps Telegram off even when TELEGRAM_BOT_TOKEN is set",
)
.kind(SettingKind::Bool);

/// Every Telegram setting.
pub const SETTINGS: &[Setting] = &[
    BOT_TOKEN,
    ALLOWED_USERS,
    HOME_CHANNEL,
    HOME_CHANNEL_NAME,
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
