//! Who the agent is: the system message of every turn.
//!
//! The persona is the first of `HERMES_SYSTEM_PROMPT` (text), `HERMES_SYSTEM_PROMPT_FILE` (a
//! file) and `$HERMES_HOME/SOUL.md` (Hermes Agent's file) that is set or present, else a
//! built-in default. A file is looked at again every turn (one `stat`) and read again when its
//! modification time or length changed, so an edit takes effect at the next turn without a
//! restart. The system message is the persona, then the platform's hint (its
//! `<P>_PROMPT_HINT`), then the current date and time in `HERMES_TIMEZONE`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hermes_config::Config;
use platform_api::{ConfigError, Origin, registrations};
use tracing::warn;

use crate::settings::{self, HOST};

/// Hermes Agent's persona file, looked for in `$HERMES_HOME`.
pub const SOUL_FILE: &str = "SOUL.md";

/// The system message of a turn, and the platform's hint alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// Persona, platform hint, date and time.
    pub system: String,
    /// The platform's hint, if it has one.
    pub hint: Option<String>,
}

/// Where the persona comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `HERMES_SYSTEM_PROMPT`'s text.
    Text {
        /// The persona.
        text: String,
        /// Where it was set.
        origin: Origin,
    },
    /// The file named by `HERMES_SYSTEM_PROMPT_FILE`.
    File {
        /// The file, relative paths taken from `$HERMES_HOME`.
        path: PathBuf,
        /// Where the variable was set.
        origin: Origin,
    },
    /// `$HERMES_HOME/SOUL.md` when it is there, else the built-in default.
    Soul(PathBuf),
}

/// A persona file as last read.
struct Cached {
    modified: Option<SystemTime>,
    len: u64,
    text: String,
}

/// The operator's persona for the agent, with each platform's hint and the time zone.
pub struct Persona {
    source: Source,
    /// Each registered platform's hint under the configuration, by platform name.
    hints: BTreeMap<String, Option<String>>,
    timezone: Tz,
    /// The file last read, and the last problem reading it (reported once, not every turn).
    cache: Mutex<(Option<Cached>, Option<String>)>,
}

impl Persona {
    /// The persona configured in `config` (its host section and every platform's hint), dates
    /// and times told in `timezone`. A `HERMES_SYSTEM_PROMPT_FILE` that cannot be read is an
    /// error naming it and where it was set.
    pub fn from_config(config: &Config, timezone: Tz) -> Result<Persona, ConfigError> {
        let host = config.section(HOST);
        let source = if let Some(value) = host.get(settings::SYSTEM_PROMPT.env) {
            Source::Text {
                text: value.text.trim().to_string(),
                origin: value.origin.clone(),
            }
        } else if let Some(value) = host.get(settings::SYSTEM_PROMPT_FILE.env) {
            let path = config.home().join(value.text.trim());
            if let Err(e) = std::fs::read_to_string(&path) {
                return Err(ConfigError::new(
                    settings::SYSTEM_PROMPT_FILE.env,
                    Some(value.origin.clone()),
                    format!(
                        "cannot read the persona file {}: {e}; create it, or unset the variable",
                        path.display()
                    ),
                ));
            }
            Source::File {
                path,
                origin: value.origin.clone(),
            }
        } else {
            Source::Soul(config.home().join(SOUL_FILE))
        };
        let hints = registrations()
            .into_iter()
            .map(|r| (r.name.to_string(), r.hint(&config.section(r.name))))
            .collect();
        Ok(Persona {
            source,
            hints,
            timezone,
            cache: Mutex::new((None, None)),
        })
    }

    /// Where the persona comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The prompt of a turn now on the platform named `platform`, called `label` as people
    /// know it.
    pub fn prompt(&self, platform: &str, label: &str) -> Prompt {
        self.prompt_at(platform, label, Utc::now())
    }

    /// The prompt of a turn at `now`.
    pub fn prompt_at(&self, platform: &str, label: &str, now: DateTime<Utc>) -> Prompt {
        let persona = self.persona().unwrap_or_else(|| default_persona(label));
        let hint = self.hints.get(platform).cloned().flatten();
        let mut system = persona;
        if let Some(hint) = &hint {
            system.push_str("\n\n");
            system.push_str(hint);
        }
        system.push_str("\n\n");
        system.push_str(&date_and_time(now.with_timezone(&self.timezone)));
        Prompt { system, hint }
    }

