//! Telegram for the hermes gateway: a registered stub. Its settings, formatter (4096-character
//! messages) and home channel work throughout the host; sending is not implemented yet.
pub mod settings;

use std::sync::Arc;

use platform_api::stub::Stub;
use platform_api::{ConfigError, ConfigSection, Platform, Registration};

/// Longest message Telegram accepts, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Formats agent Markdown into messages of at most [`MAX_MESSAGE_CHARS`].
pub fn format(markdown: &str) -> Vec<platform_api::Part> {
    platform_api::stub::format(markdown, MAX_MESSAGE_CHARS)
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
    section.required(&settings::BOT_TOKEN)?;
    let stub = Stub::from_config(
        "telegram",
        MAX_MESSAGE_CHARS,
        section,
        settings::ALLOWED_USERS.env,
        settings::HOME_CHANNEL.env,
        settings::HOME_CHANNEL_NAME.env,
    )?;
    Ok(Arc::new(stub))
}

inventory::submit! {
    Registration {
        name: "telegram",
        label: "Telegram",
        stub: true,
        settings: settings::SETTINGS,
        home_channel_setting: Some(settings::HOME_CHANNEL.env),
        enabled: settings::enabled,
        format,
        parse_chat: platform_api::stub::parse_chat,
        build,
    }
}
