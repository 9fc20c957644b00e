//! The `command` backend: a program run per turn, the request as JSON on stdin (the system
//! message, the history and the new message, the session and the turn's id: the README's
//! "The command backend's JSON" documents it), the reply on stdout.
use std::process::Stdio;

use anyhow::{Context, bail};
use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{Agent, AgentRequest, Live};

/// A program run per turn.
pub struct Command {
    command: String,
}

impl Command {
    /// Runs `command` with `sh -c` for every turn.
    pub fn new(command: &str) -> Self {
        Command {
            command: command.to_string(),
        }
    }
}

#[async_trait(?Send)]
impl Agent for Command {
    async fn reply(&self, request: &AgentRequest, _live: Option<&Live>) -> anyhow::Result<String> {
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

    fn reads_files(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::tests::request;

    /// The README documents this object ("The command backend's JSON"): its fields change only
    /// with it.
    #[test]
    fn the_json_has_the_documented_fields() {
        let value = serde_json::to_value(request("hi")).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "chat",
                "hint",
                "messages",
                "platform",
                "platform_label",
                "session",
                "system",
                "turn_id"
            ]
        );
        assert_eq!(
            value["session"],
            serde_json::json!({"id": "sms-1", "key": "sms:+15550001111"})
        );
        let mut with_file = request("look");
        with_file.files.push(crate::agent::TurnFile {
            name: "image-1.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 48_213,
            path: Some("/home/ada/.hermes/cache/media/41-0-image-1.jpg".into()),
            image: Some("data:image/jpeg;base64,AAAA".into()),
        });
        assert_eq!(
            serde_json::to_value(&with_file).unwrap()["files"],
            serde_json::json!([{
                "name": "image-1.jpg",
                "content_type": "image/jpeg",
                "size": 48_213,
                "path": "/home/ada/.hermes/cache/media/41-0-image-1.jpg"
            }])
        );
        assert_eq!(
            value["messages"][0],
            serde_json::json!({"role": "user", "content": "hi"})
        );
    }

    #[actix_rt::test]
    async fn a_program_answers_from_its_json() {
        let cmd = Command::new(
            "python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[\"system\"], r[\"messages\"][-1][\"content\"].upper(), r[\"turn_id\"])'",
        );
        assert_eq!(
            cmd.reply(&request("hi"), None).await.unwrap(),
            "You are terse. HI sms-1-1"
        );
        // A program that never reads its input still answers.
        let deaf = Command::new("echo fixed reply");
        assert_eq!(
            deaf.reply(&request("hi"), None).await.unwrap(),
            "fixed reply"
        );
        // Neither side waits on a full pipe: a long conversation in, a long answer out first.
        let long = request(&"x".repeat(300_000));
        let chatty = Command::new("head -c 200000 /dev/zero | tr '\\0' a; cat > /dev/null");
        assert_eq!(chatty.reply(&long, None).await.unwrap().len(), 200_000);
        let failing = Command::new("echo oops >&2; exit 3");
        let err = failing
            .reply(&request("hi"), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("oops"), "{err}");
    }
}
