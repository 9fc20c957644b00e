//! What platforms' routes and receive loops hand messages, cursors and delivery reports to.
use async_trait::async_trait;
use platform_api::{Accepted, DeliveryStatus, Inbound, InboundSink, SinkError};

use super::acks::Committed;
use super::{Ingress, SHARED_ACK_WITHIN};
use crate::services::Services;

#[async_trait(?Send)]
impl InboundSink for Ingress {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
        if let Some(why) = self.disk.refusal() {
            self.rejected(&inbound.platform, "disk-full");
            return Err(SinkError::Unavailable(why));
        }
        let platform = inbound.platform.clone();
        let committed = self
            .commits
            .submit(inbound)
            .await
            .map_err(|_| SinkError::Storage("the group commit was dropped".to_string()))?
            .map_err(SinkError::Storage)?;
        if let Some(committed) = committed {
            // In the journal already: answered from it should the database not commit in time.
            if !matches!(
                tokio::time::timeout(SHARED_ACK_WITHIN, committed).await,
                Ok(Ok(Committed::Shared))
            ) {
                self.services.metrics.inc(
                    "hermes_inbound_journal_only_total",
                    &[("platform", &platform)],
                );
            }
        }
        // Whether it was new is known once it is imported; a duplicate is not processed again.
        Ok(Accepted::Stored)
    }

    fn rejected(&self, platform: &str, reason: &'static str) {
        self.services.metrics.inc(
            "hermes_inbound_rejected_total",
            &[("platform", platform), ("reason", reason)],
        );
    }

    async fn cursor(&self, platform: &str) -> Result<Option<String>, SinkError> {
        let platform = platform.to_string();
        self.blocking(move |services| Ok(services.store.receive_cursor(&platform)?))
            .await
    }

    async fn save_cursor(&self, platform: &str, value: &str) -> Result<(), SinkError> {
        let (platform, value) = (platform.to_string(), value.to_string());
        self.blocking(move |services| {
            let now = services.store.now();
            Ok(services.store.save_receive_cursor(&platform, &value, now)?)
        })
        .await
    }

    async fn delivery_status(&self, status: DeliveryStatus) -> Result<(), SinkError> {
        if let Some(why) = self.disk.refusal() {
            return Err(SinkError::Unavailable(why));
        }
        self.blocking(move |services| crate::outbox::delivery_report::record(services, &status))
            .await
    }
}

impl Ingress {
    /// Runs a store call on the blocking pool, so that the server worker or receive loop that
    /// asked never waits on the database itself: a PostgreSQL out of reach holds a call for up
    /// to the pool's wait, and the worker meanwhile serves the other webhooks (those are
    /// acknowledged from the journal).
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Services) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, SinkError> {
        let services = self.services.clone();
        match tokio::task::spawn_blocking(move || call(&services)).await {
            Ok(result) => result.map_err(|e| SinkError::Storage(format!("{e:#}"))),
            Err(e) => Err(SinkError::Storage(format!(
                "the store call did not finish: {e}"
            ))),
        }
    }
}
