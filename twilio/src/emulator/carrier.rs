//! What becomes of a message after the API accepted it: the carrier sends it (`sent`), then the
//! handset gets it (`delivered`) or it fails there (`undelivered` / `failed` with an error code,
//! scripted per number with [`Emulator::fail_delivery`](super::Emulator::fail_delivery)).
//!
//! When status callbacks are on ([`Emulator::deliver_status_callbacks`](super::Emulator::deliver_status_callbacks)),
//! each change is posted to the message's `StatusCallback` as Twilio posts it: a form signed
//! with the auth token over that URL, in order, once.
use std::time::{Duration, SystemTime};

use actix_web::web;
use serde::Serialize;

use super::{API_VERSION, SentMessage, Shared, State, media, rfc2822, whatsapp};
use crate::signature::{SIGNATURE_SETTINGS, compute_signature, compute_signature_sha256};

/// How long the carrier takes for each step, when someone is watching the steps.
const STEP: Duration = Duration::from_millis(15);
/// How long a callback post may take before it counts as unanswered.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A status callback the emulator posted.
#[derive(Clone, Debug, Serialize)]
pub struct CallbackPost {
    /// The message it reports on.
    pub sid: String,
    /// The recipient.
    pub to: String,
    /// `sent`, `delivered`, `read`, `undelivered`, `failed`.
    pub status: String,
    /// The error code posted with it.
    pub error_code: Option<i64>,
    /// The `StatusCallback` URL, as signed.
    pub url: String,
    /// The HTTP status the receiver answered; `None` when it could not be reached.
    pub answered: Option<u16>,
}

/// Where callbacks go, once turned on.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// To the `StatusCallback` URL itself.
    Direct,
    /// To this base URL (`http://host:port`) with the callback URL's path and query, as a
    /// reverse proxy in front of the receiver would forward it.
    Via(String),
}

/// Takes a message the API just accepted through the carrier: at once when nobody watches and
/// it has no media, step by step (with callbacks) otherwise, after its media was fetched.
pub(super) fn accepted(shared: &web::Data<Shared>, state: &mut State, message: &SentMessage) {
    let failure = state.delivery_failures.get(&message.to).cloned();
    let watched = state.callback_target.is_some() || state.on_status.is_some();
    let (status, code) = failure.unwrap_or_else(|| ("delivered".to_string(), None));
    // A free-form WhatsApp message outside the user's window is refused by WhatsApp: it fails
    // without being sent, and its media is never fetched.
    let refused = whatsapp::outside_window(state, message);
    let steps = if refused {
        vec![("failed".to_string(), Some(whatsapp::OUTSIDE_WINDOW))]
    } else {
        let mut steps = vec![("sent".to_string(), None), (status, code)];
        // WhatsApp reports when the user has read a delivered message.
        if whatsapp::is_whatsapp(&message.to) && steps[1].0 == "delivered" {
            steps.push(("read".to_string(), None));
        }
        steps
    };
    let fetch = !refused && !message.media_urls.is_empty();
    if !watched && !fetch {
        for (status, code) in steps {
            advance(shared, state, &message.sid, &status, code);
        }
        return;
    }
    let shared = web::Data::clone(shared);
    let sid = message.sid.clone();
    let media_urls = message.media_urls.clone();
    actix_web::rt::spawn(async move {
        // Twilio fetches the media before it sends; a message whose media it could not fetch
        // fails without being sent.
        let failed = if fetch {
            media::fetch_all(&shared, &sid, &media_urls).await
        } else {
            None
        };
        let steps = match failed {
            Some(code) => vec![("failed".to_string(), Some(code))],
            None => steps,
        };
        for (status, code) in steps {
            actix_web::rt::time::sleep(STEP).await;
            let (message, target, on_status) = {
                let mut state = shared.lock();
                let message = advance(&shared, &mut state, &sid, &status, code);
                (
                    message,
                    state.callback_target.clone(),
                    state.on_status.clone(),
                )
            };
            let Some(message) = message else { return };
            // The callback first: whoever watches (the sandbox) hears of the status once the
            // gateway has answered its report.
            if let Some(target) = target {
                post(&shared, &target, &message).await;
            }
            if let Some(on_status) = on_status {
                on_status(&message);
            }
        }
    });
}

/// Moves message `sid` to `status`; returns it as it now is.
fn advance(
    shared: &Shared,
    state: &mut State,
    sid: &str,
    status: &str,
    error_code: Option<i64>,
) -> Option<SentMessage> {
    let index = *state.index.get(sid)?;
    let sender = whatsapp::sender(state, &state.messages.get(index)?.to);
    let message = state.messages.get_mut(index)?;
    let now = SystemTime::now();
    if status == "sent" {
        message.sent = Some(now);
        message.date_sent = Some(rfc2822(now));
    }
    // A Messaging Service has picked the sender by now: the WhatsApp sender for a WhatsApp
    // message, which may fail before it is sent.
    match sender {
        Some(sender) => {
            message.from.get_or_insert(sender);
        }
        None if status == "sent" => {
            message
                .from
                .get_or_insert_with(|| shared.phone_number.clone());
        }
        None => {}
    }
    message.status = status.to_string();
    message.error_code = error_code;
    message.date_updated = rfc2822(now);
    Some(message.clone())
}

