use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::web::ServiceConfig;
use async_trait::async_trait;

use crate::error::SendError;
use crate::media::{FetchError, Fetched, Formatted, PartMedia};
use crate::message::{Attachment, DeliveryStatus, HomeChannel, Inbound, LiveView, Part, Receipt};

/// A messaging platform adapter. The host holds it as `Arc<dyn Platform>`.
///
/// Async methods are `?Send`: they run on actix's per-thread runtime, where `awc` lives.
#[async_trait(?Send)]
pub trait Platform: Send + Sync + 'static {
    /// The registered name (`sms`).
    fn name(&self) -> &'static str;

    /// The address this platform's routes must be served on; `None` when it has no routes.
    /// Platforms asking for the same address share one HTTP server.
    fn listen_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Contributes the platform's routes. Handlers pass what they receive to `sink`, which
    /// stores it; a handler acknowledges the platform only after `sink` has accepted.
    fn routes(&self, cfg: &mut ServiceConfig, sink: Arc<dyn InboundSink>) {
        let _ = (cfg, sink);
    }

    /// Runs the platform's receive loop, for providers that are polled (long polling, a
    /// websocket) rather than posting to a route: hand what arrives to `sink`, and return only
    /// when receiving has ended for good. The host runs it on its actix system next to the
    /// listeners and stops it at shutdown. The default has nothing to poll.
    async fn receive(&self, sink: Arc<dyn InboundSink>) -> Result<(), String> {
        let _ = sink;
        Ok(())
    }

    /// Whether only one gateway at a time may run [`Self::receive`] for this platform's
    /// account (Telegram answers a second long poller with 409 Conflict). Gateways sharing a
    /// database then take turns: one receives, the others stand by and take over when it
    /// stops. The default lets every gateway receive; the host deduplicates what they get.
    fn receive_alone(&self) -> bool {
        false
    }

    /// Whether a message from a chat that was suppressed (the provider refused a send to it
    /// as opted out) shows that it accepts messages again: a Telegram user who blocked the bot
    /// and writes to it again has unblocked it. The host then lifts the suppression and
    /// answers. The default keeps the suppression until an explicit opt-in ([`Control::OptIn`],
    /// SMS's START), as carriers require.
    ///
    /// [`Control::OptIn`]: crate::Control::OptIn
    fn writing_opts_back_in(&self) -> bool {
        false
    }

    /// Called once its listener is bound, with the actual address (for the listening log line).
    fn listening(&self, addr: SocketAddr) {
        let _ = addr;
    }

    /// Who may talk to the agent through this platform.
    fn access(&self) -> &AccessPolicy;

    /// Turns agent Markdown into wire-ready parts within the platform's limits.
    fn format(&self, markdown: &str) -> Vec<Part>;

    /// Formats a reply that comes with files: the parts carry them ([`Part::media`]) within
    /// the platform's limits, and a file the platform cannot send is
    /// [`Refused`](crate::media::Refused) and named in
    /// the text ([`crate::media::attach`] does this for platforms whose files ride on a
    /// message). The default sends no files.
    fn format_media(&self, markdown: &str, media: Vec<PartMedia>) -> Formatted {
        crate::media::without_files(markdown, media, self.name(), |text| self.format(text))
    }

    /// Whether [`Self::send`] uploads a part's files, so that the host loads their bytes
    /// ([`PartMedia::bytes`]) first; a platform whose provider fetches them by URL
    /// ([`PartMedia::url`]) says no.
    fn uploads_media(&self) -> bool {
        true
    }

    /// The public origin (`https://host[:port]`) at which the provider reaches this gateway's
    /// listener, for the URLs of outgoing files when `HERMES_PUBLIC_URL` is not set (SMS: the
    /// origin of `SMS_WEBHOOK_URL`).
    fn public_origin(&self) -> Option<String> {
        None
    }

    /// Fetches an inbound attachment's bytes with the platform's credentials, reading at most
    /// `limit` bytes (a longer file is refused while it is read, not after). The default
    /// fetches nothing.
    async fn fetch_media(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> Result<Fetched, FetchError> {
        let _ = (attachment, limit);
        Err(FetchError::Permanent(format!(
            "{} does not fetch attachments",
            self.name()
        )))
    }

    /// Sends one formatted part to one chat.
    async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError>;

    /// How long after a chat's last inbound message the provider lets the platform send it
    /// free-form messages (WhatsApp: 24 hours); `None`, the default: no such window. The host
    /// reads the chat's last inbound message from the store (on the database's clock, so every
    /// gateway sharing it agrees) and sends a part outside the window through
    /// [`Self::send_outside_window`].
    fn reply_window(&self) -> Option<Duration> {
        None
    }

    /// Whether a part can go to a chat whose [`Self::reply_window`] has closed, and if not, why
    /// (WhatsApp without a template: `outside WhatsApp's 24-hour window: set
    /// WHATSAPP_TEMPLATE_SID`). The host asks before it queues cron output or `hermes send`, so
    /// that what cannot go is reported at once; [`Self::send_outside_window`] refuses the same
    /// parts. The default: every part can.
    fn check_outside_window(&self, part: &Part) -> Result<(), String> {
        let _ = part;
        Ok(())
    }

    /// Sends one part to a chat whose [`Self::reply_window`] has closed: as the provider
    /// allows there (WhatsApp: an approved template), or a [`SendError::Permanent`] saying why
    /// it cannot go ([`Self::check_outside_window`]). The default sends it as any other part.
    async fn send_outside_window(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
        self.send(chat, part).await
    }

    /// Where scheduled output goes, if configured.
    fn home_channel(&self) -> Option<HomeChannel>;

    /// Shows in `chat` that a reply is being written (a typing indicator). The host calls it
    /// when the agent starts on a turn and again every [`Self::typing_every`] until the reply
    /// is queued; a failure is the platform's to log, and changes nothing else. The default
    /// shows nothing.
    async fn typing(&self, chat: &str) {
        let _ = chat;
    }

    /// How often [`Self::typing`] is repeated while the agent works: a little less than the
    /// time the platform shows the indicator for.
    fn typing_every(&self) -> Duration {
        Duration::from_secs(4)
    }

    /// Whether `chat` can show a reply while the agent writes it, and if so the least time
    /// between two updates (the provider's rate for such updates). The finished reply is
    /// sent through the outbox all the same. The default shows finished replies only.
    fn live(&self, chat: &str) -> Option<Duration> {
        let _ = chat;
        None
    }

    /// Shows `body` (the finished reply's first part as it stands: formatted, within the
    /// platform's limit) as the reply being written in `chat`, replacing what an earlier call
    /// of the same turn showed; `view` is the turn's, kept from call to call. The host calls
    /// it only for chats [`Self::live`] accepts, at most once per interval it named. A
    /// platform that posts a message sets [`LiveView::message`] once it exists: the host
    /// records it before the next call, and the finished reply's first part edits it.
    async fn show_live(
        &self,
        chat: &str,
        view: &mut LiveView,
        body: &str,
    ) -> Result<(), SendError> {
        let _ = (chat, view, body);
        Err(SendError::Permanent {
            code: None,
            message: format!("{} does not show replies as they are written", self.name()),
        })
    }

    /// A chat id as it may appear in logs (phone numbers are redacted).
    fn redact(&self, chat: &str) -> String {
        chat.to_string()
    }

    /// Billed units the provider lets one sender send per second, for pacing; `None` = unpaced.
    fn units_per_second(&self) -> Option<f64> {
        None
    }

    /// Looks up, at the provider, whether a part whose send had an unknown outcome
    /// ([`SendError::Ambiguous`]) was created there: the host then records it as sent, or sends
    /// it once more when nothing matches. `attempted_at` is when that send began. A platform
    /// that cannot look messages up keeps the default, and such a part stays ambiguous and is
    /// reported, never re-sent.
    async fn lookup(&self, chat: &str, part: &Part, attempted_at: SystemTime) -> Lookup {
        let _ = (chat, part, attempted_at);
        Lookup::Unsupported
    }

    /// How long after an unknown outcome the provider's record is looked up ([`Self::lookup`]):
    /// long enough for the provider to have listed the message.
    fn reconcile_after(&self) -> Duration {
        Duration::from_secs(60)
    }

    /// What a provider error or delivery code means and what to do about it, when the platform
    /// knows (for `hermes gateway doctor` and the delivery log lines).
    fn advice(&self, code: i64) -> Option<Advice> {
        let _ = code;
        None
    }
}

