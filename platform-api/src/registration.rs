use std::sync::Arc;

use crate::config::ConfigSection;
use crate::error::ConfigError;
use crate::media::{Formatted, PartMedia};
use crate::message::Part;
use crate::platform::Platform;
use crate::settings::Setting;

/// A platform adapter's entry in the registry, submitted with [`inventory::submit!`].
pub struct Registration {
    /// Short name used in targets and commands (`sms`).
    pub name: &'static str,
    /// Human label (`SMS (Twilio)`).
    pub label: &'static str,
    /// Whether the adapter is a stub that cannot deliver yet.
    pub stub: bool,
    /// The settings it reads: they drive the config mapping, `hermes platforms` and the wizard.
    pub settings: &'static [Setting],
    /// The setting that holds its home channel, written by `/sethome`.
    pub home_channel_setting: Option<&'static str>,
    /// The setting holding what the agent is told about writing for this platform, declared
    /// with [`prompt_hint!`](crate::prompt_hint) and also listed in `settings`.
    pub prompt_hint: Option<Setting>,
    /// Whether it is enabled under this configuration; `Err` says why not.
    pub enabled: fn(&ConfigSection) -> Result<(), String>,
    /// Formats agent Markdown as the platform would send it; needs no credentials, so that
    /// `hermes format` can preview any registered platform.
    pub format: fn(&str) -> Vec<Part>,
    /// Formats a reply that comes with files as the platform would send it
    /// ([`Platform::format_media`]), with no credentials either; `None` for a platform that
    /// sends no files.
    pub format_media: Option<fn(&str, Vec<PartMedia>) -> Formatted>,
    /// Normalises a chat id as typed by an operator (`+1 555 123 4567` → `+15551234567`);
    /// needs no credentials, so that commands can name chats without building the platform.
    pub parse_chat: fn(&str) -> Result<String, String>,
    /// Builds the platform from its settings, or says which setting is wrong.
    pub build: fn(&ConfigSection) -> Result<Arc<dyn Platform>, ConfigError>,
}

impl Registration {
    /// The platform's prompt hint under `section`: `<P>_PROMPT_HINT` when set (empty: none),
    /// else the built-in one; `None` for a platform that declares no hint.
    pub fn hint(&self, section: &ConfigSection) -> Option<String> {
        self.prompt_hint
            .as_ref()
            .and_then(|setting| crate::prompt::hint(setting, section))
    }

    /// `markdown` and its files formatted as the platform would send them, without building
    /// it: its [`Registration::format_media`], or, for a platform that sends no files, its text
    /// with each file refused and named.
    pub fn format_with_media(&self, markdown: &str, media: Vec<PartMedia>) -> Formatted {
        match self.format_media {
            Some(format_media) => format_media(markdown, media),
            None => crate::media::without_files(markdown, media, self.name, self.format),
        }
    }
}

inventory::collect!(Registration);

/// Every registered platform, sorted by name.
pub fn registrations() -> Vec<&'static Registration> {
    let mut all: Vec<_> = inventory::iter::<Registration>.into_iter().collect();
    all.sort_by_key(|r| r.name);
    all
}

/// The registration of the named platform.
pub fn registration(name: &str) -> Option<&'static Registration> {
    inventory::iter::<Registration>
        .into_iter()
        .find(|r| r.name == name)
}
