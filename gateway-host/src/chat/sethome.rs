//! `/sethome`: make this chat the platform's home channel.
use tracing::info;

use super::Context;

/// Stores this chat as the platform's home channel, in `$HERMES_HOME/.env` and for the running
/// gateway, so that scheduled messages are delivered here.
pub fn apply(cx: &Context<'_>) -> anyhow::Result<String> {
    let (key, platform) = (cx.key, cx.platform);
    let Some(loaded) = cx.services.platforms.get(&key.platform) else {
        return Ok("This platform has no home channel.".to_string());
    };
    let Some(setting) = loaded.registration.home_channel_setting else {
        return Ok("This platform has no home channel.".to_string());
    };
    let path = cx.services.home.join(".env");
    hermes_config::set_env_vars(&path, &[(setting, &key.chat)])?;
    // The platform read its home channel at start-up; scheduled deliveries use this one.
    cx.services.set_home_channel(&key.platform, &key.chat)?;
    info!(
        "[{}] home channel set to {} ({setting} in {})",
        key.platform,
        platform.redact(&key.chat),
        path.display()
    );
    Ok("This chat is now the home channel: scheduled messages will be delivered here.".to_string())
}
