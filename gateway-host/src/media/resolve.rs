//! Turning the files an agent's reply names (`MEDIA:<path>` lines, Markdown images) into bytes
//! to send, refusing what the operator has not allowed: a path outside `HERMES_MEDIA_DIRS`, an
//! address on the gateway's own networks, a file over `HERMES_MEDIA_MAX_MB`.
//!
//! A URL's host is resolved once, every address it has is checked, and the request connects to
//! the checked address (awc's [`ClientRequest::address`]), the URL's host name still naming the
//! server in the `Host` header and in TLS: a second resolution, which a hostile DNS server could
//! answer differently, never happens. Each redirect is checked the same way. (awc also takes a
//! custom resolver, but one per connector: pinning per request keeps the check next to the
//! request it guards.)
//!
//! [`ClientRequest::address`]: awc::ClientRequest::address
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use platform_api::http::{Capped, read_capped};
use platform_api::media::human_size;
use platform_api::text::{MediaRef, MediaSource};
use url::Url;

/// Redirects followed at most, each to an address checked like the first.
const MAX_REDIRECTS: usize = 5;

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the files a reply names, within the operator's limits.
#[derive(Clone, Debug)]
pub struct Resolver {
    /// The directories files may be read from (`HERMES_MEDIA_DIRS`).
    dirs: Vec<PathBuf>,
    /// Whether URLs may lead to private, loopback and other local addresses
    /// (`HERMES_MEDIA_ALLOW_PRIVATE`).
    allow_private: bool,
    /// The largest file taken (`HERMES_MEDIA_MAX_MB`).
    max_bytes: u64,
    /// How long fetching a URL may take, redirects and reading included.
    timeout: Duration,
    /// Addresses counted as public although they are not: lets a test stand a loopback server
    /// in for a public one, every other check unchanged.
    public: Vec<IpAddr>,
}

