//! What the JSON webhook adds to `hermes gateway setup` and `hermes gateway doctor`: the
//! allowlist and home channel asked up front, what the secret and the outbound URL are for, a
//! `curl` line to try the route, and a check that the outbound URL accepts connections.
use std::time::Duration;

use actix_web::http::Uri;
use platform_api::{Check, Checkup, ConfigSection, OperatorGuide, redact_url};

use crate::settings::{ACCESS, OUTBOUND_URL, PORT, SECRET, WebhookSettings};
use crate::webhook::{PATH, SECRET_HEADER};

const OUTBOUND: &str = "Outbound URL";

inventory::submit! {
    OperatorGuide {
        platform: crate::NAME,
        essentials: &[
            ACCESS.allowed_users.env,
            ACCESS.allow_all_users.env,
            ACCESS.home_channel.env,
        ],
        explanations: &[
            (
                SECRET.env,
                "A shared secret: the other system sends it in the X-Hermes-Secret header of every message it posts, and the gateway sends it with every reply. Use a long random string (openssl rand -hex 32).",
            ),
            (
                OUTBOUND_URL.env,
                "Where the gateway POSTs replies, one JSON object per part: {\"chat\", \"text\", \"part\", \"parts\"}.",
            ),
        ],
        next_steps,
        checkup,
    }
}

/// How to post a first message to the route.
pub fn next_steps(section: &ConfigSection) -> String {
    let port = section.text(PORT.env).unwrap_or("8090");
    format!(
        "Post a message as the other system would (the secret is in $HERMES_HOME/.env):
  curl -X POST http://localhost:{port}{PATH} \\
    -H '{SECRET_HEADER}: <{secret}>' -H 'Content-Type: application/json' \\
    -d '{{\"id\": \"1\", \"chat\": \"room-1\", \"sender\": \"alice\", \"text\": \"Hello\"}}'
The reply is POSTed to {url} with the same header.
",
        secret = SECRET.env,
        url = section
            .text(OUTBOUND_URL.env)
            .unwrap_or("<WEBHOOK_OUTBOUND_URL>"),
    )
}

/// Whether the outbound URL's server accepts connections (nothing is sent to it).
pub fn checkup(section: &ConfigSection, _fix: bool) -> Checkup<'_> {
    Box::pin(async move {
        let settings = match WebhookSettings::from_config(section) {
            Ok(settings) => settings,
            Err(err) => {
                return vec![Check::skipped(
                    OUTBOUND,
                    format!("needs valid settings first ({err})"),
                )];
            }
        };
        vec![reachable(&settings.outbound_url).await]
    })
}

async fn reachable(url: &str) -> Check {
    let Some((host, port)) = host_and_port(url) else {
        return Check::problem(
            OUTBOUND,
            format!("{} has no host", redact_url(url)),
            format!("set {} to an absolute URL", OUTBOUND_URL.env),
        );
    };
    let connect = actix_web::rt::net::TcpStream::connect((host.as_str(), port));
    match actix_web::rt::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Check::ok(
            OUTBOUND,
            format!("{host}:{port} accepts connections (nothing was sent)"),
        ),
        Ok(Err(err)) => Check::problem(
            OUTBOUND,
            format!("cannot connect to {host}:{port}: {err}"),
            format!(
                "start the receiving system, or correct {}",
                OUTBOUND_URL.env
            ),
        ),
        Err(_) => Check::problem(
            OUTBOUND,
            format!("no answer from {host}:{port} within 5s"),
            format!("check a firewall or correct {}", OUTBOUND_URL.env),
        ),
    }
}

fn host_and_port(url: &str) -> Option<(String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let default = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    Some((uri.host()?.to_string(), uri.port_u16().unwrap_or(default)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_show_a_working_curl_line() {
        let steps = next_steps(&ConfigSection::from_pairs([
            ("WEBHOOK_PORT", "9000"),
            ("WEBHOOK_OUTBOUND_URL", "https://bridge.example.com/in"),
        ]));
        assert!(steps.contains("curl -X POST http://localhost:9000/webhooks/json"));
        assert!(steps.contains("X-Hermes-Secret: <WEBHOOK_SECRET>"));
        assert!(steps.contains("POSTed to https://bridge.example.com/in"));
    }

    #[test]
    fn urls_name_their_host_and_port() {
        assert_eq!(
            host_and_port("https://bridge.example.com/in"),
            Some(("bridge.example.com".into(), 443))
        );
        assert_eq!(
            host_and_port("http://127.0.0.1:8091/x"),
            Some(("127.0.0.1".into(), 8091))
        );
    }

    #[actix_web::test]
    async fn a_closed_port_is_a_problem_with_a_fix() {
        let check = reachable("http://127.0.0.1:9/hermes").await;
        assert!(check.is_problem(), "{check}");
    }
}
