//! The agent's part of `hermes gateway setup`: who the agent is (written to
//! `$HERMES_HOME/SOUL.md`, or an existing one kept) and which backend answers, with the URL,
//! model, API key or program each needs.
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Context;
use hermes_config::Config;
use inquire::validator::Validation;
use inquire::{Confirm, Select, Text};
use platform_api::{ConfigSection, Setting};

use super::{Extra, ask_checked};
use crate::agent::persona::SOUL_FILE;
use crate::settings::{
    AGENT, AGENT_API_KEY, AGENT_COMMAND, AGENT_MODEL, AGENT_URL, HOST, HOST_SETTINGS,
    SYSTEM_PROMPT, SYSTEM_PROMPT_FILE,
};

/// The agent's settings, those under `[agent]` in `config.toml`: a scripted setup takes them
/// with `--set`.
pub static SETTINGS: LazyLock<Vec<Setting>> = LazyLock::new(|| {
    HOST_SETTINGS
        .iter()
        .filter(|s| s.key.starts_with("agent."))
        .copied()
        .collect()
});

/// `HERMES_AGENT_URL` as the `hermes` backend needs it: Hermes Agent's base URL, ending in `/v1`.
static HERMES_URL: Setting = AGENT_URL.default("http://127.0.0.1:8642/v1");
/// `HERMES_AGENT_API_KEY` as the `hermes` backend needs it: required.
static HERMES_KEY: Setting = AGENT_API_KEY.required();
/// `HERMES_AGENT_URL` for an OpenAI-compatible server, Ollama's by default.
static OPENAI_URL: Setting = AGENT_URL.default("http://127.0.0.1:11434/v1");
/// `HERMES_AGENT_MODEL`, required by `openai`.
static OPENAI_MODEL: Setting = AGENT_MODEL.required();
/// `HERMES_AGENT_COMMAND`, required by `command`.
static COMMAND: Setting = AGENT_COMMAND.required();

