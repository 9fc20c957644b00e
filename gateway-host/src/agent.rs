//! Agent backends: who writes the replies.
//!
//! - `echo`: built in, answers `You said: <text>`;
//! - `openai`: any OpenAI-compatible chat-completions server;
//! - `command`: a program run per turn, the conversation as JSON on stdin, the reply on stdout.
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use platform_api::ConfigSection;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::settings;

/// One message of a conversation as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// What the agent is asked to answer.
#[derive(Clone, Debug, Serialize)]
pub struct AgentRequest {
    /// Platform name.
    pub platform: String,
    /// Platform label, for the system prompt.
    pub platform_label: String,
    /// The chat.
    pub chat: String,
    /// History, oldest first, ending with the new user message.
    pub messages: Vec<ChatMessage>,
}

/// A backend that writes replies.
#[async_trait(?Send)]
pub trait Agent {
    /// The reply to the last message of the request.
    async fn reply(&self, request: &AgentRequest) -> anyhow::Result<String>;
}

/// The built-in agent that echoes the user.
pub struct Echo;

#[async_trait(?Send)]
impl Agent for Echo {
    async fn reply(&self, request: &AgentRequest) -> anyhow::Result<String> {
        let last = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("");
        Ok(format!("You said: {last}"))
    }
}

/// An OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp, OpenRouter, …).
pub struct OpenAi {
    url: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
}

fn system_prompt(label: &str) -> String {
    format!(
        "You are a helpful assistant answering people who write to you through {label}. \
         Your reply is delivered as a text message: write plain text without Markdown tables or \
         headings, keep it short and to the point, and use lists only when they help."
    )
}

#[async_trait(?Send)]
impl Agent for OpenAi {
    async fn reply(&self, request: &AgentRequest) -> anyhow::Result<String> {
        let mut messages =
            vec![json!({"role": "system", "content": system_prompt(&request.platform_label)})];
        messages.extend(
            request
                .messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content})),
        );
        let body = json!({ "model": self.model, "messages": messages });
        // The host bounds the turn (HERMES_AGENT_TIMEOUT_SECS); the client only guards a lost answer.
        let client = awc::Client::builder()
            .timeout(self.timeout + Duration::from_secs(5))
            .finish();
        let mut req = client.post(format!("{}/chat/completions", self.url));
        if let Some(key) = &self.api_key {
            req = req.insert_header(("Authorization", format!("Bearer {key}")));
        }
        let mut response = req
            .send_json(&body)
            .await
            .map_err(|e| anyhow::anyhow!("agent server unreachable: {e}"))?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(4 * 1024 * 1024)
            .await
            .context("reading the agent server's answer")?;
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            bail!("agent server answered {status}: {text}");
        }
        let value: Value =
            serde_json::from_slice(&bytes).context("agent server answered non-JSON")?;
        let content = value["choices"][0]["message"]["content"]
            .as_str()
            .context("agent server's answer has no choices[0].message.content")?;
        Ok(content.trim().to_string())
    }
}

/// A program run per turn.
pub struct Command {
    command: String,
}

#[async_trait(?Send)]
impl Agent for Command {
    async fn reply(&self, request: &AgentRequest) -> anyhow::Result<String> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            // The command line is not shown: it may hold a token or a password.
            .context("could not start `sh` to run HERMES_AGENT_COMMAND")?;
        let input = serde_json::to_vec(request)?;
        // Feed stdin while reading the output, so that neither side can fill a pipe and wait
        // for the other; a program that exits without reading its input is not an error here
        // (its exit status says how it went).
        let stdin = child.stdin.take();
        let feed = async move {
            let Some(mut stdin) = stdin else {
                return Ok(());
            };
            match stdin.write_all(&input).await {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        };
        let (fed, output) = tokio::join!(feed, child.wait_with_output());
        let output = output.context("waiting for the agent command")?;
        if !output.status.success() {
            let err: String = String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(300)
                .collect();
            bail!(
                "agent command exited with {}: {}",
                output.status,
                err.trim()
            );
        }
        fed.context("writing the conversation to the agent command")?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }
}

/// The configured backend and the per-turn time limit.
pub fn from_config(section: &ConfigSection) -> anyhow::Result<(Rc<dyn Agent>, Duration)> {
    let timeout = Duration::from_secs(
        section
            .number(settings::AGENT_TIMEOUT_SECS.env)?
            .unwrap_or(120)
            .max(1),
    );
    let kind = section
        .choice(settings::AGENT.env, &["echo", "openai", "command"])?
        .unwrap_or_else(|| "echo".to_string());
    let agent: Rc<dyn Agent> = match kind.as_str() {
        "openai" => {
            let url = section
                .url(settings::AGENT_URL.env)?
                .context("HERMES_AGENT=openai needs HERMES_AGENT_URL (a base URL ending in /v1)")?;
            let model = section
                .text(settings::AGENT_MODEL.env)
                .context("HERMES_AGENT=openai needs HERMES_AGENT_MODEL")?
                .to_string();
            Rc::new(OpenAi {
                url: url.trim_end_matches('/').to_string(),
                model,
                api_key: section
                    .text(settings::AGENT_API_KEY.env)
                    .map(str::to_string),
                timeout,
            })
        }
        "command" => Rc::new(Command {
            command: section
                .text(settings::AGENT_COMMAND.env)
                .context("HERMES_AGENT=command needs HERMES_AGENT_COMMAND")?
                .to_string(),
        }),
        _ => Rc::new(Echo),
    };
    Ok((agent, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> AgentRequest {
        AgentRequest {
            platform: "sms".into(),
            platform_label: "SMS".into(),
            chat: "+15550001111".into(),
            messages: vec![ChatMessage {
                role: "user".into(),
                content: text.into(),
            }],
        }
    }

    #[actix_rt::test]
    async fn echo_and_command_backends_answer() {
        assert_eq!(Echo.reply(&request("hi")).await.unwrap(), "You said: hi");
        let cmd = Command { command: "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"messages\"][-1][\"content\"].upper())'".into() };
        assert_eq!(cmd.reply(&request("hi")).await.unwrap(), "HI");
        // A program that never reads its input still answers.
        let deaf = Command {
            command: "echo fixed reply".into(),
        };
        assert_eq!(deaf.reply(&request("hi")).await.unwrap(), "fixed reply");
        // Neither side waits on a full pipe: a long conversation in, a long answer out first.
        let long = request(&"x".repeat(300_000));
        let chatty = Command {
            command: "head -c 200000 /dev/zero | tr '\\0' a; cat > /dev/null".into(),
        };
        assert_eq!(chatty.reply(&long).await.unwrap().len(), 200_000);
        let failing = Command {
            command: "echo oops >&2; exit 3".into(),
        };
        let err = failing.reply(&request("hi")).await.unwrap_err().to_string();
        assert!(err.contains("oops"), "{err}");
    }
}
