//! Telegram for the hermes gateway: a bot over the Bot API.
//!
//! By default the gateway long-polls `getUpdates` (nothing to expose; the update offset is
//! saved with the host, so a restart neither loses nor repeats a message); with
//! `TELEGRAM_WEBHOOK_URL` set, Telegram posts updates to a route instead, authenticated by
//! `TELEGRAM_WEBHOOK_SECRET`. Private chats always reach the agent, groups when the bot is
//! mentioned or replied to. Replies go out as Telegram HTML, split within 4,096 characters.
//! Files come in as attachments (`telegram:file/<file_id>`, fetched with `getFile` when the
//! host asks) and go out one a message, uploaded, the reply as the first file's caption when it
//! fits in 1,024 characters.
//!
//! - [`settings`]: the variables (Hermes Agent's names), parsed and validated;
//! - [`client`] and [`types`]: the Bot API client, its uploads and file downloads (the token
//!   never reaches a log or an error), and the objects it reads;
//! - [`receive`]: long polling, and the start of webhook mode; [`webhook`]: its route;
//!   [`inbound`]: which updates reach the agent, and how;
//! - [`format`](mod@format): agent Markdown → Telegram HTML parts, and the files of a reply
//!   placed among them;
//! - [`sender`] and [`error`]: `sendMessage`, the file uploads (`sendPhoto` …),
//!   `sendMessageDraft` (a reply shown in a private chat while it is written) and the typing
//!   action, and Telegram's errors as typed send errors;
//! - [`guide`] and [`doctor`]: what `hermes gateway setup` asks and prints, and the checks of
//!   `hermes gateway doctor`;
//! - `emulator` and `sandbox` (feature `emulator`): a loopback Bot API for tests and
//!   `hermes gateway --sandbox`.
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
pub mod webhook;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::web;
use platform_api::{
    AccessPolicy, Attachment, ConfigError, ConfigSection, FetchError, Fetched, Formatted,
    HomeChannel, InboundSink, LiveView, Part, PartMedia, Platform, Receipt, Registration,
    SendError, async_trait,
};
use tracing::info;

use crate::client::Api;
use crate::inbound::Bot;
use crate::receive::Reporter;
use crate::settings::TelegramSettings;

pub use crate::format::{MAX_MESSAGE_CHARS, format};

/// The registered name: delivery targets are `telegram` (the home channel) and
/// `telegram:CHAT_ID`.
pub const NAME: &str = "telegram";

/// How long fetching one inbound file may take: `getFile`, then the download of up to 20 MB.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The Telegram platform.
pub struct Telegram {
    settings: TelegramSettings,
    api: Api,
    /// The bot, once `getMe` answered.
    bot: Arc<OnceLock<Bot>>,
}

impl Telegram {
    /// Builds the platform from validated settings.
    pub fn new(settings: TelegramSettings) -> Self {
        let api = Api::new(&settings.api_base_url, &settings.token);
        Telegram {
            settings,
            api,
            bot: Arc::new(OnceLock::new()),
        }
    }

    /// The validated settings.
    pub fn settings(&self) -> &TelegramSettings {
        &self.settings
    }
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
    let settings = TelegramSettings::from_config(section)?;
    Ok(Arc::new(Telegram::new(settings)))
}

inventory::submit! {
    Registration {
        name: NAME,
        label: "Telegram",
        stub: false,
        settings: settings::SETTINGS,
        home_channel_setting: Some(settings::HOME_CHANNEL.env),
        prompt_hint: Some(settings::PROMPT_HINT),
        enabled: settings::enabled,
        format,
        format_media: Some(format::format_media),
        parse_chat: settings::parse_chat,
        build,
    }
}

