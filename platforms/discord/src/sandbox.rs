//! The Discord sandbox: the emulator stands in for Discord, and the terminal is a user who
//! sends the bot direct messages. Discord is polled over its gateway, so a typed line becomes a
//! `MESSAGE_CREATE` on the bot's socket; the gateway's listener port is not used.
use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use platform_api::sandbox::{Sandbox, SandboxFile, SandboxProvider, SandboxReply};

use crate::emulator::{CreatedMessage, Edit, Emulator, EmulatorConfig, Post};
use crate::settings::{ACCESS, API_BASE_URL, BOT_TOKEN, ENABLED, GATEWAY_URL};

/// The sandbox user's id.
const USER: &str = "1400000000000000001";

struct DiscordSandbox {
    emulator: Emulator,
}

/// A token shaped like Discord's: the bot's id in base64, then two random parts.
fn token(bot_id: &str) -> String {
    format!(
        "{}.{:08x}.{:032x}",
        STANDARD_NO_PAD.encode(bot_id),
        rand::random::<u32>(),
        rand::random::<u128>()
    )
}

fn start(_port: u16) -> Result<Box<dyn Sandbox>, String> {
    let bot_id = EmulatorConfig::new("").bot_id;
    let emulator = Emulator::start(EmulatorConfig::new(&token(&bot_id)))
        .map_err(|e| format!("starting the Discord emulator: {e}"))?;
    Ok(Box::new(DiscordSandbox { emulator }))
}

inventory::submit! {
    SandboxProvider { platform: crate::NAME, start }
}

/// A message the bot created, with the files it uploaded as Discord keeps them.
fn reply(message: &CreatedMessage) -> SandboxReply {
    SandboxReply {
        chat: message.channel_id.clone(),
        body: message.content.clone(),
        encoding: None,
        segments: 1,
        media: message
            .files
            .iter()
            .map(|file| SandboxFile {
                name: file.filename.clone(),
                content_type: file
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_string()),
                size: file.size as u64,
            })
            .collect(),
    }
}

fn update(edit: &Edit) -> SandboxReply {
    SandboxReply {
        chat: edit.channel_id.clone(),
        body: edit.content.clone(),
        encoding: None,
        segments: 1,
        media: Vec::new(),
    }
}

impl Sandbox for DiscordSandbox {
    fn settings(&self) -> Vec<(String, String)> {
        [
            (ENABLED.env, "true".to_string()),
            (BOT_TOKEN.env, self.emulator.token()),
            (API_BASE_URL.env, self.emulator.api_base_url()),
            (GATEWAY_URL.env, self.emulator.gateway_url()),
            (ACCESS.allowed_users.env, USER.to_string()),
            (ACCESS.allow_all_users.env, "false".to_string()),
            (ACCESS.home_channel.env, self.emulator.dm_channel(USER)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn user(&self) -> String {
        self.emulator.dm_channel(USER)
    }

    fn address(&self) -> String {
        format!("the bot @hermes ({})", self.emulator.bot_id())
    }

    fn send_as_user(&self, _gateway: SocketAddr, text: &str) -> Result<(), String> {
        self.emulator.dm(USER, text);
        Ok(())
    }

    /// A direct message with the file attached, served at its attachment URL for the gateway
    /// to fetch.
    fn send_file_as_user(
        &self,
        _gateway: SocketAddr,
        file: &SandboxFile,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<(), String> {
        let post = Post::dm(USER, caption).attach(&file.name, Some(&file.content_type), &bytes);
        self.emulator.post(post);
        Ok(())
    }

    fn polled(&self) -> bool {
        true
    }

    fn on_reply(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        self.emulator.set_on_message(Box::new(move |m| f(reply(m))));
    }

    /// Each edit of a message the bot posted: the reply shown as it grows, and at last the
    /// finished reply's first part.
    fn on_update(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        self.emulator.set_on_edit(Box::new(move |e| f(update(e))));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sandbox_points_discord_at_the_emulator() {
        let provider = platform_api::sandbox::sandbox_providers()
            .into_iter()
            .find(|p| p.platform == "discord")
            .expect("the Discord sandbox is registered");
        let sandbox = (provider.start)(0).unwrap();
        let settings = sandbox.settings();
        let get = |name: &str| {
            settings
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert!(get("DISCORD_API_BASE_URL").starts_with("http://127.0.0.1:"));
        assert_eq!(get("DISCORD_HOME_CHANNEL"), sandbox.user());
        let token = get("DISCORD_BOT_TOKEN");
        assert_eq!(
            crate::guide::client_id(&token).as_deref(),
            Some("1100000000000000001"),
            "the token names the bot as Discord's do"
        );
        let section = platform_api::ConfigSection::from_pairs(
            settings.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert!(crate::settings::DiscordSettings::from_config(&section).is_ok());
        assert!(sandbox.polled(), "the host has no listener to wait for");
    }
}
