//! Inbound attachments, made ready for the turn that answers them: fetched through their
//! platform (with its credentials, within `HERMES_MEDIA_MAX_MB`), kept in the store so that a
//! turn run again (on this gateway or another sharing the database) finds them, transcribed
//! when they are voice notes or audio, and described to the agent.
//!
//! A fetch that fails is tried again with backoff a few times; after that the agent is told
//! what could not be fetched, and the turn goes on: a message is never held for an attachment.
use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use platform_api::{Attachment, FetchError, Platform};
use tracing::{error, info, warn};

use super::config::MediaConfig;
use super::stt::Transcriber;
use crate::agent::TurnFile;
use crate::services::Services;
use crate::store::{InboundFile, MediaMeta, MediaState, StoredInbound};

/// Fetches of one attachment at most, the first included.
const ATTEMPTS: u32 = 4;
/// The wait before the second fetch; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest one transcription may take.
const STT_TIMEOUT: Duration = Duration::from_secs(120);

/// A turn's files as the agent gets them.
#[derive(Debug, Default)]
pub struct Gathered {
    /// For each message of the batch, in order: the lines the agent reads after its text.
    pub lines: Vec<Vec<String>>,
    /// For each message of the batch, in order: the lines its history records after its text
    /// (an image shown to the agent as a picture is named there).
    pub history: Vec<Vec<String>>,
    /// The files, for backends that take them as parts or paths.
    pub files: Vec<TurnFile>,
}

/// Makes the attachments of `batch` ready for the agent: fetched and kept (what an earlier run
/// of the same turn kept is used as it is), transcribed, described. `reads_files`: the
/// backend reads them from disk, so each is written to the cache directory.
pub async fn gather(
    services: &Services,
    platform: &dyn Platform,
    batch: &[StoredInbound],
    reads_files: bool,
) -> Gathered {
    let mut gathered = Gathered::default();
    if batch.iter().all(|m| m.attachments.is_empty()) {
        gathered.lines = vec![Vec::new(); batch.len()];
        gathered.history = vec![Vec::new(); batch.len()];
        return gathered;
    }
    let config = &services.media;
    let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
    let kept: HashMap<(i64, i64), MediaMeta> = match services.store.inbound_media(&ids) {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|m| Some(((m.inbound_id?, m.index), m)))
            .collect(),
        Err(e) => {
            error!("reading the attachments kept so far (fetching them again): {e}");
            HashMap::new()
        }
    };
    let transcriber = config
        .stt
        .as_ref()
        .map(|stt| Transcriber::new(&stt.url, &stt.model, stt.api_key.clone(), STT_TIMEOUT));
    for msg in batch {
        let mut lines = Vec::new();
        let mut history = Vec::new();
        for (index, attachment) in msg.attachments.iter().enumerate() {
            let index = index as i64;
            let (meta, bytes) = match kept.get(&(msg.id, index)) {
                Some(meta) => (meta.clone(), None),
                None => fetch_and_keep(services, platform, msg, index, attachment).await,
            };
            let mut meta = meta;
            let wants_bytes = meta.state == MediaState::Fetched
                && (reads_files
                    || (config.vision && is_image(&meta.content_type))
                    || (transcriber.is_some()
                        && is_audio(&meta.content_type)
                        && meta.transcript.is_none()));
            let bytes = match bytes {
                Some(bytes) => Some(bytes),
                None if wants_bytes => match services.store.media_bytes(meta.id) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        error!("reading a kept attachment: {e}");
                        None
                    }
                },
                None => None,
            };
            if let (Some(transcriber), Some(bytes)) = (&transcriber, &bytes)
                && is_audio(&meta.content_type)
                && meta.transcript.is_none()
            {
                match transcriber
                    .transcribe(bytes, &meta.name, &meta.content_type)
                    .await
                {
                    Ok(text) => {
                        if let Err(e) = services.store.set_transcript(meta.id, &text) {
                            error!("keeping a transcript: {e}");
                        }
                        meta.transcript = Some(text);
                    }
                    Err(e) => warn!(
                        "[{}] voice note {} not transcribed: {e:#}",
                        platform.name(),
                        meta.name
                    ),
                }
            }
            let image = (config.vision
                && meta.state == MediaState::Fetched
                && is_image(&meta.content_type))
            .then(|| bytes.as_deref().map(|b| data_url(&meta.content_type, b)))
            .flatten();
            let path = match (&bytes, reads_files) {
                (Some(bytes), true) => write_cached(config, &meta, bytes),
                _ => None,
            };
            let line = describe(&meta);
            if image.is_none() {
                lines.push(line.clone());
            }
            history.push(line);
            if meta.state == MediaState::Fetched {
                gathered.files.push(TurnFile {
                    name: meta.name.clone(),
                    content_type: meta.content_type.clone(),
                    size: meta.size.max(0) as u64,
                    path,
                    image,
                });
            }
        }
        gathered.lines.push(lines);
        gathered.history.push(history);
    }
    gathered
}

