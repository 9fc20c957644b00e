//! Files: what users sent, `getFile` (refused over 20 MB, as the Bot API refuses it), and
//! downloads of the stored bytes from `/file/bot<token>/<path>`, each one recorded.
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Shared, error, ok, text_param};
use crate::types::File;

/// Largest file `getFile` hands out for download: 20 MB.
pub(super) const MAX_DOWNLOAD_BYTES: u64 = 20 * 1024 * 1024;

/// A file a user sent: what `getFile` describes, and its bytes.
pub(super) struct Stored {
    pub(super) file: File,
    pub(super) bytes: Arc<[u8]>,
}

/// One request for `/file/bot<token>/<path>`, whatever the answer.
#[derive(Clone, Debug, Serialize)]
pub struct Download {
    /// The path asked for (after the token).
    pub file_path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Bytes served; 0 when refused.
    pub bytes: u64,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

pub(super) fn download(shared: &Shared, rest: &str) -> HttpResponse {
    let (token, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut state = shared.lock();
    let found = state
        .files
        .values()
        .find(|s| s.file.file_path.as_deref() == Some(path))
        .map(|s| Arc::clone(&s.bytes));
    let (status, body) = match found {
        _ if token != shared.token => (401, None),
        Some(bytes) if bytes.len() as u64 <= MAX_DOWNLOAD_BYTES => (200, Some(bytes)),
        _ => (404, None),
    };
    state.downloads.push(Download {
        file_path: path.to_string(),
        status,
        bytes: body.as_ref().map_or(0, |b| b.len() as u64),
        elapsed: shared.elapsed(),
    });
    match body {
        Some(bytes) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(bytes.to_vec()),
        None if status == 401 => error(401, "Unauthorized"),
        None => error(404, "Not Found"),
    }
}

pub(super) fn get_file(shared: &Shared, params: &Map<String, Value>) -> HttpResponse {
    let id = text_param(params, "file_id").unwrap_or_default();
    match shared.lock().files.get(&id) {
        Some(stored) if stored.bytes.len() as u64 > MAX_DOWNLOAD_BYTES => {
            error(400, "Bad Request: file is too big")
        }
        Some(stored) => ok(&stored.file),
        None => error(400, "Bad Request: invalid file_id"),
    }
}
