//! `hermes platforms`: the registered platforms and whether they are enabled, or with
//! `--settings` every setting as a Markdown reference table.
use std::process::ExitCode;

use clap::Args;
use hermes_config::Config;
use platform_api::registrations;

use crate::config::load_config;
use crate::settings;

/// `hermes platforms`.
#[derive(Args, Debug)]
pub struct PlatformsArgs {
    /// Print every setting (host and platforms) as a Markdown reference table instead.
    #[arg(long)]
    settings: bool,
}

/// Runs `hermes platforms`.
pub fn run(args: PlatformsArgs) -> anyhow::Result<ExitCode> {
    if args.settings {
        print!("{}", settings_reference());
    } else {
        let config = load_config()?;
        print!("{}", platforms_table(&config));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every setting as a Markdown table: the README's configuration reference.
pub fn settings_reference() -> String {
    let mut out = String::from(
        "| variable | `config.toml` key | required | default | meaning |\n|---|---|---|---|---|\n",
    );
    for section in settings::schema() {
        for s in section.settings {
            let path = if section.table.is_empty() {
                s.key.to_string()
            } else {
                format!("{}.{}", section.table, s.key)
            };
            let key = match path.rsplit_once('.') {
                Some((table, key)) => format!("[{table}] {key}"),
                None => path,
            };
            let mut flags = if s.required { "yes" } else { "no" }.to_string();
            if s.secret {
                flags.push_str(", secret");
            }
            out.push_str(&format!(
                "| `{}` | `{key}` | {flags} | {} | {} |\n",
                s.env,
                s.default.map(|d| format!("`{d}`")).unwrap_or_default(),
                s.help.replace('|', "\\|")
            ));
        }
    }
    out
}

/// The `hermes platforms` table.
pub fn platforms_table(config: &Config) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "LABEL".to_string(),
        "STATUS".to_string(),
        "DETAIL".to_string(),
    ]];
    for reg in registrations() {
        let section = config.section(reg.name);
        let (status, mut detail) = match (reg.enabled)(&section) {
            Err(why) => ("disabled", why),
            Ok(()) => match (reg.build)(&section) {
                Ok(_) => ("enabled", String::new()),
                Err(e) => ("error", e.to_string()),
            },
        };
        if reg.stub {
            detail = [detail.as_str(), "stub: sending not implemented yet"]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("; ");
        }
        rows.push([
            reg.name.to_string(),
            reg.label.to_string(),
            status.to_string(),
            detail,
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
            .trim_end()
            .to_string()
                + "\n"
        })
        .collect()
}
