//! Inbound messages, the inbound journal's import position, conversations, the outbox and
//! the suppression list: what a message and its reply are while the gateway holds them.
use std::time::Duration;

use platform_api::{Accepted, Attachment, Control, Inbound, Part, PartMedia};

use super::{Millis, Result, journal};

/// An inbound message as stored, waiting for the dispatcher.
#[derive(Clone, Debug)]
pub struct StoredInbound {
    /// Row id; the order of arrival.
    pub id: i64,
    /// Platform name.
    pub platform: String,
    /// Conversation.
    pub chat: String,
    /// Sender.
    pub sender: String,
    /// Text.
    pub text: String,
    /// Media.
    pub attachments: Vec<Attachment>,
    /// Carrier keyword.
    pub control: Option<Control>,
    /// The provider's id of the message that showed the reply to it while the reply was
    /// being written, when a turn answering it got that far (recorded on the turn's first
    /// message): a turn run again after a crash keeps editing that message.
    pub live_message: Option<String>,
    /// The name its sender showed (WhatsApp's profile name), when the platform gave one.
    pub sender_name: Option<String>,
}

/// A stored outgoing part.
#[derive(Clone, Debug)]
pub struct OutboxPart {
    /// Row id; parts of one chat go out in this order.
    pub id: i64,
    /// Platform name.
    pub platform: String,
    /// Destination chat.
    pub chat: String,
    /// The part as formatted.
    pub part: Part,
    /// 1-based position in its message.
    pub index: i64,
    /// Parts in its message.
    pub count: i64,
    /// Attempts made so far.
    pub attempts: i64,
}

/// A sender's hold on one outgoing part, from [`MessageStore::claim`] until its outcome is
/// recorded. Every write of the outcome names it: a write from a sender that lost the part
/// (its lease ran out and another gateway took the part over) changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartClaim {
    /// The part.
    pub id: i64,
    /// Which attempt this claim is (the part's attempt count once claimed): a later claim of
    /// the same part has another.
    pub attempt: i64,
}

/// What an outgoing part's life ended with (or is waiting for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartState {
    /// Waiting to be sent.
    Pending,
    /// Claimed by a sender.
    Sending,
    /// Accepted by the provider.
    Sent,
    /// Refused for good.
    Failed,
    /// Not sent: the recipient has opted out.
    Suppressed,
    /// The request went out but its outcome is unknown: looked up at the provider (found:
    /// sent; not found: pending again), never re-sent blindly.
    Ambiguous,
}

impl PartState {
    /// The state as stored and shown (`pending`, `sent`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PartState::Pending => "pending",
            PartState::Sending => "sending",
            PartState::Sent => "sent",
            PartState::Failed => "failed",
            PartState::Suppressed => "suppressed",
            PartState::Ambiguous => "ambiguous",
        }
    }

    /// The state stored as `s`.
    pub fn parse(s: &str) -> PartState {
        match s {
            "pending" => PartState::Pending,
            "sending" => PartState::Sending,
            "sent" => PartState::Sent,
            "suppressed" => PartState::Suppressed,
            "ambiguous" => PartState::Ambiguous,
            _ => PartState::Failed,
        }
    }
}

/// A chat's active conversation: from its first message until `/new` or `/reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Row id: a later conversation of the same database has a higher one.
    pub id: i64,
    /// When it started (store time): with the id, names it apart from a conversation of
    /// another database that happens to have the same id.
    pub started_at: Millis,
}

/// Everything a finished turn (or chat command) writes, in one transaction.
#[derive(Debug, Default)]
pub struct TurnCommit<'a> {
    /// Platform of the conversation.
    pub platform: &'a str,
    /// Chat of the conversation.
    pub chat: &'a str,
    /// Inbound messages this answers; marked done.
    pub inbound_ids: &'a [i64],
    /// The user's side of the exchange, recorded in history.
    pub user: Option<&'a str>,
    /// The assistant's side, recorded in history.
    pub assistant: Option<&'a str>,
    /// Formatted reply parts to queue.
    pub parts: &'a [Part],
    /// Files of the reply that will not be sent, each as a part carrying it and the reason:
    /// recorded as failed parts, so that `hermes outbox list` shows them.
    pub refused: &'a [(Part, String)],
    /// Why the parts are sent (`reply`, `command`, `cron`, `send`).
    pub origin: &'a str,
}