/// Fetches one attachment (trying again with backoff while that may help) and keeps it, or
/// records why it could not be fetched. Returns what is kept, and the bytes when fetched.
async fn fetch_and_keep(
    services: &Services,
    platform: &dyn Platform,
    msg: &StoredInbound,
    index: i64,
    attachment: &Attachment,
) -> (MediaMeta, Option<Vec<u8>>) {
    let limit = services.media.max_bytes;
    let mut wait = FIRST_BACKOFF;
    let mut attempt = 1;
    let outcome = loop {
        let fetch = actix_rt::time::timeout(FETCH_TIMEOUT, platform.fetch_media(attachment, limit));
        let result = match fetch.await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Retry(format!(
                "no file within {}s",
                FETCH_TIMEOUT.as_secs()
            ))),
        };
        match result {
            Err(FetchError::Retry(why)) if attempt < ATTEMPTS => {
                info!(
                    "[{}] attachment {} of message {}: {why}; trying again in {:.1}s (attempt {attempt} of {ATTEMPTS})",
                    platform.name(),
                    index + 1,
                    msg.id,
                    wait.as_secs_f64()
                );
                actix_rt::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            other => break other,
        }
    };
    let content_type = |fetched: Option<&str>| {
        attachment
            .content_type
            .clone()
            .or_else(|| fetched.map(str::to_string))
            .unwrap_or_else(|| "application/octet-stream".to_string())
    };
    let metrics = &services.metrics;
    match outcome {
        Ok(fetched) => {
            let content_type = content_type(fetched.content_type.as_deref());
            let name = fetched
                .name
                .clone()
                .or_else(|| attachment.name.clone())
                .unwrap_or_else(|| default_name(&content_type, index));
            metrics.inc(
                "hermes_media_fetched_total",
                &[("platform", platform.name()), ("outcome", "ok")],
            );
            let file = InboundFile {
                inbound_id: msg.id,
                index,
                content_type: &content_type,
                name: &name,
                bytes: &fetched.bytes,
            };
            let id = services.store.put_inbound_media(&file).unwrap_or_else(|e| {
                error!("keeping an attachment (the agent gets it this turn only): {e}");
                0
            });
            let meta = MediaMeta {
                id,
                inbound_id: Some(msg.id),
                index,
                token: None,
                state: MediaState::Fetched,
                content_type,
                name,
                size: fetched.bytes.len() as i64,
                error: None,
                transcript: None,
                created_at: 0,
                expires_at: None,
            };
            (meta, Some(fetched.bytes))
        }
        Err(e) => {
            let content_type = content_type(None);
            let name = attachment
                .name
                .clone()
                .unwrap_or_else(|| default_name(&content_type, index));
            warn!(
                "[{}] attachment {} of message {} ({name}) not fetched: {e}; the agent is told",
                platform.name(),
                index + 1,
                msg.id,
            );
            metrics.inc(
                "hermes_media_fetched_total",
                &[("platform", platform.name()), ("outcome", "failed")],
            );
            let reason = e.to_string();
            let id = services
                .store
                .inbound_media_failed(msg.id, index, &content_type, &name, &reason)
                .unwrap_or_else(|e| {
                    error!("recording an attachment that could not be fetched: {e}");
                    0
                });
            let meta = MediaMeta {
                id,
                inbound_id: Some(msg.id),
                index,
                token: None,
                state: MediaState::Failed,
                content_type,
                name,
                size: 0,
                error: Some(reason),
                transcript: None,
                created_at: 0,
                expires_at: None,
            };
            (meta, None)
        }
    }
}

