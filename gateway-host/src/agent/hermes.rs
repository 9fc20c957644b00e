//! The `hermes` backend: Hermes Agent's API server as the brain.
//!
//! Hermes keeps each conversation itself when told which one a message belongs to
//! (`X-Hermes-Session-Id`, one per conversation, a new one after `/new`), and scopes its
//! long-term memory to the chat (`X-Hermes-Session-Key`, `<platform>:<chat>`, the same across
//! `/new`). So a turn sends only what Hermes cannot know: the platform's hint and the new user
//! message. Its own SOUL.md, tools and memory then work as in its own gateway; the history the
//! gateway stores is for `/status`, `hermes outbox` and a switch of backend.
//!
//! Hermes accepts both headers only from a client that authenticated with its
//! `API_SERVER_KEY`; without a key configured it answers 403, which is reported as such.
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::openai::{ChatClient, Refusal};
use super::{Agent, AgentRequest, Live};

/// The model named when `HERMES_AGENT_MODEL` is not set: the name Hermes' API server lists by
/// default. It runs its own configured model whatever the request names, unless the name is
/// one of its `model_routes` aliases.
pub const DEFAULT_MODEL: &str = "hermes-agent";

/// Hermes Agent's API server.
pub struct Hermes {
    client: ChatClient,
    model: String,
}

impl Hermes {
    /// The backend of the API server at `url` (ending in `/v1`), authenticated with `api_key`
    /// (its `API_SERVER_KEY`).
    pub fn new(url: &str, model: String, api_key: String, timeout: Duration) -> Self {
        Hermes {
            client: ChatClient::new(url, Some(api_key), timeout),
            model,
        }
    }

    /// The request body of a turn: the platform's hint, if any, who the person is when their
    /// name is known, and the new user message.
    fn body(&self, request: &AgentRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(hint) = request.hint.as_deref().filter(|h| !h.trim().is_empty()) {
            messages.push(json!({"role": "system", "content": hint}));
        }
        if let Some(name) = &request.chat_name {
            messages.push(json!({"role": "system", "content": super::name_line(name)}));
        }
        messages.push(json!({
            "role": "user",
            "content": super::user_content(request.last_user(), &request.files),
        }));
        json!({ "model": self.model, "messages": messages })
    }
}

#[async_trait(?Send)]
impl Agent for Hermes {
    async fn reply(&self, request: &AgentRequest, live: Option<&Live>) -> anyhow::Result<String> {
        let headers = [
            ("X-Hermes-Session-Id", request.session.id.as_str()),
            ("X-Hermes-Session-Key", request.session.key.as_str()),
        ];
        self.client
            .complete(self.body(request), request, &headers, live)
            .await
            .map_err(explain)
    }

    fn streams(&self) -> bool {
        true
    }
}

/// Says what to do about the answers of Hermes that come from its configuration.
fn explain(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<Refusal>().map(|r| r.status) {
        Some(403) => error.context(
            "Hermes Agent refused the session headers: its API server accepts \
             X-Hermes-Session-Id and X-Hermes-Session-Key only with API_SERVER_KEY set there, \
             and HERMES_AGENT_API_KEY here set to the same value",
        ),
        Some(401) => error.context(
            "Hermes Agent refused HERMES_AGENT_API_KEY: it must equal the API_SERVER_KEY of \
             Hermes' API server",
        ),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ChatMessage;
    use crate::agent::tests::request;

    fn hermes() -> Hermes {
        Hermes::new(
            "http://127.0.0.1:9/v1",
            DEFAULT_MODEL.into(),
            "k".repeat(16),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn a_turn_sends_the_hint_and_the_new_message_only() {
        let mut turn = request("and now?");
        turn.messages = vec![
            ChatMessage::new("user", "first"),
            ChatMessage::new("assistant", "You said: first"),
            ChatMessage::new("user", "and now?"),
        ];
        assert_eq!(
            hermes().body(&turn),
            json!({"model": "hermes-agent", "messages": [
                {"role": "system", "content": "Plain text."},
                {"role": "user", "content": "and now?"},
            ]})
        );
        for none in [None, Some(String::new()), Some(" \n".to_string())] {
            turn.hint = none;
            assert_eq!(
                hermes().body(&turn)["messages"],
                json!([{"role": "user", "content": "and now?"}])
            );
        }
        // A chat's display name (WhatsApp's profile name) is told too.
        turn.chat_name = Some("Ada".into());
        assert_eq!(
            hermes().body(&turn)["messages"][0],
            json!({"role": "system", "content": "The person you are talking with goes by the name Ada."})
        );
    }

    #[test]
    fn refusals_of_the_key_and_the_session_say_what_to_set() {
        let refused = |status| {
            let cause = Refusal {
                status,
                text: "{\"error\": {}}".into(),
            };
            format!("{:#}", explain(cause.into()))
        };
        let forbidden = refused(403);
        assert!(forbidden.contains("API_SERVER_KEY"), "{forbidden}");
        assert!(forbidden.contains("HERMES_AGENT_API_KEY"), "{forbidden}");
        assert!(forbidden.contains("403 Forbidden"), "{forbidden}");
        let unauthorized = refused(401);
        assert!(
            unauthorized.starts_with("Hermes Agent refused HERMES_AGENT_API_KEY"),
            "{unauthorized}"
        );
        assert_eq!(
            refused(500),
            "agent server answered 500 Internal Server Error: {\"error\": {}}"
        );
    }
}
