//! The prompt hint: what a platform tells the agent about writing for it (plain and brief for
//! SMS, Markdown for Telegram), given after the operator's persona in every turn's system
//! message.
//!
//! A platform declares it with [`prompt_hint!`](crate::prompt_hint), lists it among its
//! settings and names it in its [`Registration`](crate::Registration); the operator replaces the
//! built-in text with `<P>_PROMPT_HINT`, or removes it by setting that to empty:
//!
//! ```
//! use platform_api::{ConfigSection, Setting, prompt_hint};
//!
//! const HINT: Setting = prompt_hint!("PAGER", "Pagers show 160 characters: one short line.");
//!
//! assert_eq!(HINT.env, "PAGER_PROMPT_HINT");
//! let built_in = ConfigSection::from_pairs([]);
//! assert_eq!(platform_api::prompt::hint(&HINT, &built_in).as_deref(), HINT.default);
//! let replaced = ConfigSection::from_pairs([("PAGER_PROMPT_HINT", "Answer in haiku.")]);
//! assert_eq!(platform_api::prompt::hint(&HINT, &replaced).as_deref(), Some("Answer in haiku."));
//! let removed = ConfigSection::from_pairs([("PAGER_PROMPT_HINT", "")]);
//! assert_eq!(platform_api::prompt::hint(&HINT, &removed), None);
//! ```
use crate::config::ConfigSection;
use crate::settings::Setting;

/// Declares a platform's prompt hint setting, `<P>_PROMPT_HINT`, whose default is the
/// built-in hint.
///
/// `prompt_hint!("SMS", "Write plain text …")` names the variable `SMS_PROMPT_HINT` and the
/// `config.toml` key `prompt_hint`.
#[macro_export]
macro_rules! prompt_hint {
    ($prefix:literal, $hint:literal) => {
        $crate::Setting::new(
            concat!($prefix, "_PROMPT_HINT"),
            "prompt_hint",
            "What the agent is told about writing for this platform, after the persona; empty: nothing",
        )
        .default($hint)
    };
}

/// The hint of `setting` under `section`: its value when set (set to empty: no hint), else
/// its built-in default.
pub fn hint(setting: &Setting, section: &ConfigSection) -> Option<String> {
    let text = match section.raw(setting.env) {
        Some(value) => value.text.trim(),
        None => setting.default.unwrap_or_default().trim(),
    };
    (!text.is_empty()).then(|| text.to_string())
}
