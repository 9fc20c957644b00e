//! Unified configuration: built-in defaults → `$HERMES_HOME/config.toml` → `$HERMES_HOME/.env`
//! → process environment, later wins.
//!
//! The loader knows no platform: it is given a [`Schema`] (each platform's settings from its
//! registration, plus the host's own) and maps each variable to its key in `config.toml`
//! (`SMS_WEBHOOK_PORT` ↔ `[platforms.sms] webhook_port`). Values stay text until the platform
//! parses them, so `+15551234567` keeps its plus and a token `12345` stays a string; every value
//! remembers where it came from so that errors can name the variable and its source.
mod dotenv;
mod load;

pub use dotenv::{read_env_file, set_env_vars};
pub use load::{Config, Schema, SchemaSection, default_home};
