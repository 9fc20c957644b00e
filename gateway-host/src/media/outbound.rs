//! The files a reply sends: `MEDIA:<path>` lines and Markdown images (Hermes Agent's
//! conventions, [`platform_api::text::extract_media`]) are resolved ([`super::resolve`]), kept
//! in the store under an unguessable token (served at `/media/<token>` until
//! `HERMES_MEDIA_URL_TTL_SECS` runs out), and placed among the reply's parts by the platform
//! ([`Platform::format_media`]). A file that cannot be sent is logged once with the reason and
//! recorded as a failed part (`hermes outbox list` shows it); the text of the reply still goes.
use base64::Engine;
use platform_api::media::media_part;
use platform_api::text::{MediaSource, extract_media};
use platform_api::{Part, PartMedia, Platform, SendAs};
use tracing::{error, warn};

use super::resolve::Resolver;
use crate::services::Services;
use crate::store::OutboundFile;

/// The longest fetching one Markdown image may take.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A reply ready for the outbox.
#[derive(Debug, Default)]
pub struct Composed {
    /// The parts to send, files riding on them.
    pub parts: Vec<Part>,
    /// Files that will not be sent, each as a part carrying it, with the reason.
    pub refused: Vec<(Part, String)>,
}

/// Formats `reply` for `platform` with the files it names.
pub async fn compose(services: &Services, platform: &dyn Platform, reply: &str) -> Composed {
    let extracted = extract_media(reply);
    if extracted.media.is_empty() {
        return Composed {
            parts: platform.format(&extracted.text),
            refused: Vec::new(),
        };
    }
    let config = &services.media;
    let resolver = Resolver::new(
        config.dirs.clone(),
        config.allow_private,
        config.max_bytes,
        RESOLVE_TIMEOUT,
    );
    let mut files = Vec::new();
    let mut refused = Vec::new();
    for reference in &extracted.media {
        let named = match &reference.source {
            MediaSource::Path(path) => path.display().to_string(),
            MediaSource::Url(url) => platform_api::redact_url(url),
        };
        let file = match resolver.resolve(reference).await {
            Ok(file) => file,
            Err(why) => {
                let why = why.to_string();
                warn!("[{}] reply file {named} not sent: {why}", platform.name());
                refused.push((media_part(vec![unsent(&named)]), why));
                continue;
            }
        };
        let token = token();
        let expires_at = services.store.now() + config.url_ttl.as_millis() as i64;
        let kept = services.store.put_outbound_media(&OutboundFile {
            token: &token,
            content_type: &file.content_type,
            name: &file.name,
            bytes: &file.bytes,
            expires_at,
        });
        if let Err(e) = kept {
            error!("keeping reply file {named}: {e}");
            refused.push((
                media_part(vec![unsent(&file.name)]),
                format!("could not be kept: {e}"),
            ));
            continue;
        }
        files.push(PartMedia {
            token,
            send_as: SendAs::of(
                &file.content_type,
                extracted.as_document,
                extracted.audio_as_voice,
            ),
            size: file.bytes.len() as u64,
            name: file.name,
            content_type: file.content_type,
            bytes: None,
            url: None,
        });
    }
    let formatted = platform.format_media(&extracted.text, files);
    for r in formatted.refused {
        warn!(
            "[{}] reply file {} not sent: {}",
            platform.name(),
            r.media.name,
            r.reason
        );
        refused.push((media_part(vec![r.media]), r.reason));
    }
    Composed {
        parts: formatted.parts,
        refused,
    }
}

/// A file that was never kept, named for the outbox.
fn unsent(name: &str) -> PartMedia {
    PartMedia {
        token: String::new(),
        name: name.to_string(),
        content_type: super::content_type_of(name),
        size: 0,
        send_as: SendAs::Document,
        bytes: None,
        url: None,
    }
}

/// A new unguessable token: 32 random bytes, URL-safe.
pub fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` has the shape of a token [`token`] makes: anything else is not looked up.
pub fn is_token(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_recognised() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert!(is_token(&a), "{a}");
        assert!(!is_token("../../etc/passwd"));
        assert!(!is_token(&a[1..]));
    }
}