/// Posts one signed status callback for `message` and records the answer.
async fn post(shared: &Shared, target: &Target, message: &SentMessage) {
    let Some(callback) = &message.status_callback else {
        return;
    };
    // Twilio signs over the URL it posts to, which never carries the fragment.
    let url = callback.split('#').next().unwrap_or(callback).to_string();
    let mut params: Vec<(String, String)> = vec![
        ("AccountSid".into(), shared.account_sid.clone()),
        ("ApiVersion".into(), API_VERSION.into()),
    ];
    if let Some(code) = message.error_code {
        params.push(("ErrorCode".into(), code.to_string()));
    }
    params.push((
        "From".into(),
        message
            .from
            .clone()
            .unwrap_or_else(|| shared.phone_number.clone()),
    ));
    params.push(("MessageSid".into(), message.sid.clone()));
    params.push(("MessageStatus".into(), message.status.clone()));
    if let Some(service) = &message.messaging_service_sid {
        params.push(("MessagingServiceSid".into(), service.clone()));
    }
    params.push(("SmsSid".into(), message.sid.clone()));
    params.push(("SmsStatus".into(), message.status.clone()));
    params.push(("To".into(), message.to.clone()));
    if whatsapp::is_whatsapp(&message.to) {
        params.push(("ChannelPrefix".into(), "whatsapp".into()));
        params.push((
            "ChannelToAddress".into(),
            whatsapp::address(&message.to).to_string(),
        ));
    }
    let answered = post_signed(
        shared,
        target,
        (&url, "POST"),
        &params,
        &format!("{}-{}", message.sid, message.status),
    )
    .await;
    shared.lock().callbacks.push(CallbackPost {
        sid: message.sid.clone(),
        to: message.to.clone(),
        status: message.status.clone(),
        error_code: message.error_code,
        url,
        answered,
    });
}

/// Sends `params` to `url` with `method` (a form for POST, the query for GET) as Twilio calls
/// a webhook: signed over the URL it calls with the auth token (HMAC-SHA1), or, once the
/// account uses a Webhook Shared Key ([`super::Emulator::sign_with_shared_key`]), with that key
/// (HMAC-SHA256) and the algorithm named in `X-Twilio-Webhooks-Signature-Settings`. The status answered, `None`
/// when the receiver could not be reached in time. `idempotency_token` names the event, the
/// same on each retry of it.
pub(super) async fn post_signed(
    shared: &Shared,
    target: &Target,
    (url, method): (&str, &str),
    params: &[(String, String)],
    idempotency_token: &str,
) -> Option<u16> {
    let get = method.eq_ignore_ascii_case("GET");
    // A GET carries the parameters in its query, and is signed over the whole URL.
    let url = if get {
        let query = serde_urlencoded::to_string(params).unwrap_or_default();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{query}")
    } else {
        url.to_string()
    };
    let signed: &[(String, String)] = if get { &[] } else { params };
    let shared_key = shared.lock().shared_key.clone();
    let (signature, settings) = match &shared_key {
        None => (compute_signature(&shared.auth_token, &url, signed), None),
        Some((algorithm, key)) => (
            compute_signature_sha256(key, &url, signed),
            Some(format!("algorithm={algorithm}")),
        ),
    };
    let address = match target {
        Target::Direct => url.clone(),
        Target::Via(base) => match url.parse::<awc::http::Uri>() {
            Ok(uri) => format!(
                "{}{}",
                base.trim_end_matches('/'),
                uri.path_and_query().map_or("/", |p| p.as_str())
            ),
            Err(_) => url.clone(),
        },
    };
    let client = awc::Client::new();
    let request = if get {
        client.get(&address)
    } else {
        client.post(&address)
    };
    let request = match settings {
        Some(settings) => request.insert_header((SIGNATURE_SETTINGS, settings)),
        None => request,
    };
    let request = request
        .insert_header(("X-Twilio-Signature", signature))
        .insert_header(("User-Agent", "TwilioProxy/1.1"))
        .insert_header(("I-Twilio-Idempotency-Token", idempotency_token))
        .timeout(CALLBACK_TIMEOUT);
    let sent = if get {
        request.send().await
    } else {
        request.send_form(&params).await
    };
    sent.ok().map(|response| response.status().as_u16())
}
