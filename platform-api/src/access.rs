//! The access settings every platform repeats: who may chat, what a stranger gets, how often a
//! sender may start a turn, and where scheduled output goes.
//!
//! A platform declares them once with [`access_settings!`](crate::access_settings), lists them
//! among its settings, and reads them with [`AccessSettings::policy`] and
//! [`AccessSettings::home_channel`]:
//!
//! ```
//! use platform_api::{AccessSettings, ConfigSection, Setting, SettingKind, access_settings};
//!
//! const ACCESS: AccessSettings = access_settings!("PAGER", "pager ids", SettingKind::List);
//! const TOKEN: Setting = Setting::new("PAGER_TOKEN", "token", "API token").required().secret();
//! const SETTINGS: &[Setting] = &[TOKEN, ACCESS.settings()[0], ACCESS.settings()[1]];
//!
//! let section = ConfigSection::from_pairs([
//!     ("PAGER_ALLOWED_USERS", "7, 9"),
//!     ("PAGER_HOME_CHANNEL", "ops"),
//!     ("PAGER_UNAUTHORIZED", "pair"),
//! ]);
//! let parse = |id: &str| Ok(id.trim().to_string());
//! let policy = ACCESS.policy(&section, parse).unwrap();
//! assert!(policy.allows("7") && !policy.allows("8"));
//! assert_eq!(policy.unauthorized, platform_api::Unauthorized::Pair);
//! let home = ACCESS.home_channel(&section, parse).unwrap().unwrap();
//! assert_eq!((home.chat.as_str(), home.name.as_str()), ("ops", "Home"));
//! assert_eq!(SETTINGS[1].env, "PAGER_ALLOWED_USERS");
//! ```
use std::collections::HashSet;

use crate::config::ConfigSection;
use crate::error::ConfigError;
use crate::message::HomeChannel;
use crate::platform::{AccessPolicy, Unauthorized};
use crate::settings::Setting;

/// The six access settings of one platform (`<P>_ALLOWED_USERS`, `<P>_ALLOW_ALL_USERS`,
/// `<P>_HOME_CHANNEL`, `<P>_HOME_CHANNEL_NAME`, `<P>_RATE_LIMIT_PER_MINUTE`,
/// `<P>_UNAUTHORIZED`). Build it with [`access_settings!`](crate::access_settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessSettings {
    /// `<P>_ALLOWED_USERS`: who may chat, comma-separated.
    pub allowed_users: Setting,
    /// `<P>_ALLOW_ALL_USERS`: everyone may chat.
    pub allow_all_users: Setting,
    /// `<P>_HOME_CHANNEL`: the chat scheduled output goes to.
    pub home_channel: Setting,
    /// `<P>_HOME_CHANNEL_NAME`: its display name.
    pub home_channel_name: Setting,
    /// `<P>_RATE_LIMIT_PER_MINUTE`: agent turns per sender per minute.
    pub rate_limit_per_minute: Setting,
    /// `<P>_UNAUTHORIZED`: what an unknown sender gets, `ignore` or `pair`.
    pub unauthorized: Setting,
}

/// Declares a platform's [`AccessSettings`] under its variable prefix.
///
/// `access_settings!("SMS", "phone numbers", SettingKind::PhoneList)` names the variables
/// `SMS_ALLOWED_USERS` and so on; the second argument says what the allowlist holds, the third
/// is the kind of the allowlist (and of the home channel: one item of it).
#[macro_export]
macro_rules! access_settings {
    ($prefix:literal, $users:literal, $list_kind:expr) => {
        $crate::AccessSettings {
            allowed_users: $crate::Setting::new(
                concat!($prefix, "_ALLOWED_USERS"),
                "allowed_users",
                concat!(
                    "Comma-separated ",
                    $users,
                    " allowed to chat (everyone else is denied)"
                ),
            )
            .kind($list_kind),
            allow_all_users: $crate::Setting::new(
                concat!($prefix, "_ALLOW_ALL_USERS"),
                "allow_all_users",
                "true lets everyone who writes chat with the agent",
            )
            .kind($crate::SettingKind::Bool),
            home_channel: $crate::Setting::new(
                concat!($prefix, "_HOME_CHANNEL"),
                "home_channel",
                "Chat that cron jobs and notifications are delivered to",
            )
            .kind($crate::SettingKind::item_of($list_kind)),
            home_channel_name: $crate::Setting::new(
                concat!($prefix, "_HOME_CHANNEL_NAME"),
                "home_channel_name",
                "Display name of the home channel",
            )
            .default("Home"),
            rate_limit_per_minute: $crate::Setting::new(
                concat!($prefix, "_RATE_LIMIT_PER_MINUTE"),
                "rate_limit_per_minute",
                "Agent turns allowed per sender per minute (unset: no limit)",
            )
            .kind($crate::SettingKind::Number),
            unauthorized: $crate::Setting::new(
                concat!($prefix, "_UNAUTHORIZED"),
                "unauthorized",
                "What an unknown sender gets: ignore, or pair (a one-time code the owner approves)",
            )
            .default("ignore")
            .kind($crate::SettingKind::Choice(&["ignore", "pair"])),
        }
    };
}

