//! The receive loops of platforms that fetch their messages (long polling, a WebSocket) rather
//! than being posted to. Each runs on the gateway's actix system next to the listeners.
//!
//! A platform that only one gateway may receive for at a time ([`Platform::receive_alone`]:
//! Telegram's long polling) runs, when gateways share a database, on the gateway holding its
//! receive lease. The lease is a claim in the store's conversation claims under a chat name no
//! provider uses, so it lapses as a conversation's does: when its holder stops renewing it or
//! stops beating.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use platform_api::{InboundSink, Platform};
use tracing::{error, info, warn};

use crate::services::Loaded;
use crate::store::Store;

/// The chat name a receive lease is claimed under: no provider names a chat so.
const RECEIVE_LEASE_CHAT: &str = "\u{1f}receive";
/// How long a receive lease lasts unless renewed.
const LEASE: Duration = Duration::from_secs(20);
/// How often the holder renews it, and a gateway standing by asks for it.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Starts every platform's receive loop (a no-op for platforms that only have routes).
pub fn start(
    platforms: &BTreeMap<String, Loaded>,
    sink: Arc<dyn InboundSink>,
    store: &Store,
) -> Vec<actix_rt::task::JoinHandle<()>> {
    platforms
        .values()
        .map(|loaded| {
            let platform = loaded.platform.clone();
            let name = loaded.registration.name;
            let sink = sink.clone();
            let store = store.clone();
            actix_rt::spawn(async move {
                let outcome = if store.is_shared() && platform.receive_alone() {
                    receive_with_lease(name, platform.as_ref(), sink, &store).await
                } else {
                    platform.receive(sink).await
                };
                if let Err(e) = outcome {
                    error!("[{name}] receiving stopped: {e}");
                }
            })
        })
        .collect()
}

/// Takes or renews this gateway's receive lease for `platform`; false while another holds it
/// (or the store cannot say).
fn hold(store: &Store, platform: &str) -> bool {
    match store.claim_conversation(platform, RECEIVE_LEASE_CHAT, LEASE) {
        Ok(held) => held,
        Err(e) => {
            warn!("[{platform}] the receive lease could not be renewed: {e}");
            false
        }
    }
}

