//! [`check_registration`], and the sample configurations the other checks build with.
use std::collections::{BTreeMap, HashMap};

use super::{report, warn};
use crate::config::{ConfigSection, ConfigValue};
use crate::origin::Origin;
use crate::registration::{Registration, registrations};
use crate::settings::{Setting, SettingKind};

/// Words in a variable's name that mean its value is a credential.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "PRIVATE_KEY",
];

/// Checks a registration against the contract of [`Registration`] and [`Setting`].
///
/// Problems: an empty label; a name that is not lowercase ASCII letters, digits, `-` or `_`
/// (it is typed in targets such as `sms:+1555…`); two settings with the same variable or key;
/// a variable another linked platform declares with another kind, default or secrecy (two
/// platforms may share a provider account's variables, read alike); a variable that is not a valid
/// environment variable name; a key that is not lowercase snake case; empty or multi-line help;
/// a credential (its variable contains `TOKEN`, `SECRET`, `PASSWORD`, `API_KEY`, …) not marked
/// secret, or a secret with a built-in default; a default its own kind rejects; a choice that is
/// not lowercase; a home-channel setting that is not one of its settings, or is secret; a
/// prompt hint that is not one of its settings, or is secret or required; an
/// `enabled` that says yes to an empty configuration without a reason, or a `parse_chat` that
/// accepts an empty chat; and a constructor that fails with only the required settings set
/// ([`sample_section`]), or that succeeds when one of them is missing or fails naming another.
///
/// Warnings (stderr): variables not in upper snake case, variables that do not share the
/// prefix most of them have, a required setting with a default.
pub fn check_registration(registration: &Registration) {
    let (problems, warnings) = registration_findings(registration);
    warn("check_registration", registration.name, &warnings);
    report("check_registration", registration.name, &problems);
}

pub(super) fn registration_findings(registration: &Registration) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let name = registration.name;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        problems.push(format!(
            "name {name:?} must be lowercase ASCII letters, digits, `-` or `_` (it is typed in delivery targets and commands)"
        ));
    }
    if registration.label.trim().is_empty() {
        problems.push("label is empty".to_string());
    }
    for setting in registration.settings {
        setting_findings(setting, &mut problems, &mut warnings);
    }
    duplicates(registration, &mut problems);
    prefix_warnings(registration.settings, &mut warnings);
    match registration.home_channel_setting {
        None => {}
        Some(var) => match registration.settings.iter().find(|s| s.env == var) {
            None => problems.push(format!(
                "home_channel_setting {var:?} is not one of its settings"
            )),
            Some(setting) if setting.secret => problems.push(format!(
                "home-channel setting {var} is secret, but `/sethome` writes it and commands show it"
            )),
            Some(_) => {}
        },
    }
    if let Some(hint) = &registration.prompt_hint {
        match registration.settings.iter().find(|s| s.env == hint.env) {
            None => problems.push(format!(
                "prompt_hint {:?} is not one of its settings",
                hint.env
            )),
            Some(setting) if setting != hint => problems.push(format!(
                "prompt_hint {} differs from the setting of that name in its settings",
                hint.env
            )),
            Some(_) if hint.secret || hint.required => problems.push(format!(
                "prompt hint {} is secret or required, but it is text shown to the agent and has a built-in value",
                hint.env
            )),
            Some(_) => {}
        }
    }
    match (registration.enabled)(&ConfigSection::default()) {
        Ok(()) => warnings.push(
            "enabled with an empty configuration: the gateway will start it for every user".into(),
        ),
        Err(why) if why.trim().is_empty() => {
            problems.push("`enabled` says no without saying why (empty reason)".to_string())
        }
        Err(_) => {}
    }
    for blank in ["", "   "] {
        if let Ok(chat) = (registration.parse_chat)(blank) {
            problems.push(format!(
                "parse_chat accepts the empty chat {blank:?} (as {chat:?})"
            ));
        }
    }
    build_findings(registration, &mut problems);
    (problems, warnings)
}

fn setting_findings(setting: &Setting, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    let env = setting.env;
    let valid_env = env
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_env {
        problems.push(format!(
            "{env:?} is not a valid environment variable name (ASCII letters, digits and `_`, not starting with a digit)"
        ));
    } else if env.chars().any(|c| c.is_ascii_lowercase()) {
        warnings.push(format!(
            "{env} is not in UPPER_SNAKE_CASE like every other variable"
        ));
    }
    let key = setting.key;
    let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_key {
        problems.push(format!(
            "{env}: config key {key:?} must be lowercase snake case (`webhook_port`)"
        ));
    }
    if setting.help.trim().is_empty() {
        problems.push(format!(
            "{env}: help is empty (the wizard and the README show it)"
        ));
    } else if setting.help.contains('\n') {
        problems.push(format!(
            "{env}: help must be one line (it is a table cell in the README)"
        ));
    }
    let upper = env.to_ascii_uppercase();
    let credential = SECRET_WORDS.iter().find(|w| upper.contains(*w));
    if let Some(word) = credential.filter(|_| !setting.secret) {
        problems.push(format!(
            "{env}: its name says {word}, so it must be marked `.secret()` (hidden in prompts, never logged)"
        ));
    }
    if let Some(default) = setting.default {
        if setting.secret {
            problems.push(format!(
                "{env}: a secret cannot have a built-in default (it would be the same for everyone)"
            ));
        }
        if let Err(why) = setting.validate(default) {
            problems.push(format!(
                "{env}: its default {default:?} fails its own kind: {why}"
            ));
        }
        if setting.required {
            warnings.push(format!(
                "{env} is required but has a default, so it can never be missing"
            ));
        }
    }
    if let SettingKind::Choice(choices) = setting.kind {
        if choices.is_empty() {
            problems.push(format!("{env}: a choice with no words"));
        }
        for choice in choices {
            if *choice != choice.to_ascii_lowercase() {
                problems.push(format!(
                    "{env}: choice {choice:?} must be lowercase (values are compared in lowercase, so it could never match)"
                ));
            }
        }
    }
}