/// A file ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// The name the recipient sees: the path's file name or the URL's last segment.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Why a file was not taken, in words for the operator (and the reply's reader).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl Resolver {
    /// A resolver reading files under `dirs` and fetching URLs, each at most `max_bytes`, a
    /// fetch taking at most `timeout`.
    pub fn new(dirs: Vec<PathBuf>, allow_private: bool, max_bytes: u64, timeout: Duration) -> Self {
        Resolver {
            dirs,
            allow_private,
            max_bytes,
            timeout,
            public: Vec::new(),
        }
    }

    /// The same resolver counting `ip` as a public address.
    #[cfg(test)]
    fn counting_as_public(mut self, ip: IpAddr) -> Self {
        self.public.push(ip);
        self
    }

    /// The file `media` names, or why it is refused.
    pub async fn resolve(&self, media: &MediaRef) -> Result<File, Refusal> {
        match &media.source {
            MediaSource::Path(path) => self.read_path(path.clone()).await,
            MediaSource::Url(url) => self.fetch_url(url).await,
        }
    }

    /// Reads the file at `path` (absolute, under one of the dirs once every symlink and `..`
    /// is resolved), on a blocking thread.
    async fn read_path(&self, path: PathBuf) -> Result<File, Refusal> {
        let dirs = self.dirs.clone();
        let max_bytes = self.max_bytes;
        tokio::task::spawn_blocking(move || read_file(&path, &dirs, max_bytes))
            .await
            .map_err(|e| Refusal(format!("reading the file failed: {e}")))?
    }

    /// Fetches `url`, following redirects, every address checked before it is connected to.
    async fn fetch_url(&self, url: &str) -> Result<File, Refusal> {
        let url = Url::parse(url).map_err(|e| Refusal(format!("bad URL: {e}")))?;
        let fetching = self.fetch_checked(url);
        actix_web::rt::time::timeout(self.timeout, fetching)
            .await
            .unwrap_or_else(|_| {
                Err(Refusal(format!(
                    "no whole answer within {}s",
                    self.timeout.as_secs()
                )))
            })
    }

    /// [`fetch_url`](Self::fetch_url)'s work, without its time limit.
    async fn fetch_checked(&self, mut url: Url) -> Result<File, Refusal> {
        // One client per fetch: its connections all go to addresses this fetch checked, never
        // to one pooled by a fetch under other rules.
        let client = awc::Client::builder()
            .connector(awc::Connector::new().timeout(CONNECT_TIMEOUT))
            .disable_redirects()
            .timeout(self.timeout)
            .add_default_header((
                "User-Agent",
                concat!("hermes-gateway/", env!("CARGO_PKG_VERSION")),
            ))
            .finish();
        for _ in 0..=MAX_REDIRECTS {
            let address = self.checked_address(&url).await?;
            let mut resp = client
                .get(url.as_str())
                .address(address)
                .send()
                .await
                .map_err(|e| {
                    let host = url.host_str().unwrap_or_default();
                    Refusal(format!("fetching from {host} failed: {e}"))
                })?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get("Location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        Refusal(format!("HTTP {} without a Location", status.as_u16()))
                    })?;
                url = url
                    .join(location)
                    .map_err(|e| Refusal(format!("redirected to a bad URL: {e}")))?;
                continue;
            }
            if !status.is_success() {
                return Err(Refusal(format!("HTTP {}", status.as_u16())));
            }
            let header_type = platform_api::http::content_type(resp.headers());
            let bytes = read_capped(&mut resp, self.max_bytes, self.timeout)
                .await
                .map_err(|e| match e {
                    Capped::TooLarge { length } => too_large(length, self.max_bytes),
                    Capped::Broken(e) => Refusal(format!("the download broke off: {e}")),
                    Capped::TimedOut => Refusal(format!(
                        "no whole answer within {}s",
                        self.timeout.as_secs()
                    )),
                })?;
            let name = url_name(&url);
            let content_type = header_type.unwrap_or_else(|| super::content_type_of(&name));
            return Ok(File {
                name,
                content_type,
                bytes,
            });
        }
        Err(Refusal(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// The address to connect to for `url`: its host resolved, every address it has checked.
    async fn checked_address(&self, url: &Url) -> Result<SocketAddr, Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal(format!(
                "{}: URL refused, only http and https are fetched",
                url.scheme()
            )));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refusal("URL without a port".into()))?;
        let addresses: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Domain(host)) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Refusal(format!("{host} could not be resolved: {e}")))?
                .collect(),
            None => return Err(Refusal("URL without a host".into())),
        };
        if !self.allow_private {
            for address in &addresses {
                let ip = address.ip();
                if let Some(kind) = local_kind(ip)
                    && !self.public.contains(&ip)
                {
                    return Err(Refusal(format!(
                        "{kind} address {ip} refused (set HERMES_MEDIA_ALLOW_PRIVATE=true to allow)"
                    )));
                }
            }
        }
        addresses.first().copied().ok_or_else(|| {
            Refusal(format!(
                "{} has no address",
                url.host_str().unwrap_or_default()
            ))
        })
    }
}

