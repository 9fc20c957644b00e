//! `hermes gateway doctor [--fix]`: checks the configuration of the host and of every
//! registered platform, the shared database when there is one (reachable, schema version, the
//! gateways alive on it), the inbound journal and the agent (the persona's source; the
//! server, the model and Hermes Agent's session header: [`crate::agent::checkup`]), then runs
//! the live account checks that an enabled platform offers in its
//! [`platform_api::OperatorGuide`] (for SMS: credentials, number, Messaging webhook).
//! Each line says ok or what is wrong and how to fix it; the exit code is 0 only when nothing is.
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use hermes_config::Config;
use platform_api::{Check, ConfigError, Origin, operator_guide, registrations};

use crate::config::load_config;
use crate::runtime::ingress::JOURNAL_FILE;
use crate::services::open_store;
use crate::settings::{self, HOST, HOST_SETTINGS};
use crate::store::journal::{Position, count_unimported, dropped_path};
use crate::store::{Checks, Store, Transport};

/// Options of `hermes gateway doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Repair what can be repaired through the platform's API (for SMS: the number's
    /// Messaging webhook URL and method), then check again.
    #[arg(long)]
    fix: bool,
}

/// With `HERMES_DATABASE_URL` set: whether the database is reachable, its schema version and
/// the gateways alive on it, with the opened store for the other checks; nothing without it.
pub fn database_checks(config: &Config) -> (Vec<Check>, Option<Store>) {
    const SUBJECT: &str = "database";
    let host = config.section(HOST);
    let url = match host.database_url(settings::DATABASE_URL.env) {
        Ok(Some(url)) => url,
        // A bad value is reported with the other settings.
        Ok(None) | Err(_) => return (Vec::new(), None),
    };
    let shown = platform_api::redact_database_url(&url);
    let store = match open_store(config) {
        Ok(store) => store,
        Err(e) => {
            let error = format!("{e:#}");
            let fix = connect_fix(&error, &shown, settings::DATABASE_URL.env);
            return (vec![Check::problem(SUBJECT, error, fix)], None);
        }
    };
    let mut checks = vec![match store.schema_version() {
        Ok(version) => Check::ok(
            SUBJECT,
            format!("PostgreSQL at {shown} reachable, schema version {version}"),
        ),
        Err(e) => Check::problem(
            SUBJECT,
            format!("PostgreSQL at {shown}: {e}"),
            "start a gateway once: it creates and migrates the schema",
        ),
    }];
    checks.push(transport_check(&store, settings::DATABASE_URL.env));
    let now = store.now();
    // Named when the store was opened above.
    let this_home = crate::services::replica_name(config.home()).unwrap_or_default();
    checks.push(match store.replicas() {
        Ok(live) if live.is_empty() => Check::ok("gateways", "none running on this database"),
        Ok(live) => Check::ok(
            "gateways",
            format!(
                "{} alive: {}",
                live.len(),
                live.iter()
                    .map(|r| format!(
                        "{}{} (up {}, seen {:.1}s ago)",
                        r.home,
                        if r.home == this_home {
                            ", this home"
                        } else {
                            ""
                        },
                        human_age(now - r.started_at),
                        (now - r.seen_at) as f64 / 1000.0
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => Check::problem(
            "gateways",
            e.to_string(),
            "the database answered a moment ago: run the doctor again",
        ),
    });
    (checks, Some(store))
}

/// What to do when the database cannot be opened, from what went wrong.
fn connect_fix(error: &str, shown: &str, variable: &str) -> String {
    if error.contains("invalid peer certificate") {
        format!(
            "the server's certificate is not one {variable} trusts: set sslrootcert=/path/to/ca.pem to the authority that signed it, and with sslmode=verify-full use a host name the certificate names"
        )
    } else if error.contains("sslrootcert ") {
        // The file named by the URL's `sslrootcert=` could not be used.
        format!(
            "sslrootcert in {variable} must name a readable PEM file holding the certificate of the authority that signed the server's certificate"
        )
    } else if error.contains("does not support TLS") {
        format!(
            "the server does not offer TLS: turn on ssl in its postgresql.conf (with a certificate), or take sslmode=require/verify-ca/verify-full out of {variable}"
        )
    } else {
        format!(
            "check that PostgreSQL runs and takes connections from this machine at {shown} (host, port, pg_hba.conf), and the user, password and database in {variable}"
        )
    }
}

/// Whether the connection to a shared database is encrypted and its server authenticated.
fn transport_check(store: &Store, variable: &str) -> Check {
    match store.transport() {
        Ok(Some(transport)) => transport_verdict(&transport, variable),
        Ok(None) => Check::ok(TRANSPORT, "a file on this machine"),
        Err(e) => Check::problem(
            TRANSPORT,
            e.to_string(),
            "the database answered a moment ago: run the doctor again",
        ),
    }
}

/// The doctor's subject for the database connection.
const TRANSPORT: &str = "database connection";

/// A connection is a problem when it crosses a network without being both encrypted and sure
/// of the server it talks to ([`Transport::exposed`]).
fn transport_verdict(transport: &Transport, variable: &str) -> Check {
    const SUBJECT: &str = TRANSPORT;
    const VERIFY: &str = "?sslmode=verify-full&sslrootcert=/path/to/ca.pem";
    let checks = transport.checks.describe();
    let encrypted = transport
        .tls
        .as_ref()
        .map(|version| format!("encrypted ({version}), {checks}"));
    if !transport.exposed() {
        return Check::ok(
            SUBJECT,
            match encrypted {
                Some(shown) if transport.checks == Checks::ChainAndName => shown,
                Some(shown) => format!("{shown}; the server is on this machine"),
                None => {
                    "not encrypted; the server is on this machine, so nothing crosses a network"
                        .to_string()
                }
            },
        );
    }
    match &transport.tls {
        Some(version) => Check::problem(
            SUBJECT,
            format!(
                "encrypted ({version}), but the {checks}: whoever can reach the network between the two machines could pose as the server"
            ),
            format!(
                "add {VERIFY} to {variable} (the certificate of the authority that signed the server's certificate; sslrootcert=system for a public one)"
            ),
        ),
        None => Check::problem(
            SUBJECT,
            "not encrypted: messages and phone numbers cross the network in the clear",
            format!("turn on ssl in the server's postgresql.conf and add {VERIFY} to {variable}"),
        ),
    }
}

/// A duration in milliseconds as a person would say it: `42s`, `7m`, `3h`, `2d`.
fn human_age(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Checks the inbound journal of `home`: what waits there to be imported into the database, and
/// bytes that a start after a crash cut from its end. Reads only: the gateway may be running.
/// With a shared database (`shared`) its import position is read there.
pub fn journal_checks(home: &Path, shared: Option<&Store>) -> Vec<Check> {
    const SUBJECT: &str = "inbound journal";
    let path = home.join(JOURNAL_FILE);
    let position = match shared {
        Some(store) => store.journal_position().map(Some),
        None => Store::read_journal_position(&home.join("gateway.db")),
    };
    let imported = match position {
        Ok(position) => position.unwrap_or(Position {
            generation: 0,
            offset: 0,
        }),
        Err(e) => {
            return vec![Check::problem(
                SUBJECT,
                format!("cannot read how far it is imported: {e}"),
                "check the database (gateway.db's permissions and the disk, or the database line above); `hermes gateway` says more when it starts",
            )];
        }
    };
    let mut checks = vec![match count_unimported(&path, imported) {
        Ok(None) => Check::ok(SUBJECT, "none yet (created when the gateway first runs)"),
        Ok(Some(0)) => Check::ok(SUBJECT, "every acknowledged message is in the database"),
        Ok(Some(n)) => Check::ok(
            SUBJECT,
            format!(
                "{n} acknowledged message(s) not in the database yet: the gateway imports them while it runs, or when it starts"
            ),
        ),
        Err(e) => Check::problem(
            SUBJECT,
            e.to_string(),
            format!(
                "stop the gateway, move {} aside and start it again; acknowledged messages still in it can be recovered from the moved file",
                path.display()
            ),
        ),
    }];
    let dropped = dropped_path(&path);
    if let Ok(meta) = std::fs::metadata(&dropped) {
        checks.push(Check::problem(
            SUBJECT,
            format!(
                "{} holds {} byte(s) cut from the journal's end when the gateway started after a crash",
                dropped.display(),
                meta.len()
            ),
            "a webhook whose write a crash cut short was never acknowledged, and Twilio retried it; only after a power loss can these bytes hold more: look, then delete the file",
        ));
    }
    checks
}

/// The last 24 hours of outgoing parts by delivery status and error code, each code with what
/// it means and what to do (from the platform, when it knows); empty without a database. With
/// a shared database (`shared`) they are read there.
pub fn delivery_lines(config: &Config, shared: Option<&Store>) -> anyhow::Result<Vec<String>> {
    let path = config.home().join("gateway.db");
    let store = match shared {
        Some(store) => store.clone(),
        None if !path.exists() => return Ok(Vec::new()),
        None => Store::open(&path)?,
    };
    let since = store.now() - 24 * 3_600_000;
    let summary = store.delivery_summary(since)?;
    let mut lines = Vec::new();
    for row in summary {
        let platform = registrations()
            .into_iter()
            .find(|r| r.name == row.platform)
            .and_then(|r| (r.build)(&config.section(r.name)).ok());
        let kind = if row.mms { " MMS" } else { "" };
        let mut line = format!("{:>6}  {}{kind} {}", row.count, row.platform, row.outcome);
        if let Some(code) = row.code {
            line.push_str(&format!(" (code {code})"));
            if let Some(advice) = platform.as_ref().and_then(|p| p.advice(code)) {
                line.push_str(&format!(": {}", advice.text));
            }
        }
        lines.push(line);
    }
    Ok(lines)
}

/// Checks the host's own settings and whether each registered platform is enabled and builds.
pub fn configuration_checks(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let host = config.section(HOST);
    let mut host_ok = true;
    for setting in HOST_SETTINGS {
        let Some(value) = host.get(setting.env) else {
            continue;
        };
        if let Err(reason) = setting.validate(&value.text) {
            host_ok = false;
            let reason = if setting.secret {
                "invalid value (not shown: it is secret)".to_string()
            } else {
                reason
            };
            checks.push(Check::problem(
                "gateway",
                format!("{} (from {}): {reason}", setting.env, value.origin),
                format!(
                    "correct {} in {}",
                    setting.env,
                    where_to_edit(&value.origin)
                ),
            ));
        }
    }
    if host_ok {
        checks.push(Check::ok("gateway", "settings valid"));
    }
    let mut enabled = 0;
    for registration in registrations() {
        let section = config.section(registration.name);
        if let Err(why) = (registration.enabled)(&section) {
            checks.push(Check::skipped(
                registration.name,
                format!("not enabled ({why})"),
            ));
            continue;
        }
        enabled += 1;
        match (registration.build)(&section) {
            Ok(_) if registration.stub => checks.push(Check::ok(
                registration.name,
                "enabled, settings valid (a stub: sending is not implemented yet)",
            )),
            Ok(_) => checks.push(Check::ok(registration.name, "enabled, settings valid")),
            Err(err) => checks.push(Check::problem(
                registration.name,
                err.to_string(),
                config_fix(&err, registration.name),
            )),
        }
    }
    if enabled == 0 {
        checks.push(Check::problem(
            "platforms",
            "no platform is enabled, so `hermes gateway` has nothing to run",
            "run `hermes gateway setup`",
        ));
    }
    checks
}

/// How to repair a platform setting that is missing or invalid.
fn config_fix(err: &ConfigError, platform: &str) -> String {
    match &err.origin {
        None => format!(
            "set {} (`hermes gateway setup --platform {platform}` asks for it)",
            err.var
        ),
        Some(origin) => format!(
            "correct {} in {} (`hermes gateway setup --platform {platform}` checks each value)",
            err.var,
            where_to_edit(origin)
        ),
    }
}

fn where_to_edit(origin: &Origin) -> String {
    match origin {
        Origin::Environment => "the environment".to_string(),
        other => other.to_string(),
    }
}

/// Runs `hermes gateway doctor`.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let config = load_config()?;
    let mut problems = 0;
    let mut report = |checks: &[Check]| {
        for check in checks {
            problems += usize::from(check.is_problem());
            for line in check.to_string().lines() {
                println!("  {line}");
            }
        }
    };
    println!("Configuration ({})", config.home().display());
    let checks = configuration_checks(&config);
    report(&checks);
    let (checks, shared) = database_checks(&config);
    report(&checks);
    report(&journal_checks(config.home(), shared.as_ref()));
    println!("\nDeliveries in the last 24 hours (parts by delivery status, or state)");
    match delivery_lines(&config, shared.as_ref()) {
        Ok(lines) if lines.is_empty() => println!("  none"),
        Ok(lines) => {
            for line in lines {
                println!("  {line}");
            }
        }
        Err(e) => println!("  cannot read the database: {e:#}"),
    }

    crate::install_crypto();
    let system = actix_rt::System::new();
    println!("\nAgent");
    report(&system.block_on(crate::agent::checkup::checks(&config)));

    // Account checks run only for platforms whose settings are complete and valid.
    let ready: Vec<_> = registrations()
        .into_iter()
        .filter(|r| {
            let section = config.section(r.name);
            (r.enabled)(&section).is_ok() && (r.build)(&section).is_ok()
        })
        .filter_map(|r| operator_guide(r.name).map(|g| (r, g)))
        .collect();
    if !ready.is_empty() {
        for (registration, guide) in ready {
            println!("\n{} account", registration.label);
            let section = config.section(registration.name);
            let checks = system.block_on((guide.checkup)(&section, args.fix));
            report(&checks);
        }
    }
    if problems == 0 {
        println!("\nAll checks passed.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\n{problems} problem(s) found; each says how to fix it.");
        Ok(ExitCode::from(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings;

    #[test]
    fn a_database_across_a_network_must_be_encrypted_and_verified() {
        let transport = |tls: Option<&str>, checks, local| Transport {
            tls: tls.map(str::to_string),
            checks,
            local,
        };
        let verdict = |tls: Option<&str>, checks, local| {
            transport_verdict(&transport(tls, checks, local), "HERMES_DATABASE_URL")
        };
        let ok = |check: Check| matches!(check.verdict, platform_api::Verdict::Ok(_));
        assert!(ok(verdict(Some("TLSv1.3"), Checks::ChainAndName, false)));
        assert!(ok(verdict(Some("TLSv1.3"), Checks::Nothing, true)));
        assert!(ok(verdict(None, Checks::Nothing, true)));
        let exposed = |tls: Option<&str>, checks, local| transport(tls, checks, local).exposed();
        assert!(!exposed(Some("TLSv1.3"), Checks::ChainAndName, false));
        assert!(!exposed(None, Checks::Nothing, true));
        assert!(exposed(Some("TLSv1.3"), Checks::Chain, false));
        assert!(exposed(None, Checks::ChainAndName, false));
        for (tls, checks) in [
            (Some("TLSv1.3"), Checks::Nothing),
            (Some("TLSv1.2"), Checks::Chain),
            (None, Checks::Nothing),
            (None, Checks::ChainAndName),
        ] {
            let check = verdict(tls, checks, false);
            let platform_api::Verdict::Problem { fix, .. } = &check.verdict else {
                panic!("{tls:?} {checks:?} across a network: {check:?}");
            };
            assert!(fix.contains("sslmode=verify-full"), "{fix}");
            assert!(fix.contains("HERMES_DATABASE_URL"), "{fix}");
        }
    }

    #[test]
    fn a_refused_certificate_is_explained_as_one() {
        let fix = |error: &str| connect_fix(error, "postgres://u:***@db/x", "HERMES_DATABASE_URL");
        assert!(
            fix(
                "database: error performing TLS handshake: invalid peer certificate: UnknownIssuer"
            )
            .contains("sslrootcert=")
        );
        assert!(
            fix("database: error performing TLS handshake: server does not support TLS")
                .contains("turn on ssl")
        );
        assert!(
            fix("database: error connecting to server: Connection refused").contains("pg_hba.conf")
        );
        assert!(
            fix("database: sslrootcert /etc/ca.pem: No such file or directory")
                .contains("readable PEM file")
        );
    }

    fn load(env: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let home = tempfile::tempdir().unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::load(home.path(), &settings::schema(), env).unwrap();
        (home, config)
    }

    fn line(checks: &[Check], subject: &str) -> String {
        checks
            .iter()
            .filter(|c| c.subject == subject)
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn nothing_enabled_is_a_problem_with_a_way_out() {
        let (_home, config) = load(&[]);
        let checks = configuration_checks(&config);
        assert!(line(&checks, "gateway").starts_with("ok"));
        assert!(line(&checks, "sms").starts_with("skipped  sms: not enabled"));
        assert!(line(&checks, "platforms").contains("run `hermes gateway setup`"));
    }

    #[test]
    fn a_bad_setting_is_named_with_its_source_and_a_fix() {
        let (_home, config) = load(&[
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_AUTH_TOKEN", "secret-token"),
            ("TWILIO_PHONE_NUMBER", "+15551234567"),
            ("HERMES_AGENT", "gpt"),
        ]);
        let checks = configuration_checks(&config);
        let sms = line(&checks, "sms");
        assert!(sms.starts_with("problem  sms: SMS_WEBHOOK_URL"), "{sms}");
        assert!(sms.contains("fix: set SMS_WEBHOOK_URL"), "{sms}");
        let gateway = line(&checks, "gateway");
        assert!(
            gateway.contains("HERMES_AGENT (from environment)")
                && gateway.contains("fix: correct HERMES_AGENT in the environment"),
            "{gateway}"
        );
        assert!(
            !checks
                .iter()
                .any(|c| c.to_string().contains("secret-token"))
        );
        assert!(line(&checks, "platforms").is_empty());
    }
}
