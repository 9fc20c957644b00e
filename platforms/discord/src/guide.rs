//! What Discord adds to `hermes gateway setup`: the allowlist and home channel asked up front,
//! where the token comes from, and the Developer Portal steps to finish (the Message Content
//! Intent, the invite link). The checks it adds to `hermes gateway doctor` are in
//! [`crate::doctor`].
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use platform_api::{ConfigSection, OperatorGuide};

use crate::settings::{ACCESS, BOT_TOKEN, parse_snowflake};

/// The permissions the invite link asks for: View Channels, Send Messages, Attach Files (the
/// agent's pictures and files), Read Message History, Send Messages in Threads.
pub const INVITE_PERMISSIONS: u64 = (1 << 10) | (1 << 11) | (1 << 15) | (1 << 16) | (1 << 38);

const PORTAL: &str = "https://discord.com/developers/applications";

inventory::submit! {
    OperatorGuide {
        platform: crate::NAME,
        essentials: &[
            ACCESS.allowed_users.env,
            ACCESS.allow_all_users.env,
            ACCESS.home_channel.env,
        ],
        explanations: &[
            (
                BOT_TOKEN.env,
                "The bot's token: in the Discord Developer Portal (https://discord.com/developers/applications) create an application (or pick yours), open Bot, and press Reset Token. On the same page, under Privileged Gateway Intents, turn on Message Content Intent: without it Discord refuses the bot's connection. Anyone with the token controls the bot; it is stored in $HERMES_HOME/.env and never shown again. The link that invites the bot to your server is printed at the end.",
            ),
            (
                ACCESS.allowed_users.env,
                "Everyone is denied by default: only the Discord users listed here (by user id) get a reply. To copy an id, turn on Developer Mode in Discord (User Settings → Advanced), then right-click the user → Copy User ID. Leave it empty to decide on the next question.",
            ),
            (
                ACCESS.allow_all_users.env,
                "Or let anyone who can message the bot (a DM, or a mention in a server it is in) chat with the agent.",
            ),
            (
                ACCESS.home_channel.env,
                "Where cron jobs and notifications are delivered: a channel id (with Developer Mode on, right-click the channel → Copy Channel ID). Leave it empty to set it later with /sethome.",
            ),
        ],
        next_steps,
        checkup: crate::doctor::checkup,
    }
}

/// The application (client) id hidden in a bot token: its first part is the bot's user id in
/// base64, which is also its application's id.
pub fn client_id(token: &str) -> Option<String> {
    let first = token.trim().split('.').next()?.trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(first)
        .or_else(|_| URL_SAFE_NO_PAD.decode(first))
        .ok()?;
    let id = String::from_utf8(bytes).ok()?;
    parse_snowflake(&id).ok()
}

/// The invite link for the bot with [`INVITE_PERMISSIONS`].
pub fn invite_url(client_id: &str) -> String {
    format!(
        "https://discord.com/oauth2/authorize?client_id={client_id}&scope=bot&permissions={INVITE_PERMISSIONS}"
    )
}

/// The Developer Portal steps, with the bot's invite link when the token reveals its id.
pub fn next_steps(section: &ConfigSection) -> String {
    let invite = section
        .text(BOT_TOKEN.env)
        .and_then(client_id)
        .map(|id| invite_url(&id))
        .unwrap_or_else(|| {
            format!(
                "{PORTAL} → your app → OAuth2 → URL Generator: scope bot; Send Messages, Attach Files, Read Message History"
            )
        });
    format!(
        "Finish in the Discord Developer Portal ({PORTAL}):
  1. Your app → Bot → Privileged Gateway Intents: turn on Message Content Intent, and save.
     Without it Discord refuses the connection (close 4014).
  2. Invite the bot to your server:
     {invite}
  3. For user and channel ids, turn on Developer Mode in Discord (User Settings → Advanced),
     then right-click a user or a channel → Copy ID.
Then run `hermes gateway doctor` to check the bot, and `hermes gateway` to start it: send the
bot a direct message, or mention it in a channel.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_reveals_the_client_id_for_the_invite() {
        // "123456789012345678" in base64, as the first part of a token.
        let token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.0123456789abcdefghijklmnopqrstuvwxyzAB";
        assert_eq!(client_id(token).as_deref(), Some("123456789012345678"));
        assert_eq!(client_id("not a token"), None);
        let steps = next_steps(&ConfigSection::from_pairs([("DISCORD_BOT_TOKEN", token)]));
        assert!(steps.contains(
            "https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=bot&permissions=274878008320"
        ));
        assert!(steps.contains("Message Content Intent"));
        assert!(!steps.contains(token), "the token is never printed");
        let without = next_steps(&ConfigSection::default());
        assert!(without.contains("URL Generator"));
    }
}
