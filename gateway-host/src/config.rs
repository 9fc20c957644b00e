//! Loading the configuration of `$HERMES_HOME`: shared by the command line and the commands
//! that read it themselves (`setup`, `doctor`, `pairing`).
use hermes_config::{Config, default_home};

use crate::settings;

/// Loads the configuration of `$HERMES_HOME` with the process environment.
pub fn load_config() -> anyhow::Result<Config> {
    let home = default_home();
    Config::load(&home, &settings::schema(), std::env::vars()).map_err(|e| anyhow::anyhow!("{e}"))
}
