//! `GET /media/<token>`: where a provider that fetches files by URL (Twilio's `MediaUrl`, a
//! JSON webhook's receiver) gets a reply's file. The token is the only credential, so it is
//! long and random ([`super::outbound::token`]); an unknown or expired one is answered 404,
//! like a file that never existed. The bytes come from the store, so every gateway sharing the
//! database serves every token.
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use tracing::error;

use super::outbound::is_token;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the media route needs.
#[derive(Clone)]
pub struct MediaRoute {
    /// Where the files are.
    pub store: Store,
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
    let store = route.store.clone();
    let found = web::block(move || {
        let found = store.outbound_media(&token)?;
        Ok::<_, crate::store::StoreError>(found.map(|(meta, bytes)| (meta, bytes, store.now())))
    })
    .await;
    let (meta, bytes, now) = match found {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return not_found(&metrics),
        Ok(Err(e)) => {
            error!("serving a reply file: {e}");
            return HttpResponse::ServiceUnavailable().finish();
        }
        Err(e) => {
            error!("serving a reply file: {e}");
            return HttpResponse::InternalServerError().finish();
        }
    };
    if meta.expires_at.is_some_and(|at| at <= now) {
        return not_found(&metrics);
    }
    metrics.inc("hermes_media_served_total", &[("outcome", "ok")]);
    let name: String = meta
        .name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    HttpResponse::Ok()
        .content_type(meta.content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes)
}
