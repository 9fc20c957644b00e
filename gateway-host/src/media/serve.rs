//! `GET /media/<token>`: where a provider that fetches files by URL (Twilio's `MediaUrl`, a
//! JSON webhook's receiver) gets a reply's file. The token is the only credential, so it is
//! long and random ([`super::outbound::token`]); an unknown or expired one is answered 404,
//! like a file that never existed. The bytes come from the store, so every gateway sharing the
//! database serves every token.
//!
//! The files served lately are also kept in memory ([`Recent`], a few MB in all): a provider
//! fetches the same file again (one fetch per recipient, retries, a preview and the download),
//! and reading a large blob from the database for each fetch, behind the store's lock, held
//! the route to a fraction of what it serves from memory. A kept file is served until its
//! token expires, checked on every fetch as for one read from the store; a token's file never
//! changes, so what is kept is never stale.
use std::sync::{Arc, Mutex};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use hashlink::LruCache;
use tracing::error;

use super::outbound::is_token;
use crate::metrics::Metrics;
use crate::store::{Millis, Store};

/// The bytes of files [`Recent`] keeps, in all.
const RECENT_BYTES: usize = 8 * 1024 * 1024;
/// The files [`Recent`] keeps, at most.
const RECENT_FILES: usize = 64;

/// What the media route needs.
#[derive(Clone)]
pub struct MediaRoute {
    /// Where the files are.
    pub store: Store,
    /// The files served lately.
    pub recent: Arc<Recent>,
}

impl MediaRoute {
    /// The route over `store`, keeping nothing yet.
    pub fn new(store: Store) -> MediaRoute {
        MediaRoute {
            store,
            recent: Arc::new(Recent::new(RECENT_BYTES, RECENT_FILES)),
        }
    }
}

/// A file as it is answered: its headers' values and its bytes, shared by every answer.
#[derive(Debug)]
pub struct Served {
    content_type: String,
    disposition: String,
    /// Until when its token serves it (store time); `None`: no end.
    expires_at: Option<Millis>,
    body: Bytes,
}

/// Files served lately, by token, at most `max_bytes` of them and `max_files`; the one served
/// longest ago goes first. A file larger than `max_bytes` is not kept.
pub struct Recent {
    max_bytes: usize,
    max_files: usize,
    /// The files, least recently served first, and their bytes in all.
    kept: Mutex<(LruCache<String, Arc<Served>>, usize)>,
}

impl Recent {
    /// Keeps nothing yet.
    pub fn new(max_bytes: usize, max_files: usize) -> Recent {
        Recent {
            max_bytes,
            max_files,
            kept: Mutex::new((LruCache::new_unbounded(), 0)),
        }
    }

    fn get(&self, token: &str) -> Option<Arc<Served>> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.0.get(token).cloned()
    }

    fn put(&self, token: String, served: Arc<Served>) {
        let size = served.body.len();
        if size > self.max_bytes {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let (files, bytes) = &mut *kept;
        if let Some(old) = files.insert(token, served) {
            *bytes -= old.body.len();
        }
        *bytes += size;
        while *bytes > self.max_bytes || files.len() > self.max_files {
            match files.remove_lru() {
                Some((_, gone)) => *bytes -= gone.body.len(),
                None => break,
            }
        }
    }

    /// Forgets `token`'s file (it expired).
    fn forget(&self, token: &str) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let (files, bytes) = &mut *kept;
        if let Some(gone) = files.remove(token) {
            *bytes -= gone.body.len();
        }
    }
}

/// Adds `GET` and `HEAD /media/{token}` to a listener.
pub fn routes(cfg: &mut web::ServiceConfig, route: MediaRoute) {
    cfg.app_data(web::Data::new(route)).route(
        "/media/{token}",
        web::route()
            .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
            .to(serve),
    );
}

async fn serve(
    token: web::Path<String>,
    route: web::Data<MediaRoute>,
    metrics: web::Data<Metrics>,
) -> HttpResponse {
    let token = token.into_inner();
    let not_found = |metrics: &Metrics| {
        metrics.inc("hermes_media_served_total", &[("outcome", "not_found")]);
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found")
    };
    if !is_token(&token) {
        return not_found(&metrics);
    }
    let (served, kept) = match route.recent.get(&token) {
        Some(served) => (served, true),
        None => match read(&route.store, &token).await {
            Ok(Some(served)) => (Arc::new(served), false),
            Ok(None) => return not_found(&metrics),
            Err(answer) => return answer,
        },
    };
    if served.expires_at.is_some_and(|at| at <= route.store.now()) {
        if kept {
            route.recent.forget(&token);
        }
        return not_found(&metrics);
    }
    if !kept {
        route.recent.put(token, served.clone());
    }
    metrics.inc("hermes_media_served_total", &[("outcome", "ok")]);
    HttpResponse::Ok()
        .content_type(served.content_type.as_str())
        .insert_header((header::CONTENT_DISPOSITION, served.disposition.as_str()))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(served.body.clone())
}