/// A part's files as the outbox's `media` column keeps them: JSON, NULL when it has none.
/// Their bytes and public URL are not part of it (the host loads and sets them before a send).
pub(crate) fn media_json(part: &Part) -> Option<String> {
    if part.media.is_empty() {
        return None;
    }
    serde_json::to_string(&part.media).ok()
}

/// A part's files from the outbox's `media` column.
pub(crate) fn parse_media(stored: Option<&str>) -> Vec<PartMedia> {
    stored
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// The names of a part's files from the outbox's `media` column, for `hermes outbox list`.
pub(crate) fn media_names(stored: Option<&str>) -> Vec<String> {
    parse_media(stored).into_iter().map(|m| m.name).collect()
}

/// Parts to queue, each with its reason when it is refused: none.
pub(crate) fn to_send(parts: &[Part]) -> Vec<(&Part, Option<&str>)> {
    parts.iter().map(|part| (part, None)).collect()
}

/// Refused parts to record, each with its reason.
pub(crate) fn refusals(refused: &[(Part, String)]) -> Vec<(&Part, Option<&str>)> {
    refused
        .iter()
        .map(|(part, reason)| (part, Some(reason.as_str())))
        .collect()
}

/// A carrier keyword as stored.
pub(crate) fn control_str(c: Control) -> &'static str {
    match c {
        Control::OptOut => "opt-out",
        Control::OptIn => "opt-in",
        Control::Help => "help",
    }
}

/// The carrier keyword stored as `s`.
pub(crate) fn parse_control(s: &str) -> Option<Control> {
    match s {
        "opt-out" => Some(Control::OptOut),
        "opt-in" => Some(Control::OptIn),
        "help" => Some(Control::Help),
        _ => None,
    }
}

/// Inbound messages, the inbound journal's import position, conversations, the outbox and the
/// suppression list.
pub trait MessageStore {
    /// Stores an inbound message; a second one with the same platform and provider id is a
    /// duplicate and changes nothing.
    fn insert_inbound(&self, inbound: &Inbound) -> Result<Accepted>;

    /// Stores messages read from the inbound journal and records how far it is imported, in
    /// one transaction: each message is stored exactly once however often it is imported.
    fn import_inbound(&self, batch: &[Inbound], to: journal::Position) -> Result<Vec<Accepted>>;

    /// How far the inbound journal is imported.
    fn journal_position(&self) -> Result<journal::Position>;

    /// Records that the inbound journal is imported up to `to`.
    fn set_journal_position(&self, to: journal::Position) -> Result<()>;

    /// Inbound messages not processed yet, oldest first, at most `limit`.
    fn pending_inbound(&self, limit: usize) -> Result<Vec<StoredInbound>>;

