//! `sendPhoto`, `sendVoice`, `sendAudio`, `sendVideo` and `sendDocument`: the file uploaded as
//! multipart/form-data (directly or as `attach://<part>`), or named by the `file_id` of a known
//! file or by an HTTP URL; the caption checked as `sendMessage` checks text, up to 1,024 units;
//! Telegram's size limits (uploads 50 MB, photos 10 MB) and its refusal of photos that are not
//! images. An HTTP URL is taken as it is (the emulator fetches nothing from outside), so a photo
//! sent by URL shows width and height 0 and no size.
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::error::PayloadError;
use actix_web::web::{self, Bytes};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

use super::files::Stored;
use super::messages::{
    answer_send, from_bot, next_message_id, parse_as, recipient, record, scripted,
};
use super::{Attempt, Callback, SentMessage, Shared, html, int_param, text_param};
use crate::format::utf16_len;
use crate::types::{Document, File, Message, PhotoSize};

/// Longest caption, in UTF-16 code units of visible text.
const MAX_CAPTION_UNITS: usize = 1024;
/// Largest file a bot uploads: 50 MB.
const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;
/// Largest photo a bot sends: 10 MB.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

/// What a bot sends: the five methods that send a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Photo,
    Voice,
    Audio,
    Video,
    Document,
}

impl Kind {
    /// The method (lower case) that sends this kind, if `method` is one.
    pub(super) fn of_method(method: &str) -> Option<Kind> {
        match method {
            "sendphoto" => Some(Kind::Photo),
            "sendvoice" => Some(Kind::Voice),
            "sendaudio" => Some(Kind::Audio),
            "sendvideo" => Some(Kind::Video),
            "senddocument" => Some(Kind::Document),
            _ => None,
        }
    }

    /// The method, as Telegram spells it.
    fn method(self) -> &'static str {
        match self {
            Kind::Photo => "sendPhoto",
            Kind::Voice => "sendVoice",
            Kind::Audio => "sendAudio",
            Kind::Video => "sendVideo",
            Kind::Document => "sendDocument",
        }
    }

    /// The parameter holding the file, also the field of the message that shows it.
    fn field(self) -> &'static str {
        match self {
            Kind::Photo => "photo",
            Kind::Voice => "voice",
            Kind::Audio => "audio",
            Kind::Video => "video",
            Kind::Document => "document",
        }
    }
}

/// A file the bot sent.
#[derive(Clone, Debug, Serialize)]
pub struct SentFile {
    /// `photo`, `voice`, `audio`, `video` or `document`.
    pub kind: String,
    /// The `file_id` Telegram gave it (a new one for an upload or URL).
    pub file_id: String,
    /// The uploaded part's file name.
    pub file_name: Option<String>,
    /// The uploaded part's `Content-Type`.
    pub content_type: Option<String>,
    /// Size of the upload in bytes; `None` when sent by URL.
    pub file_size: Option<u64>,
    /// SHA-1 of the uploaded bytes, lowercase hex; `None` when sent by URL.
    pub sha1: Option<String>,
    /// The URL or `file_id` it was sent by, when it was not uploaded.
    pub reference: Option<String>,
}

/// A file part of a multipart/form-data call.
pub(super) struct Upload {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

/// Whether a request's body is multipart/form-data.
pub(super) fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The text parts of a multipart/form-data body, added to `params`, and its file parts.
pub(super) async fn multipart(
    req: &HttpRequest,
    body: Bytes,
    mut params: Map<String, Value>,
) -> Result<(Map<String, Value>, Vec<Upload>), String> {
    let stream = futures_util::stream::once(async move { Ok::<_, PayloadError>(body) });
    let mut parts = actix_multipart::Multipart::new(req.headers(), stream);
    let mut uploads = Vec::new();
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|e| e.to_string())?;
        let name = part.name().unwrap_or_default().to_string();
        let file_name = part
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let content_type = part.content_type().map(|m| m.essence_str().to_string());
        let mut bytes = Vec::new();
        while let Some(chunk) = part.try_next().await.map_err(|e| e.to_string())? {
            bytes.extend_from_slice(&chunk);
        }
        if file_name.is_some() {
            uploads.push(Upload {
                name,
                file_name,
                content_type,
                bytes,
            });
        } else {
            let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
            params.insert(name, Value::String(text));
        }
    }
    Ok((params, uploads))
}