    /// What the persona is now, and from where, as the doctor reports it; `Err` says what is
    /// wrong with it.
    pub fn describe(&self) -> Result<String, String> {
        let var = |name: &str, origin: &Origin| format!("{name} (from {origin})");
        match &self.source {
            Source::Text { text, origin } => Ok(format!(
                "{}, {} characters",
                var(settings::SYSTEM_PROMPT.env, origin),
                text.chars().count()
            )),
            Source::File { path, origin } => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "{}: cannot read {}: {e}",
                        var(settings::SYSTEM_PROMPT_FILE.env, origin),
                        path.display()
                    )
                })?;
                Ok(format!(
                    "{}: {}, {} characters{}",
                    var(settings::SYSTEM_PROMPT_FILE.env, origin),
                    path.display(),
                    text.trim().chars().count(),
                    if text.trim().is_empty() {
                        " (empty: the built-in default is used)"
                    } else {
                        ""
                    }
                ))
            }
            Source::Soul(path) => match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => Ok(format!(
                    "{}, {} characters",
                    path.display(),
                    text.trim().chars().count()
                )),
                Ok(_) => Ok(format!(
                    "{} is empty: the built-in default is used",
                    path.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!(
                    "the built-in default (none of {}, {} or {} is set or present)",
                    settings::SYSTEM_PROMPT.env,
                    settings::SYSTEM_PROMPT_FILE.env,
                    path.display()
                )),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            },
        }
    }

    /// The operator's persona now, `None` for the built-in default.
    fn persona(&self) -> Option<String> {
        let path = match &self.source {
            Source::Text { text, .. } => return Some(text.clone()),
            Source::File { path, .. } | Source::Soul(path) => path,
        };
        let required = matches!(self.source, Source::File { .. });
        let mut guard = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (cached, reported) = &mut *guard;
        match read_if_changed(path, cached.as_ref()) {
            Ok(Some(fresh)) => {
                *cached = Some(fresh);
                *reported = None;
            }
            Ok(None) => *reported = None,
            // SOUL.md is optional: without it, the default.
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                *cached = None;
                *reported = None;
            }
            Err(e) => {
                let problem = format!("cannot read the persona file {}: {e}", path.display());
                if reported.as_ref() != Some(&problem) {
                    warn!("{problem}; the persona read last is kept");
                    *reported = Some(problem);
                }
            }
        }
        cached
            .as_ref()
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

/// The file at `path` read again when its modification time or length differ from `cached`;
/// `Ok(None)` when they do not.
fn read_if_changed(path: &Path, cached: Option<&Cached>) -> std::io::Result<Option<Cached>> {
    let meta = std::fs::metadata(path)?;
    let (modified, len) = (meta.modified().ok(), meta.len());
    if cached.is_some_and(|c| c.modified == modified && c.len == len) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)?;
    Ok(Some(Cached {
        modified,
        len,
        text,
    }))
}

/// The persona when the operator configured none.
fn default_persona(label: &str) -> String {
    format!(
        "You are a helpful assistant. People write to you through {label}; answer them kindly, \
         briefly and to the point, and say so when you do not know."
    )
}

