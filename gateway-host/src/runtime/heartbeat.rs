//! With a shared database, this gateway's heartbeat: written every few seconds on a thread of
//! its own (so that a slow database never holds it up, nor it anything else), so that the
//! other gateways know it is alive and take over what it held once it stops.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use crate::store::{REPLICA_STALE_MS, Store};

/// How often the heartbeat is written: several times within [`REPLICA_STALE_MS`].
const EVERY: Duration = Duration::from_secs(3);

/// The running heartbeat; [`Heartbeat::stop`] removes it, so that the others take over at once.
pub struct Heartbeat {
    store: Store,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Writes the first heartbeat and keeps writing them; `None` for a database no other
    /// gateway shares.
    pub fn start(store: &Store) -> Option<Heartbeat> {
        if !store.is_shared() {
            return None;
        }
        match store.heartbeat() {
            Ok(()) => {
                let others = store
                    .replicas()
                    .map(|r| r.len().saturating_sub(1))
                    .unwrap_or(0);
                let transport = store.transport().ok().flatten();
                let summary = transport.as_ref().map(|t| t.summary()).unwrap_or_default();
                info!(
                    "state in the shared database (HERMES_DATABASE_URL; {summary}); {others} other gateway(s) alive on it"
                );
                if transport.is_some_and(|t| t.exposed()) {
                    warn!(
                        "the connection to the shared database crosses a network without sslmode=verify-full ({summary}): add ?sslmode=verify-full&sslrootcert=/path/to/ca.pem to HERMES_DATABASE_URL (hermes gateway doctor explains)"
                    );
                }
            }
            Err(e) => warn!("writing this gateway's heartbeat: {e}"),
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::Builder::new()
                .name("hermes-heartbeat".to_string())
                .spawn(move || {
                    let mut failing = false;
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(EVERY);
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        match store.heartbeat() {
                            Ok(()) if failing => {
                                failing = false;
                                info!("heartbeat written again");
                            }
                            Ok(()) => {}
                            Err(e) if !failing => {
                                failing = true;
                                warn!(
                                    "writing this gateway's heartbeat: {e} (after {}s without one the other gateways take over what it holds)",
                                    REPLICA_STALE_MS / 1000
                                );
                            }
                            Err(_) => {}
                        }
                    }
                })
                .ok()
        };
        Some(Heartbeat {
            store: store.clone(),
            stop,
            thread,
        })
    }

    /// Stops writing and removes the heartbeat.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        if let Err(e) = self.store.leave() {
            warn!("removing this gateway's heartbeat: {e}");
        }
    }
}
