//! The kit checks itself: a well-behaved platform passes every check, and each kind of defect
//! the kit promises to find is found.
use std::sync::Arc;
use std::time::Duration;

use super::format::{format_findings, link_urls};
use super::home::home_channel_findings;
use super::registration::registration_findings;
use super::*;
use crate::config::ConfigSection;
use crate::error::SendError;
use crate::message::{HomeChannel, Part};
use crate::platform::{AccessPolicy, Platform};
use crate::registration::Registration;
use crate::settings::{Setting, SettingKind};
use crate::stub::{self, Stub};
use crate::text;

const TOKEN: Setting = Setting::new("DEMO_TOKEN", "token", "Bot token")
    .required()
    .secret();
const HOME: Setting = Setting::new("DEMO_HOME_CHANNEL", "home_channel", "Home chat");
const HOME_NAME: Setting =
    Setting::new("DEMO_HOME_CHANNEL_NAME", "home_channel_name", "Its name").default("Home");
const PORT: Setting = Setting::new("DEMO_PORT", "port", "Port")
    .default("8099")
    .kind(SettingKind::Port);
const HINT: Setting = crate::prompt_hint!("DEMO", "Demo screens show plain text.");
const GOOD_SETTINGS: &[Setting] = &[TOKEN, HOME, HOME_NAME, PORT, HINT];

fn enabled(section: &ConfigSection) -> Result<(), String> {
    section
        .text(TOKEN.env)
        .map(|_| ())
        .ok_or_else(|| "DEMO_TOKEN not set".to_string())
}

fn format(markdown: &str) -> Vec<Part> {
    stub::format(markdown, 300)
}

fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, crate::ConfigError> {
    section.required(&TOKEN)?;
    let stub = Stub::from_config(
        "demo",
        300,
        section,
        "DEMO_ALLOWED",
        HOME.env,
        HOME_NAME.env,
    )?;
    Ok(Arc::new(stub))
}

fn good() -> Registration {
    Registration {
        name: "demo",
        label: "Demo",
        stub: true,
        settings: GOOD_SETTINGS,
        home_channel_setting: Some(HOME.env),
        prompt_hint: Some(HINT),
        enabled,
        format,
        format_media: None,
        parse_chat: stub::parse_chat,
        build,
    }
}

fn has(findings: &[String], needle: &str) -> bool {
    findings.iter().any(|f| f.contains(needle))
}

#[test]
fn a_well_behaved_platform_passes_every_check() {
    let registration = good();
    check_registration(&registration);
    check_home_channel(&registration);
    check_stub(&registration);
    check_format(format, 300, Rendering::Markdown);
    check_format(
        |md| {
            text::split_numbered(&text::markdown_to_plain(md), 160)
                .into_iter()
                .map(Part::plain)
                .collect()
        },
        160,
        Rendering::Plain,
    );
}

#[test]
fn registration_defects_are_found() {
    static BAD: &[Setting] = &[
        Setting::new("DEMO_API_KEY", "api_key", "Key").required(),
        Setting::new("DEMO_PORT", "Port", "Port")
            .default("80800")
            .kind(SettingKind::Port),
        Setting::new("DEMO_PORT", "port2", ""),
        Setting::new("DEMO_MODE", "mode", "Mode").kind(SettingKind::Choice(&["Fast", "slow"])),
        Setting::new("DEMO_PASSWORD", "password", "Password")
            .secret()
            .default("hunter2"),
        Setting::new("2DEMO", "x", "Two\nlines"),
    ];
    let registration = Registration {
        name: "Demo Platform",
        label: " ",
        settings: BAD,
        home_channel_setting: Some("DEMO_HOME"),
        prompt_hint: Some(HINT.secret()),
        ..good()
    };
    let (problems, _) = registration_findings(&registration);
    for needle in [
        "name \"Demo Platform\"",
        "label is empty",
        "DEMO_API_KEY: its name says API_KEY",
        "config key \"Port\"",
        "default \"80800\" fails",
        "DEMO_PORT is declared 2 times",
        "DEMO_PORT: help is empty",
        "choice \"Fast\" must be lowercase",
        "DEMO_PASSWORD: a secret cannot have a built-in default",
        "\"2DEMO\" is not a valid environment variable name",
        "2DEMO: help must be one line",
        "home_channel_setting \"DEMO_HOME\" is not one of its settings",
        "prompt_hint \"DEMO_PROMPT_HINT\" is not one of its settings",
    ] {
        assert!(has(&problems, needle), "{needle} not in {problems:#?}");
    }
}

