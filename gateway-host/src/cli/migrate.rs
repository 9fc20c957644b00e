//! `hermes migrate --to URL`: copies a single-node home (`$HERMES_HOME/gateway.db`) into an
//! empty PostgreSQL database, the step from one gateway to several sharing that database.
//!
//! The copying itself is [`crate::store::migrate`]. This first makes sure the home can be
//! copied as it stands: no gateway running on it (what it wrote after the copy would be left
//! behind) and every acknowledged message imported from the inbound journal (the journal is
//! local to this home: a message still in it would never reach the shared database).
use std::fs::{File, TryLockError};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use hermes_config::Config;
use platform_api::redact_database_url;

use crate::runtime::ingress::JOURNAL_FILE;
use crate::services::replica_name;
use crate::settings::{self, HOST};
use crate::store::Store;
use crate::store::journal::{Position, count_unimported};
use crate::store::migrate::{self, MigrateError};

/// Copy this home's SQLite database into PostgreSQL, to run several gateways on it.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into, postgres://USER:PASSWORD@HOST:5432/DB (default:
    /// HERMES_DATABASE_URL); it must not hold a gateway's data yet.
    #[arg(long, value_name = "URL")]
    to: Option<String>,
}

/// Runs `hermes migrate`.
pub fn run(config: &Config, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = target(config, args.to)?;
    let shown = redact_database_url(&url);
    let home = config.home();
    let source = home.join("gateway.db");
    if !source.exists() {
        bail!(
            "{} does not exist: nothing to migrate (HERMES_HOME is {}; set HERMES_HOME to the home the gateway ran with)",
            source.display(),
            home.display()
        );
    }
    // Held until the copy is made: a gateway cannot start on this home meanwhile.
    let _journal = hold_journal(&home.join(JOURNAL_FILE))?;
    check_journal_imported(home, &source)?;

    // An older home is brought to this version's schema first: the copy reads every table.
    drop(Store::open(&source).with_context(|| format!("opening {}", source.display()))?);
    let name = replica_name(home)?;
    // Opening it as a store creates (or upgrades) the schema the copy fills.
    drop(
        Store::postgres(&url, &name, &name)
            .with_context(|| format!("opening the PostgreSQL database {shown}"))?,
    );
    let copied = match migrate::copy(&source, &url) {
        Ok(copied) => copied,
        Err(MigrateError::NotEmpty(tables)) => bail!(
            "{shown} already holds a gateway's data (rows in {}): nothing was copied. hermes migrate copies only into an empty database and never overwrites: give --to a new, empty database (or schema)",
            tables.join(", ")
        ),
        Err(e @ MigrateError::OldSource(_)) => bail!(
            "{e}: start `hermes gateway` on this home once so that it upgrades gateway.db, stop it, then run hermes migrate again"
        ),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "copying {} into {shown} (nothing was copied)",
                    source.display()
                )
            });
        }
    };

    println!("Copied {} into {shown}:", source.display());
    for (table, rows) in &copied.tables {
        println!("  {table:<16} {rows:>9} rows");
    }
    if copied.interrupted > 0 {
        println!(
            "{} part(s) were being sent when the gateway stopped: they are marked ambiguous and looked up at the provider (recorded as sent if found, sent once more if not), never re-sent blindly.",
            copied.interrupted
        );
    }
    println!(
        "\nNext: set {} in {} (the same URL for every gateway sharing the database) and restart the gateway. gateway.db is left as it was: keep it as a backup, the gateway no longer uses it.",
        settings::DATABASE_URL.env,
        home.join(".env").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The database to copy into: `--to`, else the configured `HERMES_DATABASE_URL`.
fn target(config: &Config, to: Option<String>) -> anyhow::Result<String> {
    if let Some(url) = to {
        settings::DATABASE_URL
            .validate(&url)
            .map_err(|why| anyhow!("--to: {why}"))?;
        return Ok(url.trim().to_string());
    }
    config
        .section(HOST)
        .database_url(settings::DATABASE_URL.env)?
        .ok_or_else(|| {
            anyhow!(
                "no database to copy into: give --to postgres://USER:PASSWORD@HOST:5432/DB, or set {}",
                settings::DATABASE_URL.env
            )
        })
}

/// Takes a shared lock on the inbound journal, which a running gateway holds exclusively;
/// `None` when there is no journal yet.
fn hold_journal(path: &Path) -> anyhow::Result<Option<File>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => bail!(
            "a gateway is running with this HERMES_HOME ({} is locked): stop it, then run hermes migrate again (what it wrote after a copy would be left behind)",
            path.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Refuses while the inbound journal holds acknowledged messages that are not in gateway.db:
/// the copy would leave them behind.
fn check_journal_imported(home: &Path, source: &Path) -> anyhow::Result<()> {
    let journal = home.join(JOURNAL_FILE);
    let imported = Store::read_journal_position(source)
        .with_context(|| format!("reading {}", source.display()))?
        .unwrap_or(Position {
            generation: 0,
            offset: 0,
        });
    match count_unimported(&journal, imported) {
        Ok(None | Some(0)) => Ok(()),
        Ok(Some(n)) => bail!(
            "{} holds {n} acknowledged message(s) not imported into gateway.db yet: start `hermes gateway` on this home once (it imports them when it starts), stop it, then run hermes migrate again",
            journal.display()
        ),
        Err(e) => bail!(
            "{e}: the journal cannot be checked, so nothing was copied (`hermes gateway doctor` says more)"
        ),
    }
}
