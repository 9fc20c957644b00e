//! Files that travel with messages: what a platform fetches for an inbound [`Attachment`]
//! ([`Platform::fetch_media`]), and the files an outgoing [`Part`] carries ([`PartMedia`]),
//! placed among a reply's parts within the platform's limits ([`Platform::format_media`],
//! [`attach`]).
//!
//! [`Attachment`]: crate::Attachment
//! [`Platform::fetch_media`]: crate::Platform::fetch_media
//! [`Platform::format_media`]: crate::Platform::format_media
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::message::Part;

/// The bytes of an inbound attachment, as the platform fetched them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The file.
    pub bytes: Vec<u8>,
    /// Its MIME type, when the provider said (the answer's `Content-Type`).
    pub content_type: Option<String>,
    /// Its file name, when the provider knows one.
    pub name: Option<String>,
}

/// Why an attachment could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Trying again later may succeed: no connection, a timeout, 429 or 5xx.
    #[error("{0}")]
    Retry(String),
    /// It will not be fetched however often it is tried: not found, refused, over the limit.
    #[error("{0}")]
    Permanent(String),
}

/// How a platform sends an outgoing file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendAs {
    /// A picture shown in the conversation.
    Photo,
    /// A voice note (`[[audio_as_voice]]`).
    Voice,
    /// An audio file.
    Audio,
    /// A video.
    Video,
    /// A file to download (anything else, or `[[as_document]]`).
    #[default]
    Document,
}

impl SendAs {
    /// How a file of `content_type` is sent, given the reply's `[[as_document]]` and
    /// `[[audio_as_voice]]` tags.
    pub fn of(content_type: &str, as_document: bool, audio_as_voice: bool) -> SendAs {
        let kind = content_type.split('/').next().unwrap_or("");
        match kind {
            _ if as_document => SendAs::Document,
            "image" => SendAs::Photo,
            "audio" if audio_as_voice => SendAs::Voice,
            "audio" => SendAs::Audio,
            "video" => SendAs::Video,
            _ => SendAs::Document,
        }
    }
}

/// A file an outgoing part carries. The host keeps its bytes in the store under `token`, which
/// is also the unguessable last segment of the public URL it is served at (`/media/<token>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMedia {
    /// The store's key for the bytes, and the secret in its public URL.
    pub token: String,
    /// The file name the recipient sees.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// How it is sent.
    #[serde(default)]
    pub send_as: SendAs,
    /// The bytes, loaded by the host before [`Platform::send`] for a platform that uploads
    /// files ([`Platform::uploads_media`]); never stored with the part.
    ///
    /// [`Platform::send`]: crate::Platform::send
    /// [`Platform::uploads_media`]: crate::Platform::uploads_media
    #[serde(skip)]
    pub bytes: Option<Arc<[u8]>>,
    /// Where the provider fetches it (`<public origin>/media/<token>`), set by the host before
    /// [`Platform::send`] when it knows a public origin; never stored with the part.
    ///
    /// [`Platform::send`]: crate::Platform::send
    #[serde(skip)]
    pub url: Option<String>,
}

impl PartMedia {
    /// The bytes the host loaded, or a permanent send error naming the file.
    pub fn loaded_bytes(&self) -> Result<&[u8], crate::SendError> {
        self.bytes
            .as_deref()
            .ok_or_else(|| crate::SendError::Permanent {
                code: None,
                message: format!("the bytes of {} were not loaded", self.name),
            })
    }

    /// The public URL the host set, or a permanent send error naming the file.
    pub fn public_url(&self) -> Result<&str, crate::SendError> {
        self.url
            .as_deref()
            .ok_or_else(|| crate::SendError::Permanent {
                code: None,
                message: format!(
                    "{} needs a public URL: set HERMES_PUBLIC_URL (or the platform's webhook URL)",
                    self.name
                ),
            })
    }
}

/// A file a platform will not send, and why (for the log and `hermes outbox list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The file.
    pub media: PartMedia,
    /// Why, in a few words (`7.2 MB, over the 5 MB a message that MMS allows`).
    pub reason: String,
}

/// A reply formatted with its files ([`Platform::format_media`]).
///
/// [`Platform::format_media`]: crate::Platform::format_media
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Formatted {
    /// The parts to send, in order; files ride in [`Part::media`].
    pub parts: Vec<Part>,
    /// Files left out, each named in the text of the parts.
    pub refused: Vec<Refused>,
}

