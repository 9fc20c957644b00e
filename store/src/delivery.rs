//! Delivery: parts whose send had an unknown outcome, looked up at the provider; the
//! provider's delivery statuses; what `hermes outbox`, `/metrics`, the doctor and `/status`
//! show of them.
use platform_api::DeliveryStatus;

use super::{Millis, OutboxPart, PartClaim, PartState, Result};

/// An ambiguous part whose look-up is due.
#[derive(Clone, Debug)]
pub struct Reconcilable {
    /// The part.
    pub part: OutboxPart,
    /// When its last send began.
    pub attempted_at: Millis,
    /// When its look-up was due (its claim on the look-up is checked against it).
    pub reconcile_at: Millis,
}

/// One outbox part as `hermes outbox list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    /// Part id (`hermes outbox retry ID`).
    pub id: i64,
    /// Platform name.
    pub platform: String,
    /// The chat it goes to.
    pub chat: String,
    /// 1-based position in its message.
    pub part: i64,
    /// Parts in its message.
    pub parts: i64,
    /// `pending`, `sending`, `sent`, `failed`, `suppressed` or `ambiguous`.
    pub state: String,
    /// The provider's delivery status (`delivered`, `undelivered`, …), once reported.
    pub status: Option<String>,
    /// The provider's error code: from the delivery report, else from the send.
    pub error_code: Option<i64>,
    /// The last error message of a send, if any.
    pub error: Option<String>,
    /// Billed units.
    pub segments: i64,
    /// The provider's id once sent.
    pub provider_id: Option<String>,
    /// Why it was sent: `reply`, `command`, `cron`, `send`.
    pub origin: String,
    /// Send attempts made.
    pub attempts: i64,
    /// When it was queued (ms since the epoch).
    pub created_at: Millis,
    /// When it last changed (ms since the epoch).
    pub updated_at: Millis,
    /// The names of the files it carries.
    pub media: Vec<String>,
}

/// Which parts `hermes outbox list` shows.
#[derive(Clone, Debug, Default)]
pub struct OutboxFilter {
    /// Only these chats (the forms one chat may be stored in); empty: every chat.
    pub chats: Vec<String>,
    /// Only parts in this state, or with this delivery status.
    pub state: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// What `hermes outbox retry` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retried {
    /// Queued again.
    Queued,
    /// The part is not failed or ambiguous; its state is given.
    NotRetryable(PartState),
    /// No such part.
    Missing,
}

/// Parts of a time span counted by delivery outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySummary {
    /// Platform name.
    pub platform: String,
    /// The delivery status, or the part's state when none was reported.
    pub outcome: String,
    /// The error code, if any.
    pub code: Option<i64>,
    /// How many parts.
    pub count: i64,
    /// They are MMS (billed per message, not per segment), counted apart from texts.
    pub mms: bool,
}

/// Parts whose outcome is unknown and their look-up; the provider's delivery statuses; what
/// operators are shown of them.
pub trait DeliveryStore {
    /// Records that a send's outcome is unknown; its look-up is due at `reconcile_at`, or
    /// never (`None`: the platform cannot look messages up, and the part stays ambiguous).
    /// False, changing nothing, when the claim was lost.
    fn mark_ambiguous(
        &self,
        claim: PartClaim,
        error: &str,
        reconcile_at: Option<Millis>,
    ) -> Result<bool>;

    /// Ambiguous parts whose look-up is due at `now`, oldest first.
    fn reconcilable(&self, now: Millis, limit: usize) -> Result<Vec<Reconcilable>>;

    /// Moves an ambiguous part's look-up from `due` to `at` (`None`: never), held by this
    /// process; false when another process moved it first (it is looking the part up) or the
    /// part was settled. Moved to a time ahead, it is this process's claim on the look-up:
    /// `at` names it in what the look-up then records.
    fn reschedule_reconcile(&self, id: i64, due: Millis, at: Option<Millis>) -> Result<bool>;

    /// Whether a part of this platform is recorded with this provider id.
    fn provider_id_known(&self, platform: &str, provider_id: &str) -> Result<bool>;

    /// Records an ambiguous part as sent after all (found at the provider) by the look-up
    /// this process claimed until `held`; false, changing nothing, when the part was settled
    /// meanwhile or its look-up taken over.
    fn reconcile_sent(
        &self,
        id: i64,
        held: Millis,
        provider_id: &str,
        segments: Option<u32>,
    ) -> Result<bool>;

    /// Queues an ambiguous part again (the provider has no such message) by the look-up this
    /// process claimed until `held`; false, changing nothing, when the part was settled
    /// meanwhile or its look-up taken over.
    fn reconcile_unsent(&self, id: i64, held: Millis) -> Result<bool>;

    /// Queues a failed or ambiguous part again: the operator's explicit decision.
    fn retry_part(&self, id: i64) -> Result<Retried>;

    /// Records a provider's delivery status unless one further along is recorded already.
    /// Returns whether it changed anything: a repeated or late report does not.
    fn record_delivery(&self, status: &DeliveryStatus) -> Result<bool>;

    /// The chat a sent part with this provider id went to.
    fn chat_of(&self, platform: &str, provider_id: &str) -> Result<Option<String>>;

    /// Outbox parts, newest first.
    fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>>;

    /// The latest reply part sent to a chat (what `/status` reports on).
    fn last_reply(&self, platform: &str, chat: &str) -> Result<Option<OutboxRow>>;

    /// Parts queued since `since`, counted by delivery status (or state) and error code.
    fn delivery_summary(&self, since: Millis) -> Result<Vec<DeliverySummary>>;
}
