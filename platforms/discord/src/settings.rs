//! Discord settings.
use platform_api::{ConfigSection, Setting, SettingKind};

/// `DISCORD_BOT_TOKEN`.
pub const BOT_TOKEN: Setting =
    Setting::new("DISCORD_BOT_TOKEN", "bot_token", "Bot token from Discord")
        .required()
        .secret();
/// `DISCORD_ALLOWED_USERS`.
pub const ALLOWED_USERS: Setting = Setting::new(
    "DISCORD_ALLOWED_USERS",
    "allowed_users",
    "Comma-separated Discord user ids allowed to chat",
)
.kind(SettingKind::List);
/// `DISCORD_HOME_CHANNEL`.
pub const HOME_CHANNEL: Setting = Setting::new(
    "DISCORD_HOME_CHANNEL",
    "home_channel",
    "Discord chat id that cron jobs are delivered to",
);
/// `DISCORD_HOME_CHANNEL_NAME`.
pub const HOME_CHANNEL_NAME: Setting = Setting::new(
    "DISCORD_HOME_CHANNEL_NAME",
    "home_channel_name",
    "Display name of the home channel",
)
.default("Home");
/// `DISCORD_ENABLED`.
pub const ENABLED: Setting = Setting::new(
    "DISCORD_ENABLED",
    "enabled",
    "false keeps Discord off even when DISCORD_BOT_TOKEN is set",
)
.kind(SettingKind::Bool);

/// Every Discord setting.
pub const SETTINGS: &[Setting] = &[
    BOT_TOKEN,
    ALLOWED_USERS,
    HOME_CHANNEL,
    HOME_CHANNEL_NAME,
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
