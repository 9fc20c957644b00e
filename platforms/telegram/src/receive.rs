//! Receiving by long polling (`getUpdates`), the default, and the start of webhook mode
//! (`setWebhook`; the route itself is in [`crate::webhook`]).
//!
//! Polling starts at the offset saved with the host ([`InboundSink::cursor`]); each batch's
//! messages are handed to the host, which stores them (deduplicated on `chat:message_id`), and
//! only once every one was accepted is the offset past the batch saved and asked for, which is
//! what confirms the batch to Telegram. A store that refuses is retried, with the same update,
//! until it takes it: an update is never skipped. A restart resumes from the saved offset:
//! nothing is lost, and what Telegram delivers twice (a batch accepted just before a crash)
//! the host recognises.
//!
//! Failures are logged once per reason, not once per retry: a second gateway polling the same
//! token (409 Conflict) shows as one line until the reason changes or polling works again.
use std::sync::Arc;
use std::time::Duration;

use platform_api::{InboundSink, redact_url};
use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::client::{Api, CallError};
use crate::inbound::{Bot, to_inbound};
use crate::settings::WebhookSettings;
use crate::types::{Update, User};

/// Seconds a `getUpdates` call waits for updates before answering an empty batch.
pub const POLL_TIMEOUT_SECS: u64 = 25;
/// How long a `getUpdates` request may take: its long poll and a margin.
const POLL_REQUEST_TIMEOUT: Duration = Duration::from_secs(POLL_TIMEOUT_SECS + 15);
/// How long other calls may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The only kind of update asked for.
pub const ALLOWED_UPDATES: &[&str] = &["message"];

/// Waits that double after each failure, from half a second up to 30 seconds.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }

    /// Back to the first wait, after a success.
    pub fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }
}

/// Logs a loop's failures once per reason: the first time, and again only when the reason
/// changes or after the loop recovered.
#[derive(Debug, Default)]
pub struct Reporter {
    current: Option<String>,
}

impl Reporter {
    /// Records a failure that may pass by itself; true when it is news (and was logged, as a
    /// warning).
    pub fn failed(&mut self, reason: &str) -> bool {
        self.report(reason, false)
    }

    /// Records a failure; true when it is news (and was logged: as an error when the operator
    /// must act for it to end, as a warning otherwise).
    pub fn report(&mut self, reason: &str, act: bool) -> bool {
        if self.current.as_deref() == Some(reason) {
            return false;
        }
        if act {
            error!("[telegram] {reason}");
        } else {
            warn!("[telegram] {reason}");
        }
        self.current = Some(reason.to_string());
        true
    }

    /// Records a success; logs the end of a failure.
    pub fn recovered(&mut self) {
        if let Some(reason) = self.current.take() {
            info!("[telegram] working again (the problem was: {reason})");
        }
    }
}

/// What a failed call means for a loop that repeats it.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// It cannot work as configured: stop, with this message.
    Fatal(String),
    /// Wait (as long as Telegram said, or by backoff) and try again; the reason is logged once.
    Retry {
        /// Why, in one line.
        reason: String,
        /// How long Telegram asked to wait.
        after: Option<Duration>,
        /// Whether it lasts until the operator acts (another poller, a webhook left set).
        act: bool,
    },
}

/// What a failed Bot API call means: a rejected token stops receiving, a conflict is named.
pub fn failure(method: &str, err: &CallError) -> Failure {
    let Some(status) = err.status() else {
        return Failure::Retry {
            reason: format!("{method}: {err}; retrying"),
            after: None,
            act: false,
        };
    };
    let description = err.description().unwrap_or_default();
    match status {
        401 => Failure::Fatal(format!(
            "the bot token was rejected ({method}: 401 {description}): check TELEGRAM_BOT_TOKEN; `hermes gateway doctor` checks it"
        )),
        404 => Failure::Fatal(format!(
            "{method} answered 404 Not Found: the bot token is malformed, or TELEGRAM_API_BASE_URL is not a Bot API server"
        )),
        409 if description.contains("webhook") => Failure::Retry {
            reason: "a webhook is set for this bot, so polling gets 409 Conflict: run `hermes gateway doctor --fix` to delete it, or set TELEGRAM_WEBHOOK_URL to receive in webhook mode".to_string(),
            after: None,
            act: true,
        },
        409 => Failure::Retry {
            reason: format!(
                "another gateway is polling this bot token (409 Conflict: {}): only one may poll; stop the other or use webhook mode",
                description.trim_start_matches("Conflict: ")
            ),
            after: None,
            act: true,
        },
        429 => {
            let after = match err {
                CallError::Answer(answer) => answer
                    .parsed()
                    .and_then(|p| p.parameters)
                    .and_then(|p| p.retry_after)
                    .map(Duration::from_secs),
                CallError::Transport(_) => None,
            };
            Failure::Retry {
                reason: format!("{method}: rate limited by Telegram ({description}); waiting"),
                after,
                act: false,
            }
        }
        _ => Failure::Retry {
            reason: format!("{method}: {err}; retrying"),
            after: None,
            act: false,
        },
    }
}

