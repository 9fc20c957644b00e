use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::error::ConfigError;
use crate::origin::Origin;
use crate::phone;
use crate::settings::Setting;

/// One resolved setting: its text and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The value as text, exactly as written (numbers are never guessed).
    pub text: String,
    /// The source that won.
    pub origin: Origin,
    /// Whether the value is a secret (never printed, also not by `Debug`, which also hides the
    /// password of a URL).
    pub secret: bool,
}

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A non-secret value may still be a URL with a password in it.
        let text = if self.secret {
            "<redacted>".to_string()
        } else {
            crate::redact::redact_url(&self.text)
        };
        f.debug_struct("ConfigValue")
            .field("text", &text)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The resolved settings of one platform (or of the host), keyed by variable name.
///
/// Accessors parse on demand and return a [`ConfigError`] naming the variable and its source.
#[derive(Clone, Debug, Default)]
pub struct ConfigSection {
    values: BTreeMap<String, ConfigValue>,
}

impl ConfigSection {
    /// A section from resolved values (the configuration loader builds these).
    pub fn new(values: BTreeMap<String, ConfigValue>) -> Self {
        ConfigSection { values }
    }

    /// A section from plain `(variable, value)` pairs, all taken as set in the environment.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values = pairs
            .into_iter()
            .map(|(k, v)| {
                let value = ConfigValue {
                    text: v.to_string(),
                    origin: Origin::Environment,
                    secret: false,
                };
                (k.to_string(), value)
            })
            .collect();
        ConfigSection { values }
    }

    /// The value of a variable with its origin; empty values count as unset.
    pub fn get(&self, var: &str) -> Option<&ConfigValue> {
        self.values.get(var).filter(|v| !v.text.trim().is_empty())
    }

    /// The value of a variable with its origin, also when it is set to empty (which a few
    /// settings give a meaning: `<P>_PROMPT_HINT=` removes the platform's hint).
    pub fn raw(&self, var: &str) -> Option<&ConfigValue> {
        self.values.get(var)
    }

    /// The trimmed text of a variable, if set.
    pub fn text(&self, var: &str) -> Option<&str> {
        self.get(var).map(|v| v.text.trim())
    }

    /// Every resolved value, by variable name.
    pub fn values(&self) -> impl Iterator<Item = (&str, &ConfigValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn invalid(&self, var: &str, problem: String) -> ConfigError {
        ConfigError::new(var, self.get(var).map(|v| v.origin.clone()), problem)
    }

    /// The text of a required variable, or an error saying it is missing.
    pub fn required(&self, setting: &Setting) -> Result<&str, ConfigError> {
        self.text(setting.env).ok_or_else(|| {
            ConfigError::new(
                setting.env,
                None,
                format!("is required but not set ({})", setting.help),
            )
        })
    }

    /// A boolean (`true/false`, `yes/no`, `1/0`, `on/off`), or `None` when unset.
    pub fn bool(&self, var: &str) -> Result<Option<bool>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(Some(true)),
            "false" | "no" | "0" | "off" => Ok(Some(false)),
            _ => Err(self.invalid(var, format!("expected true or false, got {text:?}"))),
        }
    }

    /// Whether a platform is enabled by the convention of its `enabled` function: its switch
    /// (`<NAME>_ENABLED`) when set, otherwise whether `credential` is set; the reason when it
    /// is not (`WEBHOOK_ENABLED=false`, `WEBHOOK_SECRET not set`).
    pub fn enabled_by(&self, switch: &str, credential: &str) -> Result<(), String> {
        match self.bool(switch) {
            Err(e) => Err(e.to_string()),
            Ok(Some(false)) => Err(format!("{switch}=false")),
            Ok(Some(true)) => Ok(()),
            Ok(None) if self.text(credential).is_some() => Ok(()),
            Ok(None) => Err(format!("{credential} not set")),
        }
    }

    /// A TCP port, or `None` when unset.
    pub fn port(&self, var: &str) -> Result<Option<u16>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        text.parse::<u16>()
            .map(Some)
            .map_err(|_| self.invalid(var, format!("expected a port number 0-65535, got {text:?}")))
    }

    /// A non-negative integer, or `None` when unset.
    pub fn number(&self, var: &str) -> Result<Option<u64>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        text.parse::<u64>()
            .map(Some)
            .map_err(|_| self.invalid(var, format!("expected a whole number, got {text:?}")))
    }

    /// A positive decimal number, or `None` when unset.
    pub fn positive(&self, var: &str) -> Result<Option<f64>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        match text.parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => Ok(Some(v)),
            _ => Err(self.invalid(var, format!("expected a positive number, got {text:?}"))),
        }
    }

    /// An IP address to bind, or `None` when unset.
    pub fn ip(&self, var: &str) -> Result<Option<IpAddr>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        text.parse::<IpAddr>().map(Some).map_err(|_| {
            self.invalid(
                var,
                format!("expected an IP address such as 0.0.0.0, got {text:?}"),
            )
        })
    }

    /// An absolute `http(s)://` URL, or `None` when unset.
    pub fn url(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        crate::settings::check_url(text)
            .map(|()| Some(text.to_string()))
            .map_err(|problem| self.invalid(var, problem))
    }

    /// A `postgres://` or `postgresql://` URL, or `None` when unset; an error never shows the
    /// value (it holds a password).
    pub fn database_url(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        crate::settings::check_database_url(text)
            .map(|()| Some(text.to_string()))
            .map_err(|problem| self.invalid(var, problem))
    }

    /// A phone number normalised to E.164, or `None` when unset.
    pub fn phone(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        phone::normalize(text)
            .map(Some)
            .map_err(|problem| self.invalid(var, problem))
    }

    /// A comma-separated list (spaces around items ignored, empty items dropped).
    pub fn list(&self, var: &str) -> Vec<String> {
        self.text(var)
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A comma-separated list of phone numbers, each normalised to E.164.
    pub fn phone_list(&self, var: &str) -> Result<Vec<String>, ConfigError> {
        self.list(var)
            .iter()
            .map(|item| phone::normalize(item).map_err(|problem| self.invalid(var, problem)))
            .collect()
    }

    /// One of a fixed set of words (case-insensitive), or `None` when unset.
    pub fn choice(&self, var: &str, choices: &[&str]) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(var) else {
            return Ok(None);
        };
        let lower = text.to_ascii_lowercase();
        if choices.contains(&lower.as_str()) {
            Ok(Some(lower))
        } else {
            Err(self.invalid(
                var,
                format!("expected one of {}, got {text:?}", choices.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_by_the_switch_when_set_else_by_the_credential() {
        let on = |pairs: &[(&str, &str)]| {
            ConfigSection::from_pairs(pairs.iter().copied()).enabled_by("X_ENABLED", "X_TOKEN")
        };
        assert_eq!(on(&[("X_TOKEN", "t")]), Ok(()));
        assert_eq!(on(&[]), Err("X_TOKEN not set".to_string()));
        assert_eq!(on(&[("X_ENABLED", "true")]), Ok(()));
        assert_eq!(
            on(&[("X_ENABLED", "off"), ("X_TOKEN", "t")]),
            Err("X_ENABLED=false".to_string())
        );
        assert!(
            on(&[("X_ENABLED", "maybe")])
                .unwrap_err()
                .contains("X_ENABLED")
        );
    }

    #[test]
    fn accessors_name_the_variable_and_origin() {
        let section = ConfigSection::from_pairs([
            ("P", "80a"),
            ("B", "maybe"),
            ("L", " +1 555 123 4567 , +44 20 7946 0958,"),
        ]);
        let err = section.port("P").unwrap_err();
        assert_eq!(err.var, "P");
        assert_eq!(err.origin, Some(Origin::Environment));
        assert!(
            err.to_string()
                .starts_with("P (from environment): expected a port")
        );
        assert!(section.bool("B").is_err());
        assert_eq!(
            section.phone_list("L").unwrap(),
            vec!["+15551234567", "+442079460958"]
        );
        assert_eq!(section.port("missing").unwrap(), None);
    }

    #[test]
    fn secret_values_are_not_in_debug() {
        let value = ConfigValue {
            text: "hunter2".into(),
            origin: Origin::Environment,
            secret: true,
        };
        assert!(!format!("{value:?}").contains("hunter2"));
        let url = ConfigValue {
            text: "https://hermes:hunter2@bot.example.com/webhooks/twilio".into(),
            secret: false,
            ..value
        };
        assert!(format!("{url:?}").contains("hermes:***@bot.example.com"));
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