/// Reads `path` if it is an absolute path to a regular file inside one of `dirs`, at most
/// `max_bytes` long.
fn read_file(path: &Path, dirs: &[PathBuf], max_bytes: u64) -> Result<File, Refusal> {
    use std::os::unix::fs::OpenOptionsExt;

    if !path.is_absolute() {
        return Err(Refusal("not an absolute path".into()));
    }
    let outside = || Refusal("outside HERMES_MEDIA_DIRS".into());
    // A directory that does not exist holds no file.
    let real_dirs: Vec<PathBuf> = dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
    let real = match path.canonicalize() {
        Ok(real) => real,
        // Whether a file exists outside the dirs is none of the reply's business: only a
        // path that would be inside them is "not found".
        Err(e) if lexically_inside(path, dirs) || lexically_inside(path, &real_dirs) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => Refusal("not found".into()),
                _ => Refusal(format!("unreadable: {e}")),
            });
        }
        Err(_) => return Err(outside()),
    };
    if !real_dirs.iter().any(|dir| real.starts_with(dir)) {
        return Err(outside());
    }
    // The resolved path names no symlink; one put there since is not followed.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&real)
        .map_err(|e| Refusal(format!("unreadable: {e}")))?;
    let metadata = file
        .metadata()
        .map_err(|e| Refusal(format!("unreadable: {e}")))?;
    if !metadata.is_file() {
        return Err(Refusal("not a regular file".into()));
    }
    if metadata.len() > max_bytes {
        return Err(too_large(Some(metadata.len()), max_bytes));
    }
    // The length read is capped too: a file growing since is cut off, not read on.
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    (&mut file)
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal(format!("unreadable: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(None, max_bytes));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let content_type = super::content_type_of(&name);
    Ok(File {
        name,
        content_type,
        bytes,
    })
}

/// Whether `path`, read as written with no `..`, lies inside one of `dirs`.
fn lexically_inside(path: &Path, dirs: &[PathBuf]) -> bool {
    !path.components().any(|c| c == Component::ParentDir)
        && dirs.iter().any(|dir| path.starts_with(dir))
}

/// The refusal of a file over the limit, with its size when known.
fn too_large(length: Option<u64>, max_bytes: u64) -> Refusal {
    let limit = human_size(max_bytes);
    Refusal(match length {
        Some(n) => format!("{}, over HERMES_MEDIA_MAX_MB ({limit})", human_size(n)),
        None => format!("over HERMES_MEDIA_MAX_MB ({limit})"),
    })
}

/// A URL's last path segment, decoded, else `file`.
pub fn url_name(url: &Url) -> String {
    url.path_segments()
        .and_then(|mut segments| segments.next_back())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "file".into())
}

/// What kind of local (non-public) address `ip` is, if it is one: these lead to the gateway's
/// own machine or network, where a URL in a reply must not reach unless the operator allows.
fn local_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => local_kind_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => local_kind_v4(v4),
            None => local_kind_v6(ip),
        },
    }
}

fn local_kind_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        // 100.64.0.0/10, carrier-grade NAT's shared space.
        _ if a == 100 && (b & 0xc0) == 64 => "shared (CGNAT)",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        // 240.0.0.0/4, reserved for future use.
        _ if a >= 240 => "reserved",
        _ => return None,
    })
}

