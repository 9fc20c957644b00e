//! `hermes gateway setup`: pick a registered platform, answer its settings, write them to
//! `$HERMES_HOME/.env`, and learn what is left to do outside the gateway.
//!
//! The questions come from the platform's settings table: the required settings first, then
//! the optional ones its [`OperatorGuide`] calls essential, then (behind one question) the rest.
//! Every answer is checked with [`Setting::validate`] as it is typed. Then, unless declined, the
//! agent's questions ([`agent`]): the persona (`SOUL.md`) and the backend. `--non-interactive`
//! takes the values from `--set` (the platform's and the agent's settings) and the platform's
//! variables in the environment instead, for scripts.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use hermes_config::{Config, set_env_vars};
use inquire::validator::Validation;
use inquire::{Confirm, InquireError, Password, PasswordDisplayMode, Select, Text};
use platform_api::{
    ConfigSection, ConfigValue, OperatorGuide, Origin, Registration, Setting, SettingKind,
    operator_guide, phone, registration, registrations,
};

use crate::config::load_config;
use crate::settings::HOST;

pub mod agent;

/// Width that explanations are wrapped to, so they read well in an 80-column terminal.
const LINE_WIDTH: usize = 78;

/// Options of `hermes gateway setup`.
#[derive(Args, Debug)]
pub struct SetupArgs {
    /// Registered platform to set up (see `hermes platforms`); asked when omitted.
    #[arg(long, value_name = "NAME")]
    platform: Option<String>,
    /// Ask nothing: take values from --set and from the platform's variables in the
    /// environment, check them, write them (for scripts).
    #[arg(long)]
    non_interactive: bool,
    /// A value to write, as VARIABLE=VALUE; repeatable.
    #[arg(
        long = "set",
        value_name = "VARIABLE=VALUE",
        requires = "non_interactive"
    )]
    set: Vec<String>,
}

/// The questions for one platform, in the order they are asked.
#[derive(Debug, PartialEq, Eq)]
pub struct Questions {
    /// Required settings, in declaration order.
    pub required: Vec<&'static Setting>,
    /// Optional settings asked right after them.
    pub essentials: Vec<&'static Setting>,
    /// Optional settings asked only after "advanced settings?" is answered yes.
    pub advanced: Vec<&'static Setting>,
}

/// Orders a platform's settings into questions: required first, then the essentials its guide
/// names (without a guide: every optional setting), then the rest, each in declaration order.
pub fn questions(settings: &'static [Setting], guide: Option<&OperatorGuide>) -> Questions {
    let required = settings.iter().filter(|s| s.required).collect();
    let essentials: Vec<&'static Setting> = match guide {
        Some(guide) => guide
            .essentials
            .iter()
            .filter_map(|var| settings.iter().find(|s| s.env == *var && !s.required))
            .collect(),
        None => settings.iter().filter(|s| !s.required).collect(),
    };
    let advanced = settings
        .iter()
        .filter(|s| !s.required && !essentials.iter().any(|e| e.env == s.env))
        .collect();
    Questions {
        required,
        essentials,
        advanced,
    }
}

/// A value as it is written: trimmed, phone numbers in E.164, choices in lower case.
pub fn normalized(setting: &Setting, value: &str) -> Result<String, String> {
    let value = value.trim();
    setting.validate(value)?;
    Ok(match setting.kind {
        SettingKind::Phone => phone::normalize(value)?,
        SettingKind::PhoneList => value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(phone::normalize)
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        SettingKind::Choice(_) | SettingKind::Bool => value.to_ascii_lowercase(),
        _ => value.to_string(),
    })
}

