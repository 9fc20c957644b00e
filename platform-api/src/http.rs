//! HTTP plumbing for adapters that call a provider's API with `awc` (feature `http`): one
//! client per actix thread, what a failed request means for a send, downloads within a limit,
//! and form bodies for uploads ([`multipart`]).
use std::cell::OnceCell;
use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};

use crate::error::SendError;

pub mod multipart;

/// How long to wait for a connection; nothing has been sent when this runs out.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a request may take unless it sets its own limit (`ClientRequest::timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

thread_local! {
    // awc's client is not `Send`: each actix thread keeps its own, with its own pool.
    static CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

/// The HTTP client of this thread: pooled connections, no redirects, our User-Agent.
pub fn client() -> awc::Client {
    CLIENT.with(|cell| {
        cell.get_or_init(|| {
            let connector = awc::Connector::new()
                .timeout(CONNECT_TIMEOUT)
                // Shorter than the keep-alive of common servers, so that a pooled connection is
                // never one the server already closed.
                .conn_keep_alive(Duration::from_secs(4));
            awc::Client::builder()
                .connector(connector)
                .timeout(DEFAULT_TIMEOUT)
                .disable_redirects()
                .add_default_header((
                    "User-Agent",
                    concat!("hermes-gateway/", env!("CARGO_PKG_VERSION")),
                ))
                .finish()
        })
        .clone()
    })
}

/// What a request that got no answer means for a send to `peer` (a name for the operator, such
/// as `Twilio`): retryable when nothing can have reached it, ambiguous once it may have been
/// processed (so that it is not sent twice).
pub fn transport_error(err: SendRequestError, peer: &str, timeout: Duration) -> SendError {
    match err {
        SendRequestError::Connect(ConnectError::Timeout) => SendError::Retry {
            after: None,
            code: None,
            message: format!("timed out connecting to {peer}"),
        },
        SendRequestError::Connect(err) => SendError::Retry {
            after: None,
            code: None,
            message: format!("could not connect to {peer}: {err}"),
        },
        SendRequestError::Url(err) => SendError::Permanent {
            code: None,
            message: format!("bad URL for {peer}: {err}"),
        },
        SendRequestError::Timeout => SendError::Ambiguous {
            message: format!("no answer from {peer} within {}s", timeout.as_secs()),
        },
        other => SendError::Ambiguous {
            message: format!("connection to {peer} failed mid-request: {other}"),
        },
    }
}

/// The `Retry-After` header of an answer, as text.
pub fn retry_after(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    headers
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Redirects [`download`] follows at most.
const MAX_REDIRECTS: usize = 5;

/// Fetches the file at `url` (following redirects) into memory, at most `limit` bytes: a longer
/// one is refused by its `Content-Length`, or while it is read. `authorization` (an
/// `Authorization` header value) is sent to `url`'s own origin only, never to where it
/// redirects (Twilio's media redirect to a signed link elsewhere). `peer` names the provider in
/// errors, which never carry the URL (it may hold a token).
pub async fn download(
    url: &str,
    authorization: Option<&str>,
    limit: u64,
    timeout: Duration,
    peer: &str,
) -> Result<crate::Fetched, crate::FetchError> {
    use crate::FetchError;

    let origin = |u: &str| {
        u.split_once("://").map(|(scheme, rest)| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            format!("{scheme}://{}", host.to_ascii_lowercase())
        })
    };
    let first = origin(url);
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = client().get(&current).timeout(timeout);
        if let Some(auth) = authorization
            && origin(&current) == first
        {
            req = req.insert_header(("Authorization", auth));
        }
        let mut resp = req.send().await.map_err(|e| match e {
            SendRequestError::Url(e) => FetchError::Permanent(format!("bad URL for {peer}: {e}")),
            // awc reports a URL it cannot make a request of (a character a URI may not hold)
            // as an HTTP error, before anything is sent: no later try can succeed.
            SendRequestError::Http(e) => FetchError::Permanent(format!("bad URL for {peer}: {e}")),
            SendRequestError::Timeout => FetchError::Retry(format!(
                "no answer from {peer} within {}s",
                timeout.as_secs()
            )),
            other => FetchError::Retry(format!("fetching from {peer} failed: {other}")),
        })?;
        let status = resp.status();
        if status.is_redirection() {
            let Some(next) = resp.headers().get("Location").and_then(|v| v.to_str().ok()) else {
                return Err(FetchError::Permanent(format!(
                    "{peer} answered {status} without a Location"
                )));
            };
            current = match url::Url::parse(&current).and_then(|base| base.join(next)) {
                Ok(next) => next.to_string(),
                Err(e) => {
                    return Err(FetchError::Permanent(format!(
                        "{peer} redirected to a bad URL: {e}"
                    )));
                }
            };
            continue;
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(FetchError::Retry(format!("{peer} answered {status}")));
        }
        if !status.is_success() {
            return Err(FetchError::Permanent(format!("{peer} answered {status}")));
        }
        let content_type = content_type(resp.headers());
        let bytes = read_capped(&mut resp, limit, timeout)
            .await
            .map_err(|e| match e {
                Capped::TooLarge { .. } => FetchError::Permanent(format!(
                    "the file is larger than {}",
                    crate::media::human_size(limit)
                )),
                Capped::Broken(e) => FetchError::Retry(format!("reading from {peer} failed: {e}")),
                Capped::TimedOut => FetchError::Retry(format!(
                    "{peer} did not send the whole file within {}s",
                    timeout.as_secs()
                )),
            })?;
        return Ok(crate::Fetched {
            bytes,
            content_type,
            name: None,
        });
    }
    Err(FetchError::Permanent(format!(
        "{peer} redirected more than {MAX_REDIRECTS} times"
    )))
}