/// What a provider's error code means for the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advice {
    /// What to do about it, in one sentence.
    pub text: &'static str,
    /// The operator must act (registration, configuration), as opposed to a recipient's
    /// circumstance to be recorded: such codes are logged as warnings.
    pub act: bool,
}

/// What the provider's records say about a part whose send had an unknown outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Messages the provider created that match the part, best match first; empty when none
    /// does. The host takes the first one that no other part is recorded with.
    Matches(Vec<Receipt>),
    /// The records could not be read now; the host tries again later and never re-sends
    /// meanwhile.
    Failed(String),
    /// The platform cannot look messages up.
    Unsupported,
}

/// What an unknown sender gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unauthorized {
    /// Nothing: the message is stored and ignored.
    #[default]
    Ignore,
    /// A one-time pairing code the owner can approve.
    Pair,
}

/// Who may talk to the agent: deny by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Everyone may talk.
    pub allow_all: bool,
    /// Senders allowed by configuration, in the platform's normalised form.
    pub allowed: HashSet<String>,
    /// What an unknown sender gets.
    pub unauthorized: Unauthorized,
    /// Agent turns allowed per sender per minute; `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

impl AccessPolicy {
    /// Whether configuration alone lets this sender in (pairing is checked by the host).
    pub fn allows(&self, sender: &str) -> bool {
        self.allow_all || self.allowed.contains(sender)
    }
}

