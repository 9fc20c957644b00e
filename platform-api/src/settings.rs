/// What kind of value a setting holds: drives validation in the setup wizard and the docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingKind {
    /// Free text.
    Text,
    /// `true` or `false`.
    Bool,
    /// A TCP port.
    Port,
    /// An IP address to bind.
    Ip,
    /// An absolute `http(s)://` URL.
    Url,
    /// One phone number, E.164.
    Phone,
    /// Comma-separated phone numbers.
    PhoneList,
    /// Comma-separated words.
    List,
    /// A whole number.
    Number,
    /// A positive decimal number.
    Positive,
    /// One of the given words.
    Choice(&'static [&'static str]),
    /// A Twilio-style id: the given two-letter prefix and 32 hex digits.
    Sid(&'static str),
    /// A `postgres://` or `postgresql://` connection URL (holds a password: never echoed).
    DatabaseUrl,
}

impl SettingKind {
    /// The kind of one item of a list kind (a phone number of a phone list); other kinds are
    /// their own item.
    pub const fn item_of(kind: SettingKind) -> SettingKind {
        match kind {
            SettingKind::PhoneList => SettingKind::Phone,
            SettingKind::List => SettingKind::Text,
            other => other,
        }
    }
}

/// A setting a platform (or the host) reads from the unified configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The environment / `.env` variable (`SMS_WEBHOOK_PORT`).
    pub env: &'static str,
    /// The key under the platform's table in `config.toml` (`webhook_port`).
    pub key: &'static str,
    /// Whether the platform cannot run without it.
    pub required: bool,
    /// Whether it is a secret: hidden in prompts, never logged or printed.
    pub secret: bool,
    /// The built-in default, if any.
    pub default: Option<&'static str>,
    /// One line saying what it is for.
    pub help: &'static str,
    /// What kind of value it holds.
    pub kind: SettingKind,
}

impl Setting {
    /// An optional text setting; refine it with the builder methods.
    pub const fn new(env: &'static str, key: &'static str, help: &'static str) -> Self {
        Setting {
            env,
            key,
            required: false,
            secret: false,
            default: None,
            help,
            kind: SettingKind::Text,
        }
    }

    /// Marks it required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks it secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Gives it a built-in default.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// Sets the kind of value it holds.
    pub const fn kind(mut self, kind: SettingKind) -> Self {
        self.kind = kind;
        self
    }

    /// Checks a value against the setting's kind, saying what is expected when it does not fit.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        let value = value.trim();
        match self.kind {
            SettingKind::Text => Ok(()),
            SettingKind::Bool => match value.to_ascii_lowercase().as_str() {
                "true" | "false" | "yes" | "no" | "1" | "0" | "on" | "off" => Ok(()),
                _ => Err(format!("expected true or false, got {value:?}")),
            },
            SettingKind::Port => value
                .parse::<u16>()
                .map(|_| ())
                .map_err(|_| format!("expected a port number 0-65535, got {value:?}")),
            SettingKind::Ip => value
                .parse::<std::net::IpAddr>()
                .map(|_| ())
                .map_err(|_| format!("expected an IP address such as 0.0.0.0, got {value:?}")),
            SettingKind::Url => check_url(value),
            SettingKind::Phone => crate::phone::normalize(value).map(|_| ()),
            SettingKind::PhoneList => value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .try_for_each(|n| crate::phone::normalize(n).map(|_| ())),
            SettingKind::List => Ok(()),
            SettingKind::Number => value
                .parse::<u64>()
                .map(|_| ())
                .map_err(|_| format!("expected a whole number, got {value:?}")),
            SettingKind::Positive => match value.parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(()),
                _ => Err(format!("expected a positive number, got {value:?}")),
            },
            SettingKind::Choice(choices) => {
                if choices.contains(&value.to_ascii_lowercase().as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected one of {}, got {value:?}",
                        choices.join(", ")
                    ))
                }
            }
            SettingKind::Sid(prefix) => check_sid(prefix, value),
            SettingKind::DatabaseUrl => check_database_url(value),
        }
    }
}

/// Checks the shape of a Twilio-style id: `prefix` followed by 32 hex digits.
pub(crate) fn check_sid(prefix: &str, value: &str) -> Result<(), String> {
    let ok = value.len() == prefix.len() + 32
        && value.starts_with(prefix)
        && value[prefix.len()..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {prefix} followed by 32 hexadecimal digits (as shown in the Twilio Console)"
        ))
    }
}

/// Checks that a value is a PostgreSQL connection URL with a host. The value is never part of
/// the error: it usually holds a password.
pub(crate) fn check_database_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("postgres://")
        .or_else(|| value.strip_prefix("postgresql://"));
    match rest {
        Some(rest) if !rest.is_empty() && !value.contains(char::is_whitespace) => Ok(()),
        _ => Err(
            "expected a PostgreSQL URL such as postgres://hermes:PASSWORD@db.example.com:5432/hermes (the value is not shown: it may hold a password)"
                .to_string(),
        ),
    }
}

/// Checks that a value is an absolute `http://` or `https://` URL with a host.
pub(crate) fn check_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !value.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "expected an absolute http(s) URL such as https://example.com/webhooks/twilio, got {:?}",
            crate::redact::redact_url(value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_checked_without_showing_the_password() {
        let db = Setting::new("X", "x", "").kind(SettingKind::DatabaseUrl);
        assert!(db.validate("postgres://u:p@db:5432/hermes").is_ok());
        assert!(db.validate("postgresql://db/hermes").is_ok());
        let err = db.validate("mysql://u:s3cret@db/hermes").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn validates_by_kind() {
        let sid = Setting::new("X", "x", "").kind(SettingKind::Sid("AC"));
        assert!(sid.validate("AC0123456789abcdef0123456789abcdef").is_ok());
        assert!(sid.validate("AC0123").is_err());
        assert!(sid.validate("XY0123456789abcdef0123456789abcdef").is_err());
        let url = Setting::new("X", "x", "").kind(SettingKind::Url);
        assert!(
            url.validate("https://bot.example.com/webhooks/twilio")
                .is_ok()
        );
        assert!(url.validate("bot.example.com").is_err());
        assert!(url.validate("https:///x").is_err());
        let err = url
            .validate("ftp://hermes:s3cret@bot.example.com")
            .unwrap_err();
        assert!(
            err.ends_with("got \"ftp://hermes:***@bot.example.com\""),
            "{err}"
        );
        let port = Setting::new("X", "x", "").kind(SettingKind::Port);
        assert!(port.validate("8080").is_ok());
        assert!(port.validate("70000").is_err());
        let choice = Setting::new("X", "x", "").kind(SettingKind::Choice(&["pair", "ignore"]));
        assert!(choice.validate("PAIR").is_ok());
        assert!(choice.validate("allow").is_err());
    }
}
