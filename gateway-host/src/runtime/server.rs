//! HTTP listeners: platforms that ask for the same address share one server; every server also
//! answers `GET /health`, `GET /metrics` and `GET /media/<token>` (reply files, for providers
//! that fetch them by URL: [`crate::media::serve`]).
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use platform_api::InboundSink;
use tracing::error;

use crate::media::serve::MediaRoute;
use crate::metrics::Metrics;
use crate::services::Loaded;

/// A running listener.
pub struct Listener {
    /// The address it is bound to.
    pub addr: SocketAddr,
    /// Platforms it serves.
    pub platforms: Vec<String>,
    handle: ServerHandle,
}

impl Listener {
    /// Stops accepting connections and lets in-flight requests finish.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// Binds one server per distinct address wanted by `platforms`. Returns the listeners and the
/// names of the platforms whose address could not be bound (already reported in the log).
pub fn bind_all(
    platforms: &BTreeMap<String, Loaded>,
    sink: Arc<dyn InboundSink>,
    metrics_data: Arc<Metrics>,
    media: MediaRoute,
) -> (Vec<Listener>, Vec<String>) {
    let mut by_addr: BTreeMap<SocketAddr, Vec<Loaded>> = BTreeMap::new();
    for loaded in platforms.values() {
        if let Some(addr) = loaded.platform.listen_addr() {
            by_addr.entry(addr).or_default().push(loaded.clone());
        }
    }
    // A server thread per core (up to four): storing a webhook is an append to the journal,
    // so handlers on different threads hardly wait for each other, and the database work
    // (the importer, the dispatcher, checkpoints) runs on threads of its own.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let mut listeners = Vec::new();
    let mut failed = Vec::new();
    for (addr, group) in by_addr {
        let names: Vec<String> = group
            .iter()
            .map(|l| l.registration.name.to_string())
            .collect();
        let app_group = group.clone();
        let sink = sink.clone();
        let metrics_data = web::Data::from(metrics_data.clone());
        let media = media.clone();
        let server = HttpServer::new(move || {
            let group = app_group.clone();
            let sink = sink.clone();
            let media = media.clone();
            App::new()
                .app_data(metrics_data.clone())
                .route("/health", web::get().to(health))
                .route("/metrics", web::get().to(metrics))
                .configure(move |cfg| crate::media::serve::routes(cfg, media))
                .configure(move |cfg| {
                    for loaded in &group {
                        loaded.platform.routes(cfg, sink.clone());
                    }
                })
        })
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(5)
        // A client that dribbles its request cannot hold a worker.
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .bind(addr);
        let server = match server {
            Ok(server) => server,
            Err(e) => {
                error!(
                    "[{}] cannot listen on {addr}: {e} (another process may be using the port; change the platform's port setting)",
                    names.join(", ")
                );
                failed.extend(names);
                continue;
            }
        };
        let bound = server.addrs().first().copied().unwrap_or(addr);
        for loaded in &group {
            loaded.platform.listening(bound);
        }
        let running = server.run();
        let handle = running.handle();
        actix_rt::spawn(running);
        listeners.push(Listener {
            addr: bound,
            platforms: names,
            handle,
        });
    }
    (listeners, failed)
}
