//! [`check_home_channel`].
use std::sync::Arc;

use super::registration::{sample_section, sample_value, with};
use super::report;
use crate::config::ConfigSection;
use crate::message::HomeChannel;
use crate::platform::Platform;
use crate::registration::Registration;
use crate::settings::SettingKind;

/// The display name [`check_home_channel`] gives the home channel, when the platform has a
/// `<HOME_CHANNEL>_NAME` setting.
const SAMPLE_HOME_NAME: &str = "Ops room";

/// Checks that the built platform's [`Platform::home_channel`] follows its home-channel
/// setting.
///
/// With the required settings at sample values ([`sample_section`]) and the home-channel
/// setting unset, there is no home channel. With it set to a sample of its kind (spelled
/// loosely, `+1 555 000 4321` for a phone), the home channel is that chat as
/// [`Registration::parse_chat`] normalises it, so that `hermes send --to NAME` and
/// `NAME:CHAT` reach the same chat; its display name is the `<SETTING>_NAME` setting when the
/// platform has one, and never empty. A platform without a home-channel setting must have no
/// home channel.
pub fn check_home_channel(registration: &Registration) {
    let problems = home_channel_findings(registration);
    report("check_home_channel", registration.name, &problems);
}

pub(super) fn home_channel_findings(registration: &Registration) -> Vec<String> {
    let mut problems = Vec::new();
    let base = sample_section(registration);
    let built = |section: &ConfigSection| -> Result<Arc<dyn Platform>, String> {
        (registration.build)(section).map_err(|err| format!("does not build: {err}"))
    };
    let home_of = |section: &ConfigSection| built(section).map(|p| p.home_channel());
    let setting = registration
        .home_channel_setting
        .and_then(|var| registration.settings.iter().find(|s| s.env == var));
    let Some(setting) = setting else {
        match home_of(&base) {
            Err(err) => problems.push(err),
            Ok(Some(home)) => problems.push(format!(
                "has no home-channel setting, yet reports the home channel {home:?}"
            )),
            Ok(None) => {}
        }
        return problems;
    };
    match (home_of(&base), setting.default) {
        (Err(err), _) => {
            problems.push(err);
            return problems;
        }
        (Ok(Some(home)), None) => problems.push(format!(
            "{} is unset, yet the home channel is {home:?}",
            setting.env
        )),
        (Ok(None), Some(default)) => problems.push(format!(
            "{} defaults to {default:?}, yet there is no home channel",
            setting.env
        )),
        _ => {}
    }
    let chat = match setting.kind {
        SettingKind::Phone => "+1 555 000 4321".to_string(),
        SettingKind::Text => "-1001234567890".to_string(),
        kind => sample_value(kind),
    };
    let expected_chat = match (registration.parse_chat)(&chat) {
        Ok(chat) => chat,
        Err(why) => {
            problems.push(format!(
                "parse_chat rejects {chat:?}, a valid {} ({why})",
                setting.env
            ));
            return problems;
        }
    };
    let name_var = format!("{}_NAME", setting.env);
    let name_setting = registration.settings.iter().find(|s| s.env == name_var);
    let mut pairs = vec![(setting.env, chat.as_str(), setting.secret)];
    if name_setting.is_some() {
        pairs.push((name_var.as_str(), SAMPLE_HOME_NAME, false));
    }
    match home_of(&with(&base, &pairs)) {
        Err(err) => problems.push(format!("with {}={chat:?}: {err}", setting.env)),
        Ok(None) => problems.push(format!(
            "{}={chat:?} is set, yet there is no home channel",
            setting.env
        )),
        Ok(Some(HomeChannel { chat: got, name })) => {
            if got != expected_chat {
                problems.push(format!(
                    "{}={chat:?} gives the home channel {got:?}, but parse_chat gives {expected_chat:?}: deliveries to `{}` and `{}:{chat}` would go to different chats",
                    setting.env, registration.name, registration.name
                ));
            }
            if name.trim().is_empty() {
                problems.push("the home channel's name is empty".to_string());
            }
            if name_setting.is_some() && name != SAMPLE_HOME_NAME {
                problems.push(format!(
                    "{name_var}={SAMPLE_HOME_NAME:?} is set, yet the home channel is named {name:?}"
                ));
            }
        }
    }
    problems
}
