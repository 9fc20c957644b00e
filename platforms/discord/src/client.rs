//! Discord's REST API over awc: `Authorization: Bot <token>` on every call, and Discord's rate
//! limits kept per route.
//!
//! Every answer carries its route's bucket (`X-RateLimit-Bucket`), how many calls it has left
//! (`X-RateLimit-Remaining`) and when it refills (`X-RateLimit-Reset-After`, seconds). A bucket
//! is per route and major parameter (the channel id): before a call whose bucket is empty, the
//! client waits for the refill, and a 429 empties the bucket (or, when `global`, every bucket)
//! for its `retry_after`. Waits longer than [`MAX_INLINE_WAIT`] are handed back to the caller
//! rather than slept through.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use awc::error::SendRequestError;
use awc::{ClientRequest, SendClientRequest};
use platform_api::http::client;
use platform_api::http::multipart::{Form, FormBody};
use serde::Serialize;

use crate::types::ErrorBody;

/// The longest wait for a rate-limit bucket that a call sleeps through; a longer one is
/// returned as [`CallError::Limited`].
pub const MAX_INLINE_WAIT: Duration = Duration::from_secs(10);
/// Largest answer read (a page of 100 messages fits with room to spare).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One call to the REST API: its method and path, and the rate-limit route it counts against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path below the API base URL, query included (`/channels/1/messages`).
    pub path: String,
    /// The route with its ids replaced (`POST /channels/{id}/messages`).
    pub key: &'static str,
    /// The major parameter Discord keeps separate buckets for (the channel id), if any.
    pub major: String,
}

impl Route {
    /// `POST /channels/{id}/messages`: create a message.
    pub fn create_message(channel: &str) -> Route {
        Route {
            method: Method::POST,
            path: format!("/channels/{channel}/messages"),
            key: "POST /channels/{id}/messages",
            major: channel.to_string(),
        }
    }

    /// `PATCH /channels/{id}/messages/{message}`: edit a message.
    pub fn edit_message(channel: &str, message: &str) -> Route {
        Route {
            method: Method::PATCH,
            path: format!("/channels/{channel}/messages/{message}"),
            key: "PATCH /channels/{id}/messages/{id}",
            major: channel.to_string(),
        }
    }

    /// `GET /channels/{id}/messages?after=…&limit=…`: messages newer than `after`.
    pub fn list_messages(channel: &str, after: u64, limit: u8) -> Route {
        Route {
            method: Method::GET,
            path: format!("/channels/{channel}/messages?after={after}&limit={limit}"),
            key: "GET /channels/{id}/messages",
            major: channel.to_string(),
        }
    }

    /// `POST /channels/{id}/typing`: show the typing indicator.
    pub fn typing(channel: &str) -> Route {
        Route {
            method: Method::POST,
            path: format!("/channels/{channel}/typing"),
            key: "POST /channels/{id}/typing",
            major: channel.to_string(),
        }
    }

    /// `GET /channels/{id}`: a channel.
    pub fn channel(channel: &str) -> Route {
        Route {
            method: Method::GET,
            path: format!("/channels/{channel}"),
            key: "GET /channels/{id}",
            major: channel.to_string(),
        }
    }

    /// `GET /users/@me`: the bot's own user.
    pub fn me() -> Route {
        Route::plain(Method::GET, "/users/@me")
    }

    /// `GET /applications/@me`: the bot's application.
    pub fn application() -> Route {
        Route::plain(Method::GET, "/applications/@me")
    }

    /// `GET /gateway/bot`: where to connect, and how many sessions are left.
    pub fn gateway_bot() -> Route {
        Route::plain(Method::GET, "/gateway/bot")
    }

    fn plain(method: Method, path: &'static str) -> Route {
        Route {
            method,
            path: path.to_string(),
            key: path,
            major: String::new(),
        }
    }
}

/// A file uploaded with a message: one `files[n]` part of its [`form`].
#[derive(Clone, Debug)]
pub struct FileUpload {
    /// The name in the part's header; the message's `attachments` names the file as the
    /// recipient sees it.
    pub filename: String,
    /// Its MIME type (`application/octet-stream` when it is not one).
    pub content_type: String,
    /// Its bytes.
    pub bytes: Arc<[u8]>,
}

