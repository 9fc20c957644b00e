//! How a sandbox shows a message the emulator accepted: once Twilio fetched its files, with
//! those files as it received them.
use std::time::{Duration, Instant};

use platform_api::sandbox::SandboxFile;

use super::{Emulator, MediaDownload, SentMessage};

/// How long a sandbox waits for Twilio to fetch a message's files before showing it.
const MEDIA_WAIT: Duration = Duration::from_secs(20);

/// The files of `message` that Twilio fetched (`downloads`, as the emulator recorded them).
pub fn files(message: &SentMessage, downloads: &[MediaDownload]) -> Vec<SandboxFile> {
    downloads
        .iter()
        .filter(|d| d.message_sid == message.sid && d.sha1.is_some())
        .map(|d| SandboxFile {
            name: d.filename.clone().unwrap_or_else(|| "file".to_string()),
            content_type: d
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_string()),
            size: d.size as u64,
        })
        .collect()
}

/// Waits until Twilio has fetched every `MediaUrl` of `message` (or failed to) and returns
/// what it got: its files are known only then.
pub fn fetched(emulator: &Emulator, message: &SentMessage) -> Vec<MediaDownload> {
    let deadline = Instant::now() + MEDIA_WAIT;
    loop {
        let downloads: Vec<MediaDownload> = emulator
            .downloads()
            .into_iter()
            .filter(|d| d.message_sid == message.sid)
            .collect();
        let done = downloads.len() >= message.media_urls.len()
            || downloads.iter().any(|d| d.sha1.is_none());
        if done || Instant::now() >= deadline {
            return downloads;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
