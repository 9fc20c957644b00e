//! Attachments, both ways: files users post and files the bot uploads become Discord's
//! attachment objects, served on a CDN-like route (`/attachments/{channel}/{id}/{filename}`)
//! behind the signed, expiring query Discord's CDN adds (`ex`, `is`, `hm`).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Shared, State};
use crate::types::attachment_filename;

/// The most a bot may upload in one file without a boosted server: 10 MiB.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The most files one message may carry.
pub const MAX_FILES: usize = 10;
/// How long an attachment URL stays valid, as Discord signs them (24 hours).
const URL_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A file a user attaches to a [`super::Post`].
#[derive(Clone, Debug, PartialEq)]
pub struct PostedFile {
    /// Its name.
    pub filename: String,
    /// Its media type, as the user's client declared it.
    pub content_type: Option<String>,
    /// Its bytes, served at the attachment's URL.
    pub bytes: Vec<u8>,
    /// Set for a voice message.
    pub voice: Option<Voice>,
}

/// What makes an audio attachment a voice message.
#[derive(Clone, Debug, PartialEq)]
pub struct Voice {
    /// Its length in seconds.
    pub duration_secs: f64,
    /// Its waveform: base64 of up to 256 one-byte samples.
    pub waveform: String,
}

/// A file the bot uploaded with a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentFile {
    /// The attachment's id.
    pub id: String,
    /// Its name, as Discord keeps it.
    pub filename: String,
    /// The media type of its part, when it had one.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub size: usize,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
}

/// One request on the attachment route, with its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Download {
    /// The attachment asked for (as the path names it).
    pub attachment_id: String,
    /// The file name in the path.
    pub filename: String,
    /// The HTTP status answered: 200, or 404 for an unknown, tampered or expired URL.
    pub status: u16,
    /// When it arrived, from the start of the emulator.
    pub elapsed: Duration,
}

/// A file the emulator serves.
pub(super) struct Hosted {
    channel_id: String,
    filename: String,
    content_type: Option<String>,
    bytes: web::Bytes,
    /// The signature its URL carries.
    hm: String,
    /// The expiry its URL is signed with, in seconds since the Unix epoch.
    ex: u64,
    /// When its URL stops working (sooner after [`super::Emulator::expire_attachments`]).
    pub(super) expires: SystemTime,
}

/// A file on its way to being hosted: from a user's post or the bot's upload.
pub(super) struct Upload {
    /// Its name as given (the attachment keeps a URL-safe form of it).
    pub filename: String,
    /// Its media type, as declared.
    pub content_type: Option<String>,
    /// Its bytes.
    pub bytes: web::Bytes,
    /// Set for a voice message.
    pub voice: Option<Voice>,
}

impl From<&PostedFile> for Upload {
    fn from(file: &PostedFile) -> Upload {
        Upload {
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            bytes: web::Bytes::from(file.bytes.clone()),
            voice: file.voice.clone(),
        }
    }
}

impl Upload {
    /// The record of it as the bot sent it, under attachment `id`.
    pub(super) fn sent(&self, id: u64) -> SentFile {
        let sha256 = Sha256::digest(&self.bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        SentFile {
            id: id.to_string(),
            filename: attachment_filename(&self.filename),
            content_type: self.content_type.clone(),
            size: self.bytes.len(),
            sha256,
        }
    }
}

impl State {
    /// Hosts `upload` in `channel_id` under a new id; returns its attachment object.
    pub(super) fn host(&mut self, shared: &Shared, channel_id: &str, upload: &Upload) -> Value {
        let id = self.snowflake();
        let filename = attachment_filename(&upload.filename);
        let issued = SystemTime::now();
        let hosted = Hosted {
            channel_id: channel_id.to_string(),
            filename: filename.clone(),
            content_type: upload.content_type.clone(),
            bytes: upload.bytes.clone(),
            hm: format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            ),
            ex: unix(issued + URL_LIFETIME),
            expires: issued + URL_LIFETIME,
        };
        let url = format!(
            "http://{}/attachments/{channel_id}/{id}/{filename}?ex={:x}&is={:x}&hm={}&",
            shared.addr,
            hosted.ex,
            unix(issued),
            hosted.hm,
        );
        let mut attachment = json!({
            "id": id.to_string(),
            "filename": filename,
            "size": upload.bytes.len(),
            "url": url,
            "proxy_url": url,
        });
        if filename != upload.filename {
            // Discord keeps the name as given, special characters included, as the title.
            attachment["title"] = json!(upload.filename);
        }
        if let Some(content_type) = &upload.content_type {
            attachment["content_type"] = json!(content_type);
        }
        if let Some((width, height)) = image_size(&upload.bytes) {
            attachment["width"] = json!(width);
            attachment["height"] = json!(height);
        }
        if let Some(voice) = &upload.voice {
            attachment["duration_secs"] = json!(voice.duration_secs);
            attachment["waveform"] = json!(voice.waveform);
        }
        self.files.insert(id, hosted);
        attachment
    }
}