fn duplicates(registration: &Registration, problems: &mut Vec<String>) {
    let mut envs: HashMap<&str, usize> = HashMap::new();
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for setting in registration.settings {
        *envs.entry(setting.env).or_default() += 1;
        *keys.entry(setting.key).or_default() += 1;
    }
    let mut twice: Vec<_> = envs.iter().filter(|(_, n)| **n > 1).collect();
    twice.sort();
    for (env, n) in twice {
        problems.push(format!("{env} is declared {n} times"));
    }
    let mut twice: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
    twice.sort();
    for (key, n) in twice {
        problems.push(format!("config key {key:?} is used by {n} settings"));
    }
    for other in registrations() {
        if other.name == registration.name {
            continue;
        }
        for setting in registration.settings {
            // Two platforms on one provider account read its variables alike (WhatsApp the
            // SMS platform's Twilio account): one value, so one kind, default and secrecy.
            let differs = |s: &&Setting| {
                s.env == setting.env
                    && (s.kind != setting.kind
                        || s.secret != setting.secret
                        || s.default != setting.default)
            };
            if let Some(theirs) = other.settings.iter().find(differs) {
                problems.push(format!(
                    "{} is also a setting of the {} platform, read differently there (kind, default or secrecy): {:?} against {:?}",
                    setting.env, other.name, theirs.kind, setting.kind
                ));
            }
        }
    }
}

/// Warns about variables without the prefix (the part before the first `_`) most share.
fn prefix_warnings(settings: &[Setting], warnings: &mut Vec<String>) {
    let prefix = |s: &Setting| s.env.split('_').next().unwrap_or_default().to_string();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for setting in settings {
        *counts.entry(prefix(setting)).or_default() += 1;
    }
    let Some((common, _)) = counts.iter().max_by_key(|(_, n)| **n) else {
        return;
    };
    for setting in settings.iter().filter(|s| prefix(s) != *common) {
        warnings.push(format!(
            "{} does not start with {common}_ like most of its settings (fine when the provider's name is the clearer prefix)",
            setting.env
        ));
    }
}

fn build_findings(registration: &Registration, problems: &mut Vec<String>) {
    let full = sample_section(registration);
    if let Err(err) = (registration.build)(&full) {
        problems.push(format!(
            "does not build with its required settings set to sample values and the rest at their defaults: {err}; mark what it needs as required, or make the sample valid"
        ));
        return;
    }
    for setting in registration.settings.iter().filter(|s| s.required) {
        let without = without(&full, setting.env);
        match (registration.build)(&without) {
            Ok(_) => problems.push(format!(
                "{} is declared required, but it builds without it",
                setting.env
            )),
            Err(err) if err.var != setting.env => problems.push(format!(
                "without {} the error names {} instead: {err}",
                setting.env, err.var
            )),
            Err(_) => {}
        }
    }
}

fn without(section: &ConfigSection, var: &str) -> ConfigSection {
    ConfigSection::new(
        section
            .values()
            .filter(|(name, _)| *name != var)
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect(),
    )
}

/// A value of `kind` that [`Setting::validate`] accepts, spelled as an operator might type it.
pub fn sample_value(kind: SettingKind) -> String {
    match kind {
        // Long and mixed enough for platforms that insist on strong shared secrets.
        SettingKind::Text => "Sample-0123456789abcdef-0123456789".to_string(),
        SettingKind::Bool => "true".to_string(),
        SettingKind::Port => "8443".to_string(),
        SettingKind::Ip => "127.0.0.1".to_string(),
        SettingKind::Url => "https://hermes.example.com/webhooks/sample".to_string(),
        SettingKind::Phone => "+1 555 000 1234".to_string(),
        SettingKind::PhoneList => "+15550001234, +44 20 7946 0958".to_string(),
        SettingKind::List => "alice, bob".to_string(),
        SettingKind::Number => "30".to_string(),
        SettingKind::Positive => "1.5".to_string(),
        SettingKind::DatabaseUrl => "postgres://hermes@db.example.com/hermes".to_string(),
        SettingKind::Choice(choices) => choices.first().copied().unwrap_or_default().to_string(),
        SettingKind::Sid(prefix) => format!("{prefix}0123456789abcdef0123456789abcdef"),
    }
}

/// The section the host would hand a registration whose operator set only the required
/// settings (to [`sample_value`]s): those, plus every default.
pub fn sample_section(registration: &Registration) -> ConfigSection {
    let mut values = BTreeMap::new();
    for setting in registration.settings {
        let (text, origin) = match (setting.required, setting.default) {
            (true, _) => (sample_value(setting.kind), Origin::Environment),
            (false, Some(default)) => (default.to_string(), Origin::Default),
            (false, None) => continue,
        };
        let value = ConfigValue {
            text,
            origin,
            secret: setting.secret,
        };
        values.insert(setting.env.to_string(), value);
    }
    ConfigSection::new(values)
}

pub(super) fn with(section: &ConfigSection, pairs: &[(&str, &str, bool)]) -> ConfigSection {
    let mut values: BTreeMap<String, ConfigValue> = section
        .values()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    for (var, text, secret) in pairs {
        values.insert(
            var.to_string(),
            ConfigValue {
                text: text.to_string(),
                origin: Origin::Environment,
                secret: *secret,
            },
        );
    }
    ConfigSection::new(values)
}