/// Asks Telegram who the bot is (`getMe`), retrying until it answers; `Err` when the token is
/// rejected.
pub async fn identify(api: &Api, reporter: &mut Reporter) -> Result<Bot, String> {
    let mut backoff = Backoff::default();
    loop {
        match api
            .call::<_, User>("getMe", &serde_json::json!({}), CALL_TIMEOUT)
            .await
        {
            Ok(user) => {
                reporter.recovered();
                return Ok(Bot {
                    id: user.id,
                    username: user.username.unwrap_or_default(),
                });
            }
            Err(err) => match failure("getMe", &err) {
                Failure::Fatal(message) => return Err(message),
                Failure::Retry { reason, after, act } => {
                    reporter.report(&reason, act);
                    sleep(after.unwrap_or_else(|| backoff.next_wait())).await;
                }
            },
        }
    }
}

/// The parameters of `getUpdates`.
#[derive(Debug, Serialize)]
pub struct GetUpdates {
    /// The first update wanted; confirms every one before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Seconds to wait for an update.
    pub timeout: u64,
    /// Kinds of update wanted.
    pub allowed_updates: &'static [&'static str],
}

async fn sleep(wait: Duration) {
    actix_web::rt::time::sleep(wait).await;
}

/// The saved offset, retried until the store answers; a value that is not a number is
/// reported and ignored (polling then starts with what Telegram still holds).
async fn load_cursor(sink: &dyn InboundSink, reporter: &mut Reporter) -> Option<i64> {
    let mut backoff = Backoff::default();
    loop {
        match sink.cursor(crate::NAME).await {
            Ok(None) => return None,
            Ok(Some(value)) => {
                return match value.trim().parse() {
                    Ok(offset) => Some(offset),
                    Err(_) => {
                        error!(
                            "[telegram] the saved update offset {value:?} is not a number; starting from what Telegram holds"
                        );
                        None
                    }
                };
            }
            Err(err) => {
                reporter.failed(&format!(
                    "cannot read the saved update offset: {err}; retrying"
                ));
                sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// Hands one update to the host, retrying until it is stored.
async fn deliver(update: &Update, bot: &Bot, sink: &dyn InboundSink, reporter: &mut Reporter) {
    let inbound = match to_inbound(update, bot) {
        Ok(inbound) => inbound,
        Err(skip) => {
            debug!(
                "[telegram] update {} skipped: {}",
                update.update_id,
                skip.reason()
            );
            return;
        }
    };
    let mut backoff = Backoff::default();
    loop {
        match sink.accept(inbound.clone()).await {
            Ok(_) => return,
            Err(err) => {
                reporter.failed(&format!(
                    "cannot store update {} now: {err}; it is retried, and polling waits for it",
                    update.update_id
                ));
                sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// Saves the offset past a batch, retrying until the store takes it.
async fn save_cursor(offset: i64, sink: &dyn InboundSink, reporter: &mut Reporter) {
    let mut backoff = Backoff::default();
    let value = offset.to_string();
    loop {
        match sink.save_cursor(crate::NAME, &value).await {
            Ok(()) => return,
            Err(err) => {
                reporter.failed(&format!("cannot save the update offset: {err}; retrying"));
                sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// The updates of a batch, each read on its own: one Telegram sends in a shape this version
/// does not know is skipped (and reported) rather than stopping every update after it.
fn updates(batch: Vec<serde_json::Value>) -> (Vec<Update>, Option<i64>) {
    let mut last = None;
    let mut read = Vec::with_capacity(batch.len());
    for value in batch {
        let id = value.get("update_id").and_then(serde_json::Value::as_i64);
        last = last.max(id);
        match serde_json::from_value::<Update>(value) {
            Ok(update) => read.push(update),
            Err(err) => error!("[telegram] update {id:?} could not be read and is skipped: {err}"),
        }
    }
    (read, last)
}

/// Polls `getUpdates` until the token is rejected.
pub async fn poll(api: &Api, bot: &Bot, sink: Arc<dyn InboundSink>) -> Result<(), String> {
    let mut reporter = Reporter::default();
    let mut backoff = Backoff::default();
    let mut offset = load_cursor(&*sink, &mut reporter).await;
    info!(
        "[telegram] polling for updates as @{} ({}){}",
        bot.username,
        bot.id,
        offset
            .map(|o| format!(" from update {o}"))
            .unwrap_or_default()
    );
    loop {
        let params = GetUpdates {
            offset,
            timeout: POLL_TIMEOUT_SECS,
            allowed_updates: ALLOWED_UPDATES,
        };
        let batch = match api
            .call::<_, Vec<serde_json::Value>>("getUpdates", &params, POLL_REQUEST_TIMEOUT)
            .await
        {
            Ok(batch) => {
                reporter.recovered();
                backoff.reset();
                batch
            }
            Err(err) => match failure("getUpdates", &err) {
                Failure::Fatal(message) => return Err(message),
                Failure::Retry { reason, after, act } => {
                    reporter.report(&reason, act);
                    sleep(after.unwrap_or_else(|| backoff.next_wait())).await;
                    continue;
                }
            },
        };
        let (batch, last) = updates(batch);
        for update in &batch {
            deliver(update, bot, &*sink, &mut reporter).await;
        }
        if let Some(last) = last {
            let next = last + 1;
            save_cursor(next, &*sink, &mut reporter).await;
            offset = Some(next);
        }
    }
}

/// The parameters of `setWebhook`.
#[derive(Debug, Serialize)]
pub struct SetWebhook<'a> {
    /// The public URL.
    pub url: &'a str,
    /// Sent back in `X-Telegram-Bot-Api-Secret-Token` with every post.
    pub secret_token: &'a str,
    /// Kinds of update wanted.
    pub allowed_updates: &'static [&'static str],
}

/// Points Telegram at the webhook (`setWebhook`), retrying until it answers; `Err` when the
/// token is rejected or Telegram refuses the URL.
pub async fn set_webhook(api: &Api, webhook: &WebhookSettings) -> Result<(), String> {
    let mut reporter = Reporter::default();
    let mut backoff = Backoff::default();
    let params = SetWebhook {
        url: &webhook.url,
        secret_token: &webhook.secret,
        allowed_updates: ALLOWED_UPDATES,
    };
    loop {
        match api
            .call::<_, bool>("setWebhook", &params, CALL_TIMEOUT)
            .await
        {
            Ok(_) => {
                info!(
                    "[telegram] webhook set: Telegram posts updates to {}",
                    redact_url(&webhook.url)
                );
                return Ok(());
            }
            Err(err) if err.status() == Some(400) => {
                return Err(format!(
                    "Telegram refused TELEGRAM_WEBHOOK_URL {}: {} (Telegram needs a public HTTPS URL on port 443, 80, 88 or 8443)",
                    redact_url(&webhook.url),
                    err.description().unwrap_or_default()
                ));
            }
            Err(err) => match failure("setWebhook", &err) {
                Failure::Fatal(message) => return Err(message),
                Failure::Retry { reason, after, act } => {
                    reporter.report(&reason, act);
                    sleep(after.unwrap_or_else(|| backoff.next_wait())).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Answer;

    fn answer(status: u16, body: &str) -> CallError {
        CallError::Answer(Answer {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn conflicts_are_named_and_a_rejected_token_is_fatal() {
        let other = answer(
            409,
            r#"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}"#,
        );
        let Failure::Retry {
            reason, act: true, ..
        } = failure("getUpdates", &other)
        else {
            panic!("a conflict is retried, and the operator must act");
        };
        assert!(
            reason.starts_with("another gateway is polling this bot token (409 Conflict"),
            "{reason}"
        );
        let hook = answer(
            409,
            r#"{"ok":false,"error_code":409,"description":"Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}"#,
        );
        let Failure::Retry {
            reason, act: true, ..
        } = failure("getUpdates", &hook)
        else {
            panic!("a webhook conflict is retried, and the operator must act");
        };
        assert!(reason.contains("doctor --fix"), "{reason}");
        let rejected = answer(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        );
        assert!(
            matches!(failure("getMe", &rejected), Failure::Fatal(m) if m.contains("TELEGRAM_BOT_TOKEN"))
        );
        let flood = answer(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
        );
        assert!(matches!(
            failure("getUpdates", &flood),
            Failure::Retry { after: Some(d), .. } if d == Duration::from_secs(3)
        ));
    }

    #[test]
    fn a_reason_is_reported_once_until_it_changes() {
        let mut reporter = Reporter::default();
        assert!(reporter.failed("conflict"));
        assert!(!reporter.failed("conflict"));
        assert!(reporter.failed("timeout"));
        reporter.recovered();
        assert!(reporter.failed("timeout"));
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..10).map(|_| backoff.next_wait()).collect();
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert_eq!(waits[1], FIRST_BACKOFF * 2);
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF);
        backoff.reset();
        assert_eq!(backoff.next_wait(), FIRST_BACKOFF);
    }

    #[test]
    fn an_unreadable_update_is_skipped_but_still_confirmed() {
        let batch = vec![
            serde_json::json!({"update_id": 5, "message": {"message_id": 1}}),
            serde_json::json!({"update_id": 6}),
        ];
        let (read, last) = updates(batch);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].update_id, 6);
        assert_eq!(last, Some(6));
    }
}