#[test]
fn a_prompt_hint_unlike_its_setting_is_found() {
    static SECRET_HINT: &[Setting] = &[TOKEN, HOME, HOME_NAME, PORT, HINT.secret()];
    let registration = Registration {
        settings: SECRET_HINT,
        prompt_hint: Some(HINT.secret()),
        ..good()
    };
    let (problems, _) = registration_findings(&registration);
    assert!(
        has(
            &problems,
            "prompt hint DEMO_PROMPT_HINT is secret or required"
        ),
        "{problems:#?}"
    );
    let registration = Registration {
        prompt_hint: Some(HINT.default("Something else.")),
        ..good()
    };
    let (problems, _) = registration_findings(&registration);
    assert!(has(&problems, "differs from the setting"), "{problems:#?}");
}

#[test]
fn constructors_must_need_exactly_the_required_settings() {
    static LOOSE: &[Setting] = &[Setting::new("DEMO_TOKEN", "token", "Bot token")
        .required()
        .secret()];
    fn builds_anyway(_: &ConfigSection) -> Result<Arc<dyn Platform>, crate::ConfigError> {
        build(&ConfigSection::from_pairs([("DEMO_TOKEN", "x")]))
    }
    fn needs_more(section: &ConfigSection) -> Result<Arc<dyn Platform>, crate::ConfigError> {
        section.required(&Setting::new(
            "DEMO_HIDDEN",
            "hidden",
            "Not declared required",
        ))?;
        build(section)
    }
    let loose = Registration {
        settings: LOOSE,
        home_channel_setting: None,
        prompt_hint: None,
        build: builds_anyway,
        ..good()
    };
    let (problems, _) = registration_findings(&loose);
    assert!(
        has(
            &problems,
            "DEMO_TOKEN is declared required, but it builds without it"
        ),
        "{problems:#?}"
    );
    let strict = Registration {
        build: needs_more,
        ..good()
    };
    let (problems, _) = registration_findings(&strict);
    assert!(
        has(&problems, "does not build with its required settings"),
        "{problems:#?}"
    );
}

#[test]
fn naming_advice_is_a_warning_not_a_problem() {
    static MIXED: &[Setting] = &[
        Setting::new("DEMO_TOKEN", "token", "Bot token")
            .required()
            .secret(),
        Setting::new("DEMO_HOME_CHANNEL", "home_channel", "Home chat"),
        Setting::new("ACME_REGION", "region", "Provider region"),
        Setting::new("Demo_Mode", "mode", "Mode"),
    ];
    let registration = Registration {
        settings: MIXED,
        prompt_hint: None,
        ..good()
    };
    let (problems, warnings) = registration_findings(&registration);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(has(&warnings, "ACME_REGION does not start with DEMO_"));
    assert!(has(&warnings, "Demo_Mode is not in UPPER_SNAKE_CASE"));
}

#[test]
fn a_home_channel_that_ignores_its_setting_or_normalises_differently_is_found() {
    struct Fixed(AccessPolicy, Option<HomeChannel>);
    #[async_trait::async_trait(?Send)]
    impl Platform for Fixed {
        fn name(&self) -> &'static str {
            "demo"
        }
        fn access(&self) -> &AccessPolicy {
            &self.0
        }
        fn format(&self, markdown: &str) -> Vec<Part> {
            format(markdown)
        }
        async fn send(&self, _: &str, _: &Part) -> Result<crate::Receipt, SendError> {
            Err(SendError::Permanent {
                code: None,
                message: "no".into(),
            })
        }
        fn home_channel(&self) -> Option<HomeChannel> {
            self.1.clone()
        }
    }
    fn ignores(section: &ConfigSection) -> Result<Arc<dyn Platform>, crate::ConfigError> {
        section.required(&TOKEN)?;
        Ok(Arc::new(Fixed(AccessPolicy::default(), None)))
    }
    fn untrimmed(section: &ConfigSection) -> Result<Arc<dyn Platform>, crate::ConfigError> {
        section.required(&TOKEN)?;
        let home = section.text(HOME.env).map(|chat| HomeChannel {
            chat: format!("chat:{chat}"),
            name: String::new(),
        });
        Ok(Arc::new(Fixed(AccessPolicy::default(), home)))
    }
    let problems = home_channel_findings(&Registration {
        build: ignores,
        ..good()
    });
    assert!(
        has(&problems, "is set, yet there is no home channel"),
        "{problems:#?}"
    );
    let problems = home_channel_findings(&Registration {
        build: untrimmed,
        ..good()
    });
    assert!(has(&problems, "but parse_chat gives"), "{problems:#?}");
    assert!(has(&problems, "name is empty"), "{problems:#?}");
    assert!(
        has(&problems, "yet the home channel is named"),
        "{problems:#?}"
    );
}