    /// One chat's inbound messages not processed yet with an id above `after`, oldest first,
    /// at most `limit`: a turn takes all that waits in its chat, not only what one pass saw.
    fn pending_inbound_of(
        &self,
        platform: &str,
        chat: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredInbound>>;

    /// How many inbound messages wait for the dispatcher.
    fn pending_inbound_count(&self) -> Result<usize>;

    /// Records, on the first inbound message a turn answers, the provider's id of the message
    /// showing the reply while it is written, before that message is edited: a turn run again
    /// after a crash finds it ([`StoredInbound::live_message`]) and edits it instead of posting
    /// a second one.
    fn set_live_message(&self, inbound_id: i64, provider_id: &str) -> Result<()>;

    /// Marks inbound messages as handled without a turn (`ignored`, `unauthorized`, …).
    fn mark_inbound(&self, ids: &[i64], state: &str) -> Result<()>;

    /// Records how several inbound messages were handled, in one transaction.
    fn mark_inbound_states(&self, marks: &[(i64, &str)]) -> Result<()>;

    /// The active conversation's history, oldest first, as `(role, content)`; at most `limit`
    /// of the latest turns.
    fn history(&self, platform: &str, chat: &str, limit: usize) -> Result<Vec<(String, String)>>;

    /// Number of turns in the active conversation.
    fn turn_count(&self, platform: &str, chat: &str) -> Result<i64>;

    /// The active conversation, started if there is none (as [`MessageStore::commit_turn`]
    /// would start it): the same until [`MessageStore::reset_conversation`], another after.
    fn conversation(&self, platform: &str, chat: &str) -> Result<Conversation>;

    /// Ends the active conversation; the next message starts a fresh one.
    fn reset_conversation(&self, platform: &str, chat: &str) -> Result<()>;

    /// Records a finished turn atomically: history, queued parts, refused files (as failed
    /// parts), inbound marked done.
    /// Returns the ids of the queued parts. Nothing is recorded, and the error is
    /// [`StoreError::Conflict`], when one of the inbound messages is no longer pending
    /// (answered or cancelled meanwhile): a message is answered once. With a database several
    /// gateways share, the conversation must be held by this gateway
    /// ([`MessageStore::claim_conversation`]): a commit from one that lost its hold (another
    /// took the conversation over) records nothing either.
    fn commit_turn(&self, commit: &TurnCommit<'_>) -> Result<Vec<i64>>;

    /// Takes a conversation for this gateway for `lease` (on the database's clock), or extends
    /// its own hold; false while another gateway sharing the database holds it. One turn runs
    /// at a time per conversation across gateways. A database only one gateway uses (SQLite)
    /// has nobody to share with: always true.
    fn claim_conversation(&self, platform: &str, chat: &str, lease: Duration) -> Result<bool>;

    /// Gives back a conversation this gateway holds.
    fn release_conversation(&self, platform: &str, chat: &str) -> Result<()>;

    /// Queues formatted parts for a chat (cron output, `hermes send`).
    fn enqueue(&self, platform: &str, chat: &str, parts: &[Part], origin: &str)
    -> Result<Vec<i64>>;

    /// Records files that will not be sent (cron output, `hermes send`: no turn), each as a
    /// part carrying it, failed with its reason, so that `hermes outbox list` shows them; they
    /// never hold up their chat's queue. A turn records its own in
    /// [`MessageStore::commit_turn`] ([`TurnCommit::refused`]).
    fn record_refused(
        &self,
        platform: &str,
        chat: &str,
        refused: &[(Part, String)],
        origin: &str,
    ) -> Result<()>;

    /// Parts that may be sent at `now` (the store's time, [`ReplicaStore::now`]): pending,
    /// due, and first of their chat among the open ones.
    fn due_parts(&self, now: Millis, limit: usize) -> Result<Vec<OutboxPart>>;

    /// When the next pending part becomes due (the store's time), if any.
    fn next_due(&self) -> Result<Option<Millis>>;

    /// Claims a pending part for sending for `lease` (on the database's clock); `None` if
    /// another sender has it.
    fn claim(&self, id: i64, lease: Duration) -> Result<Option<PartClaim>>;

    /// Records the provider's acceptance of a part; false, changing nothing, when the claim
    /// was lost.
    fn mark_sent(&self, claim: PartClaim, provider_id: &str, segments: Option<u32>)
    -> Result<bool>;

    /// Puts a part back in the queue, due at `next_attempt_at`; false, changing nothing, when
    /// the claim was lost.
    fn mark_retry(
        &self,
        claim: PartClaim,
        next_attempt_at: Millis,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool>;

    /// Ends a part's life without delivery; false, changing nothing, when the claim was lost.
    fn mark_final(
        &self,
        claim: PartClaim,
        state: PartState,
        error: &str,
        code: Option<i64>,
    ) -> Result<bool>;

    /// Parts whose sender died mid-send (its process is gone, or its lease ran out on the
    /// database's clock): their outcome is unknown, so they are marked ambiguous, to be
    /// looked up at the provider, rather than sent again. Returns how many. A look-up whose
    /// holder died the same way is made due at once rather than when its lease would have run
    /// out.
    fn expire_leases(&self) -> Result<usize>;

    /// The state of a part.
    fn part_state(&self, id: i64) -> Result<Option<PartState>>;

    /// Parts waiting to be sent or being sent.
    fn outbox_depth(&self) -> Result<usize>;

    /// Stops all messages to a chat (opt-out).
    fn suppress(&self, platform: &str, chat: &str, reason: &str) -> Result<()>;

    /// Lifts a suppression (opt-in).
    fn unsuppress(&self, platform: &str, chat: &str) -> Result<()>;

    /// Whether messages to a chat are suppressed.
    fn is_suppressed(&self, platform: &str, chat: &str) -> Result<bool>;

    /// When the chat's latest inbound message was stored, in store time on the database's
    /// clock (SQLite: when it was received); `None` when it never wrote. What a provider's
    /// reply window (WhatsApp's 24 hours) is measured from, alike on every gateway.
    fn last_inbound_at(&self, platform: &str, chat: &str) -> Result<Option<Millis>>;

    /// The chat's display name: the latest name its sender showed (WhatsApp's profile name);
    /// `None` when the platform gives none.
    fn chat_name(&self, platform: &str, chat: &str) -> Result<Option<String>>;
}
