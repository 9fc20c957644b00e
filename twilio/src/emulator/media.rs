//! MMS media, both ways.
//!
//! Inbound: a person's MMS ([`Emulator::text_with_media`](super::Emulator::text_with_media))
//! leaves its files at the emulator, which serves each on Twilio's media URL,
//! `/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}`, only to the account's Basic
//! credentials, and answers there, as Twilio does, with a redirect to a short-lived,
//! unauthenticated CDN link that serves the bytes with their content type.
//!
//! Outbound: before the carrier sends a message with `MediaUrl`s, the emulator fetches each one
//! as Twilio does (a GET, following redirects, within a timeout). A failed fetch fails the
//! message with 11200, more than 5 MB in all with 11751.
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use sha1::{Digest, Sha1};

use super::{Shared, random_sid};

/// How long a CDN link a media URL redirects to stays valid (Twilio's are short-lived).
pub(super) const CDN_TTL: Duration = Duration::from_secs(300);
/// The path of the emulator's media CDN.
pub(super) const CDN_PATH: &str = "/_emulator/media-cdn";
/// Twilio's limit on the files of one message.
pub(super) const MAX_MEDIA: usize = 10;
/// Twilio's limit on the media of one MMS, all files together.
const MAX_MMS_BYTES: usize = 5 * 1024 * 1024;
/// How long Twilio waits for one media URL.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Twilio's code for a media URL it could not retrieve.
pub(super) const RETRIEVAL_FAILURE: i64 = 11200;
/// Twilio's code for media over the channel's size limit.
pub(super) const TOO_LARGE: i64 = 11751;

/// A file a person attaches to an MMS.
#[derive(Clone, Debug)]
pub struct MediaFile {
    /// Its MIME type, as Twilio reports it in `MediaContentType{i}`.
    pub content_type: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// A stored inbound file, by its media SID.
#[derive(Clone, Debug)]
pub(super) struct StoredMedia {
    pub(super) message_sid: String,
    pub(super) file: MediaFile,
}

/// A CDN link handed out by a redirect.
#[derive(Clone, Debug)]
pub(super) struct CdnLink {
    pub(super) media_sid: String,
    pub(super) expires: Instant,
}

/// One GET of inbound media, on Twilio's media URL or on the CDN link it redirects to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MediaFetch {
    /// The path asked for.
    pub path: String,
    /// Whether the request carried the account's Basic credentials.
    pub authorized: bool,
    /// The HTTP status answered.
    pub status: u16,
}

/// What the emulator got when it fetched a `MediaUrl` of an outbound message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MediaDownload {
    /// The message it belongs to.
    pub message_sid: String,
    /// The `MediaUrl` as given.
    pub url: String,
    /// The final HTTP status, after redirects; `None` when no answer came (refused, timeout).
    pub status: Option<u16>,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The file name its `Content-Disposition` gave, if any.
    pub filename: Option<String>,
    /// How many bytes were read.
    pub size: usize,
    /// The SHA-1 of the bytes, in lowercase hex; `None` unless the fetch succeeded.
    pub sha1: Option<String>,
}

/// Stores an inbound message's files under a new message SID with `prefix`; returns the SID
/// and each file's media SID, in order.
pub(super) fn store(shared: &Shared, prefix: &str, files: &[MediaFile]) -> (String, Vec<String>) {
    let message_sid = random_sid(prefix);
    let mut state = shared.lock();
    let sids = files
        .iter()
        .map(|file| {
            let sid = random_sid("ME");
            state.media.insert(
                sid.clone(),
                StoredMedia {
                    message_sid: message_sid.clone(),
                    file: file.clone(),
                },
            );
            sid
        })
        .collect();
    (message_sid, sids)
}

