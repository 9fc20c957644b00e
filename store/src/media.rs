//! Media: the bytes of inbound attachments, fetched before the turn that answers them, and of
//! the files replies send, served to providers at `/media/<token>`. They live in the database,
//! so that every gateway sharing it can use and serve every file, for a retention period.
use super::{Millis, Result, StoreError};

/// What became of a file: fetched and kept, or given up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaState {
    /// The bytes are kept.
    Fetched,
    /// It could not be fetched; [`MediaMeta::error`] says why.
    Failed,
}

impl MediaState {
    /// The state as stored (`fetched`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaState::Fetched => "fetched",
            MediaState::Failed => "failed",
        }
    }

    /// The state stored as `s`.
    pub fn parse(s: &str) -> MediaState {
        match s {
            "fetched" => MediaState::Fetched,
            _ => MediaState::Failed,
        }
    }
}

/// What the store keeps about a file, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaMeta {
    /// Row id.
    pub id: i64,
    /// The inbound message it came with (inbound files).
    pub inbound_id: Option<i64>,
    /// Its position among the message's attachments, from 0 (inbound files).
    pub index: i64,
    /// The secret of its public URL (outgoing files).
    pub token: Option<String>,
    /// Fetched or failed.
    pub state: MediaState,
    /// Its MIME type.
    pub content_type: String,
    /// Its file name.
    pub name: String,
    /// Its size in bytes (0 when it failed).
    pub size: i64,
    /// Why it could not be fetched.
    pub error: Option<String>,
    /// What a voice note or audio file says, once transcribed.
    pub transcript: Option<String>,
    /// When it was stored (store time).
    pub created_at: Millis,
    /// Until when its public URL serves it (outgoing files; store time).
    pub expires_at: Option<Millis>,
}

/// A fetched inbound attachment, to keep.
#[derive(Clone, Copy, Debug)]
pub struct InboundFile<'a> {
    /// The inbound message.
    pub inbound_id: i64,
    /// Its position among the message's attachments, from 0.
    pub index: i64,
    /// Its MIME type.
    pub content_type: &'a str,
    /// Its file name.
    pub name: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
}

/// A file of a reply, to keep and serve under its token.
#[derive(Clone, Copy, Debug)]
pub struct OutboundFile<'a> {
    /// The secret of its public URL: unguessable, unique.
    pub token: &'a str,
    /// Its MIME type.
    pub content_type: &'a str,
    /// Its file name.
    pub name: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
    /// Until when its public URL serves it (store time).
    pub expires_at: Millis,
}

/// Media: inbound attachments' bytes and outgoing files.
pub trait MediaStore {
    /// Keeps the bytes of an inbound attachment, replacing what was recorded for the same
    /// message and index before (a failure, or the same file fetched by a turn run again).
    /// Returns the row id.
    fn put_inbound_media(&self, file: &InboundFile<'_>) -> Result<i64>;

    /// Records that an inbound attachment could not be fetched, and why (the agent is told);
    /// replaces what was recorded for the same message and index before.
    fn inbound_media_failed(
        &self,
        inbound_id: i64,
        index: i64,
        content_type: &str,
        name: &str,
        error: &str,
    ) -> Result<i64>;

    /// Records the transcript of a kept voice note or audio file.
    fn set_transcript(&self, id: i64, transcript: &str) -> Result<()>;

    /// What is kept of the attachments of these inbound messages (no bytes), by message id
    /// then index.
    fn inbound_media(&self, inbound_ids: &[i64]) -> Result<Vec<MediaMeta>>;

    /// The bytes of a kept file, by row id; `None` when there are none (failed, or purged).
    fn media_bytes(&self, id: i64) -> Result<Option<Vec<u8>>>;

    /// Keeps a file of a reply under its token; a token already kept is refused (an error),
    /// so that a token names one file.
    fn put_outbound_media(&self, file: &OutboundFile<'_>) -> Result<i64>;

    /// A reply's file by its token, with its bytes; `None` when unknown or purged. Whether it
    /// has expired is the caller's to check ([`MediaMeta::expires_at`]): the sender still
    /// uploads a file whose URL has expired.
    fn outbound_media(&self, token: &str) -> Result<Option<(MediaMeta, Vec<u8>)>>;

    /// Deletes what is past keeping at `now`: inbound files stored more than `retention_ms`
    /// ago, and reply files whose URL has expired and that were stored more than
    /// `retention_ms` ago. Returns how many files were deleted.
    fn purge_media(&self, now: Millis, retention_ms: i64) -> Result<usize>;

    /// Files kept and their bytes in all, for `/metrics` and the doctor.
    fn media_usage(&self) -> Result<(i64, i64)>;
}

/// A file's size as stored.
pub(crate) fn stored_size(bytes: &[u8]) -> Result<i64> {
    i64::try_from(bytes.len()).map_err(|_| StoreError::Database("file too large".into()))
}
