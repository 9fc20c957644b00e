//! A channel's status-callback route (its webhook route + `/status`): Twilio's status
//! callbacks, which say what became of each message the gateway sent (queued, sent, delivered,
//! undelivered, failed, and WhatsApp's read).
//!
//! Every send asks for them ([`status_callback_url`]); they are signed like inbound webhooks,
//! over the callback URL, and answered only once the host has recorded them.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use platform_api::{DeliveryStatus, SinkError};
use tracing::{error, warn};

use crate::error::OPTED_OUT;
use crate::webhook::{Channel, WebhookState, param, signed_params, twiml};

/// Longest status word accepted; Twilio's are short.
const MAX_STATUS_LEN: usize = 32;

/// The URL every send asks Twilio to post its status callbacks to: the channel's webhook URL
/// (`SMS_WEBHOOK_URL`, `WHATSAPP_WEBHOOK_URL`) with `/status` appended to its path, the query and any fragment kept.
pub fn status_callback_url(webhook_url: &str) -> String {
    let (rest, fragment) = match webhook_url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (webhook_url, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut url = format!("{}/status", path.trim_end_matches('/'));
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

/// Reads a status callback's parameters: `MessageSid` and `MessageStatus` (or the older
/// `SmsSid` / `SmsStatus`) are required, `ErrorCode` is a number when present, `To` names the
/// recipient (on `channel`: `whatsapp:+…` for WhatsApp).
pub fn parse(channel: &Channel, params: &[(String, String)]) -> Result<DeliveryStatus, String> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("missing MessageSid")?;
    if sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("MessageSid is not a message SID".to_string());
    }
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("missing MessageStatus")?;
    if status.len() > MAX_STATUS_LEN
        || !status
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
    {
        return Err("MessageStatus is not a status word".to_string());
    }
    let error_code = match param(params, "ErrorCode").map(str::trim) {
        None | Some("") => None,
        Some(code) => Some(
            code.parse::<i64>()
                .map_err(|_| format!("ErrorCode {code:?} is not a number"))?,
        ),
    };
    let chat = param(params, "To").and_then(|to| channel.number(to).ok());
    Ok(DeliveryStatus {
        platform: channel.platform.to_string(),
        provider_id: sid.to_string(),
        status: status.to_ascii_lowercase(),
        error_code,
        chat,
        opted_out: error_code == Some(OPTED_OUT),
    })
}

/// The status-callback handler: 403 and nothing recorded unless signed, 200 once recorded.
pub async fn receive(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<WebhookState>,
) -> HttpResponse {
    let sink = &state.sink;
    let name = state.channel.platform;
    let params = match signed_params(&req, &mut payload, &state, &state.status_url_variants).await {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let status = match parse(&state.channel, &params) {
        Ok(status) => status,
        Err(why) => {
            warn!("[{name}] status callback rejected: {why}");
            sink.rejected(name, "parse");
            return twiml(StatusCode::BAD_REQUEST);
        }
    };
    let sid = status.provider_id.clone();
    match sink.delivery_status(status).await {
        Ok(()) => twiml(StatusCode::OK),
        Err(SinkError::Unavailable(why)) => {
            warn!("[{name}] cannot record the status of {sid} now ({why}): answering 503");
            twiml(StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(SinkError::Storage(why)) => {
            error!("[{name}] could not record the status of {sid}: {why}");
            twiml(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Registers the channel's status-callback route, its webhook route + `/status` (other
/// methods on it get 405).
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<WebhookState>) {
    cfg.service(
        web::resource(format!("{}/status", state.channel.path))
            .app_data(state)
            .route(web::post().to(receive))
            .default_service(web::to(|| async { twiml(StatusCode::METHOD_NOT_ALLOWED) })),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_channels::SMS;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn callback_url_appends_status_to_the_path() {
        for (webhook, status) in [
            (
                "https://bot.example.com/webhooks/twilio",
                "https://bot.example.com/webhooks/twilio/status",
            ),
            (
                "https://bot.example.com/webhooks/twilio/?k=v&x=1",
                "https://bot.example.com/webhooks/twilio/status?k=v&x=1",
            ),
            (
                "https://bot.example.com:8443/hook?k=v#rc=3&rp=ct,rt,5xx",
                "https://bot.example.com:8443/hook/status?k=v#rc=3&rp=ct,rt,5xx",
            ),
        ] {
            assert_eq!(status_callback_url(webhook), status);
        }
    }

    #[test]
    fn reads_twilios_callbacks() {
        // As Twilio posts them for an undelivered message.
        let status = parse(
            &SMS,
            &params(&[
                ("SmsSid", "SM1f0e7b9a5c1d4e2f8a3b6c9d0e1f2a3b"),
                ("SmsStatus", "undelivered"),
                ("MessageStatus", "undelivered"),
                ("To", "+15550001111"),
                ("MessageSid", "SM1f0e7b9a5c1d4e2f8a3b6c9d0e1f2a3b"),
                ("AccountSid", "ACa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"),
                ("From", "+15551234567"),
                ("ApiVersion", "2010-04-01"),
                ("ErrorCode", "30007"),
            ]),
        )
        .unwrap();
        assert_eq!(status.status, "undelivered");
        assert_eq!(status.error_code, Some(30007));
        assert_eq!(status.chat.as_deref(), Some("+15550001111"));
        assert!(!status.opted_out);
        let opted = parse(
            &SMS,
            &params(&[
                ("MessageSid", "SM2"),
                ("MessageStatus", "failed"),
                ("ErrorCode", "21610"),
            ]),
        )
        .unwrap();
        assert!(opted.opted_out);
        assert_eq!(opted.chat, None);
        let older = parse(&SMS, &params(&[("SmsSid", "SM3"), ("SmsStatus", "Sent")])).unwrap();
        assert_eq!(
            (older.provider_id.as_str(), older.status.as_str()),
            ("SM3", "sent")
        );
    }

    #[test]
    fn rejects_what_is_not_a_callback() {
        for bad in [
            params(&[("MessageStatus", "sent")]),
            params(&[("MessageSid", "SM1")]),
            params(&[("MessageSid", "SM1"), ("MessageStatus", "")]),
            params(&[("MessageSid", "SM 1"), ("MessageStatus", "sent")]),
            params(&[("MessageSid", "SM1"), ("MessageStatus", "sent<script>")]),
            params(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "failed"),
                ("ErrorCode", "x"),
            ]),
        ] {
            assert!(parse(&SMS, &bad).is_err(), "{bad:?}");
        }
    }
}