/// The form Discord takes for a message with files: `payload_json` (the message's JSON, its
/// `attachments` naming each file by the `n` of its part) and `files[n]`.
pub fn form<B: Serialize>(json: &B, files: &[FileUpload]) -> Result<FormBody, String> {
    let payload = serde_json::to_string(json).map_err(|err| err.to_string())?;
    let mut form = Form::new();
    form.text("payload_json", payload);
    for (n, file) in files.iter().enumerate() {
        // The header's name is kept to characters that need no quoting.
        let filename = crate::types::attachment_filename(&file.filename);
        form.file(
            format!("files[{n}]"),
            filename,
            file.content_type.as_str(),
            &file.bytes,
        );
    }
    Ok(form.encode())
}

/// Discord's answer to a call.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body (empty when it could not be read).
    pub body: Bytes,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A call that got no answer.
#[derive(Debug)]
pub enum CallError {
    /// Not sent: the route's bucket (or the global limit) is empty for this long.
    Limited {
        /// How long until it refills.
        after: Duration,
    },
    /// The request failed on the way (connect, timeout, broken connection).
    Transport(SendRequestError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Limited { after } => {
                write!(f, "rate limited by Discord for {:.1}s", after.as_secs_f64())
            }
            CallError::Transport(err) => write!(f, "{err}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    remaining: u64,
    reset_at: Instant,
}

#[derive(Default)]
struct Limits {
    /// The bucket hash Discord named for each route.
    bucket_of: HashMap<&'static str, String>,
    /// Bucket state by bucket hash (or route, before Discord named one) and major parameter.
    buckets: HashMap<(String, String), Bucket>,
    /// Every call waits until then (a global 429).
    global_until: Option<Instant>,
}

impl Limits {
    fn key(&self, route: &Route) -> (String, String) {
        let bucket = self
            .bucket_of
            .get(route.key)
            .cloned()
            .unwrap_or_else(|| route.key.to_string());
        (bucket, route.major.clone())
    }

    /// How long `route` must wait now; when it need not, its call is counted against the bucket.
    fn reserve(&mut self, route: &Route, now: Instant) -> Duration {
        let global = self
            .global_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        let key = self.key(route);
        let bucket_wait = match self.buckets.get_mut(&key) {
            Some(bucket) if bucket.reset_at <= now => {
                self.buckets.remove(&key);
                Duration::ZERO
            }
            Some(bucket) if bucket.remaining == 0 => bucket.reset_at - now,
            Some(bucket) => {
                if global.is_zero() {
                    bucket.remaining -= 1;
                }
                Duration::ZERO
            }
            None => Duration::ZERO,
        };
        global.max(bucket_wait)
    }

    /// Takes in what an answer says about the route's bucket.
    fn update(
        &mut self,
        route: &Route,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        now: Instant,
    ) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(bucket) = header("X-RateLimit-Bucket") {
            self.bucket_of.insert(route.key, bucket.to_string());
        }
        let key = self.key(route);
        let remaining = header("X-RateLimit-Remaining").and_then(|v| v.parse::<u64>().ok());
        let reset_after = header("X-RateLimit-Reset-After").and_then(seconds);
        if let (Some(remaining), Some(reset_after)) = (remaining, reset_after) {
            self.buckets.insert(
                key.clone(),
                Bucket {
                    remaining,
                    reset_at: now + reset_after,
                },
            );
        }
        if status == 429 {
            let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
            let wait = parsed
                .retry_after
                .and_then(from_secs)
                .or_else(|| header("Retry-After").and_then(seconds));
            let Some(wait) = wait else { return };
            let global = parsed.global == Some(true) || header("X-RateLimit-Global").is_some();
            if global {
                self.global_until = Some(now + wait);
            } else {
                self.buckets.insert(
                    key,
                    Bucket {
                        remaining: 0,
                        reset_at: now + wait,
                    },
                );
            }
        }
    }
}

/// A duration in (possibly fractional) seconds, as Discord writes them; capped at an hour.
pub fn seconds(text: &str) -> Option<Duration> {
    from_secs(text.trim().parse::<f64>().ok()?)
}

/// A number of seconds as a duration, capped at an hour; `None` when negative or not finite.
pub fn from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// A client of Discord's REST API for one bot. Shared by every actix thread; awc's client is
/// the thread's own ([`platform_api::http::client`]).
pub struct Rest {
    base: String,
    token: String,
    limits: Mutex<Limits>,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// A client of the API at `base` (`https://discord.com/api/v10`) for the bot with `token`.
    pub fn new(base: &str, token: &str) -> Rest {
        Rest {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            limits: Mutex::new(Limits::default()),
        }
    }

    /// The API base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `route` with an optional JSON body, within `timeout`, waiting first for its rate
    /// limit (up to [`MAX_INLINE_WAIT`]).
    pub async fn call<B: Serialize>(
        &self,
        route: &Route,
        json: Option<&B>,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        self.call_waiting(route, json, timeout, MAX_INLINE_WAIT)
            .await
    }