/// The line the agent reads for a kept file.
pub fn describe(meta: &MediaMeta) -> String {
    if meta.state == MediaState::Failed {
        return format!(
            "[attachment not fetched: {}, {}: {}]",
            meta.name,
            meta.content_type,
            meta.error.as_deref().unwrap_or("unknown error")
        );
    }
    if is_audio(&meta.content_type) {
        return match meta.transcript.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => format!("[voice note] {text}"),
            _ => "[voice note, not transcribed]".to_string(),
        };
    }
    format!(
        "[attachment: {}, {}, {}]",
        meta.name,
        meta.content_type,
        platform_api::media::human_size(meta.size.max(0) as u64)
    )
}

fn is_image(content_type: &str) -> bool {
    content_type.starts_with("image/")
}

fn is_audio(content_type: &str) -> bool {
    content_type.starts_with("audio/")
}

/// The bytes as a `data:` URL, as OpenAI's image parts take them.
fn data_url(content_type: &str, bytes: &[u8]) -> String {
    format!(
        "data:{content_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A name for a file the platform gave none: `image-1.jpg`, `audio-2.ogg`, `file-1.bin`.
pub fn default_name(content_type: &str, index: i64) -> String {
    let kind = match content_type.split('/').next().unwrap_or("") {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "file",
    };
    format!("{kind}-{}.{}", index + 1, super::extension(content_type))
}

/// Writes a kept file where a backend reading files finds it; its path, or `None` (logged).
fn write_cached(config: &MediaConfig, meta: &MediaMeta, bytes: &[u8]) -> Option<String> {
    let safe: String = meta
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    let path = config.cache_dir.join(format!(
        "{}-{}-{safe}",
        meta.inbound_id.unwrap_or(0),
        meta.index
    ));
    let written =
        std::fs::create_dir_all(&config.cache_dir).and_then(|_| std::fs::write(&path, bytes));
    match written {
        Ok(()) => Some(path.to_string_lossy().into_owned()),
        Err(e) => {
            error!("writing {} for the agent: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(content_type: &str, state: MediaState) -> MediaMeta {
        MediaMeta {
            id: 1,
            inbound_id: Some(7),
            index: 0,
            token: None,
            state,
            content_type: content_type.into(),
            name: "a".into(),
            size: 340_000,
            error: (state == MediaState::Failed).then(|| "Twilio answered 404 Not Found".into()),
            transcript: None,
            created_at: 0,
            expires_at: None,
        }
    }

    #[test]
    fn the_agent_reads_what_each_file_is() {
        assert_eq!(
            describe(&meta("image/jpeg", MediaState::Fetched)),
            "[attachment: a, image/jpeg, 340 KB]"
        );
        assert_eq!(
            describe(&meta("image/jpeg", MediaState::Failed)),
            "[attachment not fetched: a, image/jpeg: Twilio answered 404 Not Found]"
        );
        let mut voice = meta("audio/ogg", MediaState::Fetched);
        assert_eq!(describe(&voice), "[voice note, not transcribed]");
        voice.transcript = Some(" call me at five ".into());
        assert_eq!(describe(&voice), "[voice note] call me at five");
    }

    #[test]
    fn a_file_without_a_name_is_named_after_its_kind() {
        assert_eq!(default_name("image/jpeg", 0), "image-1.jpg");
        assert_eq!(default_name("audio/ogg", 1), "audio-2.ogg");
        assert_eq!(default_name("application/x-unknown", 2), "file-3.bin");
    }
}