/// `token`'s file from the store, off the server's thread; `None` when unknown or purged, the
/// answer to give when the store failed.
async fn read(store: &Store, token: &str) -> Result<Option<Served>, HttpResponse> {
    let (store, token) = (store.clone(), token.to_string());
    let found = web::block(move || store.outbound_media(&token)).await;
    let (meta, bytes) = match found {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return Ok(None),
        Ok(Err(e)) => {
            error!("serving a reply file: {e}");
            return Err(HttpResponse::ServiceUnavailable().finish());
        }
        Err(e) => {
            error!("serving a reply file: {e}");
            return Err(HttpResponse::InternalServerError().finish());
        }
    };
    let name: String = meta
        .name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    Ok(Some(Served {
        content_type: meta.content_type,
        disposition: format!("inline; filename=\"{name}\""),
        expires_at: meta.expires_at,
        body: Bytes::from(bytes),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::App;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    use super::*;
    use crate::store::OutboundFile;

    fn file(size: usize) -> Arc<Served> {
        Arc::new(Served {
            content_type: "image/png".into(),
            disposition: "inline; filename=\"a.png\"".into(),
            expires_at: None,
            body: Bytes::from(vec![1u8; size]),
        })
    }

    #[test]
    fn recent_files_are_bounded_by_bytes_and_count_the_least_recently_served_first() {
        let recent = Recent::new(1000, 3);
        recent.put("a".into(), file(400));
        recent.put("b".into(), file(400));
        assert!(recent.get("a").is_some(), "a is now the most recent");
        recent.put("c".into(), file(400));
        assert!(recent.get("b").is_none(), "b went first: over 1000 bytes");
        assert!(recent.get("a").is_some() && recent.get("c").is_some());
        recent.put("big".into(), file(1001));
        assert!(recent.get("big").is_none(), "larger than all it keeps");
        for token in ["d", "e", "f"] {
            recent.put(token.into(), file(1));
        }
        let kept: Vec<bool> = ["a", "c", "d", "e", "f"]
            .iter()
            .map(|t| recent.get(t).is_some())
            .collect();
        assert_eq!(
            kept,
            [false, false, true, true, true],
            "three files at most"
        );
        assert_eq!(recent.kept.lock().expect("not poisoned").1, 3);
    }

    #[actix_rt::test]
    async fn a_file_kept_in_memory_is_no_longer_served_once_its_token_expires() {
        let dir = tempfile::tempdir().expect("a directory");
        let store = Store::open(&dir.path().join("gateway.db")).expect("a store");
        let token = super::super::outbound::token();
        let expires_at = store.now() + 300;
        store
            .put_outbound_media(&OutboundFile {
                token: &token,
                content_type: "image/png",
                name: "chart \"1\".png",
                bytes: &[7u8; 2000],
                expires_at,
            })
            .expect("kept");
        let route = MediaRoute::new(store.clone());
        let app = init_service(
            App::new()
                .app_data(web::Data::new(Metrics::default()))
                .configure(|cfg| routes(cfg, route.clone())),
        )
        .await;
        let get = || {
            TestRequest::get()
                .uri(&format!("/media/{token}"))
                .to_request()
        };
        for _ in 0..2 {
            let resp = call_service(&app, get()).await;
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(
                resp.headers().get(header::CONTENT_DISPOSITION).unwrap(),
                "inline; filename=\"chart 1.png\""
            );
            assert_eq!(read_body(resp).await.as_ref(), &[7u8; 2000][..]);
        }
        assert!(
            route.recent.get(&token).is_some(),
            "kept after its first fetch"
        );
        while store.now() <= expires_at {
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        let resp = call_service(&app, get()).await;
        assert_eq!(
            resp.status().as_u16(),
            404,
            "expired, though kept in memory"
        );
        assert!(route.recent.get(&token).is_none(), "and forgotten");
    }
}