/// Why [`read_capped`] read no whole body.
#[derive(Debug)]
pub enum Capped {
    /// The body is longer than the limit: by its `Content-Length` (`length`), or found while
    /// reading (`None`).
    TooLarge {
        /// The length the answer announced, when it did.
        length: Option<u64>,
    },
    /// The connection failed mid-body.
    Broken(awc::error::PayloadError),
    /// The body did not arrive within the time allowed.
    TimedOut,
}

/// The MIME type an answer's `Content-Type` names, parameters left off.
pub fn content_type(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    headers
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Reads an answer's body into memory, at most `limit` bytes and within `timeout`: a longer one
/// is refused by its `Content-Length` before anything is read, or as soon as it passes `limit`
/// (a chunked answer announces no length), so no more than `limit` bytes are ever held.
pub async fn read_capped<S>(
    resp: &mut awc::ClientResponse<S>,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, Capped>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    use futures_util::StreamExt;

    let length = resp
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > limit) {
        return Err(Capped::TooLarge { length });
    }
    let mut bytes = Vec::with_capacity(length.unwrap_or(0) as usize);
    let reading = async {
        while let Some(chunk) = resp.next().await {
            let chunk = chunk.map_err(Capped::Broken)?;
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(Capped::TooLarge { length: None });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(())
    };
    actix_web::rt::time::timeout(timeout, reading)
        .await
        .map_err(|_| Capped::TimedOut)??;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use actix_web::{HttpRequest, HttpResponse, web};

    use super::*;
    use crate::FetchError;
    use crate::loopback::LoopbackServer;

    const LIMIT: u64 = 100_000;
    const WAIT: Duration = Duration::from_secs(10);

    /// `/file` (its length announced), `/stream` (chunked, `n` chunks of 10 KB), `/moved`
    /// (to `/file`) and `/auth` (the `Authorization` it got, as text).
    fn serve() -> LoopbackServer {
        // awc's client builds its TLS settings even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        async fn file() -> HttpResponse {
            HttpResponse::Ok()
                .content_type("image/jpeg; charset=binary")
                .body(vec![7u8; 50_000])
        }
        async fn stream(n: web::Path<usize>) -> HttpResponse {
            let chunk = web::Bytes::from(vec![1u8; 10_000]);
            let chunks = futures_util::stream::iter(
                std::iter::repeat_n(chunk, *n).map(Ok::<_, std::io::Error>),
            );
            HttpResponse::Ok().streaming(chunks)
        }
        async fn moved() -> HttpResponse {
            HttpResponse::Found()
                .insert_header(("Location", "/file"))
                .finish()
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("binding");
        LoopbackServer::start("downloads", listener, |cfg| {
            cfg.route("/file", web::get().to(file))
                .route("/stream/{n}", web::get().to(stream))
                .route("/moved", web::get().to(moved))
                .route(
                    "/big",
                    web::get().to(|| async { HttpResponse::Ok().body(vec![0u8; 200_000]) }),
                )
                .route(
                    "/auth",
                    web::get().to(|req: HttpRequest| async move {
                        let auth = req.headers().get("Authorization").cloned();
                        HttpResponse::Ok()
                            .body(auth.map(|v| v.as_bytes().to_vec()).unwrap_or_default())
                    }),
                );
        })
        .expect("listening")
    }

    #[actix_rt::test]
    async fn a_file_within_the_limit_is_read_whole_through_redirects() {
        let server = serve();
        let base = format!("http://{}", server.addr());
        let fetched = download(&format!("{base}/moved"), None, LIMIT, WAIT, "Test")
            .await
            .expect("downloaded");
        assert_eq!(fetched.bytes, vec![7u8; 50_000]);
        assert_eq!(fetched.content_type.as_deref(), Some("image/jpeg"));
        let streamed = download(&format!("{base}/stream/10"), None, LIMIT, WAIT, "Test")
            .await
            .expect("a chunked file of exactly the limit is read");
        assert_eq!(streamed.bytes.len(), LIMIT as usize);
        let auth = download(
            &format!("{base}/auth"),
            Some("Basic abc"),
            LIMIT,
            WAIT,
            "Test",
        )
        .await
        .expect("downloaded");
        assert_eq!(auth.bytes, b"Basic abc");
    }

    #[actix_rt::test]
    async fn a_file_over_the_limit_is_refused_by_its_length_or_while_read() {
        let server = serve();
        let base = format!("http://{}", server.addr());
        for path in ["/big", "/stream/11"] {
            let refused = download(&format!("{base}{path}"), None, LIMIT, WAIT, "Test").await;
            assert_eq!(
                refused,
                Err(FetchError::Permanent(
                    "the file is larger than 100 KB".into()
                )),
                "{path}"
            );
        }
    }
}
