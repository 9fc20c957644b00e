use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use platform_api::{ConfigError, ConfigSection, ConfigValue, Origin, Setting};

/// The settings of one section (a platform, or the host) and where they live in `config.toml`.
#[derive(Clone, Debug)]
pub struct SchemaSection {
    /// Name the section is looked up by (`sms`, or `gateway` for the host).
    pub name: String,
    /// Table in `config.toml` that holds its keys (`platforms.sms`); empty for the root.
    pub table: String,
    /// Its settings.
    pub settings: &'static [Setting],
}

/// Everything the configuration can hold.
pub type Schema = Vec<SchemaSection>;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    home: PathBuf,
    sections: BTreeMap<String, ConfigSection>,
}

/// `$HERMES_HOME`, or `~/.hermes`.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HERMES_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".hermes")
}

const DEFAULTS: &str = "built-in defaults";
const DOTENV: &str = ".env file";
const ENVIRONMENT: &str = "environment";

/// A provider of string values for variables, keyed by their `config.toml` path.
struct Vars {
    name: &'static str,
    source: Option<PathBuf>,
    dict: Dict,
}

impl Provider for Vars {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.name);
        match &self.source {
            Some(path) => metadata.source(Source::File(path.clone())),
            None => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

fn path_of(section: &SchemaSection, setting: &Setting) -> String {
    if section.table.is_empty() {
        setting.key.to_string()
    } else {
        format!("{}.{}", section.table, setting.key)
    }
}

/// Puts `value` at the dotted `path` of `dict`.
fn insert(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

fn vars_provider(
    name: &'static str,
    source: Option<PathBuf>,
    schema: &Schema,
    vars: &BTreeMap<String, String>,
) -> Vars {
    let mut dict = Dict::new();
    for section in schema {
        for setting in section.settings {
            if let Some(value) = vars.get(setting.env) {
                insert(
                    &mut dict,
                    &path_of(section, setting),
                    Value::from(value.clone()),
                );
            }
        }
    }
    Vars { name, source, dict }
}

/// Text of a scalar (or a list of scalars, joined with commas) as the user wrote it.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => Some(match n.to_f64() {
            Some(f) if f.fract() != 0.0 => f.to_string(),
            _ => n
                .to_i128()
                .map(|i| i.to_string())
                .or_else(|| n.to_u128().map(|u| u.to_string()))
                .unwrap_or_default(),
        }),
        Value::Array(_, items) => items
            .iter()
            .map(as_text)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        Value::Empty(_, _) => Some(String::new()),
        Value::Dict(_, _) => None,
    }
}