impl AccessSettings {
    /// The six settings, in the order the wizard asks and the docs list them.
    pub const fn settings(&self) -> [Setting; 6] {
        [
            self.allowed_users,
            self.allow_all_users,
            self.home_channel,
            self.home_channel_name,
            self.rate_limit_per_minute,
            self.unauthorized,
        ]
    }

    /// Reads who may chat. `normalize` turns one allowlist item into the platform's form of a
    /// sender (E.164 for SMS), or says why it cannot; the error names the variable.
    pub fn policy(
        &self,
        section: &ConfigSection,
        normalize: impl Fn(&str) -> Result<String, String>,
    ) -> Result<AccessPolicy, ConfigError> {
        let var = self.allowed_users.env;
        let allowed = section
            .list(var)
            .iter()
            .map(|item| normalize(item).map_err(|problem| invalid(section, var, problem)))
            .collect::<Result<HashSet<String>, ConfigError>>()?;
        let unauthorized = match section
            .choice(self.unauthorized.env, &["ignore", "pair"])?
            .as_deref()
        {
            Some("pair") => Unauthorized::Pair,
            _ => Unauthorized::Ignore,
        };
        let rate_limit_per_minute = section
            .number(self.rate_limit_per_minute.env)?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        Ok(AccessPolicy {
            allow_all: section.bool(self.allow_all_users.env)?.unwrap_or(false),
            allowed,
            unauthorized,
            rate_limit_per_minute,
        })
    }

    /// Reads the home channel, its chat parsed by the platform's `parse_chat` and its name
    /// defaulting to `<P>_HOME_CHANNEL_NAME`'s default; `None` when unset.
    pub fn home_channel(
        &self,
        section: &ConfigSection,
        parse_chat: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Option<HomeChannel>, ConfigError> {
        let var = self.home_channel.env;
        let Some(text) = section.text(var) else {
            return Ok(None);
        };
        let chat = parse_chat(text).map_err(|problem| invalid(section, var, problem))?;
        let name = section
            .text(self.home_channel_name.env)
            .or(self.home_channel_name.default)
            .unwrap_or("Home")
            .to_string();
        Ok(Some(HomeChannel { chat, name }))
    }
}

fn invalid(section: &ConfigSection, var: &str, problem: String) -> ConfigError {
    ConfigError::new(var, section.get(var).map(|v| v.origin.clone()), problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SettingKind;

    const SMS: AccessSettings = access_settings!("SMS", "phone numbers", SettingKind::PhoneList);

    #[test]
    fn names_and_kinds_follow_the_prefix() {
        let names: Vec<&str> = SMS.settings().iter().map(|s| s.env).collect();
        assert_eq!(
            names,
            [
                "SMS_ALLOWED_USERS",
                "SMS_ALLOW_ALL_USERS",
                "SMS_HOME_CHANNEL",
                "SMS_HOME_CHANNEL_NAME",
                "SMS_RATE_LIMIT_PER_MINUTE",
                "SMS_UNAUTHORIZED"
            ]
        );
        assert_eq!(SMS.home_channel.kind, SettingKind::Phone);
        assert!(SMS.allowed_users.help.contains("phone numbers"));
    }

    #[test]
    fn a_bad_item_names_its_variable_and_origin() {
        let section = ConfigSection::from_pairs([("SMS_ALLOWED_USERS", "+15550001111, nope")]);
        let err = SMS.policy(&section, crate::phone::normalize).unwrap_err();
        assert_eq!(err.var, "SMS_ALLOWED_USERS");
        assert!(err.origin.is_some());
        let section = ConfigSection::from_pairs([("SMS_UNAUTHORIZED", "allow")]);
        let err = SMS.policy(&section, crate::phone::normalize).unwrap_err();
        assert_eq!(err.var, "SMS_UNAUTHORIZED");
        let section = ConfigSection::from_pairs([("SMS_HOME_CHANNEL", "nope")]);
        let err = SMS
            .home_channel(&section, crate::phone::normalize)
            .unwrap_err();
        assert_eq!(err.var, "SMS_HOME_CHANNEL");
    }

    #[test]
    fn everyone_is_denied_unless_allowed() {
        let policy = SMS
            .policy(&ConfigSection::from_pairs([]), crate::phone::normalize)
            .unwrap();
        assert!(!policy.allows("+15550001111"));
        assert_eq!(policy.unauthorized, Unauthorized::Ignore);
        assert_eq!(policy.rate_limit_per_minute, None);
        let section = ConfigSection::from_pairs([
            ("SMS_ALLOW_ALL_USERS", "yes"),
            ("SMS_RATE_LIMIT_PER_MINUTE", "5"),
        ]);
        let policy = SMS.policy(&section, crate::phone::normalize).unwrap();
        assert!(policy.allows("+15550001111"));
        assert_eq!(policy.rate_limit_per_minute, Some(5));
    }
}