/// `GET …/Messages/{MM}/Media/{ME}`, once authenticated: a redirect to a fresh CDN link (or a
/// 503 while [`Emulator::fail_media_fetches`](super::Emulator::fail_media_fetches) says so).
pub(super) fn media(
    shared: &Shared,
    req: &HttpRequest,
    message_sid: &str,
    media_sid: &str,
) -> HttpResponse {
    let mut state = shared.lock();
    let known = state
        .media
        .get(media_sid)
        .is_some_and(|stored| stored.message_sid == message_sid);
    let response = if known && state.media_failures > 0 {
        state.media_failures -= 1;
        super::twilio_error(503, Some(20503), "Service Unavailable")
    } else if known {
        let token = format!("{:032x}", rand::random::<u128>());
        state.cdn.insert(
            token.clone(),
            CdnLink {
                media_sid: media_sid.to_string(),
                expires: Instant::now() + CDN_TTL,
            },
        );
        let host = req.connection_info().host().to_string();
        HttpResponse::Found()
            .insert_header((header::LOCATION, format!("http://{host}{CDN_PATH}/{token}")))
            .finish()
    } else {
        super::not_found(req.path())
    };
    state.media_fetches.push(MediaFetch {
        path: req.path().to_string(),
        authorized: true,
        status: response.status().as_u16(),
    });
    response
}

/// `GET /_emulator/media-cdn/{token}`: the bytes, to anyone holding a live link; 403 once it
/// expired (as the CDN's signed URLs answer), 404 for a link never handed out.
pub(super) async fn cdn(
    req: HttpRequest,
    token: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let mut state = shared.lock();
    let response = match state.cdn.get(token.as_str()) {
        None => HttpResponse::NotFound().finish(),
        Some(link) if link.expires <= Instant::now() => HttpResponse::Forbidden().finish(),
        Some(link) => match state.media.get(&link.media_sid) {
            Some(stored) => HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, stored.file.content_type.clone()))
                .body(stored.file.bytes.clone()),
            None => HttpResponse::NotFound().finish(),
        },
    };
    state.media_fetches.push(MediaFetch {
        path: req.path().to_string(),
        authorized: false,
        status: response.status().as_u16(),
    });
    response
}

/// Records a media URL request refused for its credentials, and answers it.
pub(super) fn unauthorized(shared: &Shared, path: &str) -> HttpResponse {
    let response = super::unauthenticated();
    shared.lock().media_fetches.push(MediaFetch {
        path: path.to_string(),
        authorized: false,
        status: response.status().as_u16(),
    });
    response
}

/// Fetches every `MediaUrl` of message `sid` as Twilio does, recording each download; the
/// error code the message fails with, if any.
pub(super) async fn fetch_all(shared: &Shared, sid: &str, urls: &[String]) -> Option<i64> {
    super::install_crypto_provider();
    let timeout = shared.lock().fetch_timeout;
    let client = awc::Client::builder()
        .timeout(timeout)
        .max_redirects(10)
        .finish();
    let mut total = 0usize;
    for url in urls {
        let remaining = MAX_MMS_BYTES.saturating_sub(total);
        let mut download = MediaDownload {
            message_sid: sid.to_string(),
            url: url.clone(),
            status: None,
            content_type: None,
            filename: None,
            size: 0,
            sha1: None,
        };
        let outcome = match client.get(url).send().await {
            Err(_) => Some(RETRIEVAL_FAILURE),
            Ok(mut response) => {
                download.status = Some(response.status().as_u16());
                download.content_type = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                download.filename = response
                    .headers()
                    .get(header::CONTENT_DISPOSITION)
                    .and_then(|v| header::ContentDisposition::from_raw(v).ok())
                    .and_then(|d| d.get_filename().map(str::to_string));
                if !response.status().is_success() {
                    Some(RETRIEVAL_FAILURE)
                } else {
                    // One byte over the limit is enough to know it is over.
                    match response.body().limit(remaining + 1).await {
                        Err(awc::error::PayloadError::Overflow) => Some(TOO_LARGE),
                        Err(_) => Some(RETRIEVAL_FAILURE),
                        Ok(bytes) => {
                            download.size = bytes.len();
                            total += bytes.len();
                            if bytes.len() > remaining {
                                Some(TOO_LARGE)
                            } else {
                                download.sha1 = Some(
                                    Sha1::digest(&bytes)
                                        .iter()
                                        .map(|b| format!("{b:02x}"))
                                        .collect::<String>(),
                                );
                                None
                            }
                        }
                    }
                }
            }
        };
        shared.lock().downloads.push(download);
        if outcome.is_some() {
            return outcome;
        }
    }
    None
}
