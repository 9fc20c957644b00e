//! The outbound POST: one part to one chat, as JSON, with the shared secret.
use std::time::Duration;

use platform_api::http::{client, retry_after, transport_error};
use platform_api::{Part, Receipt, SendError};
use serde::{Deserialize, Serialize};

use crate::error::classify;
use crate::format::numbering;
use crate::settings::WebhookSettings;
use crate::webhook::SECRET_HEADER;

/// How long to wait for an answer; past it the part may have arrived, so it is not re-sent.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// The JSON body of an outbound POST.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Outgoing<'a> {
    /// The chat it goes to.
    pub chat: &'a str,
    /// The part's text, numbering included.
    pub text: &'a str,
    /// Its position in the reply, from 1.
    pub part: usize,
    /// How many parts the reply has.
    pub parts: usize,
    /// The files that come with the part, for the receiver to fetch; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<OutgoingMedia<'a>>,
}

/// A file of an outbound POST: where the gateway serves it, for whoever holds the URL.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct OutgoingMedia<'a> {
    /// `<public origin>/media/<token>`.
    pub url: &'a str,
    /// Its MIME type.
    pub content_type: &'a str,
    /// Its file name.
    pub name: &'a str,
}

/// The answer of a receiver that names what it stored.
#[derive(Deserialize)]
struct Stored {
    id: serde_json::Value,
}

/// The receiver's id for what it stored, or one made up when it named none.
fn receipt_id(answer: &[u8]) -> String {
    match serde_json::from_slice::<Stored>(answer).map(|s| s.id) {
        Ok(serde_json::Value::String(id)) if !id.is_empty() => id,
        Ok(serde_json::Value::Number(id)) => id.to_string(),
        _ => format!("webhook-{:016x}", rand::random::<u64>()),
    }
}

/// POSTs one part to `WEBHOOK_OUTBOUND_URL`.
pub async fn send_part(
    settings: &WebhookSettings,
    chat: &str,
    part: &Part,
) -> Result<Receipt, SendError> {
    let (index, count) = numbering(&part.body);
    let media = part
        .media
        .iter()
        .map(|m| {
            Ok(OutgoingMedia {
                url: m.public_url()?,
                content_type: &m.content_type,
                name: &m.name,
            })
        })
        .collect::<Result<Vec<_>, SendError>>()?;
    let outgoing = Outgoing {
        chat,
        text: &part.body,
        part: index,
        parts: count,
        media,
    };
    let request = client()
        .post(&settings.outbound_url)
        .timeout(REQUEST_TIMEOUT)
        .insert_header((SECRET_HEADER, settings.secret.as_str()));
    let mut response = match request.send_json(&outgoing).await {
        Ok(response) => response,
        Err(err) => {
            return Err(transport_error(
                err,
                "WEBHOOK_OUTBOUND_URL",
                REQUEST_TIMEOUT,
            ));
        }
    };
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    // A 2xx means the part arrived; an unreadable answer only costs us its id.
    let answer = response.body().limit(MAX_ANSWER).await.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(Receipt {
            provider_id: receipt_id(&answer),
            segments: None,
        });
    }
    Err(classify(status, retry_after.as_deref(), &answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_use_the_receivers_id_when_it_names_one() {
        assert_eq!(receipt_id(br#"{"id": "msg-42"}"#), "msg-42");
        assert_eq!(receipt_id(br#"{"id": 42, "ok": true}"#), "42");
        for answer in [&b""[..], b"ok", br#"{"id": ""}"#, br#"{"status": "ok"}"#] {
            assert!(receipt_id(answer).starts_with("webhook-"));
        }
    }

    #[test]
    fn the_body_names_chat_text_and_position() {
        let body = serde_json::to_value(Outgoing {
            chat: "room-1",
            text: "Hello (2/3)",
            part: 2,
            parts: 3,
            media: Vec::new(),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"chat": "room-1", "text": "Hello (2/3)", "part": 2, "parts": 3})
        );
    }

    #[actix_web::test]
    async fn a_refused_connection_can_be_retried() {
        // The host selects the TLS provider at start-up; a test has to do it itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Port 9 (discard) on loopback is closed on any ordinary machine.
        let settings = WebhookSettings {
            secret: "0123456789abcdef".into(),
            outbound_url: "http://127.0.0.1:9/hermes".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            access: Default::default(),
            home: None,
        };
        let err = send_part(&settings, "room-1", &Part::plain("hi"))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Retry { .. }), "{err:?}");
    }

    /// A receiver on loopback that answers one POST with `{"id": "r-1"}` and hands over its
    /// body.
    fn receiver() -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hermes", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        let answer = r#"{"id": "r-1"}"#;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                            answer.len()
                        );
                        let _ = tx.send(body.to_string());
                        return;
                    }
                }
                if n == 0 {
                    return;
                }
            }
        });
        (url, rx)
    }

    fn settings(outbound_url: String) -> WebhookSettings {
        WebhookSettings {
            secret: "0123456789abcdef".into(),
            outbound_url,
            listen: "127.0.0.1:0".parse().unwrap(),
            access: Default::default(),
            home: None,
        }
    }

    fn chart(url: Option<&str>) -> platform_api::PartMedia {
        platform_api::PartMedia {
            token: "tok".into(),
            name: "chart.png".into(),
            content_type: "image/png".into(),
            size: 1234,
            send_as: platform_api::SendAs::Photo,
            bytes: None,
            url: url.map(str::to_string),
        }
    }

    #[actix_web::test]
    async fn files_are_posted_as_urls_the_receiver_fetches() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (url, bodies) = receiver();
        let formatted = crate::format::format_media(
            "Here is the chart.",
            vec![chart(Some("https://gw.example.com/media/tok"))],
        );
        assert_eq!(formatted.parts.len(), 1);
        let receipt = send_part(&settings(url), "room-1", &formatted.parts[0])
            .await
            .unwrap();
        assert_eq!(receipt.provider_id, "r-1");
        let body: serde_json::Value =
            serde_json::from_str(&bodies.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "chat": "room-1",
                "text": "Here is the chart.",
                "part": 1,
                "parts": 1,
                "media": [{
                    "url": "https://gw.example.com/media/tok",
                    "content_type": "image/png",
                    "name": "chart.png"
                }]
            })
        );
    }

    #[actix_web::test]
    async fn a_file_without_a_public_url_is_a_permanent_failure_sent_nowhere() {
        let part = platform_api::media::media_part(vec![chart(None)]);
        // Nothing listens there, and nothing is tried: the error comes first.
        let err = send_part(
            &settings("http://127.0.0.1:9/hermes".into()),
            "room-1",
            &part,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SendError::Permanent { .. }), "{err:?}");
        assert!(err.to_string().contains("HERMES_PUBLIC_URL"), "{err}");
    }

    #[test]
    fn a_file_over_25_mb_is_named_in_the_text() {
        let mut big = chart(None);
        big.size = 30_000_000;
        let out = crate::format::format_media("Files:", vec![big, chart(None)]);
        assert_eq!(out.refused.len(), 1);
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.parts[0].media.len(), 1);
        assert_eq!(
            out.parts[0].body,
            "Files:\n\n(chart.png not sent: 30.0 MB, over the 25.0 MB a file that the JSON webhook allows)"
        );
    }
}