/// `GET /attachments/{channel}/{id}/{filename}`: the file's bytes while its signed URL is
/// valid; 404 as the CDN answers otherwise. Every request is recorded.
pub(super) async fn download(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let info = req.match_info();
    let (channel_id, id, filename) = (
        info.get("channel").unwrap_or_default(),
        info.get("id").unwrap_or_default(),
        info.get("filename").unwrap_or_default(),
    );
    let query = web::Query::<Signature>::from_query(req.query_string()).ok();
    let mut state = shared.lock();
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.files.get(&id))
        .filter(|f| f.channel_id == channel_id && f.filename == filename)
        .filter(|f| {
            query
                .as_ref()
                .is_some_and(|q| q.hm == f.hm && q.ex == format!("{:x}", f.ex) && !q.is.is_empty())
        })
        .filter(|f| f.expires > SystemTime::now())
        .map(|f| (f.bytes.clone(), f.content_type.clone()));
    let status = if found.is_some() { 200 } else { 404 };
    state.downloads.push(Download {
        attachment_id: id.to_string(),
        filename: filename.to_string(),
        status,
        elapsed: shared.started.elapsed(),
    });
    drop(state);
    match found {
        Some((bytes, content_type)) => HttpResponse::Ok()
            .content_type(content_type.unwrap_or_else(|| "application/octet-stream".into()))
            .body(bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("This content is no longer available."),
    }
}

/// The signed query of an attachment URL.
#[derive(serde::Deserialize)]
struct Signature {
    ex: String,
    is: String,
    hm: String,
}

/// Seconds since the Unix epoch.
fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The width and height of a PNG, GIF or JPEG, read from its header as Discord reports them
/// for images; other formats report none here. Reading three headers keeps an image decoder
/// out of the emulator's dependencies.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) && bytes.get(12..16) == Some(b"IHDR") {
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        return Some((word(16)?, word(20)?));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let half = |at: usize| {
            bytes
                .get(at..at + 2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        };
        return Some((half(6)?, half(8)?));
    }
    if bytes.starts_with(b"\xff\xd8") {
        // Segments up to the first start-of-frame, which holds height then width.
        let mut at = 2;
        while bytes.get(at) == Some(&0xff) {
            let marker = *bytes.get(at + 1)?;
            match marker {
                0xff => at += 1,
                0x01 | 0xd0..=0xd7 => at += 2,
                0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                    return Some((be16(at + 7)?, be16(at + 5)?));
                }
                _ => at += 2 + be16(at + 2)? as usize,
            }
        }
    }
    None
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn image_sizes_come_from_png_and_gif_headers() {
        let png_640x480 =
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x06";
        let gif_300x2 = b"GIF89a\x2c\x01\x02\x00\xf7\x00";
        // SOI, an APP0 segment, then SOF0: 8 bits, 1080 high, 1920 wide.
        let jpeg_1920x1080 = b"\xff\xd8\xff\xe0\x00\x04JF\xff\xc0\x00\x11\x08\x04\x38\x07\x80\x03";
        let cases: [(&[u8], _); 7] = [
            (png_640x480, Some((640, 480))),
            (gif_300x2, Some((300, 2))),
            (jpeg_1920x1080, Some((1920, 1080))),
            (&jpeg_1920x1080[..12], None),
            (&png_640x480[..20], None),
            (b"%PDF-1.7", None),
            (b"", None),
        ];
        for (bytes, size) in cases {
            assert_eq!(image_size(bytes), size, "{bytes:?}");
        }
    }
}
