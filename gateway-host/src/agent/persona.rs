//! Who the agent is: the system message of every turn.
use std::path::Path;

use platform_api::ConfigSection;

/// The system message of a turn, and the platform's hint alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// Persona, platform hint, date and time.
    pub system: String,
    /// The platform's hint, if it has one.
    pub hint: Option<String>,
}

/// The operator's persona for the agent.
pub struct Persona {}

impl Persona {
    /// The persona configured in `section` for the home at `home`.
    pub fn from_config(_section: &ConfigSection, _home: &Path) -> anyhow::Result<Persona> {
        Ok(Persona {})
    }

    /// The prompt of a turn on the platform called `label` as people know it.
    pub fn prompt(&self, _platform: &str, label: &str) -> Prompt {
        let system = format!(
            "You are a helpful assistant answering people who write to you through {label}. \
             Your reply is delivered as a text message: write plain text without Markdown tables or \
             headings, keep it short and to the point, and use lists only when they help."
        );
        Prompt { system, hint: None }
    }
}
