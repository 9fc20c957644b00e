//! The host's own settings, and the configuration schema built from every registration.
use hermes_config::{Schema, SchemaSection};
use platform_api::{Setting, SettingKind, registrations};

/// The agent backends `HERMES_AGENT` names.
pub const AGENT_BACKENDS: &[&str] = &["echo", "openai", "hermes", "command"];
/// `HERMES_AGENT`.
pub const AGENT: Setting = Setting::new(
    "HERMES_AGENT",
    "agent.backend",
    "Agent backend: echo (built in), openai (OpenAI-compatible server), hermes (Hermes Agent's API server) or command",
)
.default("echo")
.kind(SettingKind::Choice(AGENT_BACKENDS));
/// `HERMES_AGENT_URL`.
pub const AGENT_URL: Setting = Setting::new(
    "HERMES_AGENT_URL",
    "agent.url",
    "For openai and hermes: base URL ending in /v1, e.g. http://127.0.0.1:11434/v1 (Hermes Agent: http://127.0.0.1:8642/v1)",
)
.kind(SettingKind::Url);
/// `HERMES_AGENT_MODEL`.
pub const AGENT_MODEL: Setting = Setting::new(
    "HERMES_AGENT_MODEL",
    "agent.model",
    "For openai: model name; for hermes: a model_routes alias of Hermes Agent (default hermes-agent, its own model)",
);
/// `HERMES_AGENT_API_KEY`.
pub const AGENT_API_KEY: Setting = Setting::new(
    "HERMES_AGENT_API_KEY",
    "agent.api_key",
    "For openai: bearer key (optional for local servers); for hermes: Hermes Agent's API_SERVER_KEY (required)",
)
.secret();
/// `HERMES_AGENT_COMMAND`.
pub const AGENT_COMMAND: Setting = Setting::new(
    "HERMES_AGENT_COMMAND",
    "agent.command",
    "For command: program run per turn (via sh -c), conversation as JSON on stdin, reply on stdout",
);
/// `HERMES_SYSTEM_PROMPT`.
pub const SYSTEM_PROMPT: Setting = Setting::new(
    "HERMES_SYSTEM_PROMPT",
    "agent.system_prompt",
    "Who the agent is (its persona), as text; first of HERMES_SYSTEM_PROMPT, HERMES_SYSTEM_PROMPT_FILE and HERMES_HOME/SOUL.md",
);
/// `HERMES_SYSTEM_PROMPT_FILE`.
pub const SYSTEM_PROMPT_FILE: Setting = Setting::new(
    "HERMES_SYSTEM_PROMPT_FILE",
    "agent.system_prompt_file",
    "File holding the persona (relative: in HERMES_HOME), read again when it changes; must exist when set",
);
/// `HERMES_AGENT_TIMEOUT_SECS`.
pub const AGENT_TIMEOUT_SECS: Setting = Setting::new(
    "HERMES_AGENT_TIMEOUT_SECS",
    "agent.timeout_secs",
    "Longest an agent turn may take, in seconds",
)
.default("120")
.kind(SettingKind::Number);
/// `HERMES_MAX_CONCURRENT_TURNS`.
pub const MAX_CONCURRENT_TURNS: Setting = Setting::new(
    "HERMES_MAX_CONCURRENT_TURNS",
    "gateway.max_concurrent_turns",
    "Agent turns running at once across conversations",
)
.default("8")
.kind(SettingKind::Number);
/// `HERMES_MIN_FREE_DISK_MB`.
pub const MIN_FREE_DISK_MB: Setting = Setting::new(
    "HERMES_MIN_FREE_DISK_MB",
    "gateway.min_free_disk_mb",
    "Free space (MB) kept on HERMES_HOME's file system: below it webhooks are answered 503 instead of filling the disk (0 turns the check off); a backlog never refuses a message",
)
.default("100")
.kind(SettingKind::Number);
/// `HERMES_DATABASE_URL`.
pub const DATABASE_URL: Setting = Setting::new(
    "HERMES_DATABASE_URL",
    "gateway.database_url",
    "PostgreSQL URL (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full&sslrootcert=CA.pem) shared by several gateways; sslmode and sslrootcert as psql takes them; unset keeps state in HERMES_HOME (SQLite)",
)
.secret()
.kind(SettingKind::DatabaseUrl);
/// `HERMES_MAX_OUTBOX`.
pub const MAX_OUTBOX: Setting = Setting::new(
    "HERMES_MAX_OUTBOX",
    "gateway.max_outbox",
    "Outgoing parts waiting to be sent past which no new agent turn starts",
)
.default("5000")
.kind(SettingKind::Number);
/// `HERMES_TIMEZONE`.
pub const TIMEZONE: Setting = Setting::new(
    "HERMES_TIMEZONE",
    "gateway.timezone",
    "IANA time zone for cron schedules and the date and time the agent is told, default the local zone",
);
/// `HERMES_LOG_FORMAT`.
pub const LOG_FORMAT: Setting = Setting::new(
    "HERMES_LOG_FORMAT",
    "gateway.log_format",
    "Log format: text or json (RUST_LOG filters)",
)
.default("text")
.kind(SettingKind::Choice(&["text", "json"]));

/// The host's settings.
pub const HOST_SETTINGS: &[Setting] = &[
    AGENT,
    AGENT_URL,
    AGENT_MODEL,
    AGENT_API_KEY,
    AGENT_COMMAND,
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_FILE,
    AGENT_TIMEOUT_SECS,
    MAX_CONCURRENT_TURNS,
    MIN_FREE_DISK_MB,
    DATABASE_URL,
    MAX_OUTBOX,
    TIMEZONE,
    LOG_FORMAT,
];

/// Name of the host's section in the configuration.
pub const HOST: &str = "gateway";

/// The configuration schema: the host's settings and every registered platform's.
pub fn schema() -> Schema {
    let mut schema = vec![SchemaSection {
        name: HOST.to_string(),
        table: String::new(),
        settings: HOST_SETTINGS,
    }];
    for registration in registrations() {
        schema.push(SchemaSection {
            name: registration.name.to_string(),
            table: format!("platforms.{}", registration.name),
            settings: registration.settings,
        });
    }
    schema
}
