//! The sender: delivers queued parts in order per chat, retrying what can be retried, never
//! re-sending blindly what may already have gone out (such a part is looked up at the
//! provider first: [`Sender::reconcile`]), and pacing each platform to its provider's rate.
//! A part that edits a message ([`Part::edit`]) is the exception: editing twice to the same
//! text changes nothing, so an edit whose outcome is unknown is simply made again.
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use platform_api::{Lookup, Part, Platform, SendError};
use rand::Rng;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::chat_key::ChatKey;
use crate::repeated::Repeated;
use crate::services::Services;
use crate::store::{OutboxPart, PartState, Reconcilable};

/// Attempts before a retryable failure is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed part stays ours; longer than any send can take.
const LEASE: Duration = Duration::from_secs(60);
/// How often recording a send's outcome is tried again while the database is away.
const PERSIST_RETRY: Duration = Duration::from_millis(500);
/// How long a look-up is ours before another sender may try it; longer than one can take.
const LOOKUP_LEASE: Duration = Duration::from_secs(120);
/// Ambiguous parts looked up per pass at most.
const LOOKUPS_PER_PASS: usize = 16;

/// Delivers the outbox.
pub struct Sender {
    services: Services,
    in_flight: RefCell<HashSet<ChatKey>>,
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
        })
    }

    /// Sends until `shutdown` turns true, then waits up to `grace` for sends in flight.
    pub async fn run(self: Rc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut last_expiry = Instant::now() - Duration::from_secs(10);
        let mut failing = Repeated::new("outbox");
        loop {
            if last_expiry.elapsed() >= Duration::from_secs(5) {
                last_expiry = Instant::now();
                match self.services.store.expire_leases() {
                    Ok(0) => {}
                    Ok(n) => warn!(
                        "{n} part(s) were being sent when a sender stopped: outcome unknown, to be looked up at the provider before anything is sent again"
                    ),
                    Err(e) => error!("outbox: {e}"),
                }
            }
            let wait = match self.pump() {
                Ok(wait) => {
                    failing.ok();
                    wait
                }
                Err(e) => {
                    failing.failed(&e);
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

    /// Starts sends for every due part whose chat is not busy, and look-ups of ambiguous parts
    /// that are due; returns how long to sleep.
    pub fn pump(self: &Rc<Self>) -> anyhow::Result<Duration> {
        let pass = self.services.metrics.begin_pass("sender");
        let store = &self.services.store;
        let now = store.now();
        for due in store.reconcilable(now, LOOKUPS_PER_PASS)? {
            let key = ChatKey::new(&due.part.platform, &due.part.chat);
            if !self.in_flight.borrow_mut().insert(key.clone()) {
                continue;
            }
            let this = Rc::clone(self);
            actix_rt::spawn(async move {
                if let Err(e) = this.reconcile(&due).await {
                    error!("outbox: {e:#}");
                }
                this.in_flight.borrow_mut().remove(&key);
                this.services.outbox.notify_one();
            });
        }
        for part in store.due_parts(now, 64)? {
            if self.services.platform(&part.platform).is_none() {
                continue;
            }
            let key = ChatKey::new(&part.platform, &part.chat);
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
        // Every due send or look-up this gateway can make is in flight now.
        let idle = self.in_flight.borrow().is_empty();
        self.services.metrics.end_pass("sender", pass, idle);
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
    /// The budget is the store's: gateways sharing a database share their number's pace.
    fn pace(&self, platform: &str, segments: u32, per_second: f64) -> anyhow::Result<Duration> {
        let cost = (f64::from(segments.max(1)) / per_second * 1e6).ceil() as i64;
        let store = &self.services.store;
        let wait = store.reserve_pace(platform, cost, store.now_us())?;
        Ok(Duration::from_micros(wait.max(0) as u64))
    }

    async fn send_one(&self, part: &OutboxPart) -> anyhow::Result<()> {
        let store = &self.services.store;
        let Some(platform) = self.services.platform(&part.platform).cloned() else {
            return Ok(());
        };
        let who = platform.redact(&part.chat);
        let name = part.platform.as_str();
        if store.is_suppressed(name, &part.chat)? {
            let Some(claim) = store.claim(part.id, LEASE)? else {
                return Ok(());
            };
            if store.mark_final(claim, PartState::Suppressed, "recipient opted out", None)? {
                info!("[{name}] not sending to {who}: the recipient has opted out");
            }
            return Ok(());
        }
        if let Some(rate) = platform.units_per_second() {
            let wait = self.pace(name, part.part.segments, rate)?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let Some(claim) = store.claim(part.id, LEASE)? else {
            return Ok(());
        };
        let attempts = claim.attempt;
        let m = &self.services.metrics;
        let outgoing = match self.with_files(platform.as_ref(), &part.part) {
            Ok(outgoing) => outgoing,
            Err(why) => {
                if self
                    .record(part, &who, || {
                        store.mark_final(claim, PartState::Failed, &why, None)
                    })
                    .await?
                {
                    error!(
                        "[{name}] part {}/{} to {who} not delivered: {why}",
                        part.index, part.count
                    );
                }
                return Ok(());
            }
        };
        let sent = if window_open(&self.services, platform.as_ref(), &part.chat)? {
            platform.send(&part.chat, outgoing.as_ref()).await
        } else {
            platform
                .send_outside_window(&part.chat, outgoing.as_ref())
                .await
        };
        match sent.map_err(|err| repeatable(err, &part.part)) {
            Ok(receipt) => {
                if !self
                    .record(part, &who, || {
                        store.mark_sent(claim, &receipt.provider_id, receipt.segments)
                    })
                    .await?
                {
                    return Ok(());
                }
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
                let at = store.now() + delay.as_millis() as i64;
                if !self
                    .record(part, &who, || store.mark_retry(claim, at, &message, code))
                    .await?
                {
                    return Ok(());
                }
                m.inc("hermes_outbound_retried_total", &[("platform", name)]);
                warn!(
                    "[{name}] send to {who} failed (attempt {attempts}), retrying in {:.1}s: {message}",
                    delay.as_secs_f64()
                );
            }
            Err(err @ SendError::OptedOut { .. }) => {
                self.persist(|| store.suppress(name, &part.chat, "provider reports opt-out"))
                    .await?;
                if !self
                    .record(part, &who, || {
                        store.mark_final(claim, PartState::Suppressed, &err.to_string(), err.code())
                    })
                    .await?
                {
                    return Ok(());
                }
                m.inc(
                    "hermes_outbound_failed_total",
                    &[("platform", name), ("code", &code_label(err.code()))],
                );
                warn!("[{name}] {who} has opted out ({err}); suppressing further messages");
            }
            Err(err @ SendError::Ambiguous { .. }) => {
                let after = platform.reconcile_after();
                let at = store.now() + after.as_millis() as i64;
                if !self
                    .record(part, &who, || {
                        store.mark_ambiguous(claim, &err.to_string(), Some(at))
                    })
                    .await?
                {
                    return Ok(());
                }
                m.inc("hermes_outbound_ambiguous_total", &[("platform", name)]);
                warn!(
                    "[{name}] part {}/{} to {who}: {err}; not re-sent: looked up at the provider in {}s",
                    part.index,
                    part.count,
                    after.as_secs()
                );
            }
            Err(err) => {
                if !self
                    .record(part, &who, || {
                        store.mark_final(claim, PartState::Failed, &err.to_string(), err.code())
                    })
                    .await?
                {
                    return Ok(());
                }
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

impl Sender {
    /// `part` ready to send: each file with its public URL and, for a platform that uploads
    /// files, its bytes from the store. The part itself when it has no files; an error naming
    /// the file when its bytes are gone (deleted after `HERMES_MEDIA_RETENTION_DAYS`).
    fn with_files<'a>(
        &self,
        platform: &dyn Platform,
        part: &'a Part,
    ) -> Result<std::borrow::Cow<'a, Part>, String> {
        if part.media.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(part));
        }
        let mut part = part.clone();
        let origin = platform.public_origin();
        for file in &mut part.media {
            if file.token.is_empty() {
                return Err(format!("{} was refused and never kept", file.name));
            }
            file.url = self.services.media.public_url(origin.clone(), &file.token);
            if platform.uploads_media() {
                let found = self
                    .services
                    .store
                    .outbound_media(&file.token)
                    .map_err(|e| format!("reading {} from the store: {e}", file.name))?;
                let Some((_, bytes)) = found else {
                    return Err(format!(
                        "{} is no longer kept (HERMES_MEDIA_RETENTION_DAYS)",
                        file.name
                    ));
                };
                file.bytes = Some(std::sync::Arc::from(bytes));
            }
        }
        Ok(std::borrow::Cow::Owned(part))
    }

    /// Records what became of a send with `write`, which changes the part only while this
    /// sender's claim still holds it; false, said once in the log, when the claim was lost
    /// (it lapsed and another gateway took the part over, to look it up at the provider).
    async fn record(
        &self,
        part: &OutboxPart,
        who: &str,
        write: impl Fn() -> Result<bool, crate::store::StoreError>,
    ) -> anyhow::Result<bool> {
        let recorded = self.persist(write).await?;
        if !recorded {
            warn!(
                "[{}] part {}/{} to {who}: this gateway's claim on it lapsed while sending and another took the part over; its outcome here is not recorded (the part is looked up at the provider instead)",
                part.platform, part.index, part.count
            );
        }
        Ok(recorded)
    }

    /// Records what became of a send, trying again while the database is out of reach: the
    /// provider has answered, and forgetting its answer would leave the part to be looked up
    /// (or, for a refusal, retried) when its lease runs out. Gives up after [`LEASE`].
    async fn persist<T>(
        &self,
        write: impl Fn() -> Result<T, crate::store::StoreError>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + LEASE;
        let mut warned = false;
        loop {
            match write() {
                Ok(done) => return Ok(done),
                Err(e) if Instant::now() >= deadline => return Err(e.into()),
                Err(e) => {
                    if !std::mem::replace(&mut warned, true) {
                        warn!(
                            "recording a send's outcome: {e}; trying again until the database takes it"
                        );
                    }
                    tokio::time::sleep(PERSIST_RETRY).await;
                }
            }
        }
    }

    /// Settles an ambiguous part from the provider's records: found, it is recorded as sent
    /// with the provider's id and never sent again; not found, it is queued to be sent once
    /// more; when the records cannot be read, it is looked up again later, and nothing is
    /// sent meanwhile. A platform without look-ups leaves it ambiguous, reported.
    pub async fn reconcile(&self, due: &Reconcilable) -> anyhow::Result<()> {
        let store = &self.services.store;
        let part = &due.part;
        let name = part.platform.as_str();
        let Some(platform) = self.services.platform(name).cloned() else {
            return Ok(());
        };
        let who = platform.redact(&part.chat);
        let now = store.now();
        let edit = part.part.edit.is_some();
        let ready_at = due.attempted_at + platform.reconcile_after().as_millis() as i64;
        if !edit && ready_at > now {
            store.reschedule_reconcile(part.id, due.reconcile_at, Some(ready_at))?;
            return Ok(());
        }
        // Ours while it lasts: another sender on the same database leaves it alone.
        let lease = now + LOOKUP_LEASE.as_millis() as i64;
        if !store.reschedule_reconcile(part.id, due.reconcile_at, Some(lease))? {
            return Ok(());
        }
        if edit {
            if store.reconcile_unsent(part.id, lease)? {
                info!(
                    "[{name}] part {}/{} to {who} edits a message and was interrupted: editing it again",
                    part.index, part.count
                );
                self.services.outbox.notify_one();
            }
            return Ok(());
        }
        let attempted_at = std::time::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(due.attempted_at).unwrap_or(0));
        let m = &self.services.metrics;
        match platform.lookup(&part.chat, &part.part, attempted_at).await {
            Lookup::Matches(receipts) => {
                let mut found = None;
                for receipt in receipts {
                    if !store.provider_id_known(name, &receipt.provider_id)? {
                        found = Some(receipt);
                        break;
                    }
                }
                match found {
                    Some(receipt) => {
                        if store.reconcile_sent(
                            part.id,
                            lease,
                            &receipt.provider_id,
                            receipt.segments,
                        )? {
                            m.inc(
                                "hermes_outbound_reconciled_total",
                                &[("platform", name), ("outcome", "found")],
                            );
                            info!(
                                "[{name}] part {}/{} to {who} was sent after all ({}): recorded, not sent again",
                                part.index, part.count, receipt.provider_id
                            );
                        }
                    }
                    None => {
                        if store.reconcile_unsent(part.id, lease)? {
                            m.inc(
                                "hermes_outbound_reconciled_total",
                                &[("platform", name), ("outcome", "not-found")],
                            );
                            warn!(
                                "[{name}] part {}/{} to {who} is not in the provider's records: sending it once more",
                                part.index, part.count
                            );
                            self.services.outbox.notify_one();
                        }
                    }
                }
            }
            Lookup::Failed(why) => {
                let retry = store.now() + platform.reconcile_after().as_millis() as i64;
                store.reschedule_reconcile(part.id, lease, Some(retry))?;
                warn!(
                    "[{name}] looking up part {}/{} to {who} failed ({why}); trying again in {}s, not sending it meanwhile",
                    part.index,
                    part.count,
                    platform.reconcile_after().as_secs()
                );
            }
            Lookup::Unsupported => {
                store.reschedule_reconcile(part.id, lease, None)?;
                error!(
                    "[{name}] part {}/{} to {who}: outcome unknown and {name} cannot look messages up; left ambiguous (`hermes outbox retry {}` sends it again)",
                    part.index, part.count, part.id
                );
                // Left for good, it no longer holds its chat: what follows may go now.
                self.services.outbox.notify_one();
            }
        }
        Ok(())
    }
}

/// Whether `platform` may send `chat` free-form messages now: always, unless it has a reply
/// window ([`Platform::reply_window`]) and the chat's last inbound message is older than it, on
/// the database's clock (so every gateway sharing it agrees).
pub fn window_open(
    services: &Services,
    platform: &dyn Platform,
    chat: &str,
) -> anyhow::Result<bool> {
    let Some(window) = platform.reply_window() else {
        return Ok(true);
    };
    let store = &services.store;
    Ok(match store.last_inbound_at(platform.name(), chat)? {
        Some(at) => store.now() - at < window.as_millis() as i64,
        None => false,
    })
}

/// A send error as the sender treats it: an edit whose outcome is unknown can be made again
/// (see the module's documentation).
fn repeatable(err: SendError, part: &Part) -> SendError {
    match err {
        SendError::Ambiguous { message } if part.edit.is_some() => SendError::Retry {
            after: None,
            code: None,
            message,
        },
        other => other,
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
    fn an_edit_with_an_unknown_outcome_is_retried_and_a_new_message_is_not() {
        let unknown = || SendError::Ambiguous {
            message: "no answer within 15s".into(),
        };
        let edit = Part {
            edit: Some("1300".into()),
            ..Part::plain("done")
        };
        assert!(matches!(
            repeatable(unknown(), &edit),
            SendError::Retry { after: None, .. }
        ));
        assert_eq!(
            repeatable(unknown(), &Part::plain("done")),
            unknown(),
            "a new message may exist: looked up, not re-sent"
        );
    }

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