impl Config {
    /// Loads the configuration of `home` with the given process environment.
    pub fn load(
        home: &Path,
        schema: &Schema,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let toml_path = home.join("config.toml");
        let env_path = home.join(".env");

        let mut defaults = Dict::new();
        for section in schema {
            for setting in section.settings {
                if let Some(default) = setting.default {
                    insert(
                        &mut defaults,
                        &path_of(section, setting),
                        Value::from(default.to_string()),
                    );
                }
            }
        }
        let dotenv = if env_path.exists() {
            crate::dotenv::read_env_file(&env_path).map_err(|e| {
                ConfigError::new(
                    ".env",
                    Some(Origin::DotEnv(env_path.clone())),
                    e.to_string(),
                )
            })?
        } else {
            BTreeMap::new()
        };
        let environment: BTreeMap<String, String> = environment.into_iter().collect();

        let figment = Figment::new()
            .merge(Serialized::defaults(defaults).profile(Profile::Default))
            .merge(Toml::file(&toml_path))
            .merge(vars_provider(
                DOTENV,
                Some(env_path.clone()),
                schema,
                &dotenv,
            ))
            .merge(vars_provider(ENVIRONMENT, None, schema, &environment));
        // Reading the whole tree surfaces a malformed config.toml once, with its path.
        figment.extract::<Dict>().map_err(|e| {
            ConfigError::new(
                "config.toml",
                Some(Origin::ConfigFile {
                    path: toml_path.clone(),
                    key: String::new(),
                }),
                e.to_string(),
            )
        })?;

        let mut tables: Vec<(&SchemaSection, BTreeMap<String, ConfigValue>)> = Vec::new();
        for section in schema {
            let mut values = BTreeMap::new();
            for setting in section.settings {
                let path = path_of(section, setting);
                let Ok(value) = figment.find_value(&path) else {
                    continue;
                };
                let origin = origin_of(figment.find_metadata(&path), &path);
                let Some(text) = as_text(&value) else {
                    return Err(ConfigError::new(
                        setting.env,
                        Some(origin),
                        format!("expected a single value for `{path}`, found a table"),
                    ));
                };
                let value = ConfigValue {
                    text,
                    origin,
                    secret: setting.secret,
                };
                values.insert(setting.env.to_string(), value);
            }
            tables.push((section, values));
        }
        // A variable several platforms read (the Twilio account's, for SMS and WhatsApp) has
        // one value: set in one platform's table of config.toml, it holds for the others.
        let mut set: BTreeMap<String, ConfigValue> = BTreeMap::new();
        for (_, values) in &tables {
            for (env, value) in values {
                if value.origin != Origin::Default {
                    set.entry(env.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        let mut sections = BTreeMap::new();
        for (section, mut values) in tables {
            for setting in section.settings {
                let unset = values
                    .get(setting.env)
                    .is_none_or(|value| value.origin == Origin::Default);
                if let (true, Some(value)) = (unset, set.get(setting.env)) {
                    values.insert(setting.env.to_string(), value.clone());
                }
            }
            sections.insert(section.name.clone(), ConfigSection::new(values));
        }
        Ok(Config {
            home: home.to_path_buf(),
            sections,
        })
    }

    /// The configuration folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The resolved settings of a section (empty if the schema had none).
    pub fn section(&self, name: &str) -> ConfigSection {
        self.sections.get(name).cloned().unwrap_or_default()
    }
}

fn origin_of(metadata: Option<&Metadata>, path: &str) -> Origin {
    let Some(metadata) = metadata else {
        return Origin::Default;
    };
    match (metadata.name.as_ref(), &metadata.source) {
        (DEFAULTS, _) => Origin::Default,
        (ENVIRONMENT, _) => Origin::Environment,
        (DOTENV, Some(Source::File(p))) => Origin::DotEnv(p.clone()),
        (_, Some(Source::File(p))) => Origin::ConfigFile {
            path: p.clone(),
            key: path.to_string(),
        },
        _ => Origin::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_api::{Setting, SettingKind};

    static SMS: &[Setting] = &[
        Setting::new("SMS_WEBHOOK_PORT", "webhook_port", "port")
            .default("8080")
            .kind(SettingKind::Port),
        Setting::new("TWILIO_PHONE_NUMBER", "phone_number", "number"),
        Setting::new("TWILIO_AUTH_TOKEN", "auth_token", "token").secret(),
        Setting::new("SMS_ALLOWED_USERS", "allowed_users", "list"),
    ];
    static HOST: &[Setting] =
        &[Setting::new("HERMES_AGENT", "agent.backend", "agent").default("echo")];

    fn schema() -> Schema {
        vec![
            SchemaSection {
                name: "sms".into(),
                table: "platforms.sms".into(),
                settings: SMS,
            },
            SchemaSection {
                name: "gateway".into(),
                table: String::new(),
                settings: HOST,
            },
        ]
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn later_sources_win_and_remember_where_they_came_from() {
        let home = tempfile::tempdir().unwrap();
        let load = |e: &[(&str, &str)]| {
            Config::load(home.path(), &schema(), env(e))
                .unwrap()
                .section("sms")
        };
        assert_eq!(load(&[]).text("SMS_WEBHOOK_PORT"), Some("8080"));
        assert_eq!(
            load(&[]).get("SMS_WEBHOOK_PORT").unwrap().origin,
            Origin::Default
        );

        std::fs::write(home.path().join("config.toml"), "[platforms.sms]\nwebhook_port = 9000\nallowed_users = [\"+15550001111\", \"+15550002222\"]\n").unwrap();
        let sms = load(&[]);
        assert_eq!(sms.text("SMS_WEBHOOK_PORT"), Some("9000"));
        assert!(
            matches!(&sms.get("SMS_WEBHOOK_PORT").unwrap().origin, Origin::ConfigFile { key, .. } if key == "platforms.sms.webhook_port")
        );
        assert_eq!(
            sms.text("SMS_ALLOWED_USERS"),
            Some("+15550001111,+15550002222")
        );

        std::fs::write(home.path().join(".env"), "# comment\nSMS_WEBHOOK_PORT=9100\nTWILIO_PHONE_NUMBER=+15551234567\nTWILIO_AUTH_TOKEN=12345\n").unwrap();
        let sms = load(&[]);
        assert_eq!(sms.text("SMS_WEBHOOK_PORT"), Some("9100"));
        assert_eq!(
            sms.get("SMS_WEBHOOK_PORT").unwrap().origin,
            Origin::DotEnv(home.path().join(".env"))
        );
        assert_eq!(sms.text("TWILIO_PHONE_NUMBER"), Some("+15551234567"));
        assert_eq!(sms.text("TWILIO_AUTH_TOKEN"), Some("12345"));

        let sms = load(&[("SMS_WEBHOOK_PORT", "9200"), ("TWILIO_AUTH_TOKEN", "00777")]);
        assert_eq!(sms.text("SMS_WEBHOOK_PORT"), Some("9200"));
        assert_eq!(
            sms.get("SMS_WEBHOOK_PORT").unwrap().origin,
            Origin::Environment
        );
        assert_eq!(sms.text("TWILIO_AUTH_TOKEN"), Some("00777"));
    }

    #[test]
    fn a_variable_two_platforms_read_set_in_one_table_holds_for_both() {
        static WHATSAPP: &[Setting] = &[
            Setting::new("TWILIO_AUTH_TOKEN", "auth_token", "token").secret(),
            Setting::new("SMS_WEBHOOK_PORT", "webhook_port", "port").default("8080"),
        ];
        let mut schema = schema();
        schema.push(SchemaSection {
            name: "whatsapp".into(),
            table: "platforms.whatsapp".into(),
            settings: WHATSAPP,
        });
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "[platforms.sms]\nauth_token = \"t0k3n\"\nwebhook_port = 9000\n",
        )
        .unwrap();
        let config = Config::load(home.path(), &schema, env(&[])).unwrap();
        let whatsapp = config.section("whatsapp");
        assert_eq!(whatsapp.text("TWILIO_AUTH_TOKEN"), Some("t0k3n"));
        assert!(
            matches!(&whatsapp.get("TWILIO_AUTH_TOKEN").unwrap().origin, Origin::ConfigFile { key, .. } if key == "platforms.sms.auth_token")
        );
        // Set over a default too, and never over what the platform's own table says.
        assert_eq!(whatsapp.text("SMS_WEBHOOK_PORT"), Some("9000"));
        std::fs::write(
            home.path().join("config.toml"),
            "[platforms.sms]\nauth_token = \"t0k3n\"\n[platforms.whatsapp]\nauth_token = \"other\"\n",
        )
        .unwrap();
        let config = Config::load(home.path(), &schema, env(&[])).unwrap();
        assert_eq!(
            config.section("whatsapp").text("TWILIO_AUTH_TOKEN"),
            Some("other")
        );
        assert_eq!(
            config.section("sms").text("TWILIO_AUTH_TOKEN"),
            Some("t0k3n")
        );
    }

    #[test]
    fn errors_name_the_variable_and_source() {
        let home = tempfile::tempdir().unwrap();
        let port_err = |e: &[(&str, &str)]| {
            let cfg = Config::load(home.path(), &schema(), env(e)).unwrap();
            cfg.section("sms")
                .port("SMS_WEBHOOK_PORT")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            port_err(&[("SMS_WEBHOOK_PORT", "80x")]),
            "SMS_WEBHOOK_PORT (from environment): expected a port number 0-65535, got \"80x\""
        );
        std::fs::write(home.path().join(".env"), "SMS_WEBHOOK_PORT=abc\n").unwrap();
        assert!(port_err(&[]).starts_with(&format!(
            "SMS_WEBHOOK_PORT (from {}): expected a port",
            home.path().join(".env").display()
        )));
        std::fs::remove_file(home.path().join(".env")).unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "[platforms.sms]\nwebhook_port = 99999\n",
        )
        .unwrap();
        let err = port_err(&[]);
        assert!(
            err.contains("config.toml key `platforms.sms.webhook_port`"),
            "{err}"
        );
        assert!(err.starts_with("SMS_WEBHOOK_PORT"));
    }

    #[test]
    fn malformed_config_toml_is_reported_with_its_path() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), "[platforms.sms\nport = ").unwrap();
        let err = Config::load(home.path(), &schema(), env(&[])).unwrap_err();
        assert_eq!(err.var, "config.toml");
        assert!(
            err.to_string()
                .contains(&home.path().join("config.toml").display().to_string())
        );
    }
}
