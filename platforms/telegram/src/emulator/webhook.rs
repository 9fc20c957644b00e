//! `setWebhook`, `deleteWebhook` and `getWebhookInfo`, and the delivery of each update to a
//! webhook that is set: POSTed with the secret header, retried until it answers 2xx, the last
//! failure kept for `getWebhookInfo`.
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use super::{
    Hook, Shared, State, WebhookPost, bool_param, error, list_param, text_param, unix_now,
};
use crate::types::WebhookInfo;
use crate::webhook::SECRET_HEADER;

/// How long a webhook post may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before a failed webhook post is repeated; it doubles up to a second.
const WEBHOOK_RETRY: Duration = Duration::from_millis(100);

pub(super) fn webhook_info(state: &State) -> WebhookInfo {
    let pending = state.updates.len() as u64;
    match &state.hook {
        None => WebhookInfo {
            url: String::new(),
            has_custom_certificate: false,
            pending_update_count: pending,
            ..WebhookInfo::default()
        },
        Some(hook) => WebhookInfo {
            url: hook.url.clone(),
            has_custom_certificate: false,
            pending_update_count: pending,
            last_error_date: hook.last_error_date,
            last_error_message: hook.last_error_message.clone(),
            max_connections: Some(40),
            allowed_updates: hook.allowed_updates.clone(),
        },
    }
}

/// Whether the emulator takes `url` as a webhook: HTTPS, or plain HTTP on loopback.
fn acceptable_webhook(url: &str) -> bool {
    url.starts_with("https://")
        || url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost")
        || url.starts_with("http://[::1]")
}

/// Sets the webhook and starts delivering to it; true when it was already set to `url`.
pub(super) fn set_hook(
    shared: &Arc<Shared>,
    url: &str,
    secret: Option<String>,
    allowed_updates: Option<Vec<String>>,
) -> bool {
    let (generation, same) = {
        let mut state = shared.lock();
        state.hook_generation += 1;
        let generation = state.hook_generation;
        let same = state.hook.as_ref().is_some_and(|h| h.url == url);
        state.hook = Some(Hook {
            url: url.to_string(),
            secret,
            allowed_updates,
            generation,
            last_error_date: None,
            last_error_message: None,
        });
        (generation, same)
    };
    shared.changed.notify_waiters();
    let shared = Arc::clone(shared);
    let job = move || async move { deliver(shared, generation).await };
    match tokio::runtime::Handle::try_current() {
        // In a handler: on the server's runtime.
        Ok(_) => {
            actix_web::rt::spawn(job());
        }
        // From a test's thread: on a runtime of its own.
        Err(_) => {
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(job());
            });
        }
    }
    same
}

pub(super) fn set_webhook(shared: &web::Data<Shared>, params: &Map<String, Value>) -> HttpResponse {
    let url = text_param(params, "url").unwrap_or_default();
    if url.is_empty() {
        return delete_webhook(shared, params);
    }
    if !acceptable_webhook(&url) {
        return error(
            400,
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
        );
    }
    let secret = text_param(params, "secret_token").filter(|s| !s.is_empty());
    if let Some(secret) = &secret
        && !crate::settings::valid_secret(secret)
    {
        return error(
            400,
            "Bad Request: bad webhook: secret token contains unallowed characters",
        );
    }
    if bool_param(params, "drop_pending_updates") {
        shared.lock().updates.clear();
    }
    let allowed = list_param(params, "allowed_updates");
    let already = set_hook(&shared.clone().into_inner(), &url, secret, allowed);
    let description = if already {
        "Webhook is already set"
    } else {
        "Webhook was set"
    };
    HttpResponse::Ok().json(json!({"ok": true, "result": true, "description": description}))
}

pub(super) fn delete_webhook(
    shared: &web::Data<Shared>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let existed = {
        let mut state = shared.lock();
        state.hook_generation += 1;
        if bool_param(params, "drop_pending_updates") {
            state.updates.clear();
        }
        state.hook.take().is_some()
    };
    shared.changed.notify_waiters();
    let description = if existed {
        "Webhook was deleted"
    } else {
        "Webhook is already deleted"
    };
    HttpResponse::Ok().json(json!({"ok": true, "result": true, "description": description}))
}

/// Posts pending updates, oldest first, to the webhook of `generation` until it changes.
async fn deliver(shared: Arc<Shared>, generation: u64) {
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(WEBHOOK_TIMEOUT)
        .finish();
    let mut retry = WEBHOOK_RETRY;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if Arc::strong_count(&shared) <= 1 {
            // The emulator is gone.
            return;
        }
        let job = {
            let state = shared.lock();
            match &state.hook {
                Some(hook) if hook.generation == generation => state
                    .updates
                    .front()
                    .cloned()
                    .map(|u| (u, hook.url.clone(), hook.secret.clone())),
                _ => return,
            }
        };
        let Some((update, url, secret)) = job else {
            let _ = actix_web::rt::time::timeout(Duration::from_secs(1), notified).await;
            continue;
        };
        let mut request = client.post(&url);
        if let Some(secret) = &secret {
            request = request.insert_header((SECRET_HEADER, secret.as_str()));
        }
        let (status, failure) = match request.send_json(&update).await {
            Ok(response) if response.status().is_success() => {
                (Some(response.status().as_u16()), None)
            }
            Ok(response) => {
                let status = response.status();
                (
                    Some(status.as_u16()),
                    Some(format!(
                        "Wrong response from the webhook: {} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or_default()
                    )),
                )
            }
            Err(awc::error::SendRequestError::Timeout) => {
                (None, Some("Read timeout expired".to_string()))
            }
            Err(awc::error::SendRequestError::Connect(_)) => {
                (None, Some("Connection refused".to_string()))
            }
            Err(err) => (None, Some(err.to_string())),
        };
        {
            let mut state = shared.lock();
            let post = WebhookPost {
                update_id: update.update_id,
                url,
                status,
                error: failure.clone(),
                elapsed: shared.elapsed(),
            };
            state.posts.push(post);
            match &failure {
                None => state.updates.retain(|u| u.update_id != update.update_id),
                Some(message) => {
                    if let Some(hook) = state.hook.as_mut().filter(|h| h.generation == generation) {
                        hook.last_error_date = Some(unix_now());
                        hook.last_error_message = Some(message.clone());
                    }
                }
            }
        }
        if failure.is_some() {
            actix_web::rt::time::sleep(retry).await;
            retry = (retry * 2).min(Duration::from_secs(1));
        } else {
            retry = WEBHOOK_RETRY;
        }
    }
}
