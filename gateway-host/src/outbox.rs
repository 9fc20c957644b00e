//! The sender: delivers queued parts in order per chat, retrying what can be retried, never
//! re-sending what may already have gone out, and pacing each platform to its provider's rate.
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use platform_api::SendError;
use rand::Rng;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::services::Services;
use crate::store::{OutboxPart, PartState, now_ms};

/// Attempts before a retryable failure is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed part stays ours; longer than any send can take.
const LEASE: Duration = Duration::from_secs(60);

/// Delivers the outbox.
pub struct Sender {
    services: Services,
    in_flight: RefCell<HashSet<(String, String)>>,
    next_free: RefCell<HashMap<String, Instant>>,
}

/// Wait before attempt `attempts + 1`: exponential from 1 s, capped at 5 min, with jitter, and
/// never shorter than what the provider asked for.
pub fn backoff(attempts: i64, at_least: Option<Duration>) -> Duration {
    let exp = 1000u64.saturating_mul(1u64 << attempts.clamp(0, 9).saturating_sub(1).max(0));
    let capped = exp.min(300_000);
    let jittered = rand::rng().random_range(capped / 2..=capped);
    Duration::from_millis(jittered).max(at_least.unwrap_or_default())
}

impl Sender {
    /// A sender over the shared services.
    pub fn new(services: Services) -> Rc<Self> {
        Rc::new(Sender {
            services,
            in_flight: RefCell::default(),
            next_free: RefCell::default(),
        })
    }