#[async_trait(?Send)]
impl Platform for Telegram {
    fn name(&self) -> &'static str {
        NAME
    }

    fn listen_addr(&self) -> Option<SocketAddr> {
        self.settings.webhook.as_ref().map(|w| w.listen)
    }

    fn routes(&self, cfg: &mut web::ServiceConfig, sink: Arc<dyn InboundSink>) {
        let Some(webhook) = &self.settings.webhook else {
            return;
        };
        let state = web::Data::new(webhook::WebhookState {
            secret: webhook.secret.clone(),
            bot: self.bot.clone(),
            sink,
        });
        webhook::configure(cfg, &webhook.path, state);
    }

    async fn receive(&self, sink: Arc<dyn InboundSink>) -> Result<(), String> {
        let mut reporter = Reporter::default();
        let bot = receive::identify(&self.api, &mut reporter).await?;
        let bot = self.bot.get_or_init(|| bot).clone();
        match &self.settings.webhook {
            Some(webhook) => receive::set_webhook(&self.api, webhook).await,
            None => receive::poll(&self.api, &bot, sink).await,
        }
    }

    /// Telegram has no way to look a sent message up: waiting before the host finds that out
    /// would only hold the chat's next parts back.
    fn reconcile_after(&self) -> Duration {
        Duration::ZERO
    }

    /// Telegram answers a second long poller on the same token with 409 Conflict: of gateways
    /// sharing a database, one polls. In webhook mode Telegram posts to whichever answers.
    fn receive_alone(&self) -> bool {
        self.settings.webhook.is_none()
    }

    /// A user who blocked the bot cannot write to it: a message from a suppressed chat means
    /// they unblocked it (and a group that removed the bot cannot post to it either).
    fn writing_opts_back_in(&self) -> bool {
        true
    }

    fn listening(&self, addr: SocketAddr) {
        if let Some(webhook) = &self.settings.webhook {
            info!(
                "[telegram] webhook server listening on {addr}, path {}",
                webhook.path
            );
        }
    }

    fn access(&self) -> &AccessPolicy {
        &self.settings.access
    }

    fn format(&self, markdown: &str) -> Vec<Part> {
        format(markdown)
    }

    fn format_media(&self, markdown: &str, media: Vec<PartMedia>) -> Formatted {
        format::format_media(markdown, media)
    }

    /// Resolves `telegram:file/<file_id>` with `getFile` and downloads the file.
    async fn fetch_media(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> Result<Fetched, FetchError> {
        let Some(file_id) = inbound::file_id(&attachment.url) else {
            return Err(FetchError::Permanent(
                "not a Telegram file (telegram:file/<file_id>)".to_string(),
            ));
        };
        let fetched = self.api.fetch_file(file_id, limit, FETCH_TIMEOUT).await?;
        // Telegram's file server answers application/octet-stream: the type the message
        // declared says more.
        Ok(Fetched {
            content_type: attachment.content_type.clone().or(fetched.content_type),
            name: attachment.name.clone(),
            bytes: fetched.bytes,
        })
    }

    async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
        sender::send_part(&self.api, chat, part).await
    }

    fn home_channel(&self) -> Option<HomeChannel> {
        self.settings.home_channel.clone()
    }

    /// Private chats (a user's id, positive), unless `TELEGRAM_STREAMING=false`: Telegram
    /// shows drafts there only. Groups get the finished reply.
    fn live(&self, chat: &str) -> Option<Duration> {
        let private = chat.trim().parse::<i64>().is_ok_and(|id| id > 0);
        (self.settings.streaming && private).then_some(sender::DRAFT_EVERY)
    }

    async fn show_live(
        &self,
        chat: &str,
        view: &mut LiveView,
        body: &str,
    ) -> Result<(), SendError> {
        sender::show_draft(&self.api, chat, view, body).await
    }

    async fn typing(&self, chat: &str) {
        sender::typing(&self.api, chat).await;
    }

    fn typing_every(&self) -> Duration {
        // Telegram shows the action for five seconds, or until a message arrives.
        Duration::from_secs(4)
    }
}
