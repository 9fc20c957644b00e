//! What `hermes gateway doctor` checks of the agent: where the persona comes from, and for a
//! backend on a server (`openai`, `hermes`) that the server answers, knows the model and, for
//! Hermes Agent, accepts the session header.
//!
//! The checks cost nothing on the server: `GET {url}/models` (with the API key) and, for
//! Hermes Agent, `GET {url}/capabilities`, which says whether it requires the key. Its API
//! server answers 403 to `X-Hermes-Session-Id` when it has no key of its own
//! (`API_SERVER_KEY`), and checks the session header only after the request's messages, so a
//! chat request could not probe it without running a turn.
use std::time::Duration;

use hermes_config::Config;
use platform_api::{Check, ConfigSection, redact_url};
use serde_json::Value;

use super::persona::Persona;
use crate::settings::{self, HOST};

/// How long each request to the agent server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The header Hermes Agent keeps a conversation by.
const SESSION_HEADER: &str = "X-Hermes-Session-Id";

/// The persona's source, and the agent backend's checks.
pub async fn checks(config: &Config) -> Vec<Check> {
    let host = config.section(HOST);
    let mut checks = vec![persona_check(config)];
    let backend = host
        .text(settings::AGENT.env)
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| "echo".to_string());
    match backend.as_str() {
        "openai" | "hermes" => checks.extend(server_checks(&host, &backend).await),
        "command" => checks.push(Check::ok(
            "agent",
            "command: a program run per turn with the conversation as JSON on stdin",
        )),
        "echo" => checks.push(Check::ok(
            "agent",
            format!(
                "echo (built in: answers \"You said: …\"); set {} for a model (`hermes gateway setup` asks)",
                settings::AGENT.env
            ),
        )),
        // An unknown backend is reported with the other settings.
        _ => {}
    }
    checks.push(voice_check(&host));
    checks
}

/// Whether voice notes reach the agent as text, and how to make them.
fn voice_check(host: &ConfigSection) -> Check {
    const SUBJECT: &str = "voice notes";
    match host.text(settings::STT_URL.env).filter(|u| !u.is_empty()) {
        Some(url) => Check::ok(
            SUBJECT,
            format!(
                "transcribed by {} with {}",
                redact_url(url),
                host.text(settings::STT_MODEL.env)
                    .filter(|m| !m.is_empty())
                    .unwrap_or("whisper-1")
            ),
        ),
        None => Check::skipped(
            SUBJECT,
            format!(
                "not transcribed: the agent reads \"[voice note, not transcribed]\"; set {} to an OpenAI-compatible server ending in /v1 (speaches, whisper.cpp's server, vLLM, LocalAI, OpenAI) to give it the words",
                settings::STT_URL.env
            ),
        ),
    }
}

/// Where the persona comes from, or what is wrong with it.
fn persona_check(config: &Config) -> Check {
    const SUBJECT: &str = "persona";
    // A bad time zone is reported with the other settings; the persona does not depend on it.
    let zone = crate::cron::schedule::zone(&config.section(HOST)).unwrap_or(chrono_tz::UTC);
    match Persona::from_config(config, zone) {
        Err(e) => Check::problem(
            SUBJECT,
            e.to_string(),
            format!(
                "create the file, or unset {} (then {} in HERMES_HOME, or the built-in default, is the persona)",
                e.var,
                super::persona::SOUL_FILE
            ),
        ),
        Ok(persona) => match persona.describe() {
            Ok(detail) => Check::ok(SUBJECT, detail),
            Err(problem) => Check::problem(
                SUBJECT,
                problem,
                "make the file readable by the user the gateway runs as",
            ),
        },
    }
}

/// An answer of the agent server: its status and body.
struct Answer {
    status: u16,
    body: Value,
}

