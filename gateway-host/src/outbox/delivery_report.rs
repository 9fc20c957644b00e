//! Delivery reports: what providers say became of the parts the gateway sent (Twilio's status
//! callbacks), recorded per part and acted on once.
use platform_api::DeliveryStatus;
use tracing::{info, warn};

use crate::services::Services;

/// Records a provider's report and, the first time it says so, acts on it: an opted-out
/// recipient is suppressed (as a refused send would be), a failure the operator must act on is
/// logged as a warning that says what to do, other failures are logged as information.
/// Repeated and late reports change nothing.
pub fn record(services: &Services, status: &DeliveryStatus) -> anyhow::Result<()> {
    let store = &services.store;
    if !store.record_delivery(status)? {
        return Ok(());
    }
    let name = status.platform.as_str();
    let code = status
        .error_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "none".to_string());
    services.metrics.inc(
        "hermes_delivery_status_total",
        &[
            ("platform", name),
            ("status", &status.status),
            ("code", &code),
        ],
    );
    let failed = matches!(status.status.as_str(), "undelivered" | "failed");
    if !failed && !status.opted_out {
        return Ok(());
    }
    let platform = services.platform(name);
    let chat = match &status.chat {
        Some(chat) => Some(chat.clone()),
        None => store.chat_of(name, &status.provider_id)?,
    };
    let who = match (&chat, platform) {
        (Some(chat), Some(p)) => p.redact(chat),
        _ => "a recipient".to_string(),
    };
    if status.opted_out
        && let Some(chat) = &chat
    {
        store.suppress(name, chat, "provider reports opt-out")?;
        warn!(
            "[{name}] {who} has opted out (delivery report for {}); suppressing further messages",
            status.provider_id
        );
        return Ok(());
    }
    let advice = status
        .error_code
        .and_then(|c| platform.and_then(|p| p.advice(c)));
    match advice {
        Some(advice) if advice.act => warn!(
            "[{name}] message {} to {who} {} (code {code}): {}",
            status.provider_id, status.status, advice.text
        ),
        Some(advice) => info!(
            "[{name}] message {} to {who} {} (code {code}): {}",
            status.provider_id, status.status, advice.text
        ),
        None => info!(
            "[{name}] message {} to {who} {} (code {code})",
            status.provider_id, status.status
        ),
    }
    Ok(())
}
