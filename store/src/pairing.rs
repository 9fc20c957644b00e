//! Pairing codes: unknown senders admitted by the owner.
use super::{Millis, Result};

/// A sender known to pairing: waiting with a code, or approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingEntry {
    /// Platform name.
    pub platform: String,
    /// The sender, in the platform's form.
    pub sender: String,
    /// The one-time code.
    pub code: String,
    /// When the code stops being valid.
    pub expires_at: Millis,
    /// When the owner approved, if they did.
    pub approved_at: Option<Millis>,
}

/// The outcome of asking for a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingRequest {
    /// A new code was issued; tell the sender.
    Issued(String),
    /// The sender already holds a valid code; say nothing more.
    AlreadyIssued,
    /// Too many codes were issued lately; say nothing.
    Limited,
}

/// Pairing codes: unknown senders admitted by the owner.
pub trait PairingStore {
    /// Whether a sender was admitted by pairing.
    fn is_approved(&self, platform: &str, sender: &str) -> Result<bool>;

    /// Issues `code` to a sender unless they hold a valid one, or more than `max_per_hour`
    /// codes were issued on the platform in the last hour.
    fn request_pairing(
        &self,
        platform: &str,
        sender: &str,
        code: &str,
        now: Millis,
        valid_for: Millis,
        max_per_hour: i64,
    ) -> Result<PairingRequest>;

    /// Approves the sender holding a valid `code`; returns who it was.
    fn approve_pairing(&self, platform: &str, code: &str, now: Millis) -> Result<Option<String>>;

    /// Removes a sender (or a pending code) from pairing; returns whether anything was removed.
    fn revoke_pairing(&self, platform: &str, sender_or_code: &str) -> Result<bool>;

    /// Every pairing entry, approved ones first.
    fn pairing_entries(&self) -> Result<Vec<PairingEntry>>;
}