/// The date and time line of the system message: `Current date and time: Sunday 6 December
/// 2026, 19:32 (Europe/Berlin, UTC+01:00).`
fn date_and_time(now: DateTime<Tz>) -> String {
    format!(
        "Current date and time: {} ({}, UTC{}).",
        now.format("%A %-d %B %Y, %H:%M"),
        now.timezone().name(),
        now.format("%:z")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn load(home: &Path, env: &[(&str, &str)]) -> Result<Persona, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::load(home, &settings::schema(), env).unwrap();
        Persona::from_config(&config, chrono_tz::Europe::Berlin)
    }

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 11, 5, 0).unwrap()
    }

    #[test]
    fn the_system_message_is_persona_hint_then_time() {
        let home = tempfile::tempdir().unwrap();
        let persona = load(home.path(), &[("HERMES_SYSTEM_PROMPT", " You are Ada. ")]).unwrap();
        let prompt = persona.prompt_at("sms", "SMS (Twilio)", noon());
        let hint = prompt.hint.clone().expect("SMS has a built-in hint");
        assert!(hint.contains("plain text"), "{hint}");
        assert_eq!(
            prompt.system,
            format!(
                "You are Ada.\n\n{hint}\n\nCurrent date and time: Sunday 6 December 2026, 12:05 (Europe/Berlin, UTC+01:00)."
            )
        );
        // A platform nobody registered has no hint.
        let prompt = persona.prompt_at("pager", "Pager", noon());
        assert_eq!(prompt.hint, None);
        assert!(prompt.system.starts_with("You are Ada.\n\nCurrent date"));
    }

    #[test]
    fn the_first_source_set_or_present_wins() {
        let home = tempfile::tempdir().unwrap();
        let soul = home.path().join(SOUL_FILE);
        std::fs::write(home.path().join("persona.md"), "From the file.").unwrap();
        let label = "SMS (Twilio)";
        let persona_of = |env: &[(&str, &str)]| {
            let system = load(home.path(), env)
                .unwrap()
                .prompt_at("sms", label, noon())
                .system;
            system.split("\n\n").next().unwrap().to_string()
        };
        assert_eq!(persona_of(&[]), default_persona(label));
        std::fs::write(&soul, "From SOUL.md.").unwrap();
        assert_eq!(persona_of(&[]), "From SOUL.md.");
        let file = [("HERMES_SYSTEM_PROMPT_FILE", "persona.md")];
        assert_eq!(persona_of(&file), "From the file.");
        let both = [file[0], ("HERMES_SYSTEM_PROMPT", "From the variable.")];
        assert_eq!(persona_of(&both), "From the variable.");
    }

    #[test]
    fn a_file_is_read_again_when_it_changes_and_kept_when_it_goes() {
        let home = tempfile::tempdir().unwrap();
        let soul = home.path().join(SOUL_FILE);
        let persona = load(home.path(), &[]).unwrap();
        let first = |persona: &Persona| {
            let system = persona.prompt_at("sms", "SMS", noon()).system;
            system.split("\n\n").next().unwrap().to_string()
        };
        assert_eq!(first(&persona), default_persona("SMS"));
        std::fs::write(&soul, "You are Bea.").unwrap();
        assert_eq!(first(&persona), "You are Bea.");
        std::fs::write(&soul, "You are Cleo, a florist.").unwrap();
        assert_eq!(first(&persona), "You are Cleo, a florist.");
        // SOUL.md removed: back to the default.
        std::fs::remove_file(&soul).unwrap();
        assert_eq!(first(&persona), default_persona("SMS"));

        let path = home.path().join("persona.md");
        std::fs::write(&path, "You are Dot.").unwrap();
        let persona = load(home.path(), &[("HERMES_SYSTEM_PROMPT_FILE", "persona.md")]).unwrap();
        assert_eq!(first(&persona), "You are Dot.");
        // The configured file gone: the persona read last stays.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(first(&persona), "You are Dot.");
    }

    #[test]
    fn a_missing_persona_file_names_the_variable_and_its_source() {
        let home = tempfile::tempdir().unwrap();
        let err = load(home.path(), &[("HERMES_SYSTEM_PROMPT_FILE", "nope.md")])
            .err()
            .expect("a missing file is an error");
        assert_eq!(err.var, "HERMES_SYSTEM_PROMPT_FILE");
        assert_eq!(err.origin, Some(Origin::Environment));
        assert!(err.to_string().contains("nope.md"), "{err}");
    }

    #[test]
    fn a_hint_is_replaced_or_removed_by_its_variable() {
        let home = tempfile::tempdir().unwrap();
        let hint = |env: &[(&str, &str)]| {
            load(home.path(), env)
                .unwrap()
                .prompt_at("sms", "SMS", noon())
        };
        let replaced = hint(&[("SMS_PROMPT_HINT", "Answer in rhyme.")]);
        assert_eq!(replaced.hint.as_deref(), Some("Answer in rhyme."));
        assert!(replaced.system.contains("\n\nAnswer in rhyme.\n\n"));
        let removed = hint(&[("SMS_PROMPT_HINT", "")]);
        assert_eq!(removed.hint, None);
        assert_eq!(
            removed.system.split("\n\n").count(),
            2,
            "{}",
            removed.system
        );
    }

    #[test]
    fn the_time_is_told_in_the_zone_with_its_offset() {
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 23, 30, 0).unwrap();
        assert_eq!(
            date_and_time(summer.with_timezone(&chrono_tz::America::New_York)),
            "Current date and time: Wednesday 1 July 2026, 19:30 (America/New_York, UTC-04:00)."
        );
    }
}