/// Receives while this gateway holds the lease; stands by while another does.
async fn receive_with_lease(
    name: &str,
    platform: &dyn Platform,
    sink: Arc<dyn InboundSink>,
    store: &Store,
) -> Result<(), String> {
    let mut announced = false;
    loop {
        if !hold(store, name) {
            if !announced {
                info!("[{name}] another gateway receives for this account; standing by");
                announced = true;
            }
            actix_rt::time::sleep(RENEW_EVERY).await;
            continue;
        }
        announced = false;
        info!("[{name}] this gateway receives for the account");
        let lost = async {
            loop {
                actix_rt::time::sleep(RENEW_EVERY).await;
                if !hold(store, name) {
                    return;
                }
            }
        };
        tokio::select! {
            outcome = platform.receive(sink.clone()) => {
                // Receiving ended for good here: another gateway may take over at once.
                if let Err(e) = store.release_conversation(name, RECEIVE_LEASE_CHAT) {
                    warn!("[{name}] giving the receive lease back (it lapses by itself): {e}");
                }
                return outcome;
            }
            () = lost => warn!("[{name}] the receive lease was lost; another gateway takes over"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use platform_api::{
        AccessPolicy, ConfigError, ConfigSection, HomeChannel, Inbound, Part, Platform, Receipt,
        Registration, SendError, async_trait,
    };

    use hermes_config::Config;

    use super::*;
    use crate::runtime::ingress::Ingress;
    use crate::services::Services;

    /// A platform whose provider is polled: its loop delivers one message.
    struct Polled(AccessPolicy);

    #[async_trait(?Send)]
    impl Platform for Polled {
        fn name(&self) -> &'static str {
            "polled"
        }
        fn access(&self) -> &AccessPolicy {
            &self.0
        }
        fn format(&self, markdown: &str) -> Vec<Part> {
            vec![Part::plain(markdown)]
        }
        async fn send(&self, _: &str, _: &Part) -> Result<Receipt, SendError> {
            Err(SendError::Permanent {
                code: None,
                message: "test".into(),
            })
        }
        fn home_channel(&self) -> Option<HomeChannel> {
            None
        }
        async fn receive(&self, sink: Arc<dyn InboundSink>) -> Result<(), String> {
            let inbound = Inbound {
                sender_name: None,
                platform: "polled".into(),
                chat: "c1".into(),
                sender: "u1".into(),
                text: "from the loop".into(),
                attachments: vec![],
                provider_id: "p1".into(),
                received_at: SystemTime::now(),
                control: None,
            };
            sink.accept(inbound)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }

    fn never_built(_: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
        Err(ConfigError::new("X", None, "test"))
    }

    #[actix_rt::test]
    async fn receive_loops_hand_messages_to_the_store() {
        let registration: &'static Registration = Box::leak(Box::new(Registration {
            name: "polled",
            label: "Polled",
            stub: false,
            settings: &[],
            home_channel_setting: None,
            prompt_hint: None,
            enabled: |_| Ok(()),
            format: |m| vec![Part::plain(m)],
            format_media: None,
            parse_chat: |c| Ok(c.to_string()),
            build: never_built,
        }));
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(dir.path(), &Vec::new(), Vec::new()).unwrap();
        let mut platforms = BTreeMap::new();
        let platform: Arc<dyn Platform> = Arc::new(Polled(AccessPolicy::default()));
        platforms.insert(
            "polled".to_string(),
            Loaded {
                platform,
                registration,
            },
        );
        let services = Services::from_config(&config, platforms).unwrap();
        let ingress = Arc::new(Ingress::open(services.clone(), 0).unwrap());
        for receiver in start(&services.platforms, ingress.clone(), &services.store) {
            receiver.await.unwrap();
        }
        ingress.stop();
        let pending = services.store.pending_inbound(10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].text, "from the loop");
    }

    /// A platform only one gateway may receive for; it counts the loops running at once.
    struct Alone {
        access: AccessPolicy,
        running: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    #[async_trait(?Send)]
    impl Platform for Alone {
        fn name(&self) -> &'static str {
            "alone"
        }
        fn access(&self) -> &AccessPolicy {
            &self.access
        }
        fn format(&self, markdown: &str) -> Vec<Part> {
            vec![Part::plain(markdown)]
        }
        async fn send(&self, _: &str, _: &Part) -> Result<Receipt, SendError> {
            unreachable!("nothing is sent")
        }
        fn home_channel(&self) -> Option<HomeChannel> {
            None
        }
        fn receive_alone(&self) -> bool {
            true
        }
        async fn receive(&self, _: Arc<dyn InboundSink>) -> Result<(), String> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            actix_rt::time::sleep(Duration::from_millis(300)).await;
            self.running.fetch_sub(1, SeqCst);
            Ok(())
        }
    }

    struct NoSink;

    #[async_trait(?Send)]
    impl InboundSink for NoSink {
        async fn accept(
            &self,
            _: Inbound,
        ) -> Result<platform_api::Accepted, platform_api::SinkError> {
            Ok(platform_api::Accepted::Stored)
        }
    }

    #[test]
    fn gateways_sharing_a_database_take_turns_at_a_loop_only_one_may_run() {
        for backend in crate::store::suite::backends() {
            let Some(b) = backend.open_replica("replica-b") else {
                continue;
            };
            let a = backend.open();
            a.heartbeat().unwrap();
            b.heartbeat().unwrap();
            let platform = Alone {
                access: AccessPolicy::default(),
                running: Default::default(),
                most: Default::default(),
            };
            let sink: Arc<dyn InboundSink> = Arc::new(NoSink);
            let (first, second) = actix_rt::System::new().block_on(futures_util::future::join(
                receive_with_lease("alone", &platform, sink.clone(), &a),
                receive_with_lease("alone", &platform, sink.clone(), &b),
            ));
            // The holder's loop ended first; the other gateway then took the lease over.
            assert_eq!((first, second), (Ok(()), Ok(())));
            assert_eq!(platform.most.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
    }
}
