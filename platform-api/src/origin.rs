//! Where a configuration value came from: shared by the resolved values ([`crate::ConfigValue`])
//! and the errors about them ([`crate::ConfigError`]).
use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default of the setting.
    Default,
    /// `$HERMES_HOME/config.toml`, at the given path and key.
    ConfigFile {
        /// Path of the file.
        path: PathBuf,
        /// Dotted key inside it (`platforms.sms.webhook_port`).
        key: String,
    },
    /// `$HERMES_HOME/.env`, at the given path.
    DotEnv(PathBuf),
    /// The process environment.
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "built-in default"),
            Origin::ConfigFile { path, key } => write!(f, "{} key `{key}`", path.display()),
            Origin::DotEnv(path) => write!(f, "{}", path.display()),
            Origin::Environment => write!(f, "environment"),
        }
    }
}
