//! `hermes gateway --sandbox`: the real gateway against a provider emulator served by the same
//! process, with the terminal as the user's phone. Typed lines become signed inbound webhooks;
//! every message the gateway sends back is printed with its part number and billed segments,
//! and a reply shown while it is written (a Telegram draft, a Discord message edited) is
//! printed each time it grows.
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

use anyhow::{Context, bail};
use hermes_config::{Config, default_home};
use platform_api::sandbox::{SandboxFile, SandboxReply, SandboxStatus, sandbox_providers};
use tokio::sync::oneshot;

use crate::settings::{self, HOST};

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Copies the user's configuration files into the throwaway home, so that the configured agent
/// answers while state stays out of the real `gateway.db`.
fn copy_config(from: &Path, to: &Path) -> anyhow::Result<()> {
    for name in ["config.toml", ".env"] {
        let source = from.join(name);
        if source.exists() {
            std::fs::copy(&source, to.join(name))
                .with_context(|| format!("copying {}", source.display()))?;
        }
    }
    Ok(())
}

/// The part label a reply carries (`2/3`), `1/1` for a single part.
fn part_of(reply: &SandboxReply) -> &str {
    reply
        .body
        .rsplit_once(" (")
        .and_then(|(_, tail)| tail.strip_suffix(')'))
        .filter(|t| {
            t.split_once('/')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        })
        .unwrap_or("1/1")
}

/// A reply as the terminal shows it: its part and, where the platform bills by encoding and
/// segment (SMS), what it costs; then a line for each file it carries.
fn describe(reply: &SandboxReply) -> String {
    let part = part_of(reply);
    let mut line = match reply.encoding.as_deref() {
        None => format!("← [part {part}] {}", reply.body),
        // An MMS is billed per message, whatever its length.
        Some("MMS") => format!("← [part {part} · MMS] {}", reply.body),
        Some(encoding) => {
            let unit = if reply.segments == 1 {
                "segment"
            } else {
                "segments"
            };
            format!(
                "← [part {part} · {encoding} · {} {unit}] {}",
                reply.segments, reply.body
            )
        }
    };
    for file in &reply.media {
        line.push_str("\n  ");
        line.push_str(&describe_file(file));
    }
    line
}

/// A file as the terminal shows it: `[image: chart.png, image/png, 48 KB]`.
fn describe_file(file: &SandboxFile) -> String {
    let kind = match file.content_type.split('/').next().unwrap_or("") {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "file",
    };
    format!(
        "[{kind}: {}, {}, {}]",
        file.name,
        file.content_type,
        platform_api::media::human_size(file.size)
    )
}

/// What `/attach PATH [caption]` sends: the file as the user's attachment, the rest of the line
/// as its text.
fn attachment(line: &str) -> Option<anyhow::Result<(SandboxFile, Vec<u8>, String)>> {
    let rest = line.strip_prefix("/attach")?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let rest = rest.trim();
    let (path, caption) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if path.is_empty() {
        return Some(Err(anyhow::anyhow!("usage: /attach PATH [caption]")));
    }
    let read = std::fs::read(path).with_context(|| format!("reading {path}"));
    Some(read.map(|bytes| {
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_string());
        let file = SandboxFile {
            content_type: crate::media::content_type_of(&name),
            name,
            size: bytes.len() as u64,
        };
        (file, bytes, caption.trim().to_string())
    }))
}

/// A reply shown again as it grows (a draft updated, a message edited).
fn describe_update(update: &SandboxReply) -> String {
    format!("✎ {}", update.body)
}

/// A delivery report worth showing: where a part ended up (not the intermediate `sent`), and
/// WhatsApp's read receipt.
fn describe_status(status: &SandboxStatus) -> Option<String> {
    let part = part_of(&status.reply);
    match (status.status.as_str(), status.error_code) {
        ("delivered", _) => Some(format!("  ✓ part {part} delivered")),
        ("read", _) => Some(format!("  ✓ part {part} read")),
        ("undelivered" | "failed", Some(code)) => {
            Some(format!("  ✗ part {part} {} (error {code})", status.status))
        }
        ("undelivered" | "failed", None) => Some(format!("  ✗ part {part} {}", status.status)),
        _ => None,
    }
}

/// The platform `hermes gateway --sandbox` emulates when none is named.
const DEFAULT_PLATFORM: &str = "sms";

