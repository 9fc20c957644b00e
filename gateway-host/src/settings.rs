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
/// `HERMES_PUBLIC_URL`.
pub const PUBLIC_URL: Setting = Setting::new(
    "HERMES_PUBLIC_URL",
    "gateway.public_url",
    "Public origin of this gateway's listener (https://host[:port]), where providers fetch the files replies send (/media/<token>); SMS uses the origin of SMS_WEBHOOK_URL first",
)
.kind(SettingKind::Url);
/// `HERMES_MEDIA_MAX_MB`.
pub const MEDIA_MAX_MB: Setting = Setting::new(
    "HERMES_MEDIA_MAX_MB",
    "media.max_mb",
    "Largest file (MB) fetched or sent: an inbound attachment, a MEDIA: file or a Markdown image",
)
.default("20")
.kind(SettingKind::Number);
/// `HERMES_MEDIA_RETENTION_DAYS`.
pub const MEDIA_RETENTION_DAYS: Setting = Setting::new(
    "HERMES_MEDIA_RETENTION_DAYS",
    "media.retention_days",
    "Days files are kept in the store, then deleted",
)
.default("7")
.kind(SettingKind::Number);
/// `HERMES_MEDIA_URL_TTL_SECS`.
pub const MEDIA_URL_TTL_SECS: Setting = Setting::new(
    "HERMES_MEDIA_URL_TTL_SECS",
    "media.url_ttl_secs",
    "Seconds a reply file's public URL (/media/<token>) serves it; then 404",
)
.default("86400")
.kind(SettingKind::Number);
/// `HERMES_MEDIA_DIRS`.
pub const MEDIA_DIRS: Setting = Setting::new(
    "HERMES_MEDIA_DIRS",
    "media.dirs",
    "Directories (comma-separated) whose files a reply may send with MEDIA:<absolute path>; default HERMES_HOME/media",
)
.kind(SettingKind::List);
/// `HERMES_MEDIA_ALLOW_PRIVATE`.
pub const MEDIA_ALLOW_PRIVATE: Setting = Setting::new(
    "HERMES_MEDIA_ALLOW_PRIVATE",
    "media.allow_private",
    "Let Markdown images in replies be fetched from private, loopback and link-local addresses",
)
.default("false")
.kind(SettingKind::Bool);
/// `HERMES_AGENT_VISION`.
pub const AGENT_VISION: Setting = Setting::new(
    "HERMES_AGENT_VISION",
    "agent.vision",
    "Send inbound images to the agent as image content parts (the model must accept images); otherwise it gets a line naming each",
)
.default("false")
.kind(SettingKind::Bool);
/// `HERMES_STT_URL`.
pub const STT_URL: Setting = Setting::new(
    "HERMES_STT_URL",
    "stt.url",
    "OpenAI-compatible speech-to-text server ending in /v1 (POST /audio/transcriptions): voice notes and audio reach the agent as text",
)
.kind(SettingKind::Url);
/// `HERMES_STT_MODEL`.
pub const STT_MODEL: Setting = Setting::new(
    "HERMES_STT_MODEL",
    "stt.model",
    "Transcription model the server knows",
)
.default("whisper-1");
/// `HERMES_STT_API_KEY`.
pub const STT_API_KEY: Setting = Setting::new(
    "HERMES_STT_API_KEY",
    "stt.api_key",
    "Bearer key of the transcription server (optional for local servers)",
)
.secret();

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
    PUBLIC_URL,
    MEDIA_MAX_MB,
    MEDIA_RETENTION_DAYS,
    MEDIA_URL_TTL_SECS,
    MEDIA_DIRS,
    MEDIA_ALLOW_PRIVATE,
    AGENT_VISION,
    STT_URL,
    STT_MODEL,
    STT_API_KEY,
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