/// What one message of a platform can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaLimits {
    /// Files in one message.
    pub files_per_message: usize,
    /// Bytes of one file.
    pub bytes_per_file: u64,
    /// Bytes of all files of one message together.
    pub bytes_per_message: u64,
}

/// The usual file extension of `content_type` (`jpg` for `image/jpeg`, `ogg` for
/// `audio/ogg`), `None` when unknown: for naming a file a provider gave no name.
pub fn extension(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        // mime_guess lists `jpe` first for JPEG and `oga` for Ogg audio; people know these.
        "image/jpeg" | "image/jpg" => Some("jpg"),
        "audio/ogg" | "audio/opus" => Some("ogg"),
        "audio/mpeg" | "audio/mp3" => Some("mp3"),
        "audio/mp4" => Some("m4a"),
        "audio/amr" => Some("amr"),
        "audio/3gpp" | "video/3gpp" => Some("3gp"),
        "text/plain" => Some("txt"),
        "text/vcard" | "text/x-vcard" | "text/directory" => Some("vcf"),
        _ => mime_guess::get_mime_extensions_str(&essence).and_then(|exts| exts.first().copied()),
    }
}

/// A size for people: `512 bytes`, `340 KB`, `7.2 MB`.
pub fn human_size(bytes: u64) -> String {
    const KB: f64 = 1000.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} bytes")
    } else if b < KB * KB {
        format!("{:.0} KB", b / KB)
    } else {
        format!("{:.1} MB", b / (KB * KB))
    }
}

/// Formats a reply whose files ride on its messages (MMS, Discord, a JSON webhook): files over
/// `limits.bytes_per_file` are refused and named at the end of the text; the others go in
/// groups within `limits`, the first group on the first part, each further group in a part of
/// its own (no text) after the text's parts. `format` is the platform's own formatter, and
/// `label` names the platform in a refusal (`MMS`).
pub fn attach(
    markdown: &str,
    media: Vec<PartMedia>,
    limits: MediaLimits,
    label: &str,
    format: impl Fn(&str) -> Vec<Part>,
) -> Formatted {
    let (fits, refused): (Vec<_>, Vec<_>) = media
        .into_iter()
        .partition(|m| m.size <= limits.bytes_per_file);
    let refused: Vec<Refused> = refused
        .into_iter()
        .map(|media| Refused {
            reason: format!(
                "{}, over the {} a file that {label} allows",
                human_size(media.size),
                human_size(limits.bytes_per_file)
            ),
            media,
        })
        .collect();
    let text = name_refused(markdown, &refused);
    let mut parts = if text.trim().is_empty() {
        Vec::new()
    } else {
        format(&text)
    };
    let mut groups: Vec<Vec<PartMedia>> = Vec::new();
    let mut bytes = 0;
    for m in fits {
        let full = groups.last().is_none_or(|g| {
            g.len() >= limits.files_per_message || bytes + m.size > limits.bytes_per_message
        });
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += m.size;
        groups.last_mut().expect("pushed").push(m);
    }
    let mut groups = groups.into_iter();
    if let Some(first) = groups.next() {
        match parts.first_mut() {
            Some(part) => part.media = first,
            None => parts.push(media_part(first)),
        }
    }
    parts.extend(groups.map(media_part));
    Formatted { parts, refused }
}

/// Formats a reply for a platform that sends no files (`platform` names it): each file is
/// refused and named at the end of the text, which `format` formats.
pub fn without_files(
    markdown: &str,
    media: Vec<PartMedia>,
    platform: &str,
    format: impl Fn(&str) -> Vec<Part>,
) -> Formatted {
    let refused: Vec<Refused> = media
        .into_iter()
        .map(|media| Refused {
            media,
            reason: format!("{platform} does not send files"),
        })
        .collect();
    let text = name_refused(markdown, &refused);
    Formatted {
        parts: format(&text),
        refused,
    }
}

/// A part carrying files and no text.
pub fn media_part(media: Vec<PartMedia>) -> Part {
    Part {
        media,
        ..Part::plain("")
    }
}