/// `GET {url}/{path}` with the API key, if any.
async fn get(url: &str, path: &str, key: Option<&str>) -> Result<Answer, String> {
    let client = awc::Client::builder().timeout(PROBE_TIMEOUT).finish();
    let mut request = client.get(format!("{}/{path}", url.trim_end_matches('/')));
    if let Some(key) = key {
        request = request.insert_header(("Authorization", format!("Bearer {key}")));
    }
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    let bytes = response
        .body()
        .limit(1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// The message of an OpenAI-style error answer, if it has one.
fn error_message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .map(|m| format!(": {}", m.chars().take(200).collect::<String>()))
        .unwrap_or_default()
}

/// The checks of a backend on an OpenAI-compatible server (`openai`, or Hermes Agent's API
/// server for `hermes`).
async fn server_checks(host: &ConfigSection, backend: &str) -> Vec<Check> {
    const SERVER: &str = "agent server";
    let hermes = backend == "hermes";
    let url_var = settings::AGENT_URL.env;
    let key_var = settings::AGENT_API_KEY.env;
    let Some(base) = host.url(url_var).ok().flatten() else {
        return vec![Check::problem(
            SERVER,
            format!("HERMES_AGENT={backend} needs {url_var}"),
            format!(
                "set {url_var} to the server's base URL ending in /v1{} (`hermes gateway setup` asks)",
                if hermes {
                    ", e.g. http://127.0.0.1:8642/v1 for Hermes Agent's API server"
                } else {
                    ""
                }
            ),
        )];
    };
    // Shown with any password in it masked.
    let url = redact_url(&base);
    let key = host.text(key_var);
    let mut checks = Vec::new();
    if hermes && key.is_none() {
        checks.push(Check::problem(
            "API key",
            format!(
                "HERMES_AGENT=hermes needs {key_var}: Hermes Agent refuses {SESSION_HEADER} (403) from a caller without its key"
            ),
            format!(
                "set {key_var} to the API_SERVER_KEY of Hermes Agent (in its ~/.hermes/.env; 16 characters or more)"
            ),
        ));
    }
    let models = match get(&base, "models", key).await {
        Err(e) => {
            checks.push(Check::problem(
                SERVER,
                format!("cannot reach {url}: {e}"),
                format!(
                    "start the server{}, or correct {url_var}",
                    if hermes {
                        " (Hermes Agent with API_SERVER_ENABLED=true)"
                    } else {
                        ""
                    }
                ),
            ));
            return checks;
        }
        Ok(answer) if answer.status == 401 || answer.status == 403 => {
            checks.push(Check::problem(
                SERVER,
                format!(
                    "{url} refuses the API key ({}){}",
                    answer.status,
                    error_message(&answer.body)
                ),
                format!(
                    "set {key_var} to the server's key{}",
                    if hermes {
                        " (Hermes Agent's API_SERVER_KEY)"
                    } else {
                        ""
                    }
                ),
            ));
            return checks;
        }
        Ok(answer) if !(200..300).contains(&answer.status) => {
            checks.push(Check::problem(
                SERVER,
                format!(
                    "{url} answers {} to GET /models{}",
                    answer.status,
                    error_message(&answer.body)
                ),
                format!("{url_var} must be the server's base URL, ending in /v1"),
            ));
            return checks;
        }
        Ok(answer) => answer
            .body
            .get("data")
            .and_then(Value::as_array)
            .map(|models| {
                models
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    };
    checks.push(Check::ok(
        SERVER,
        format!("{url} answers ({} model(s) listed)", models.len()),
    ));
    checks.push(model_check(host, &models, hermes));
    if hermes && let Some(key) = key {
        checks.push(session_check(&base, &url, key).await);
    }
    checks
}

/// Whether the configured model is one the server lists.
fn model_check(host: &ConfigSection, models: &[String], hermes: bool) -> Check {
    const SUBJECT: &str = "model";
    let var = settings::AGENT_MODEL.env;
    let listed = || {
        let mut shown: Vec<&str> = models.iter().take(10).map(String::as_str).collect();
        if models.len() > shown.len() {
            shown.push("…");
        }
        shown.join(", ")
    };
    match host.text(var) {
        // Hermes Agent answers with its own model whatever the request names.
        None if hermes => Check::ok(SUBJECT, format!("Hermes Agent's own ({})", listed())),
        None => Check::problem(
            SUBJECT,
            format!("HERMES_AGENT=openai needs {var}"),
            format!("set {var} to one of: {}", listed()),
        ),
        Some(model) if models.iter().any(|m| m == model) => {
            Check::ok(SUBJECT, format!("{model} is served"))
        }
        Some(model) => Check::problem(
            SUBJECT,
            format!(
                "{model} ({var}) is not among the models the server lists: {}",
                listed()
            ),
            format!(
                "set {var} to one of them, or make the server serve it (Ollama: `ollama pull {model}`)"
            ),
        ),
    }
}

/// Whether Hermes Agent's API server will accept the session header from this gateway: it
/// must say so in its capabilities, and require an API key (without one of its own it refuses
/// the header with 403).
async fn session_check(base: &str, url: &str, key: &str) -> Check {
    const SUBJECT: &str = "session header";
    let answer = match get(base, "capabilities", Some(key)).await {
        Ok(answer) => answer,
        Err(e) => {
            return Check::problem(
                SUBJECT,
                format!("cannot ask {url} for its capabilities: {e}"),
                "run the doctor again once the server answers",
            );
        }
    };
    let features = &answer.body["features"];
    if !(200..300).contains(&answer.status) || answer.body["platform"] != "hermes-agent" {
        return Check::problem(
            SUBJECT,
            format!(
                "{url} is not Hermes Agent's API server (GET /capabilities answers {})",
                answer.status
            ),
            "HERMES_AGENT=hermes is for Hermes Agent's API server; use HERMES_AGENT=openai for other OpenAI-compatible servers",
        );
    }
    if features["session_continuity_header"] != SESSION_HEADER {
        return Check::problem(
            SUBJECT,
            format!("this Hermes Agent does not keep conversations by {SESSION_HEADER}"),
            "update Hermes Agent (pip install -U hermes-agent)",
        );
    }
    if answer.body["auth"]["required"] != true {
        return Check::problem(
            SUBJECT,
            format!(
                "Hermes Agent's API server has no API key, and refuses {SESSION_HEADER} (403) without one"
            ),
            format!(
                "set API_SERVER_KEY in Hermes Agent's ~/.hermes/.env (16 characters or more), restart it, and put the same key in {}",
                settings::AGENT_API_KEY.env
            ),
        );
    }
    Check::ok(
        SUBJECT,
        format!("Hermes Agent keeps each conversation by {SESSION_HEADER} (the key is accepted)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_must_be_listed_except_for_hermes() {
        let models = vec!["llama3.2".to_string(), "qwen3".to_string()];
        let host = ConfigSection::from_pairs([("HERMES_AGENT_MODEL", "llama3.2")]);
        assert!(!model_check(&host, &models, false).is_problem());
        let host = ConfigSection::from_pairs([("HERMES_AGENT_MODEL", "gpt-5")]);
        let check = model_check(&host, &models, false).to_string();
        assert!(
            check.contains("gpt-5 (HERMES_AGENT_MODEL) is not among the models the server lists: llama3.2, qwen3"),
            "{check}"
        );
        let none = ConfigSection::from_pairs([]);
        assert!(model_check(&none, &models, false).is_problem());
        assert!(!model_check(&none, &models, true).is_problem());
    }

    #[test]
    fn an_openai_error_message_is_shown_shortened() {
        let body = serde_json::json!({"error": {"message": "Incorrect API key provided."}});
        assert_eq!(error_message(&body), ": Incorrect API key provided.");
        assert_eq!(error_message(&Value::Null), "");
    }
}