/// The width and height of a JPEG, PNG or GIF image; `None` for anything else. Telegram makes
/// the sizes of a photo from the image, so a photo must be one; the three formats bots send are
/// read here from their headers rather than with an image decoder, which would be a large
/// dependency for two numbers.
fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 = |at: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR") {
        let be32 = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        return Some((be32(16)?, be32(20)?));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let le16 = |at: usize| {
            Some(u32::from(u16::from_le_bytes(
                bytes.get(at..at + 2)?.try_into().ok()?,
            )))
        };
        return Some((le16(6)?, le16(8)?));
    }
    if !bytes.starts_with(b"\xff\xd8") {
        return None;
    }
    // JPEG: walk the segments to the first start of frame (SOF0…SOF15 but DHT, JPG and DAC).
    let mut at = 2;
    while *bytes.get(at)? == 0xff {
        let marker = *bytes.get(at + 1)?;
        let length = usize::try_from(be16(at + 2)?).ok()?;
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            let (height, width) = (be16(at + 5)?, be16(at + 7)?);
            return (width > 0 && height > 0).then_some((width, height));
        }
        at += 2 + length;
    }
    None
}

/// The visible caption and its entities, or the description of a 400.
fn caption(params: &Map<String, Value>) -> Result<Option<html::Parsed>, String> {
    let Some(caption) = text_param(params, "caption") else {
        return Ok(None);
    };
    let parse_mode = text_param(params, "parse_mode");
    let parsed = parse_as(&caption, parse_mode.as_deref())?;
    if utf16_len(&parsed.text) > MAX_CAPTION_UNITS {
        return Err("Bad Request: message caption is too long".to_string());
    }
    Ok((!parsed.text.is_empty()).then_some(parsed))
}

/// Where the file comes from.
enum Source<'a> {
    Upload(&'a Upload),
    Url(String),
    Known(String),
}

fn source<'a>(
    kind: Kind,
    params: &Map<String, Value>,
    uploads: &'a [Upload],
) -> Result<Source<'a>, (u16, String)> {
    let refuse = |status: u16, description: &str| Err((status, description.to_string()));
    let field = kind.field();
    let named = |name: &str| uploads.iter().find(|u| u.name == name);
    let upload = match text_param(params, field) {
        Some(text) => match text.strip_prefix("attach://") {
            Some(name) => named(name),
            None if text.starts_with("http://") || text.starts_with("https://") => {
                return Ok(Source::Url(text));
            }
            None if !text.trim().is_empty() => return Ok(Source::Known(text)),
            None => None,
        },
        None => named(field),
    };
    let Some(upload) = upload else {
        return refuse(
            400,
            &format!("Bad Request: there is no {field} in the request"),
        );
    };
    if upload.bytes.len() > MAX_UPLOAD_BYTES {
        return refuse(413, "Request Entity Too Large");
    }
    if upload.bytes.is_empty() {
        return refuse(400, "Bad Request: file must be non-empty");
    }
    if kind == Kind::Photo {
        if upload.bytes.len() > MAX_PHOTO_BYTES {
            return refuse(400, "Bad Request: PHOTO_SAVE_FILE_INVALID");
        }
        if dimensions(&upload.bytes).is_none() {
            return refuse(400, "Bad Request: IMAGE_PROCESS_FAILED");
        }
    }
    Ok(Source::Upload(upload))
}

/// Handles the five methods: takes a scripted fault as `sendMessage` does, checks as
/// Telegram checks, records, and answers the message.
pub(super) async fn send_media(
    shared: &web::Data<Shared>,
    kind: Kind,
    params: &Map<String, Value>,
    uploads: &[Upload],
) -> HttpResponse {
    let attempt = Attempt::arrived(shared, kind.method(), params);
    let (attempt, delay) = match scripted(shared, attempt).await {
        Ok(go_on) => go_on,
        Err(answer) => return answer,
    };
    let result = process(shared, kind, params, uploads);
    answer_send(shared, attempt, result, delay).await
}

