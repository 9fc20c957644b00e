//! Discord for the hermes gateway: a bot that answers direct messages, and messages in servers
//! that mention it or reply to it.
//!
//! Messages arrive over Discord's gateway, a WebSocket the gateway keeps open
//! ([`Platform::receive`]); replies go out through the REST API with the bot token.
//!
//! - [`settings`]: the variables (`DISCORD_BOT_TOKEN`, the access settings, the API and gateway
//!   URLs), parsed and validated, and Discord's ids (snowflakes);
//! - [`types`]: the few shapes of Discord's data model that are read; [`client`]: the REST
//!   client with Discord's per-route rate limits;
//! - [`receive`]: the gateway socket (Hello, heartbeats, Identify, Resume, reconnection, fatal
//!   close codes) and [`inbound`]: which messages are for the agent, and fetching their
//!   attachments from Discord's CDN;
//! - [`format`](mod@format): agent Markdown kept (Discord renders it), split into numbered
//!   messages of at most 2,000 characters, files riding on them (10 a message, 10 MiB each);
//! - [`sender`] and [`error`]: creating and editing messages (a reply shown while it is
//!   written is a message posted, then edited), uploading files with them, the typing
//!   indicator, looking up a send whose outcome is unknown, and Discord's answers as typed send
//!   errors;
//! - [`guide`] and [`doctor`]: what `hermes gateway setup` asks and prints, and the checks of
//!   `hermes gateway doctor`;
//! - `emulator` and `sandbox` (feature `emulator`): a loopback stand-in for Discord's REST API and
//!   gateway, for the tests and `hermes gateway --sandbox`.
#![deny(missing_docs)]

pub mod client;
pub mod doctor;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod format;
pub mod guide;
pub mod inbound;
pub mod receive;
#[cfg(feature = "emulator")]
pub mod sandbox;
pub mod sender;
pub mod settings;
pub mod types;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use platform_api::{
    AccessPolicy, Advice, Attachment, ConfigError, ConfigSection, FetchError, Fetched, Formatted,
    HomeChannel, InboundSink, LiveView, Lookup, Part, PartMedia, Platform, Receipt, Registration,
    SendError, async_trait,
};

pub use format::{MAX_MESSAGE_CHARS, format};

use crate::client::{Rest, Route};
use crate::settings::DiscordSettings;
use crate::types::User;

/// The registered name: delivery targets are `discord` (the home channel) and
/// `discord:CHANNEL_ID`.
pub const NAME: &str = "discord";

/// How often the typing indicator is renewed: Discord shows it for about ten seconds.
pub const TYPING_EVERY: Duration = Duration::from_secs(8);

/// The Discord platform.
pub struct Discord {
    settings: DiscordSettings,
    rest: Rest,
    /// The bot's own user: from READY, or `GET /users/@me` when a look-up needs it first.
    bot: Mutex<Option<User>>,
}

impl Discord {
    /// Builds the platform from validated settings.
    pub fn new(settings: DiscordSettings) -> Self {
        let rest = Rest::new(&settings.api_base_url, &settings.token);
        Discord {
            settings,
            rest,
            bot: Mutex::new(None),
        }
    }

    /// The bot's user id, asked of Discord when the gateway has not said it yet.
    async fn bot_id(&self) -> Result<String, String> {
        if let Some(user) = self
            .bot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(user.id.clone());
        }
        let answer = self
            .rest
            .get(&Route::me(), sender::REQUEST_TIMEOUT)
            .await
            .map_err(|err| format!("GET /users/@me failed: {err}"))?;
        if !answer.is_success() {
            return Err(format!("GET /users/@me answered HTTP {}", answer.status));
        }
        let user: User = serde_json::from_slice(&answer.body)
            .map_err(|err| format!("GET /users/@me answered an unexpected body: {err}"))?;
        let id = user.id.clone();
        *self.bot.lock().unwrap_or_else(PoisonError::into_inner) = Some(user);
        Ok(id)
    }
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
    let settings = DiscordSettings::from_config(section)?;
    Ok(Arc::new(Discord::new(settings)))
}

inventory::submit! {
    Registration {
        name: NAME,
        label: "Discord",
        stub: false,
        settings: settings::SETTINGS,
        home_channel_setting: Some(settings::ACCESS.home_channel.env),
        prompt_hint: Some(settings::PROMPT_HINT),
        enabled: settings::enabled,
        format: format::format,
        format_media: Some(format::format_media),
        parse_chat: settings::parse_chat,
        build,
    }
}

#[async_trait(?Send)]
impl Platform for Discord {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn receive(&self, sink: Arc<dyn InboundSink>) -> Result<(), String> {
        receive::run(receive::Gateway {
            rest: &self.rest,
            token: &self.settings.token,
            url: self.settings.gateway_url.as_deref(),
            bot: &self.bot,
            sink,
        })
        .await
    }

    /// A user whose DMs refused the bot (50007) and who writes to it again has opened them.
    fn writing_opts_back_in(&self) -> bool {
        true
    }

    fn access(&self) -> &AccessPolicy {
        &self.settings.access
    }

    fn format(&self, markdown: &str) -> Vec<Part> {
        format::format(markdown)
    }

    fn format_media(&self, markdown: &str, media: Vec<PartMedia>) -> Formatted {
        format::format_media(markdown, media)
    }

    /// An attachment's signed CDN link, fetched without the bot token.
    async fn fetch_media(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> Result<Fetched, FetchError> {
        inbound::fetch(attachment, limit).await
    }

    async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
        sender::send_part(&self.rest, chat, part).await
    }

    fn home_channel(&self) -> Option<HomeChannel> {
        self.settings.home.clone()
    }

    /// Every channel, DMs and servers alike, unless `DISCORD_STREAMING=false`.
    fn live(&self, _chat: &str) -> Option<Duration> {
        self.settings.streaming.then_some(sender::LIVE_EVERY)
    }

    async fn show_live(
        &self,
        chat: &str,
        view: &mut LiveView,
        body: &str,
    ) -> Result<(), SendError> {
        sender::show_live(&self.rest, chat, view, body).await
    }

    async fn typing(&self, chat: &str) {
        sender::typing(&self.rest, chat).await;
    }

    fn typing_every(&self) -> Duration {
        TYPING_EVERY
    }

    async fn lookup(&self, chat: &str, part: &Part, attempted_at: SystemTime) -> Lookup {
        match self.bot_id().await {
            Ok(bot_id) => sender::lookup(&self.rest, &bot_id, chat, part, attempted_at).await,
            Err(err) => Lookup::Failed(err),
        }
    }

    fn reconcile_after(&self) -> Duration {
        // Discord lists a message as soon as it answers for it.
        Duration::from_secs(10)
    }

    fn advice(&self, code: i64) -> Option<Advice> {
        error::advice(code)
    }
}