    /// Sends until `shutdown` turns true, then waits up to `grace` for sends in flight.
    pub async fn run(self: Rc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut last_expiry = Instant::now() - Duration::from_secs(10);
        loop {
            if last_expiry.elapsed() >= Duration::from_secs(5) {
                last_expiry = Instant::now();
                match self.services.store.expire_leases(now_ms()) {
                    Ok(0) => {}
                    Ok(n) => warn!(
                        "{n} part(s) were being sent when a sender stopped: outcome unknown, marked ambiguous and not re-sent"
                    ),
                    Err(e) => error!("outbox: {e}"),
                }
            }
            let wait = match self.pump() {
                Ok(wait) => wait,
                Err(e) => {
                    error!("outbox: {e:#}");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = self.services.outbox.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        self.drain(grace).await;
    }

    /// Sends what is due now and waits for it, up to `grace`: for one-shot commands and shutdown.
    pub async fn drain(self: &Rc<Self>, grace: Duration) {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            let _ = self.pump();
            if self.in_flight.borrow().is_empty() {
                break;
            }
            tokio::select! {
                _ = self.services.outbox.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }

    /// Whether sends are in flight.
    pub fn busy(&self) -> bool {
        !self.in_flight.borrow().is_empty()
    }

    /// Starts sends for every due part whose chat is not busy; returns how long to sleep.
    pub fn pump(self: &Rc<Self>) -> anyhow::Result<Duration> {
        let store = &self.services.store;
        let now = now_ms();
        for part in store.due_parts(now, 64)? {
            if self.services.platform(&part.platform).is_none() {
                continue;
            }
            let key = (part.platform.clone(), part.chat.clone());
            if !self.in_flight.borrow_mut().insert(key.clone()) {
                continue;
            }
            let this = Rc::clone(self);
            actix_rt::spawn(async move {
                if let Err(e) = this.send_one(&part).await {
                    error!("outbox: {e:#}");
                }
                this.in_flight.borrow_mut().remove(&key);
                this.services.outbox.notify_one();
            });
        }
        self.services
            .metrics
            .set("hermes_outbox_depth", store.outbox_depth()? as i64);
        let wait = match store.next_due()? {
            Some(at) if at > now => Duration::from_millis((at - now) as u64),
            Some(_) => Duration::from_millis(200),
            None => Duration::from_secs(1),
        };
        Ok(wait.min(Duration::from_secs(1)))
    }

    /// Reserves the platform's sending rate for `segments` units; returns how long to wait.
    fn pace(&self, platform: &str, segments: u32, per_second: f64) -> Duration {
        let now = Instant::now();
        let mut next_free = self.next_free.borrow_mut();
        let slot = next_free.entry(platform.to_string()).or_insert(now);
        let start = (*slot).max(now);
        *slot = start + Duration::from_secs_f64(f64::from(segments.max(1)) / per_second);
        start - now
    }

    async fn send_one(&self, part: &OutboxPart) -> anyhow::Result<()> {
        let store = &self.services.store;
        let Some(platform) = self.services.platform(&part.platform).cloned() else {
            return Ok(());
        };
        let who = platform.redact(&part.chat);
        let name = part.platform.as_str();
        if store.is_suppressed(name, &part.chat)? {
            store.mark_final(part.id, PartState::Suppressed, "recipient opted out", None)?;
            info!("[{name}] not sending to {who}: the recipient has opted out");
            return Ok(());
        }
        if let Some(rate) = platform.units_per_second() {
            let wait = self.pace(name, part.part.segments, rate);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let lease_until = now_ms() + LEASE.as_millis() as i64;
        if !store.claim(part.id, lease_until)? {
            return Ok(());
        }
        let attempts = part.attempts + 1;
        let m = &self.services.metrics;
        match platform.send(&part.chat, &part.part).await {
            Ok(receipt) => {
                store.mark_sent(part.id, &receipt.provider_id, receipt.segments)?;
                m.inc("hermes_outbound_sent_total", &[("platform", name)]);
                m.add(
                    "hermes_segments_sent_total",
                    &[("platform", name)],
                    u64::from(receipt.segments.unwrap_or(part.part.segments)),
                );
                info!(
                    "[{name}] sent part {}/{} to {who} ({})",
                    part.index, part.count, receipt.provider_id
                );
            }
            Err(SendError::Retry {
                after,
                code,
                message,
            }) if attempts < MAX_ATTEMPTS => {
                let delay = backoff(attempts, after);
                store.mark_retry(part.id, now_ms() + delay.as_millis() as i64, &message, code)?;
                m.inc("hermes_outbound_retried_total", &[("platform", name)]);
                warn!(
                    "[{name}] send to {who} failed (attempt {attempts}), retrying in {:.1}s: {message}",
                    delay.as_secs_f64()
                );
            }
            Err(err @ SendError::OptedOut { .. }) => {
                store.suppress(name, &part.chat, "provider reports opt-out")?;
                store.mark_final(part.id, PartState::Suppressed, &err.to_string(), err.code())?;
                m.inc(
                    "hermes_outbound_failed_total",
                    &[("platform", name), ("code", &code_label(err.code()))],
                );
                warn!("[{name}] {who} has opted out ({err}); suppressing further messages");
            }
            Err(err @ SendError::Ambiguous { .. }) => {
                store.mark_final(part.id, PartState::Ambiguous, &err.to_string(), None)?;
                m.inc(
                    "hermes_outbound_failed_total",
                    &[("platform", name), ("code", "ambiguous")],
                );
                error!(
                    "[{name}] part {}/{} to {who}: {err}; not re-sent to avoid a duplicate",
                    part.index, part.count
                );
            }
            Err(err) => {
                store.mark_final(part.id, PartState::Failed, &err.to_string(), err.code())?;
                m.inc(
                    "hermes_outbound_failed_total",
                    &[("platform", name), ("code", &code_label(err.code()))],
                );
                error!(
                    "[{name}] part {}/{} to {who} not delivered after {attempts} attempt(s): {err}",
                    part.index, part.count
                );
            }
        }
        Ok(())
    }
}

fn code_label(code: Option<i64>) -> String {
    code.map(|c| c.to_string())
        .unwrap_or_else(|| "none".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let first = backoff(1, None);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        let fourth = backoff(4, None);
        assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
        assert!(backoff(50, None) <= Duration::from_secs(300));
        assert!(backoff(1, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