/// `markdown` with a line naming each refused file at its end, so that the recipient knows
/// what did not come.
pub fn name_refused(markdown: &str, refused: &[Refused]) -> String {
    let mut text = markdown.trim_end().to_string();
    for r in refused {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&format!("({} not sent: {})", r.media.name, r.reason));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> PartMedia {
        PartMedia {
            token: format!("t-{name}"),
            name: name.to_string(),
            content_type: "image/png".to_string(),
            size,
            send_as: SendAs::Photo,
            bytes: None,
            url: None,
        }
    }

    fn plain(text: &str) -> Vec<Part> {
        vec![Part::plain(text)]
    }

    const MMS: MediaLimits = MediaLimits {
        files_per_message: 10,
        bytes_per_file: 5_000_000,
        bytes_per_message: 5_000_000,
    };

    #[test]
    fn files_ride_on_the_first_part_and_spill_into_parts_of_their_own() {
        let media: Vec<_> = (0..12).map(|i| file(&format!("{i}.png"), 1000)).collect();
        let out = attach("Here.", media, MMS, "MMS", plain);
        assert_eq!(out.parts.len(), 2);
        assert_eq!(out.parts[0].body, "Here.");
        assert_eq!(out.parts[0].media.len(), 10);
        assert_eq!(out.parts[1].body, "");
        assert_eq!(out.parts[1].media.len(), 2);
        assert!(out.refused.is_empty());
    }

    #[test]
    fn a_message_holds_files_up_to_its_byte_limit() {
        let media = vec![file("a.png", 3_000_000), file("b.png", 3_000_000)];
        let out = attach("", media, MMS, "MMS", plain);
        assert_eq!(out.parts.len(), 2);
        assert_eq!(out.parts[0].media[0].name, "a.png");
        assert_eq!(out.parts[1].media[0].name, "b.png");
    }

    #[test]
    fn a_file_over_the_limit_is_named_in_the_text() {
        let media = vec![file("big.png", 7_200_000), file("ok.png", 10)];
        let out = attach("Chart:", media, MMS, "MMS", plain);
        assert_eq!(out.refused.len(), 1);
        assert_eq!(out.refused[0].media.name, "big.png");
        assert_eq!(
            out.parts[0].body,
            "Chart:\n\n(big.png not sent: 7.2 MB, over the 5.0 MB a file that MMS allows)"
        );
        assert_eq!(out.parts[0].media.len(), 1);
    }

    #[test]
    fn a_type_has_the_extension_people_know() {
        assert_eq!(extension("image/jpeg"), Some("jpg"));
        assert_eq!(extension("image/png; charset=binary"), Some("png"));
        assert_eq!(extension("audio/ogg"), Some("ogg"));
        assert_eq!(extension("application/pdf"), Some("pdf"));
        assert_eq!(extension("text/x-vcard"), Some("vcf"));
        assert_eq!(extension("application/x-unknown"), None);
    }

    #[test]
    fn how_a_file_is_sent_follows_its_type_and_the_tags() {
        assert_eq!(SendAs::of("image/png", false, false), SendAs::Photo);
        assert_eq!(SendAs::of("image/png", true, false), SendAs::Document);
        assert_eq!(SendAs::of("audio/ogg", false, true), SendAs::Voice);
        assert_eq!(SendAs::of("audio/mpeg", false, false), SendAs::Audio);
        assert_eq!(SendAs::of("application/pdf", false, true), SendAs::Document);
    }

    #[test]
    fn a_part_stores_its_files_but_not_their_bytes() {
        let mut m = file("a.png", 3);
        m.bytes = Some(Arc::from(&b"abc"[..]));
        m.url = Some("https://x/media/t".into());
        let part = media_part(vec![m]);
        let json = serde_json::to_string(&part).unwrap();
        assert!(!json.contains("abc\""), "{json}");
        let back: Part = serde_json::from_str(&json).unwrap();
        assert_eq!(back.media[0].bytes, None);
        assert_eq!(back.media[0].token, "t-a.png");
    }

    #[test]
    fn a_platform_without_files_names_each_one_and_sends_the_text() {
        let out = without_files("Chart:", vec![file("chart.png", 48_000)], "pager", plain);
        assert_eq!(
            out.parts,
            plain("Chart:\n\n(chart.png not sent: pager does not send files)")
        );
        assert_eq!(out.refused[0].reason, "pager does not send files");
        assert_eq!(
            without_files("Hi", Vec::new(), "pager", plain).parts,
            plain("Hi")
        );
    }
}