fn process(
    shared: &Shared,
    kind: Kind,
    params: &Map<String, Value>,
    uploads: &[Upload],
) -> Result<(Value, SentMessage, Option<Callback>), (u16, String)> {
    let chat_id = text_param(params, "chat_id");
    let mut state = shared.lock();
    let chat = recipient(&state, chat_id.as_deref())?;
    let source = source(kind, params, uploads)?;
    let caption = caption(params).map_err(|description| (400, description))?;
    let known = match &source {
        Source::Known(id) => Some(
            state
                .files
                .get(id)
                .map(|s| (s.file.clone(), Arc::clone(&s.bytes)))
                .ok_or((
                    400,
                    "Bad Request: wrong file identifier/HTTP URL specified".to_string(),
                ))?,
        ),
        _ => None,
    };
    let n = state.next_file;
    state.next_file += 1;
    let (file, bytes, upload) = match (&source, known) {
        (_, Some((file, bytes))) => (file, Some(bytes), None),
        (Source::Upload(upload), None) => {
            let bytes: Arc<[u8]> = Arc::from(upload.bytes.as_slice());
            let extension = upload
                .file_name
                .as_deref()
                .and_then(|f| f.rsplit_once('.'))
                .map_or("bin", |(_, e)| e);
            let file = File {
                file_id: format!("BQAC{:024x}", rand::random::<u128>() >> 32),
                file_unique_id: format!("AgAD{n:08}"),
                file_size: Some(bytes.len() as u64),
                file_path: Some(format!("{}s/file_{n}.{extension}", kind.field())),
            };
            (file, Some(bytes), Some(*upload))
        }
        _ => {
            let file = File {
                file_id: format!("BQAC{:024x}", rand::random::<u128>() >> 32),
                file_unique_id: format!("AgAD{n:08}"),
                file_size: None,
                file_path: None,
            };
            (file, None, None)
        }
    };
    if let Some(bytes) = &bytes {
        let stored = Stored {
            file: file.clone(),
            bytes: Arc::clone(bytes),
        };
        state.files.insert(file.file_id.clone(), stored);
    }
    let message_id = next_message_id(&mut state, chat.id);
    let (text, entities) = caption.map_or((String::new(), Vec::new()), |c| (c.text, c.entities));
    let media = SentFile {
        kind: kind.field().to_string(),
        file_id: file.file_id.clone(),
        file_name: upload.and_then(|u| u.file_name.clone()),
        content_type: upload.and_then(|u| u.content_type.clone()),
        file_size: bytes.as_ref().map(|b| b.len() as u64),
        sha1: bytes.as_ref().map(|b| {
            Sha1::digest(b)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        }),
        reference: match &source {
            Source::Url(text) | Source::Known(text) => Some(text.clone()),
            Source::Upload(_) => None,
        },
    };
    let sent = SentMessage {
        chat_id: chat.id,
        message_id,
        text: text.clone(),
        body: text_param(params, "caption").unwrap_or_default(),
        parse_mode: text_param(params, "parse_mode"),
        entities: entities.clone(),
        media: Some(media.clone()),
        elapsed: shared.elapsed(),
    };
    record(&mut state, &sent);
    let message = Message {
        caption: (!text.is_empty()).then_some(text),
        caption_entities: entities,
        ..from_bot(shared, chat, message_id)
    };
    let mut message = serde_json::to_value(message).unwrap_or_default();
    let shown = shown(kind, &file, &media, bytes.as_deref(), params);
    if let Value::Object(map) = &mut message {
        map.insert(kind.field().to_string(), shown);
    }
    Ok((message, sent, state.on_message.clone()))
}

/// The message's `photo`, `voice`, `audio`, `video` or `document` field as Telegram returns
/// it.
fn shown(
    kind: Kind,
    file: &File,
    media: &SentFile,
    bytes: Option<&[u8]>,
    params: &Map<String, Value>,
) -> Value {
    let duration = int_param(params, "duration").unwrap_or(0).max(0);
    let mut shown = json!({
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
    });
    let map = shown.as_object_mut().expect("an object");
    if let Some(size) = file.file_size {
        map.insert("file_size".into(), json!(size));
    }
    match kind {
        Kind::Photo => {
            let (width, height) = bytes.and_then(dimensions).unwrap_or((0, 0));
            let size = PhotoSize {
                file_id: file.file_id.clone(),
                file_unique_id: file.file_unique_id.clone(),
                width,
                height,
                file_size: file.file_size,
            };
            return json!([size]);
        }
        Kind::Voice => {
            map.insert("duration".into(), json!(duration));
            map.insert(
                "mime_type".into(),
                json!(media.content_type.as_deref().unwrap_or("audio/ogg")),
            );
        }
        Kind::Audio | Kind::Video => {
            map.insert("duration".into(), json!(duration));
            if kind == Kind::Video {
                // Telegram reads the size from the video; the emulator does not decode it.
                let side = |name| int_param(params, name).unwrap_or(0).max(0);
                map.insert("width".into(), json!(side("width")));
                map.insert("height".into(), json!(side("height")));
            }
            if let Some(name) = &media.file_name {
                map.insert("file_name".into(), json!(name));
            }
            if let Some(mime) = &media.content_type {
                map.insert("mime_type".into(), json!(mime));
            }
        }
        Kind::Document => {
            let document = Document {
                file_id: file.file_id.clone(),
                file_unique_id: file.file_unique_id.clone(),
                file_name: media.file_name.clone(),
                mime_type: media.content_type.clone(),
                file_size: file.file_size,
            };
            return serde_json::to_value(document).unwrap_or_default();
        }
    }
    shown
}
