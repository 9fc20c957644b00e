//! What the JSON webhook adds to `hermes gateway setup`: the allowlist and home channel asked up
//! front, what the secret and the outbound URL are for, and a `curl` line to try the route. The
//! check it adds to `hermes gateway doctor` is in [`crate::doctor`].
use platform_api::{ConfigSection, OperatorGuide};

use crate::settings::{ACCESS, OUTBOUND_URL, PORT, SECRET};
use crate::webhook::{PATH, SECRET_HEADER};

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
        checkup: crate::doctor::checkup,
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
}