fn plain_parts(bodies: Vec<String>) -> Vec<Part> {
    bodies.into_iter().map(Part::plain).collect()
}

#[test]
fn formatter_defects_are_found() {
    let reply = corpus()
        .into_iter()
        .find(|r| r.name == "links and long URLs")
        .map(|r| r.markdown)
        .unwrap_or_default();
    let limit = 160;
    let findings = |format: &dyn Fn(&str) -> Vec<Part>| {
        format_findings(&format, limit, Rendering::Markdown, &reply)
    };

    // Cutting every `limit` characters: words and URLs cut in two.
    let hard = findings(&|md: &str| {
        let chars: Vec<char> = md.trim().chars().collect();
        plain_parts(chars.chunks(limit).map(|c| c.iter().collect()).collect())
    });
    assert!(has(&hard, "is cut between parts"), "{hard:#?}");
    assert!(has(&hard, "the link URL https://"), "{hard:#?}");

    // Too long, and text dropped.
    let long = findings(&|md: &str| vec![Part::plain(md.trim())]);
    assert!(has(&long, "over the limit of 160"), "{long:#?}");
    let truncated =
        findings(&|md: &str| plain_parts(text::split(md, limit).into_iter().take(2).collect()));
    assert!(
        has(&truncated, "do not spell the rendered reply"),
        "{truncated:#?}"
    );
    assert!(
        has(&truncated, "do not all reach the parts"),
        "{truncated:#?}"
    );

    // An empty part, and numbering that does not count the parts.
    let empty = findings(&|md: &str| {
        let mut parts = plain_parts(text::split(md, limit));
        parts.push(Part::plain(" "));
        parts
    });
    assert!(has(&empty, "is empty"), "{empty:#?}");
    let miscounted = findings(&|md: &str| {
        let parts = text::split(md, limit - 8);
        plain_parts(
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{p} ({}/99)", i + 1))
                .collect(),
        )
    });
    assert!(
        has(&miscounted, "numbering is only ignored"),
        "{miscounted:#?}"
    );

    // Rendering Markdown when the platform claims plain text: the markup is extra text.
    let claimed_plain = format_findings(&format, 300, Rendering::Plain, "**bold** _text_");
    assert!(has(&claimed_plain, "do not spell"), "{claimed_plain:#?}");
}

#[test]
fn emoji_and_flags_cut_in_two_are_found() {
    let flags = "🇺🇸🇯🇵🇩🇪";
    let by_code_point = |md: &str| -> Vec<Part> {
        let chars: Vec<char> = md.chars().collect();
        plain_parts(chars.chunks(3).map(|c| c.iter().collect()).collect())
    };
    let findings = format_findings(&by_code_point, 3, Rendering::Markdown, flags);
    assert!(
        has(&findings, "(2 code points) is cut between parts"),
        "{findings:#?}"
    );
}

#[test]
fn send_error_classification_is_checked() {
    fn retries_everything(_: u16, _: Option<&str>, _: &[u8]) -> SendError {
        SendError::Retry {
            after: None,
            code: None,
            message: "try again".into(),
        }
    }
    fn by_status(status: u16, retry_after: Option<&str>, _: &[u8]) -> SendError {
        let after = retry_after
            .and_then(|r| r.parse().ok())
            .map(Duration::from_secs);
        match status {
            429 | 500..=599 => SendError::Retry {
                after,
                code: None,
                message: format!("HTTP {status}"),
            },
            _ => SendError::Permanent {
                code: None,
                message: format!("HTTP {status}"),
            },
        }
    }
    check_send_errors(by_status, &[]);
    let outcome = std::panic::catch_unwind(|| check_send_errors(retries_everything, &[]));
    assert!(outcome.is_err());
    let own = [(
        Answer {
            status: 400,
            retry_after: None,
            body: br#"{"code": 21610}"#,
        },
        Expected::OptedOut,
    )];
    let outcome = std::panic::catch_unwind(|| check_send_errors(by_status, &own));
    assert!(outcome.is_err(), "the platform's own cases are checked too");
}

#[test]
fn link_urls_come_from_links_images_and_bare_words() {
    let urls = link_urls(
        "See [docs](https://a.example/x_(y)), ![logo](http://b.example/l.png), <https://c.example>, and https://d.example/p?q=1. Also [mail](mailto:x@y.z).",
    );
    assert_eq!(
        urls,
        [
            "http://b.example/l.png",
            "https://a.example/x_(y)",
            "https://c.example",
            "https://d.example/p?q=1",
        ]
    );
}
