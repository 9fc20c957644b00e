//! `hermes format --platform NAME`: how a platform would send agent Markdown read on stdin.
use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// `hermes format`.
#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Registered platform name (see `hermes platforms`).
    #[arg(long)]
    platform: String,
    /// Print the parts as a JSON array.
    #[arg(long)]
    json: bool,
}

/// Runs `hermes format`: prints the parts, their encoding and billed segments, and the files
/// a part carries (an MMS is billed as one message).
pub fn run(args: FormatArgs) -> anyhow::Result<ExitCode> {
    let reg = super::known_platform(&args.platform)?;
    let mut markdown = String::new();
    std::io::stdin()
        .read_to_string(&mut markdown)
        .context("reading Markdown from stdin")?;
    let parts = (reg.format)(&markdown);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parts)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: u32 = parts.iter().map(|p| p.segments).sum();
    for (i, part) in parts.iter().enumerate() {
        let encoding = part
            .encoding
            .as_deref()
            .map(|e| format!(" · {e}"))
            .unwrap_or_default();
        let files = match part.media.len() {
            0 => String::new(),
            n => format!(" · {n} file(s)"),
        };
        println!(
            "--- part {}/{}{encoding} · {} segment(s) · {} chars{files}",
            i + 1,
            parts.len(),
            part.segments,
            part.body.chars().count()
        );
        for m in &part.media {
            println!(
                "[file: {}, {}, {}]",
                m.name,
                m.content_type,
                platform_api::media::human_size(m.size)
            );
        }
        println!("{}", part.body);
    }
    println!("--- {} part(s), {total} segment(s) billed", parts.len());
    Ok(ExitCode::SUCCESS)
}