/// What the host did with an inbound message that it took.
///
/// Either way the message is durable and the provider may be answered with success. A host that
/// deduplicates after storing (the gateway journals a message first and deduplicates it when
/// importing it into its database) answers `Stored` for a retry too, and still processes it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored; it will be processed, unless it turns out to repeat one stored before.
    Stored,
    /// Recognised at once as a repeat of a message stored before (a retry or replay); nothing
    /// more will happen.
    Duplicate,
}

/// Why the host could not take an inbound message: it cannot be made durable now.
///
/// A backlog of work is never a reason: waiting messages are kept on disk, however many.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Storing is refused for now (free disk space below the host's floor, or shutting down);
    /// answer 503.
    #[error("cannot store now: {0}")]
    Unavailable(String),
    /// The store failed.
    #[error("storage failed: {0}")]
    Storage(String),
}

/// The host side of receive: stores inbound messages before they are acknowledged.
#[async_trait(?Send)]
pub trait InboundSink: Send + Sync {
    /// Stores the message durably (deduplicated on platform + provider id).
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError>;

    /// Counts a request the platform rejected before it became a message (for metrics).
    fn rejected(&self, platform: &str, reason: &'static str) {
        let _ = (platform, reason);
    }

    /// The saved position of `platform`'s receive loop (Telegram's update offset), shared by
    /// every gateway on the host's store; `None` before anything was saved.
    async fn cursor(&self, platform: &str) -> Result<Option<String>, SinkError> {
        let _ = platform;
        Ok(None)
    }

    /// Saves the position of `platform`'s receive loop. A loop saves it only once everything
    /// before it was accepted, so that a restart neither loses nor repeats what arrived.
    async fn save_cursor(&self, platform: &str, value: &str) -> Result<(), SinkError> {
        let _ = (platform, value);
        Ok(())
    }

    /// Records what the provider reports about a sent message (a delivery receipt); repeated
    /// or late reports change nothing. The platform acknowledges the provider once it returns.
    async fn delivery_status(&self, status: DeliveryStatus) -> Result<(), SinkError> {
        let _ = status;
        Err(SinkError::Storage(
            "this host does not record delivery statuses".to_string(),
        ))
    }
}