fn local_kind_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unicast_link_local() => "link-local",
        // fec0::/10, site-local: deprecated, still private where used.
        _ if (first & 0xffc0) == 0xfec0 => "site-local",
        _ if ip.is_unique_local() => "unique-local",
        _ if ip.is_multicast() => "multicast",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use actix_web::{HttpResponse, web};
    use platform_api::loopback::LoopbackServer;

    use super::*;

    const MB: u64 = 1_000_000;
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n a chart";

    /// The chart every test dir and server holds, as the resolver should give it.
    fn chart() -> File {
        File {
            name: "chart.png".into(),
            content_type: "image/png".into(),
            bytes: PNG.to_vec(),
        }
    }

    fn path(p: impl Into<PathBuf>) -> MediaRef {
        MediaRef {
            source: MediaSource::Path(p.into()),
            alt: Some("the chart".into()),
        }
    }

    fn url(u: impl Into<String>) -> MediaRef {
        MediaRef {
            source: MediaSource::Url(u.into()),
            alt: Some("the chart".into()),
        }
    }

    fn resolver(dirs: &[&Path]) -> Resolver {
        Resolver::new(
            dirs.iter().map(|d| d.to_path_buf()).collect(),
            false,
            MB,
            Duration::from_secs(10),
        )
    }

    async fn refusal(resolver: &Resolver, media: MediaRef) -> String {
        match resolver.resolve(&media).await {
            Ok(file) => panic!("{media:?} was taken as {}", file.name),
            Err(Refusal(reason)) => reason,
        }
    }

    /// A media dir holding `chart.png`, and a dir beside it holding `secret.txt`.
    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().expect("temp dir");
        let media = root.path().join("media");
        let private = root.path().join("private");
        std::fs::create_dir(&media).expect("media dir");
        std::fs::create_dir(&private).expect("private dir");
        std::fs::write(media.join("chart.png"), PNG).expect("chart");
        std::fs::write(private.join("secret.txt"), "the password").expect("secret");
        (root, media, private)
    }

    #[actix_rt::test]
    async fn a_file_under_a_media_dir_is_read_with_its_name_and_type() {
        let (_root, media, _) = dirs();
        let other = tempfile::tempdir().expect("temp dir");
        let file = resolver(&[other.path(), &media])
            .resolve(&path(media.join("chart.png")))
            .await
            .expect("taken");
        assert_eq!(file, chart());
    }

    #[actix_rt::test]
    async fn a_path_leaving_the_media_dirs_is_refused() {
        let (_root, media, private) = dirs();
        std::os::unix::fs::symlink(private.join("secret.txt"), media.join("notes.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink(&private, media.join("more")).expect("symlink");
        let resolver = resolver(&[&media]);
        for escape in [
            private.join("secret.txt"),
            media.join("notes.txt"),
            media.join("more/secret.txt"),
            media.join("../private/secret.txt"),
            media.join("../private/missing.txt"),
            PathBuf::from("/etc/passwd"),
        ] {
            assert_eq!(
                refusal(&resolver, path(&escape)).await,
                "outside HERMES_MEDIA_DIRS",
                "{escape:?}"
            );
        }
    }

    #[actix_rt::test]
    async fn symlinks_staying_inside_are_followed_and_keep_their_name() {
        let (root, media, _) = dirs();
        std::os::unix::fs::symlink(media.join("chart.png"), media.join("latest.png"))
            .expect("symlink");
        let linked_dir = root.path().join("linked");
        std::os::unix::fs::symlink(&media, &linked_dir).expect("symlink");
        let resolver = resolver(&[&linked_dir]);
        let file = resolver
            .resolve(&path(media.join("latest.png")))
            .await
            .expect("taken");
        assert_eq!(
            (file.name.as_str(), file.bytes.as_slice()),
            ("latest.png", PNG)
        );
        assert_eq!(
            refusal(&resolver, path(linked_dir.join("missing.png"))).await,
            "not found"
        );
    }

    #[actix_rt::test]
    async fn relative_missing_and_odd_paths_are_refused_with_the_reason() {
        let (_root, media, _) = dirs();
        std::fs::create_dir(media.join("charts")).expect("dir");
        let resolver = resolver(&[&media]);
        for (p, reason) in [
            (PathBuf::from("media/chart.png"), "not an absolute path"),
            (media.join("missing.png"), "not found"),
            (media.join("charts"), "not a regular file"),
        ] {
            assert_eq!(refusal(&resolver, path(&p)).await, reason, "{p:?}");
        }
    }

    #[actix_rt::test]
    async fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let (_root, media, _) = dirs();
        std::fs::write(media.join("big.pdf"), vec![b'x'; 1_200_000]).expect("big file");
        std::fs::write(media.join("just.pdf"), vec![b'x'; MB as usize]).expect("file");
        let resolver = resolver(&[&media]);
        assert_eq!(
            refusal(&resolver, path(media.join("big.pdf"))).await,
            "1.2 MB, over HERMES_MEDIA_MAX_MB (1.0 MB)"
        );
        let file = resolver
            .resolve(&path(media.join("just.pdf")))
            .await
            .expect("a file of exactly the limit is taken");
        assert_eq!(
            (file.bytes.len(), file.content_type.as_str()),
            (MB as usize, "application/pdf")
        );
    }

    /// What the test servers serve.
    fn routes(cfg: &mut web::ServiceConfig) {
        async fn chart() -> HttpResponse {
            HttpResponse::Ok().content_type("image/png").body(PNG)
        }
        async fn untyped() -> HttpResponse {
            // actix adds no Content-Type to a body of bytes.
            HttpResponse::Ok().body(web::Bytes::from_static(b"%PDF-1.7"))
        }
        async fn big() -> HttpResponse {
            HttpResponse::Ok()
                .content_type("video/mp4")
                .body(vec![0u8; 2_000_000])
        }
        async fn endless() -> HttpResponse {
            let chunk = web::Bytes::from(vec![0u8; 64 * 1024]);
            let chunks = futures_util::stream::repeat(chunk)
                .take(40)
                .map(Ok::<_, std::io::Error>);
            HttpResponse::Ok()
                .content_type("video/mp4")
                .streaming(chunks)
        }
        async fn redirect(
            to: web::Query<std::collections::HashMap<String, String>>,
        ) -> HttpResponse {
            HttpResponse::Found()
                .insert_header(("Location", to.get("to").cloned().unwrap_or_default()))
                .finish()
        }
        async fn around() -> HttpResponse {
            HttpResponse::Found()
                .insert_header(("Location", "/around"))
                .finish()
        }
        use futures_util::StreamExt as _;
        cfg.route("/files/chart.png", web::get().to(chart))
            .route("/files/{name:.*}", web::get().to(untyped))
            .route("/big.mp4", web::get().to(big))
            .route("/endless.mp4", web::get().to(endless))
            .route("/redirect", web::get().to(redirect))
            .route("/around", web::get().to(around));
    }

    fn serve(ip: &str) -> LoopbackServer {
        let listener = TcpListener::bind((ip, 0)).expect("binding a test server");
        LoopbackServer::start("media-server", listener, routes).expect("listening")
    }

    /// A server on 127.0.0.2 that the resolver counts as public, and its base URL.
    fn public_server() -> (LoopbackServer, Resolver) {
        crate::install_crypto();
        let server = serve("127.0.0.2");
        let dir = tempfile::tempdir().expect("temp dir");
        let resolver = resolver(&[dir.path()]).counting_as_public(server.addr().ip());
        (server, resolver)
    }

    #[actix_rt::test]
    async fn a_url_is_fetched_with_the_answer_s_type_and_its_last_segment_as_name() {
        let (server, resolver) = public_server();
        let base = format!("http://{}", server.addr());
        let file = resolver
            .resolve(&url(format!("{base}/files/chart.png?size=large")))
            .await
            .expect("fetched");
        assert_eq!(file, chart());
        for (path, name, content_type) in [
            (
                "/files/annual%20report.pdf",
                "annual report.pdf",
                "application/pdf",
            ),
            ("/files/blob", "blob", "application/octet-stream"),
            ("/files/", "file", "application/octet-stream"),
        ] {
            let file = resolver
                .resolve(&url(format!("{base}{path}")))
                .await
                .expect("fetched");
            assert_eq!(
                (file.name.as_str(), file.content_type.as_str()),
                (name, content_type),
                "{path}"
            );
        }
    }

    #[actix_rt::test]
    async fn a_loopback_url_is_fetched_only_when_private_addresses_are_allowed() {
        crate::install_crypto();
        let server = serve("127.0.0.1");
        let chart = url(format!("http://{}/files/chart.png", server.addr()));
        let dir = tempfile::tempdir().expect("temp dir");
        let strict = resolver(&[dir.path()]);
        assert_eq!(
            refusal(&strict, chart.clone()).await,
            "loopback address 127.0.0.1 refused (set HERMES_MEDIA_ALLOW_PRIVATE=true to allow)"
        );
        let by_name = url(format!(
            "http://localhost:{}/files/chart.png",
            server.addr().port()
        ));
        // 2130706433 is 127.0.0.1 written as one number, as browsers read it.
        let as_number = url(format!(
            "http://2130706433:{}/files/chart.png",
            server.addr().port()
        ));
        assert_eq!(
            refusal(&strict, as_number).await,
            "loopback address 127.0.0.1 refused (set HERMES_MEDIA_ALLOW_PRIVATE=true to allow)"
        );
        let reason = refusal(&strict, by_name.clone()).await;
        assert!(
            reason.starts_with("loopback address ")
                && reason.ends_with("(set HERMES_MEDIA_ALLOW_PRIVATE=true to allow)"),
            "{reason}"
        );
        let lenient = Resolver {
            allow_private: true,
            ..strict
        };
        for media in [chart, by_name] {
            let file = lenient.resolve(&media).await.expect("fetched");
            assert_eq!(file.bytes, PNG);
        }
    }

    #[actix_rt::test]
    async fn each_redirect_is_checked_like_the_first_url() {
        let (server, resolver) = public_server();
        let inner = serve("127.0.0.1");
        let base = format!("http://{}", server.addr());
        let to_loopback = format!(
            "{base}/redirect?to=http://127.0.0.1:{}/files/chart.png",
            inner.addr().port()
        );
        assert_eq!(
            refusal(&resolver, url(to_loopback)).await,
            "loopback address 127.0.0.1 refused (set HERMES_MEDIA_ALLOW_PRIVATE=true to allow)"
        );
        let file = resolver
            .resolve(&url(format!("{base}/redirect?to=/files/chart.png")))
            .await
            .expect("a redirect to a public address is followed");
        assert_eq!(
            (file.name.as_str(), file.bytes.as_slice()),
            ("chart.png", PNG)
        );
        assert_eq!(
            refusal(&resolver, url(format!("{base}/around"))).await,
            "more than 5 redirects"
        );
        assert_eq!(
            refusal(
                &resolver,
                url(format!("{base}/redirect?to=ftp://{}/x", server.addr()))
            )
            .await,
            "ftp: URL refused, only http and https are fetched"
        );
    }

    #[actix_rt::test]
    async fn an_error_status_and_files_over_the_limit_are_refused() {
        let (server, resolver) = public_server();
        let base = format!("http://{}", server.addr());
        for (path, reason) in [
            ("/missing.png", "HTTP 404"),
            ("/big.mp4", "2.0 MB, over HERMES_MEDIA_MAX_MB (1.0 MB)"),
            ("/endless.mp4", "over HERMES_MEDIA_MAX_MB (1.0 MB)"),
        ] {
            assert_eq!(
                refusal(&resolver, url(format!("{base}{path}"))).await,
                reason,
                "{path}"
            );
        }
    }

    #[actix_rt::test]
    async fn a_dead_link_is_refused_with_the_host_it_names() {
        crate::install_crypto();
        let listener = TcpListener::bind(("127.0.0.2", 0)).expect("binding");
        let gone = listener.local_addr().expect("an address");
        drop(listener);
        let dir = tempfile::tempdir().expect("temp dir");
        let resolver = resolver(&[dir.path()]).counting_as_public(gone.ip());
        let reason = refusal(&resolver, url(format!("http://{gone}/chart.png"))).await;
        assert!(
            reason.starts_with("fetching from 127.0.0.2 failed: "),
            "{reason}"
        );
        assert_eq!(
            refusal(&resolver, url("https://")).await,
            "bad URL: empty host"
        );
    }

    #[test]
    fn local_addresses_are_told_from_public_ones() {
        for (ip, kind) in [
            ("8.8.8.8", None),
            ("100.128.0.1", None),
            ("172.32.0.1", None),
            ("2606:4700::1111", None),
            ("10.0.0.5", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("127.0.0.2", Some("loopback")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("100.127.255.254", Some("shared (CGNAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
            ("240.0.0.1", Some("reserved")),
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("fd12:3456::1", Some("unique-local")),
            ("ff02::1", Some("multicast")),
            ("::ffff:10.0.0.5", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:8.8.8.8", None),
        ] {
            let parsed: IpAddr = ip.parse().expect("an address");
            assert_eq!(local_kind(parsed), kind, "{ip}");
        }
    }
}
