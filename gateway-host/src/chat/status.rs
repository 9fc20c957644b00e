//! `/status`: the conversation's state.
use super::Context;
use crate::store::OutboxRow;

/// Tells whether a reply is being written, how long the conversation is, the platform's home
/// channel and what became of the last reply.
pub fn apply(cx: &Context<'_>) -> anyhow::Result<String> {
    let store = &cx.services.store;
    let key = cx.key;
    let turns = store.turn_count(&key.platform, &key.chat)?;
    let state = match cx.turns.started(key) {
        Some(started) => format!("writing a reply ({}s so far)", started.elapsed().as_secs()),
        None => "idle".to_string(),
    };
    let home = match cx.services.home_channel(&key.platform) {
        Some(h) if h.chat == key.chat => "this chat".to_string(),
        Some(h) => h.name,
        None => "not set (send /sethome)".to_string(),
    };
    let last = match store.last_reply(&key.platform, &key.chat)? {
        None => String::new(),
        Some(part) => format!(" Last reply: {}.", last_reply_words(&part)),
    };
    let window = match cx
        .services
        .platform(&key.platform)
        .and_then(|p| p.reply_window())
    {
        None => String::new(),
        Some(window) => {
            let last = store.last_inbound_at(&key.platform, &key.chat)?;
            format!(" {}", window_words(window, last, store.now()))
        }
    };
    let with = match store.chat_name(&key.platform, &key.chat)? {
        Some(name) => format!(" with {name}"),
        None => String::new(),
    };
    Ok(format!(
        "Status: {state}. This conversation{with} has {turns} messages. Home channel: {home}.{last}{window}"
    ))
}

/// How `/status` tells whether the platform's reply window is open: until when free-form
/// replies may go, or that they go as a template.
fn window_words(window: std::time::Duration, last_inbound: Option<i64>, now: i64) -> String {
    let hours = window.as_secs() / 3600;
    let left = last_inbound.map_or(0, |at| at + window.as_millis() as i64 - now);
    if left <= 0 {
        return format!(
            "Reply window: closed ({hours} hours after your last message); replies go as a template."
        );
    }
    let minutes = (left / 60_000).max(1);
    format!(
        "Reply window: open for {}h {:02}m more ({hours} hours after your last message).",
        minutes / 60,
        minutes % 60
    )
}

/// How `/status` tells what became of the last reply.
fn last_reply_words(part: &OutboxRow) -> String {
    let code = part
        .error_code
        .map(|c| format!(" (error {c})"))
        .unwrap_or_default();
    match (part.status.as_deref(), part.state.as_str()) {
        (Some("delivered"), _) => "delivered".to_string(),
        (Some("read"), _) => "read".to_string(),
        (Some(status @ ("undelivered" | "failed")), _) => format!("{status}{code}"),
        (Some(status), "sent") => format!("sent, not confirmed delivered yet ({status})"),
        (None, "sent") => "sent, no delivery report yet".to_string(),
        (_, "pending" | "sending") => "still being sent".to_string(),
        (_, "ambiguous") => "outcome unknown, being checked with the provider".to_string(),
        (_, "suppressed") => "not sent (opted out)".to_string(),
        (_, state) => format!("{state}{code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(state: &str, status: Option<&str>, error_code: Option<i64>) -> OutboxRow {
        OutboxRow {
            id: 1,
            platform: "sms".into(),
            chat: "+15550001111".into(),
            part: 1,
            parts: 1,
            state: state.into(),
            status: status.map(Into::into),
            error_code,
            error: None,
            segments: 1,
            provider_id: None,
            origin: "reply".into(),
            attempts: 1,
            created_at: 0,
            updated_at: 0,
            media: Vec::new(),
        }
    }

    #[test]
    fn the_reply_window_is_told_open_with_the_time_left_or_closed() {
        let day = std::time::Duration::from_secs(24 * 3600);
        let now = 1_000_000_000_000;
        assert_eq!(
            window_words(day, Some(now - 60_000), now),
            "Reply window: open for 23h 59m more (24 hours after your last message)."
        );
        assert_eq!(
            window_words(day, Some(now - 24 * 3_600_000 + 1_000), now),
            "Reply window: open for 0h 01m more (24 hours after your last message)."
        );
        for last in [None, Some(now - 24 * 3_600_000), Some(now - 48 * 3_600_000)] {
            assert_eq!(
                window_words(day, last, now),
                "Reply window: closed (24 hours after your last message); replies go as a template."
            );
        }
    }

    #[test]
    fn the_last_reply_is_told_from_its_report_else_its_state() {
        let cases = [
            (("sent", Some("delivered"), None), "delivered"),
            (("sent", Some("read"), None), "read"),
            (
                ("sent", Some("undelivered"), Some(30007)),
                "undelivered (error 30007)",
            ),
            (("failed", Some("failed"), None), "failed"),
            (
                ("sent", Some("queued"), None),
                "sent, not confirmed delivered yet (queued)",
            ),
            (("sent", None, None), "sent, no delivery report yet"),
            (("pending", None, None), "still being sent"),
            (("sending", None, None), "still being sent"),
            (
                ("ambiguous", None, None),
                "outcome unknown, being checked with the provider",
            ),
            (("suppressed", None, Some(21610)), "not sent (opted out)"),
            (("failed", None, Some(21211)), "failed (error 21211)"),
        ];
        for ((state, status, code), words) in cases {
            assert_eq!(
                last_reply_words(&part(state, status, code)),
                words,
                "{state} {status:?}"
            );
        }
    }
}