/// Runs the sandbox for `platform` (SMS, or the only platform that has a sandbox, when none
/// is named).
pub fn run(platform: Option<&str>) -> anyhow::Result<()> {
    let providers = sandbox_providers();
    let provider = match platform {
        Some(name) => providers.iter().find(|p| p.platform == name).copied(),
        // SMS is the loop the quick start shows; other platforms are asked for by name.
        None => providers
            .iter()
            .find(|p| p.platform == DEFAULT_PLATFORM)
            .or(providers.first())
            .copied(),
    };
    let Some(provider) = provider else {
        let names: Vec<&str> = providers.iter().map(|p| p.platform).collect();
        bail!(
            "no sandbox for {:?}; platforms with a sandbox: {}",
            platform.unwrap_or(""),
            names.join(", ")
        );
    };
    let port = free_port()?;
    let sandbox = (provider.start)(port).map_err(|e| anyhow::anyhow!("{e}"))?;

    let home = tempfile::Builder::new()
        .prefix("hermes-sandbox-")
        .tempdir()?;
    copy_config(&default_home(), home.path())?;
    let mut environment: Vec<(String, String)> = std::env::vars().collect();
    environment.extend(sandbox.settings());
    let config = Config::load(home.path(), &settings::schema(), environment)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let json = config
        .section(HOST)
        .choice(settings::LOG_FORMAT.env, &["text", "json"])?;
    if std::env::var_os("RUST_LOG").is_none() {
        // The terminal is the phone: only problems are logged unless RUST_LOG asks for more.
        // SAFETY: set before any other thread starts.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    crate::logging::init(json.as_deref() == Some("json"));
    crate::install_crypto();

    let agent = config
        .section(HOST)
        .text(settings::AGENT.env)
        .unwrap_or("echo")
        .to_string();
    println!(
        "hermes sandbox: {} against a local emulator, agent: {agent}",
        provider.platform
    );
    println!(
        "You are {}, texting {}. Type a message and press Enter; Ctrl-D quits.",
        sandbox.user(),
        sandbox.address()
    );
    sandbox.on_reply(Box::new(|reply| println!("{}", describe(&reply))));
    sandbox.on_update(Box::new(|update| println!("{}", describe_update(&update))));
    sandbox.on_status(Box::new(|status| {
        if let Some(line) = describe_status(&status) {
            println!("{line}");
        }
    }));

    let gateway = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (quit, quit_rx) = oneshot::channel::<()>();
    let sandbox = std::sync::Arc::new(sandbox);
    let phone = sandbox.clone();
    std::thread::spawn(move || {
        // Lines typed before the gateway listens wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !phone.polled()
            && std::net::TcpStream::connect(gateway).is_err()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let sent = match attachment(text) {
                Some(Ok((file, bytes, caption))) => {
                    println!("→ {} {caption}", describe_file(&file));
                    phone.send_file_as_user(gateway, &file, bytes, &caption)
                }
                Some(Err(e)) => Err(format!("{e:#}")),
                None => {
                    println!("→ {text}");
                    phone.send_as_user(gateway, text)
                }
            };
            if let Err(e) = sent {
                println!("! not delivered: {e}");
            }
        }
        let _ = quit.send(());
    });
    let shutdown = async move {
        tokio::select! {
            _ = quit_rx => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    actix_rt::System::new().block_on(crate::runtime::run_until(config, shutdown))?;
    println!("sandbox closed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_show_part_encoding_and_segments() {
        let reply = |body: &str, segments| SandboxReply {
            chat: "+15555550100".into(),
            body: body.into(),
            encoding: Some("GSM-7".into()),
            segments,
            media: Vec::new(),
        };
        assert_eq!(
            describe(&reply("You said: hi", 1)),
            "← [part 1/1 · GSM-7 · 1 segment] You said: hi"
        );
        assert_eq!(
            describe(&reply("long text (2/3)", 3)),
            "← [part 2/3 · GSM-7 · 3 segments] long text (2/3)"
        );
        assert_eq!(
            describe(&reply("a note (see above)", 1)),
            "← [part 1/1 · GSM-7 · 1 segment] a note (see above)"
        );
        let unbilled = SandboxReply {
            encoding: None,
            ..reply("You said: hi (1/2)", 1)
        };
        assert_eq!(describe(&unbilled), "← [part 1/2] You said: hi (1/2)");
        assert_eq!(describe_update(&unbilled), "✎ You said: hi (1/2)");
        let status = |body: &str, status: &str, error_code| SandboxStatus {
            reply: reply(body, 1),
            status: status.into(),
            error_code,
        };
        assert_eq!(
            describe_status(&status("long text (2/3)", "delivered", None)).as_deref(),
            Some("  ✓ part 2/3 delivered")
        );
        assert_eq!(
            describe_status(&status("hi", "undelivered", Some(30007))).as_deref(),
            Some("  ✗ part 1/1 undelivered (error 30007)")
        );
        assert_eq!(
            describe_status(&status("hi", "read", None)).as_deref(),
            Some("  ✓ part 1/1 read")
        );
        assert_eq!(describe_status(&status("hi", "sent", None)), None);
    }

    #[test]
    fn an_mms_shows_as_one_message_with_its_files() {
        let mms = SandboxReply {
            chat: "+15555550100".into(),
            body: "Your chart".into(),
            encoding: Some("MMS".into()),
            segments: 1,
            media: vec![SandboxFile {
                name: "chart.png".into(),
                content_type: "image/png".into(),
                size: 48_200,
            }],
        };
        assert_eq!(
            describe(&mms),
            "← [part 1/1 · MMS] Your chart\n  [image: chart.png, image/png, 48 KB]"
        );
    }

    #[test]
    fn attach_reads_the_file_and_keeps_the_caption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cat.jpg");
        std::fs::write(&path, b"jpeg").unwrap();
        let line = format!("/attach {} look at him", path.display());
        let (file, bytes, caption) = attachment(&line).unwrap().unwrap();
        assert_eq!(file.name, "cat.jpg");
        assert_eq!(file.content_type, "image/jpeg");
        assert_eq!((file.size, bytes.as_slice()), (4, &b"jpeg"[..]));
        assert_eq!(caption, "look at him");
        assert!(attachment("/attachment is a word").is_none());
        assert!(attachment("hello").is_none());
        let missing = attachment("/attach /no/such/file.png").unwrap();
        assert!(format!("{:#}", missing.unwrap_err()).contains("/no/such/file.png"));
        assert!(attachment("/attach").unwrap().is_err());
    }
}
