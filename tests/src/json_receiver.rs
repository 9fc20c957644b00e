//! The system behind the JSON webhook's `WEBHOOK_OUTBOUND_URL`: it records every POST and
//! answers `{"id": "rcv-N"}`, or 500 while told to fail.
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::loopback::LoopbackServer;
use serde_json::{Value, json};

use crate::harness::eventually;

/// One POST the receiving system got.
#[derive(Clone, Debug)]
pub struct Post {
    /// The `X-Hermes-Secret` header it carried.
    pub secret: Option<String>,
    /// Its JSON body.
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Received {
    posts: Vec<Post>,
    failures: usize,
}

fn lock(state: &Mutex<Received>) -> MutexGuard<'_, Received> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<Received>>,
) -> HttpResponse {
    let mut received = lock(&state);
    let failing = received.failures > 0;
    received.failures = received.failures.saturating_sub(1);
    let status = if failing { 500 } else { 200 };
    let id = format!("rcv-{}", received.posts.len() + 1);
    received.posts.push(Post {
        secret: req
            .headers()
            .get("X-Hermes-Secret")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    });
    if failing {
        HttpResponse::InternalServerError().json(json!({"error": "try again later"}))
    } else {
        HttpResponse::Ok().json(json!({ "id": id }))
    }
}

/// A running receiver on loopback; it stops when dropped.
pub struct JsonReceiver {
    state: Arc<Mutex<Received>>,
    server: LoopbackServer,
}

impl JsonReceiver {
    /// Starts it on an ephemeral port.
    pub fn start() -> JsonReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the receiver");
        let state = Arc::new(Mutex::new(Received::default()));
        let data = web::Data::from(Arc::clone(&state));
        let server = LoopbackServer::start("json-receiver", listener, move |cfg| {
            cfg.app_data(data.clone())
                .route("/hermes", web::post().to(receive));
        })
        .expect("the receiver listens");
        JsonReceiver { state, server }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The URL to set as `WEBHOOK_OUTBOUND_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/hermes", self.addr())
    }

    /// Answers the next `n` POSTs with 500.
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).failures = n;
    }

    /// Every POST so far, in order.
    pub fn posts(&self) -> Vec<Post> {
        lock(&self.state).posts.clone()
    }

    /// Waits up to `timeout` until at least `n` POSTs arrived; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Post> {
        eventually(timeout, || {
            let posts = self.posts();
            (posts.len() >= n).then_some(posts)
        })
        .unwrap_or_else(|| panic!("expected {n} POST(s), got {:#?}", self.posts()))
    }
}