/// The values of a scripted setup: `--set` pairs, then the platform's own variables found in
/// `environment` (a `--set` wins). Every value is checked, and every required setting must have
/// a value here or in the current configuration; all problems are reported at once.
pub fn scripted_values(
    platform: &str,
    settings: &'static [Setting],
    sets: &[String],
    environment: impl IntoIterator<Item = (String, String)>,
    current: &ConfigSection,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    // Each variable's (setting, value, source); a `--set` replaces the environment's value.
    let mut given: BTreeMap<&'static str, (&'static Setting, String, &str)> = BTreeMap::new();
    let environment: BTreeMap<String, String> = environment.into_iter().collect();
    for setting in settings {
        if let Some(value) = environment
            .get(setting.env)
            .filter(|v| !v.trim().is_empty())
        {
            given.insert(setting.env, (setting, value.clone(), "environment"));
        }
    }
    for pair in sets {
        let Some((var, value)) = pair.split_once('=') else {
            problems.push(format!("--set {pair:?}: expected VARIABLE=VALUE"));
            continue;
        };
        let var = var.trim();
        let Some(setting) = settings.iter().find(|s| s.env == var) else {
            let known: Vec<&str> = settings.iter().map(|s| s.env).collect();
            problems.push(format!(
                "--set {var}: not a setting of {}; its settings are {}",
                platform,
                known.join(", ")
            ));
            continue;
        };
        if value.trim().is_empty() {
            problems.push(format!("{var} (from --set): no value given"));
            continue;
        }
        given.insert(setting.env, (setting, value.to_string(), "--set"));
    }
    let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
    for (setting, value, source) in given.values() {
        match normalized(setting, value) {
            Ok(value) => {
                values.insert(setting.env, value);
            }
            Err(_) if setting.secret => problems.push(format!(
                "{} (from {source}): invalid value (not shown: it is secret)",
                setting.env
            )),
            Err(reason) => problems.push(format!("{} (from {source}): {reason}", setting.env)),
        }
    }
    // A required setting given with a bad value is reported above, not as missing.
    let missing: Vec<String> = settings
        .iter()
        .filter(|s| s.required && current.get(s.env).is_none())
        .filter(|s| !given.contains_key(s.env))
        .map(|s| format!("\n    {}: {}", s.env, s.help))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "missing required settings for {platform} (pass them as --set VARIABLE=VALUE or in the environment):{}",
            missing.concat()
        ));
    }
    if !problems.is_empty() {
        bail!("nothing was written:\n  {}", problems.join("\n  "));
    }
    // Declaration order keeps the written .env in the order the docs list the settings.
    Ok(settings
        .iter()
        .filter_map(|s| values.remove(s.env).map(|v| (s.env, v)))
        .collect())
}

/// Runs `hermes gateway setup`.
pub fn run(args: SetupArgs) -> anyhow::Result<ExitCode> {
    if !args.non_interactive && !std::io::stdin().is_terminal() {
        bail!(
            "`hermes gateway setup` asks questions, and standard input is not a terminal. For scripts, use `hermes gateway setup --non-interactive --platform NAME --set VARIABLE=VALUE …` (values may also come from the environment)"
        );
    }
    let config = load_config()?;
    let chosen = args.platform.as_deref().map(find_platform).transpose()?;
    let outcome = match (args.non_interactive, chosen) {
        (true, Some(registration)) => scripted(&config, registration, &args.set),
        (true, None) => bail!(
            "--non-interactive needs --platform NAME (one of: {})",
            platform_names()
        ),
        (false, chosen) => interview(&config, chosen),
    };
    let (registration, values, soul) = match outcome {
        Ok(done) => done,
        Err(err) => match err.downcast_ref::<InquireError>() {
            Some(InquireError::OperationCanceled | InquireError::OperationInterrupted) => {
                eprintln!("Setup cancelled; nothing was written.");
                return Ok(ExitCode::from(130));
            }
            Some(InquireError::NotTTY) => {
                bail!("`hermes gateway setup` needs a terminal; for scripts use --non-interactive")
            }
            _ => return Err(err),
        },
    };
    let path = config.home().join(".env");
    if !values.is_empty() {
        write(&path, &values)?;
    }
    if let Some(persona) = soul {
        let written = agent::write_soul(config.home(), &persona)?;
        println!("\nWrote the persona to {}.", written.display());
    }
    print_summary(&config, registration, &values, &path);
    Ok(ExitCode::SUCCESS)
}

