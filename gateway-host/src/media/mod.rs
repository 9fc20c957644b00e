//! Pictures, files and voice, both ways (SPEC section 12).
//!
//! - [`inbound`]: a message's attachments, fetched through its platform and kept in the store
//!   before the turn, transcribed ([`stt`]: an OpenAI-compatible transcription server) and
//!   described to the agent;
//! - [`outbound`]: the files a reply names (`MEDIA:` lines, Markdown images), read or fetched
//!   within the operator's limits ([`resolve`]), kept under an unguessable token and placed
//!   among the reply's parts by the platform;
//! - [`serve`]: `GET /media/<token>` on every listener, where providers fetch those files;
//! - [`config`]: the settings.
pub mod config;
pub mod inbound;
pub mod outbound;
pub mod resolve;
pub mod serve;
pub mod stt;

/// The usual file extension of `content_type` (`jpg` for `image/jpeg`), `bin` when unknown.
pub fn extension(content_type: &str) -> &'static str {
    platform_api::media::extension(content_type).unwrap_or("bin")
}

/// The MIME type of a file named `name`, from its extension; `application/octet-stream` when
/// unknown.
pub fn content_type_of(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// How often files past keeping are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes what is past `HERMES_MEDIA_RETENTION_DAYS` now and every hour after, for as long as
/// the gateway runs.
pub async fn keep_tidy(services: crate::services::Services) {
    loop {
        purge(&services);
        actix_rt::time::sleep(PURGE_EVERY).await;
    }
}

/// Deletes the files kept longer than `HERMES_MEDIA_RETENTION_DAYS`: in the store, and those
/// written for a backend that reads files from disk.
pub fn purge(services: &crate::services::Services) {
    let retention = services.media.retention;
    match services
        .store
        .purge_media(services.store.now(), retention.as_millis() as i64)
    {
        Ok(0) => {}
        Ok(n) => tracing::info!("deleted {n} file(s) kept longer than HERMES_MEDIA_RETENTION_DAYS"),
        Err(e) => tracing::warn!("deleting old files (tried again in an hour): {e}"),
    }
    let Ok(entries) = std::fs::read_dir(&services.media.cache_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > retention);
        if old && let Err(e) = std::fs::remove_file(entry.path()) {
            tracing::warn!("deleting {}: {e}", entry.path().display());
        }
    }
}
