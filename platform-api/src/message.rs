use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::media::PartMedia;

/// A message received from a platform, normalised for the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// Registered name of the platform it came from (`sms`).
    pub platform: String,
    /// The conversation it belongs to (for SMS: the sender's number).
    pub chat: String,
    /// Who sent it, in the platform's normalised form (for SMS: E.164).
    pub sender: String,
    /// Text of the message; may be empty when it only carries attachments.
    pub text: String,
    /// Media that came with the message.
    pub attachments: Vec<Attachment>,
    /// The provider's id for the message (Twilio `MessageSid`); the host deduplicates on it.
    pub provider_id: String,
    /// When the gateway received it.
    pub received_at: SystemTime,
    /// A control keyword the platform recognised (opt-out and friends), handled by the host.
    pub control: Option<Control>,
    /// The name the sender shows on the platform, when it says (WhatsApp's profile name): the
    /// chat's display name, which the agent is told and `/status` shows.
    pub sender_name: Option<String>,
}

/// A media item attached to an inbound message. The host fetches it through the platform
/// ([`Platform::fetch_media`]) before the turn, and keeps the bytes in its store.
///
/// [`Platform::fetch_media`]: crate::Platform::fetch_media
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Where the platform fetches it: a URL, or the platform's own reference (Telegram's
    /// `file_id`). Never a credential: it is stored as it is.
    pub url: String,
    /// Its MIME type, when the platform says.
    pub content_type: Option<String>,
    /// Its file name, when the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its size in bytes, when the platform says before it is fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl Attachment {
    /// An attachment at `url` of `content_type`, name and size unknown.
    pub fn new(url: impl Into<String>, content_type: Option<String>) -> Self {
        Attachment {
            url: url.into(),
            content_type,
            name: None,
            size: None,
        }
    }
}

/// Carrier-level keywords that never reach the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// The sender asked not to be messaged any more (STOP and its synonyms).
    OptOut,
    /// The sender asked to be messaged again (START, YES, UNSTOP).
    OptIn,
    /// The sender asked for help (HELP, INFO); the carrier answers it.
    Help,
}

/// One wire-ready message, as the platform will send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The exact text to send.
    pub body: String,
    /// Encoding the provider bills it in, where that matters (`GSM-7`, `UCS-2`).
    pub encoding: Option<String>,
    /// Billed units: SMS segments; 1 for platforms that bill per message or not at all.
    pub segments: u32,
    /// The provider's id of a message this part replaces (edits) instead of sending a new
    /// one: the message a reply was shown in while it was written ([`LiveView::message`]).
    /// Only a platform that shows replies live by posting and editing a message gets such
    /// parts. Editing to the same text twice changes nothing, so a part whose edit had an
    /// unknown outcome is simply sent again, never looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
    /// Files sent with the part ([`Platform::format_media`] places them); a part may carry
    /// files and no text.
    ///
    /// [`Platform::format_media`]: crate::Platform::format_media
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<PartMedia>,
}

impl Part {
    /// A part of a platform without billing units.
    pub fn plain(body: impl Into<String>) -> Self {
        Part {
            body: body.into(),
            encoding: None,
            segments: 1,
            edit: None,
            media: Vec::new(),
        }
    }
}

/// What a platform keeps of one reply shown while it is written ([`Platform::show_live`]),
/// from one update to the next within a turn.
///
/// [`Platform::show_live`]: crate::Platform::show_live
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveView {
    /// An id for the turn's preview, non-zero and the same for the whole turn (Telegram's
    /// `draft_id`); the host chooses it.
    pub draft_id: i64,
    /// The provider's id of the message the reply is shown in, once posted (Discord): later
    /// updates edit it, and the finished reply's first part replaces it ([`Part::edit`]).
    pub message: Option<String>,
}

/// What a platform returns for a delivered part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id of the sent message (Twilio `SM…`).
    pub provider_id: String,
    /// Billed units the provider reported, if it did.
    pub segments: Option<u32>,
}

/// Where scheduled output for a platform is delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HomeChannel {
    /// The chat to deliver to.
    pub chat: String,
    /// Its display name.
    pub name: String,
}

/// What a provider reports about a message it accepted: its delivery status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// Registered name of the platform (`sms`).
    pub platform: String,
    /// The provider's id of the sent message, as in its [`Receipt`].
    pub provider_id: String,
    /// The provider's status word (`queued`, `sent`, `delivered`, `undelivered`, `failed`, …).
    pub status: String,
    /// The provider's error code, when the message failed.
    pub error_code: Option<i64>,
    /// The recipient, in the platform's normalised form, when the report names it.
    pub chat: Option<String>,
    /// The recipient refuses messages from us (Twilio 21610): the host stops messaging them.
    pub opted_out: bool,
}

impl DeliveryStatus {
    /// How far along a message with this status is: a report never replaces one further
    /// along, so that reports arriving out of order leave the latest truth in place. Final
    /// statuses outrank every transient one.
    pub fn rank(status: &str) -> u8 {
        match status {
            "accepted" | "scheduled" => 1,
            "queued" => 2,
            "sending" => 3,
            "sent" => 4,
            "delivered" | "undelivered" | "failed" | "canceled" => 10,
            "read" => 11,
            _ => 0,
        }
    }

    /// Whether nothing further will happen to a message with this status.
    pub fn is_final(status: &str) -> bool {
        Self::rank(status) >= 10
    }
}