/// What a setup decided: the platform, the settings to write, and a new persona for `SOUL.md`.
type Decided = (
    &'static Registration,
    Vec<(&'static str, String)>,
    Option<String>,
);

/// A scripted setup: the platform's values from `--set` and the environment, the agent's from
/// `--set` alone (the environment's `HERMES_AGENT…` may be meant for this run only).
fn scripted(
    config: &Config,
    registration: &'static Registration,
    sets: &[String],
) -> anyhow::Result<Decided> {
    let is_agents = |pair: &String| {
        let var = pair.split_once('=').map(|(var, _)| var.trim());
        agent::SETTINGS.iter().any(|s| Some(s.env) == var)
    };
    let (agent_sets, platform_sets): (Vec<String>, Vec<String>) =
        sets.iter().cloned().partition(is_agents);
    let mut values = scripted_values(
        registration.name,
        registration.settings,
        &platform_sets,
        std::env::vars(),
        &config.section(registration.name),
    )?;
    let host = config.section(HOST);
    let agent_values = scripted_values("the agent", &agent::SETTINGS, &agent_sets, [], &host)?;
    let problems = agent::scripted_problems(&agent_values, &host);
    if !problems.is_empty() {
        bail!("nothing was written:\n  {}", problems.join("\n  "));
    }
    values.extend(agent_values);
    Ok((registration, values, None))
}

fn platform_names() -> String {
    registrations()
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_platform(name: &str) -> anyhow::Result<&'static Registration> {
    registration(name).with_context(|| {
        format!(
            "unknown platform {name:?} (--platform); registered: {}",
            platform_names()
        )
    })
}

fn write(path: &Path, values: &[(&'static str, String)]) -> anyhow::Result<()> {
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set_env_vars(path, &pairs).with_context(|| format!("writing {}", path.display()))
}

fn print_summary(
    config: &Config,
    registration: &Registration,
    values: &[(&'static str, String)],
    path: &Path,
) {
    if values.is_empty() {
        println!("\nNothing changed; {} is as it was.", path.display());
    } else {
        let names: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
        println!(
            "\nWrote {} setting(s) to {} (readable by you only):\n{}",
            values.len(),
            path.display(),
            wrap(&names.join(", "), LINE_WIDTH - 2)
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    if let Some(guide) = operator_guide(registration.name) {
        let mut merged: BTreeMap<String, String> = config
            .section(registration.name)
            .values()
            .map(|(k, v)| (k.to_string(), v.text.clone()))
            .collect();
        for (k, v) in values {
            merged.insert(k.to_string(), v.clone());
        }
        let section =
            ConfigSection::from_pairs(merged.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        println!("\n{}", (guide.next_steps)(&section).trim_end());
    }
    println!(
        "\nNext:\n  hermes gateway doctor --fix   check the settings (and the account behind them), fixing what it can\n  hermes gateway                start the gateway"
    );
}

/// One entry of the platform menu.
struct Choice(&'static Registration);

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0.label, self.0.name)?;
        if self.0.stub {
            write!(f, " (stub: sending not implemented yet)")?;
        }
        Ok(())
    }
}

/// The interactive questions; returns the platform, the values to write and a new persona.
fn interview(config: &Config, chosen: Option<&'static Registration>) -> anyhow::Result<Decided> {
    let registration = match chosen {
        Some(registration) => registration,
        None => {
            let all = registrations();
            if all.is_empty() {
                bail!("no platform is registered in this build");
            }
            let start = all.iter().position(|r| !r.stub).unwrap_or(0);
            let choices = all.into_iter().map(Choice).collect();
            Select::new("Which platform do you want to set up?", choices)
                .with_starting_cursor(start)
                .prompt()?
                .0
        }
    };
    let path = config.home().join(".env");
    eprintln!(
        "\nSetting up {}. Answers go to {}.\nEnter keeps the value in parentheses; Esc cancels without writing anything.\n",
        registration.label,
        path.display()
    );
    let guide = operator_guide(registration.name);
    let current = config.section(registration.name);
    let plan = questions(registration.settings, guide);
    let mut values = Vec::new();
    for setting in plan.required.iter().chain(&plan.essentials) {
        if let Some(value) = ask(setting, current.get(setting.env), guide)? {
            values.push((setting.env, value));
        }
    }
    if !plan.advanced.is_empty() {
        let names: Vec<&str> = plan.advanced.iter().map(|s| s.env).take(3).collect();
        let more = if plan.advanced.len() > names.len() {
            ", …"
        } else {
            ""
        };
        let help = format!(
            "{} more: {}{more} (all listed by `hermes platforms --settings`)",
            plan.advanced.len(),
            names.join(", ")
        );
        let advanced = Confirm::new("Change advanced settings?")
            .with_default(false)
            .with_help_message(&help)
            .prompt()?;
        if advanced {
            for setting in &plan.advanced {
                if let Some(value) = ask(setting, current.get(setting.env), guide)? {
                    values.push((setting.env, value));
                }
            }
        }
    }
    let mut soul = None;
    let agent = Confirm::new("Set up the agent too (who it is, which model answers)?")
        .with_default(true)
        .with_help_message("the persona (SOUL.md) and the backend: echo, openai, hermes or command")
        .prompt()?;
    if agent {
        let answers = agent::interview(config)?;
        values.extend(answers.values);
        soul = answers.soul;
    }
    Ok((registration, values, soul))
}

/// Asks for one setting; `Some` is a value to write, `None` leaves the configuration as it is.
fn ask(
    setting: &'static Setting,
    current: Option<&ConfigValue>,
    guide: Option<&OperatorGuide>,
) -> anyhow::Result<Option<String>> {
    ask_checked(setting, current, guide, None)
}

/// A check of an answer beyond its setting's kind.
type Extra = Option<fn(&str) -> Result<(), String>>;

/// [`ask`], with `extra` checking a typed answer beyond the setting's kind.
fn ask_checked(
    setting: &'static Setting,
    current: Option<&ConfigValue>,
    guide: Option<&OperatorGuide>,
    extra: Extra,
) -> anyhow::Result<Option<String>> {
    let explanation = guide.and_then(|g| {
        g.explanations
            .iter()
            .find(|(var, _)| *var == setting.env)
            .map(|(_, text)| *text)
    });
    if let Some(text) = explanation {
        eprintln!("\n{}", wrap(text, LINE_WIDTH));
    }
    // A value only in the environment is not persisted yet: keeping it means writing it.
    let unsaved = current.is_some_and(|v| v.origin == Origin::Environment);
    let current_text = current.map(|v| v.text.trim().to_string());
    let effective = current_text.clone().or(setting.default.map(str::to_string));
    let keep = |answer: String| -> Option<String> {
        (Some(&answer) != effective.as_ref() || unsaved).then_some(answer)
    };
    let answer = match setting.kind {
        _ if setting.secret => {
            let help = match current {
                Some(_) => format!("{} — Enter keeps the current value", setting.help),
                None => setting.help.to_string(),
            };
            let message = match current {
                Some(_) => format!("{} (keep current)", setting.env),
                None => setting.env.to_string(),
            };
            let required = setting.required && current.is_none();
            let typed = Password::new(&message)
                .without_confirmation()
                .with_display_mode(PasswordDisplayMode::Masked)
                .with_help_message(&help)
                .with_validator(move |input: &str| Ok(check(setting, input, required, extra)))
                .prompt()?;
            match (typed.trim().is_empty(), current_text) {
                (false, _) => normalized(setting, &typed).ok(),
                (true, Some(kept)) if unsaved => Some(kept),
                (true, _) => None,
            }
        }
        SettingKind::Bool => {
            let default = effective
                .as_deref()
                .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on"))
                .unwrap_or(false);
            let yes = Confirm::new(setting.env)
                .with_default(default)
                .with_help_message(setting.help)
                .prompt()?;
            // An unset switch is off: answering no to it changes nothing.
            if !yes && effective.is_none() {
                None
            } else {
                keep(yes.to_string())
            }
        }
        SettingKind::Choice(choices) => {
            let start = effective
                .as_deref()
                .and_then(|v| choices.iter().position(|c| c.eq_ignore_ascii_case(v)))
                .unwrap_or(0);
            let picked = Select::new(setting.env, choices.to_vec())
                .with_starting_cursor(start)
                .with_help_message(setting.help)
                .prompt()?;
            keep(picked.to_string())
        }
        _ => {
            let required = setting.required && effective.is_none();
            let mut prompt = Text::new(setting.env)
                .with_help_message(setting.help)
                .with_validator(move |input: &str| Ok(check(setting, input, required, extra)));
            if let Some(default) = &effective {
                prompt = prompt.with_default(default);
            }
            let typed = prompt.prompt()?;
            if typed.trim().is_empty() {
                None
            } else {
                normalized(setting, &typed).ok().and_then(keep)
            }
        }
    };
    Ok(answer)
}

/// Breaks text into lines of at most `width` characters at spaces (longer words stay whole).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.join("\n")
}

/// The wizard's check of one answer: the setting's own validation, `extra`, and presence when
/// required.
fn check(setting: &Setting, input: &str, required: bool, extra: Extra) -> Validation {
    if input.trim().is_empty() {
        return if required {
            Validation::Invalid(format!("{} is required", setting.env).into())
        } else {
            Validation::Valid
        };
    }
    let checked = setting
        .validate(input)
        .and_then(|()| extra.map_or(Ok(()), |extra| extra(input.trim())));
    match checked {
        Ok(()) => Validation::Valid,
        Err(reason) => Validation::Invalid(reason.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SETTINGS: &[Setting] = &[
        Setting::new("DEMO_PORT", "port", "Port")
            .default("80")
            .kind(SettingKind::Port),
        Setting::new("DEMO_SID", "sid", "Account id")
            .required()
            .kind(SettingKind::Sid("AC")),
        Setting::new("DEMO_TOKEN", "token", "Token")
            .required()
            .secret(),
        Setting::new("DEMO_USERS", "users", "Allowed numbers").kind(SettingKind::PhoneList),
        Setting::new("DEMO_HOME", "home", "Home number").kind(SettingKind::Phone),
    ];

    fn steps(_: &ConfigSection) -> String {
        String::new()
    }

    fn nothing(_: &ConfigSection, _: bool) -> platform_api::Checkup<'_> {
        Box::pin(async { Vec::new() })
    }

    fn envs(list: &[&Setting]) -> Vec<&'static str> {
        list.iter().map(|s| s.env).collect()
    }

    #[test]
    fn required_come_first_then_essentials_then_the_rest() {
        let guide = OperatorGuide {
            platform: "demo",
            essentials: &["DEMO_HOME", "DEMO_USERS", "DEMO_SID", "NOT_A_SETTING"],
            explanations: &[],
            next_steps: steps,
            checkup: nothing,
        };
        let plan = questions(SETTINGS, Some(&guide));
        assert_eq!(envs(&plan.required), ["DEMO_SID", "DEMO_TOKEN"]);
        assert_eq!(envs(&plan.essentials), ["DEMO_HOME", "DEMO_USERS"]);
        assert_eq!(envs(&plan.advanced), ["DEMO_PORT"]);
        let plan = questions(SETTINGS, None);
        assert_eq!(
            envs(&plan.essentials),
            ["DEMO_PORT", "DEMO_USERS", "DEMO_HOME"]
        );
        assert!(plan.advanced.is_empty());
    }

    #[cfg(feature = "sms")]
    #[test]
    fn the_sms_wizard_asks_in_the_documented_order() {
        let sms = registration("sms").expect("sms is linked into the host");
        let plan = questions(sms.settings, operator_guide("sms"));
        assert_eq!(
            envs(&plan.required),
            [
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_PHONE_NUMBER",
                "SMS_WEBHOOK_URL"
            ]
        );
        assert_eq!(
            envs(&plan.essentials),
            [
                "SMS_ALLOWED_USERS",
                "SMS_ALLOW_ALL_USERS",
                "SMS_HOME_CHANNEL"
            ]
        );
        assert!(envs(&plan.advanced).contains(&"SMS_WEBHOOK_PORT"));
    }

    #[test]
    fn explanations_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc  dd", 5), "aa bb\ncc dd");
        assert_eq!(
            wrap("a https://long.example.com/x b", 6),
            "a\nhttps://long.example.com/x\nb"
        );
        assert_eq!(wrap("", 5), "");
    }

    #[test]
    fn values_are_written_normalised() {
        let users = &SETTINGS[3];
        assert_eq!(
            normalized(users, " +1 (555) 000-1111 ,+15550002222, ").unwrap(),
            "+15550001111,+15550002222"
        );
        assert_eq!(
            normalized(&SETTINGS[4], "+1 555 123 4567").unwrap(),
            "+15551234567"
        );
        assert!(normalized(&SETTINGS[1], "AC123").is_err());
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scripted_values_come_from_set_and_the_platforms_own_environment() {
        let sid = "AC0123456789abcdef0123456789abcdef";
        let values = scripted_values(
            "demo",
            SETTINGS,
            &[
                format!("DEMO_SID={sid}"),
                "DEMO_HOME=+1 555 123 4567".into(),
            ],
            pairs(&[
                ("DEMO_TOKEN", "12345"),
                ("DEMO_SID", "overridden"),
                ("PATH", "/bin"),
            ]),
            &ConfigSection::default(),
        )
        .unwrap();
        assert_eq!(
            values,
            [
                ("DEMO_SID", sid.to_string()),
                ("DEMO_TOKEN", "12345".to_string()),
                ("DEMO_HOME", "+15551234567".to_string())
            ]
        );
    }

    #[test]
    fn scripted_values_report_every_problem_and_name_the_variables() {
        let err = scripted_values(
            "demo",
            SETTINGS,
            &["DEMO_PORT=eighty".into(), "OTHER=1".into(), "oops".into()],
            pairs(&[("DEMO_HOME", "555")]),
            &ConfigSection::default(),
        )
        .unwrap_err()
        .to_string();
        for part in [
            "DEMO_PORT (from --set): expected a port",
            "--set OTHER: not a setting of demo",
            "--set \"oops\": expected VARIABLE=VALUE",
            "DEMO_HOME (from environment)",
            "missing required settings for demo (pass them as --set VARIABLE=VALUE or in the environment):\n    DEMO_SID: Account id\n    DEMO_TOKEN: Token",
        ] {
            assert!(err.contains(part), "{part:?} in {err}");
        }
        // Required settings already in the configuration need not be given again.
        let current = ConfigSection::from_pairs([
            ("DEMO_SID", "AC0123456789abcdef0123456789abcdef"),
            ("DEMO_TOKEN", "t"),
        ]);
        let values =
            scripted_values("demo", SETTINGS, &["DEMO_PORT=81".into()], [], &current).unwrap();
        assert_eq!(values, [("DEMO_PORT", "81".to_string())]);
    }
}
