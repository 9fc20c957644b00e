//! The `openai` backend: any OpenAI-compatible chat-completions server (Ollama, vLLM,
//! llama.cpp, LiteLLM, OpenRouter, …), and the HTTP client that other backends speaking the
//! same protocol share ([`ChatClient`]).
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::sse::Events;
use super::{Agent, AgentRequest, Live};

/// The longest reply taken from a server, streamed or not.
const REPLY_LIMIT: usize = 4 * 1024 * 1024;

/// `POST {url}/chat/completions`, answered whole or streamed.
pub struct ChatClient {
    url: String,
    api_key: Option<String>,
    timeout: Duration,
}

impl ChatClient {
    /// A client of the server at `url` (ending in `/v1`).
    pub fn new(url: &str, api_key: Option<String>, timeout: Duration) -> Self {
        ChatClient {
            url: url.trim_end_matches('/').to_string(),
            api_key,
            timeout,
        }
    }

    /// The reply to `body` (a chat-completions request without `stream`), sent with the
    /// turn's `Idempotency-Key` and `headers`. With `live`, the request streams and every
    /// piece received is published there.
    pub async fn complete(
        &self,
        mut body: Value,
        request: &AgentRequest,
        headers: &[(&str, &str)],
        live: Option<&Live>,
    ) -> anyhow::Result<String> {
        body["stream"] = Value::Bool(live.is_some());
        // The host bounds the turn (HERMES_AGENT_TIMEOUT_SECS); the client only guards a lost
        // answer.
        let client = awc::Client::builder()
            .timeout(self.timeout + Duration::from_secs(5))
            .finish();
        let mut req = client
            .post(format!("{}/chat/completions", self.url))
            .insert_header(("Idempotency-Key", request.turn_id.as_str()));
        if let Some(key) = &self.api_key {
            req = req.insert_header(("Authorization", format!("Bearer {key}")));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let mut response = req
            .send_json(&body)
            .await
            .map_err(|e| anyhow::anyhow!("agent server unreachable: {e}"))?;
        let status = response.status();
        let streamed = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if let (Some(live), true, true) = (live, status.is_success(), streamed) {
            return read_stream(&mut response, live).await;
        }
        let bytes = response
            .body()
            .limit(REPLY_LIMIT)
            .await
            .context("reading the agent server's answer")?;
        if !status.is_success() {
            return Err(Refusal {
                status: status.as_u16(),
                text: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            }
            .into());
        }
        let value: Value =
            serde_json::from_slice(&bytes).context("agent server answered non-JSON")?;
        let choice = &value["choices"][0];
        if choice["finish_reason"] == "error" {
            bail!(
                "the agent server reported a failed reply: {}",
                failure(&value)
            );
        }
        let content = choice["message"]["content"]
            .as_str()
            .context("agent server's answer has no choices[0].message.content")?;
        Ok(content.trim().to_string())
    }
}

/// The agent server answered with an error status.
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The start of the answer's body: the server's own words.
    pub text: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = actix_web::http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        write!(
            f,
            "agent server answered {} {reason}: {}",
            self.status, self.text
        )
    }
}

impl std::error::Error for Refusal {}

/// What a reply that finished with `finish_reason: "error"` says went wrong: the chunk's
/// `error.message` (Hermes Agent sends one), else the text it carried.
fn failure(value: &Value) -> String {
    let said = value["error"]["message"]
        .as_str()
        .or_else(|| value["choices"][0]["message"]["content"].as_str())
        .unwrap_or("no reason given");
    said.chars().take(300).collect()
}

/// Reads a streamed answer, publishing the text as it grows. A stream that ends before the
/// server said it finished (`[DONE]` or a `finish_reason`) is an error: a half reply is no
/// reply.
async fn read_stream<S>(response: &mut S, live: &Live) -> anyhow::Result<String>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut events = Events::default();
    let mut text = String::new();
    let mut finished = false;
    while !finished && let Some(chunk) = response.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("the agent's stream broke: {e}"))?;
        for data in events.push(&chunk)? {
            finished |= take_chunk(&data, &mut text, live)?;
        }
    }
    if !finished && let Some(data) = events.finish() {
        finished = take_chunk(&data, &mut text, live)?;
    }
    if !finished {
        bail!("the agent's stream ended before the reply was finished");
    }
    Ok(text.trim().to_string())
}

/// Adds one streamed chunk to `text`; true when it says the reply is finished.
fn take_chunk(data: &str, text: &mut String, live: &Live) -> anyhow::Result<bool> {
    if data.trim() == "[DONE]" {
        return Ok(true);
    }
    let chunk: Value =
        serde_json::from_str(data).context("the agent server streamed a chunk that is not JSON")?;
    if let Some(error) = chunk.get("error") {
        bail!("the agent server reported an error mid-stream: {error}");
    }
    let choice = &chunk["choices"][0];
    if choice["finish_reason"] == "error" {
        bail!(
            "the agent server reported a failed reply: {}",
            failure(&chunk)
        );
    }
    if let Some(piece) = choice["delta"]["content"].as_str()
        && !piece.is_empty()
    {
        if text.len() + piece.len() > REPLY_LIMIT {
            bail!("the agent's reply is over {REPLY_LIMIT} bytes");
        }
        text.push_str(piece);
        live.send_replace(text.clone());
    }
    Ok(choice["finish_reason"].is_string())
}

/// An OpenAI-compatible server given the whole conversation every turn.
pub struct OpenAi {
    client: ChatClient,
    model: String,
}

impl OpenAi {
    /// The backend of the server at `url` with `model`.
    pub fn new(url: &str, model: String, api_key: Option<String>, timeout: Duration) -> Self {
        OpenAi {
            client: ChatClient::new(url, api_key, timeout),
            model,
        }
    }
}

#[async_trait(?Send)]
impl Agent for OpenAi {
    async fn reply(&self, request: &AgentRequest, live: Option<&Live>) -> anyhow::Result<String> {
        let mut messages = vec![json!({"role": "system", "content": request.system})];
        let last = request.messages.len().saturating_sub(1);
        messages.extend(request.messages.iter().enumerate().map(|(i, m)| {
            let content = if i == last && m.role == "user" {
                super::user_content(&m.content, &request.files)
            } else {
                json!(m.content)
            };
            json!({"role": m.role, "content": content})
        }));
        let body = json!({ "model": self.model, "messages": messages });
        self.client.complete(body, request, &[], live).await
    }

    fn streams(&self) -> bool {
        true
    }
}