/// What the agent's questions decided.
#[derive(Debug, Default)]
pub struct Answers {
    /// Settings to write to `.env`.
    pub values: Vec<(&'static str, String)>,
    /// A new persona to write to `SOUL.md`.
    pub soul: Option<String>,
}

/// A backend on the menu.
struct Backend(&'static str, &'static str);

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

const BACKENDS: &[Backend] = &[
    Backend(
        "echo",
        "built in, answers with what it was sent (to try the gateway)",
    ),
    Backend(
        "openai",
        "an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LiteLLM, OpenRouter, OpenAI)",
    ),
    Backend(
        "hermes",
        "Hermes Agent's API server (its own SOUL.md, tools and memory)",
    ),
    Backend(
        "command",
        "a program run per turn (the conversation as JSON on stdin, the reply on stdout)",
    ),
];

/// Whether `value` is a base URL ending in `/v1`, as Hermes Agent's API server has it.
pub fn check_hermes_url(value: &str) -> Result<(), String> {
    AGENT_URL.validate(value)?;
    if value.trim().trim_end_matches('/').ends_with("/v1") {
        Ok(())
    } else {
        Err(format!(
            "Hermes Agent's API server is reached at its base URL ending in /v1, such as http://127.0.0.1:8642/v1 (got {value:?})"
        ))
    }
}

/// What a scripted setup's agent values lack: `hermes` needs its URL ending in `/v1` and an API
/// key, `openai` a URL and a model, `command` the program (given now or already configured).
pub fn scripted_problems(
    values: &[(&'static str, String)],
    current: &ConfigSection,
) -> Vec<String> {
    let value = |var: &str| {
        values
            .iter()
            .find(|(k, _)| *k == var)
            .map(|(_, v)| v.as_str())
            .or_else(|| current.text(var))
    };
    let Some(backend) = values.iter().find(|(k, _)| *k == AGENT.env).map(|(_, v)| v) else {
        return Vec::new();
    };
    let needs: &[&Setting] = match backend.as_str() {
        "hermes" => &[&AGENT_URL, &AGENT_API_KEY],
        "openai" => &[&AGENT_URL, &AGENT_MODEL],
        "command" => &[&AGENT_COMMAND],
        _ => &[],
    };
    let mut problems: Vec<String> = needs
        .iter()
        .filter(|s| value(s.env).is_none())
        .map(|s| format!("HERMES_AGENT={backend} needs {} ({})", s.env, s.help))
        .collect();
    if backend == "hermes"
        && let Some(url) = value(AGENT_URL.env)
        && let Err(problem) = check_hermes_url(url)
    {
        problems.push(format!("{}: {problem}", AGENT_URL.env));
    }
    problems
}

/// Asks who the agent is and which backend answers.
pub fn interview(config: &Config) -> anyhow::Result<Answers> {
    let host = config.section(HOST);
    let mut answers = Answers::default();
    eprintln!("\nThe agent: who it is, and which model answers.");
    answers.soul = ask_persona(&host, &config.home().join(SOUL_FILE))?;
    let current = host
        .text(AGENT.env)
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| "echo".to_string());
    let start = BACKENDS.iter().position(|b| b.0 == current).unwrap_or(0);
    let backend = Select::new("Which agent answers?", BACKENDS.iter().collect())
        .with_starting_cursor(start)
        .with_help_message(AGENT.help)
        .prompt()?
        .0;
    if backend != current || host.get(AGENT.env).is_some_and(|v| unsaved(&v.origin)) {
        answers.values.push((AGENT.env, backend.to_string()));
    }
    let questions: &[(&'static Setting, Extra)] = match backend {
        "openai" => &[
            (&OPENAI_URL, None),
            (&OPENAI_MODEL, None),
            (&AGENT_API_KEY, None),
        ],
        "hermes" => &[(&HERMES_URL, Some(check_hermes_url)), (&HERMES_KEY, None)],
        "command" => &[(&COMMAND, None)],
        _ => &[],
    };
    if backend == "hermes" {
        eprintln!(
            "\nHermes Agent's API server: API_SERVER_ENABLED=true and API_SERVER_KEY (16 characters or more) in its ~/.hermes/.env; the same key goes here. It keeps each conversation and uses its own SOUL.md, so the persona above is not sent to it."
        );
    }
    for (setting, extra) in questions {
        let current = host.get(setting.env);
        let answer = ask_checked(setting, current, None, *extra)?;
        // The suggested URL is no default of the gateway's: taken, it is written.
        let suggested = || {
            setting
                .default
                .filter(|_| current.is_none())
                .map(str::to_string)
        };
        if let Some(value) = answer.or_else(suggested) {
            answers.values.push((setting.env, value));
        }
    }
    Ok(answers)
}

/// A value only in the environment is not persisted yet: keeping it means writing it.
fn unsaved(origin: &platform_api::Origin) -> bool {
    *origin == platform_api::Origin::Environment
}

/// Asks for the persona; `Some` is a new one for `SOUL.md`.
fn ask_persona(host: &ConfigSection, soul: &Path) -> anyhow::Result<Option<String>> {
    for setting in [&SYSTEM_PROMPT, &SYSTEM_PROMPT_FILE] {
        if let Some(value) = host.get(setting.env) {
            eprintln!(
                "The persona comes from {} (from {}), which comes before {SOUL_FILE}; change it there.",
                setting.env, value.origin
            );
            return Ok(None);
        }
    }
    let existing = std::fs::read_to_string(soul)
        .ok()
        .filter(|t| !t.trim().is_empty());
    if let Some(text) = existing {
        let first: String = text
            .trim()
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(70)
            .collect();
        let keep = Confirm::new(&format!("Keep the persona in {}?", soul.display()))
            .with_default(true)
            .with_help_message(&format!("It begins: {first}"))
            .prompt()?;
        if keep {
            return Ok(None);
        }
    }
    let typed = Text::new("Who is the agent?")
        .with_help_message(&format!(
            "One or two sentences, e.g. \"You are Ada, the assistant of Rosa's flower shop; you answer questions about opening hours and orders.\" Written to {}; Enter keeps {}",
            soul.display(),
            if soul.exists() { "the file as it is" } else { "the built-in default" }
        ))
        .with_validator(|input: &str| {
            Ok(if input.len() > 16 * 1024 {
                Validation::Invalid("keep it under 16 KB; longer instructions belong in a file (HERMES_SYSTEM_PROMPT_FILE)".into())
            } else {
                Validation::Valid
            })
        })
        .prompt()?;
    Ok(Some(typed.trim().to_string()).filter(|t| !t.is_empty()))
}

/// Writes a new persona to `SOUL.md` in `home`; returns its path.
pub fn write_soul(home: &Path, persona: &str) -> anyhow::Result<PathBuf> {
    let path = home.join(SOUL_FILE);
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    std::fs::write(&path, format!("{persona}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermes_needs_a_v1_url_and_a_key() {
        assert!(check_hermes_url("http://127.0.0.1:8642/v1").is_ok());
        assert!(check_hermes_url("http://127.0.0.1:8642/v1/").is_ok());
        let err = check_hermes_url("http://127.0.0.1:8642").unwrap_err();
        assert!(err.contains("ending in /v1"), "{err}");
        assert!(check_hermes_url("127.0.0.1:8642/v1").is_err());

        let none = ConfigSection::default();
        let hermes = [(AGENT.env, "hermes".to_string())];
        let problems = scripted_problems(&hermes, &none);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].starts_with("HERMES_AGENT=hermes needs HERMES_AGENT_API_KEY"));
        let current = ConfigSection::from_pairs([
            ("HERMES_AGENT_URL", "http://hermes.internal:8642"),
            ("HERMES_AGENT_API_KEY", "k"),
        ]);
        let problems = scripted_problems(&hermes, &current);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("ending in /v1"), "{problems:?}");
        // Without HERMES_AGENT given, nothing is asked of the rest.
        assert!(scripted_problems(&[], &none).is_empty());
    }
}