    /// [`Rest::call`], waiting at most `max_wait` for the rate limit (zero: a call that would
    /// have to wait is not made, and [`CallError::Limited`] says for how long).
    pub async fn call_waiting<B: Serialize>(
        &self,
        route: &Route,
        json: Option<&B>,
        timeout: Duration,
        max_wait: Duration,
    ) -> Result<Answer, CallError> {
        self.send(route, timeout, max_wait, |request| match json {
            Some(body) => request.send_json(body),
            None if route.method == Method::POST => {
                request.insert_header(("Content-Length", "0")).send()
            }
            None => request.send(),
        })
        .await
    }

    /// [`Rest::call_waiting`] with a multipart body ([`form`]): a message with files.
    pub async fn call_form(
        &self,
        route: &Route,
        form: FormBody,
        timeout: Duration,
        max_wait: Duration,
    ) -> Result<Answer, CallError> {
        let FormBody { content_type, body } = form;
        self.send(route, timeout, max_wait, |request| {
            request.content_type(content_type).send_body(body)
        })
        .await
    }

    /// Waits for `route`'s rate limit (at most `max_wait`), makes the request with `send`
    /// (which adds the body), and takes in what the answer says about the route's bucket.
    async fn send(
        &self,
        route: &Route,
        timeout: Duration,
        max_wait: Duration,
        send: impl FnOnce(ClientRequest) -> SendClientRequest,
    ) -> Result<Answer, CallError> {
        let started = Instant::now();
        loop {
            let wait = self.limits().reserve(route, Instant::now());
            if wait.is_zero() {
                break;
            }
            if started.elapsed() + wait > max_wait {
                return Err(CallError::Limited { after: wait });
            }
            actix_web::rt::time::sleep(wait).await;
        }
        let request = client()
            .request(route.method.clone(), format!("{}{}", self.base, route.path))
            .timeout(timeout)
            .insert_header(("Authorization", format!("Bot {}", self.token)));
        let mut response = send(request).await.map_err(CallError::Transport)?;
        let status = response.status().as_u16();
        let retry_after = platform_api::http::retry_after(response.headers());
        let headers = response.headers().clone();
        let body = response.body().limit(MAX_ANSWER).await.unwrap_or_default();
        self.limits()
            .update(route, status, &headers, &body, Instant::now());
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// [`Rest::call`] without a body.
    pub async fn get(&self, route: &Route, timeout: Duration) -> Result<Answer, CallError> {
        self.call::<()>(route, None, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn an_empty_bucket_waits_for_its_reset_and_others_do_not() {
        let mut limits = Limits::default();
        let now = Instant::now();
        let one = Route::create_message("1");
        let two = Route::create_message("2");
        assert_eq!(limits.reserve(&one, now), Duration::ZERO);
        limits.update(
            &one,
            200,
            &headers(&[
                ("X-RateLimit-Bucket", "abc"),
                ("X-RateLimit-Remaining", "1"),
                ("X-RateLimit-Reset-After", "2.5"),
            ]),
            b"",
            now,
        );
        // One call left: it goes, and the next waits for the reset.
        assert_eq!(limits.reserve(&one, now), Duration::ZERO);
        assert_eq!(limits.reserve(&one, now), Duration::from_millis(2500));
        // Another channel is another bucket.
        assert_eq!(limits.reserve(&two, now), Duration::ZERO);
        // Once reset, the bucket is forgotten until the next answer.
        let later = now + Duration::from_secs(3);
        assert_eq!(limits.reserve(&one, later), Duration::ZERO);
    }

    #[test]
    fn a_429_empties_its_bucket_or_everything_when_global() {
        let mut limits = Limits::default();
        let now = Instant::now();
        let route = Route::create_message("1");
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 1.25, "global": false}"#;
        limits.update(&route, 429, &headers(&[("Retry-After", "2")]), body, now);
        assert_eq!(limits.reserve(&route, now), Duration::from_millis(1250));
        assert_eq!(
            limits.reserve(&Route::typing("1"), now),
            Duration::ZERO,
            "another route is not limited"
        );
        let global =
            br#"{"message": "You are being rate limited.", "retry_after": 3, "global": true}"#;
        limits.update(&route, 429, &HeaderMap::new(), global, now);
        assert_eq!(
            limits.reserve(&Route::typing("9"), now),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn seconds_are_fractional_and_capped() {
        assert_eq!(seconds("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(seconds("86400"), Some(Duration::from_secs(3600)));
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds("soon"), None);
    }
}
