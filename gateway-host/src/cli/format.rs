//! `hermes format --platform NAME`: how a platform would send agent Markdown read on stdin,
//! files included (`MEDIA:` lines and Markdown images), without a store or the network.
use std::collections::HashMap;
use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use platform_api::media::{SendAs, human_size};
use platform_api::text::{MediaReply, MediaSource, extract_media};
use platform_api::{Part, PartMedia};

/// The encoding of a part the SMS platform sends as an MMS.
const MMS: &str = "MMS";

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
    let reply = extract_media(&markdown);
    let (media, sizes) = described(&reply);
    let formatted = reg.format_with_media(&reply.text, media);
    let parts = formatted.parts;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parts)?);
        return Ok(ExitCode::SUCCESS);
    }
    let size = |m: &PartMedia| match sizes.get(&m.token) {
        Some(Some(size)) => human_size(*size),
        _ => "size unknown".to_string(),
    };
    // An MMS is billed per message whatever its length, at its own price: counted apart.
    let is_mms = |part: &Part| part.encoding.as_deref() == Some(MMS);
    let mms = parts.iter().filter(|p| is_mms(p)).count();
    let segments: u32 = parts
        .iter()
        .filter(|p| !is_mms(p))
        .map(|p| p.segments)
        .sum();
    for (i, part) in parts.iter().enumerate() {
        let billed = match part.encoding.as_deref() {
            Some(MMS) => format!(" · {MMS} · 1 message"),
            Some(encoding) => format!(" · {encoding} · {} segment(s)", part.segments),
            None => format!(" · {} segment(s)", part.segments),
        };
        let files = match part.media.len() {
            0 => String::new(),
            n => format!(" · {n} file(s)"),
        };
        println!(
            "--- part {}/{}{billed} · {} chars{files}",
            i + 1,
            parts.len(),
            part.body.chars().count()
        );
        for m in &part.media {
            println!("[file: {}, {}, {}]", m.name, m.content_type, size(m));
        }
        println!("{}", part.body);
    }
    for r in &formatted.refused {
        println!("[not sent: {}: {}]", r.media.name, r.reason);
    }
    let billed = match (segments, mms) {
        (_, 0) => format!("{segments} segment(s)"),
        (0, mms) => format!("{mms} {MMS}"),
        (segments, mms) => format!("{segments} segment(s) and {mms} {MMS}"),
    };
    println!("--- {} part(s), {billed} billed", parts.len());
    Ok(ExitCode::SUCCESS)
}

/// The files `reply` names, as the gateway would describe them before sending: the name of
/// the path (or the URL's last segment), the type its extension says, and the size of a file
/// that exists here. Nothing is kept or fetched, so each file's token is where it comes from,
/// and the sizes known are returned by token.
fn described(reply: &MediaReply) -> (Vec<PartMedia>, HashMap<String, Option<u64>>) {
    let mut sizes = HashMap::new();
    let media = reply
        .media
        .iter()
        .map(|media| {
            let (token, name, size) = match &media.source {
                MediaSource::Path(path) => (
                    path.display().to_string(),
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "file".into()),
                    std::fs::metadata(path)
                        .ok()
                        .filter(|m| m.is_file())
                        .map(|m| m.len()),
                ),
                MediaSource::Url(url) => (
                    url.clone(),
                    url::Url::parse(url)
                        .map(|u| crate::media::resolve::url_name(&u))
                        .unwrap_or_else(|_| "file".into()),
                    None,
                ),
            };
            let content_type = crate::media::content_type_of(&name);
            sizes.insert(token.clone(), size);
            PartMedia {
                send_as: SendAs::of(&content_type, reply.as_document, reply.audio_as_voice),
                token,
                name,
                content_type,
                size: size.unwrap_or(0),
                bytes: None,
                url: None,
            }
        })
        .collect();
    (media, sizes)
}
