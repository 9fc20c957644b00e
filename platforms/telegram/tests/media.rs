//! Files both ways against the Bot API emulator: what users send becomes attachments the
//! platform fetches with `getFile`, and the files of a reply are uploaded one a message, the
//! text as the first file's caption when it fits in one.
use std::sync::Arc;
use std::time::Duration;

use platform_api::{
    Attachment, ConfigSection, FetchError, Part, PartMedia, Platform, SendAs, SendError,
};
use platform_telegram::emulator::{Emulator, EmulatorConfig, Fault, Person, Recorded, png};
use platform_telegram::inbound::{Bot, to_inbound};
use platform_telegram::types::Update;

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::random("media_test_bot")).expect("the emulator starts")
}

fn ada() -> Person {
    Person::new(4242, "Ada")
}

fn platform(emu: &Emulator, base: &str) -> Arc<dyn Platform> {
    let token = emu.token();
    let section = ConfigSection::from_pairs([
        ("TELEGRAM_BOT_TOKEN", token.as_str()),
        ("TELEGRAM_API_BASE_URL", base),
    ]);
    let registration = platform_api::registration("telegram").expect("registered");
    (registration.build)(&section).expect("valid settings")
}

/// Runs `f` on a fresh actix system (the platform's client lives on one).
fn on_actix<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

fn inbound(emu: &Emulator, update: &Update) -> platform_api::Inbound {
    let bot = emu.bot();
    let bot = Bot {
        id: bot.id,
        username: bot.username.unwrap_or_default(),
    };
    to_inbound(update, &bot).expect("a message for the agent")
}

fn file(name: &str, content_type: &str, send_as: SendAs, bytes: &[u8]) -> PartMedia {
    PartMedia {
        token: format!("tok-{name}"),
        name: name.to_string(),
        content_type: content_type.to_string(),
        size: bytes.len() as u64,
        send_as,
        bytes: Some(Arc::from(bytes)),
        url: None,
    }
}

#[test]
fn files_users_send_become_attachments_named_by_file_id() {
    let emu = emulator();
    let ada = ada();
    let chat = ada.chat();
    let photo = emu.send_photo_sizes(
        &chat,
        &ada,
        &[(90, 60, b"small"), (1280, 853, &[7u8; 5000])],
        Some("the view"),
    );
    let photo = inbound(&emu, &photo);
    assert_eq!(photo.text, "the view");
    let largest = &photo.attachments[0];
    assert!(largest.url.starts_with("telegram:file/"), "{largest:?}");
    assert_eq!(largest.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(largest.size, Some(5000));
    assert_eq!(photo.attachments.len(), 1);

    let voice = inbound(&emu, &emu.send_voice(&chat, &ada, b"OggS voice", 3));
    assert_eq!(voice.text, "", "a voice note alone still reaches the agent");
    assert_eq!(
        voice.attachments[0].content_type.as_deref(),
        Some("audio/ogg")
    );
    assert_eq!(voice.attachments[0].name.as_deref(), Some("voice.ogg"));
    assert_eq!(voice.attachments[0].size, Some(10));

    let pdf = emu.send_file(
        &chat,
        &ada,
        "report.pdf",
        "application/pdf",
        b"%PDF-1.7",
        None,
    );
    let pdf = &inbound(&emu, &pdf).attachments[0];
    assert_eq!(
        (pdf.name.as_deref(), pdf.content_type.as_deref(), pdf.size),
        (Some("report.pdf"), Some("application/pdf"), Some(8))
    );

    let recorded = |file_name, mime_type, bytes, caption| Recorded {
        file_name,
        mime_type,
        bytes,
        caption,
    };
    let song = emu.send_audio(&chat, &ada, recorded(None, "audio/mpeg", b"ID3 song", None));
    let song = &inbound(&emu, &song).attachments[0];
    assert_eq!(
        (song.name.as_deref(), song.content_type.as_deref()),
        (Some("audio.mp3"), Some("audio/mpeg"))
    );
    let named = emu.send_audio(
        &chat,
        &ada,
        recorded(Some("Song.m4a"), "audio/mp4", b"m4a", None),
    );
    assert_eq!(
        inbound(&emu, &named).attachments[0].name.as_deref(),
        Some("Song.m4a")
    );

    let clip = emu.send_video(
        &chat,
        &ada,
        recorded(None, "video/mp4", b"mp4 clip", Some("watch")),
    );
    let clip = inbound(&emu, &clip);
    assert_eq!(clip.text, "watch");
    assert_eq!(clip.attachments[0].name.as_deref(), Some("video.mp4"));
    assert_eq!(
        clip.attachments[0].content_type.as_deref(),
        Some("video/mp4")
    );
}

#[test]
fn an_attachment_is_fetched_with_get_file_and_one_download() {
    let emu = emulator();
    let ada = ada();
    let telegram = platform(&emu, &emu.base_url());
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let update = emu.send_file(
        &ada.chat(),
        &ada,
        "data.bin",
        "application/octet-stream",
        &bytes,
        None,
    );
    let voice = emu.send_voice(&ada.chat(), &ada, b"OggS voice bytes", 2);
    let (attachment, voice) = (
        inbound(&emu, &update).attachments.remove(0),
        inbound(&emu, &voice).attachments.remove(0),
    );
    let (fetched, heard) = on_actix(async {
        (
            telegram.fetch_media(&attachment, 1_000_000).await,
            telegram.fetch_media(&voice, 1_000_000).await,
        )
    });
    let fetched = fetched.expect("fetched");
    assert!(fetched.bytes == bytes, "the bytes differ");
    assert_eq!(fetched.name.as_deref(), Some("data.bin"));
    let heard = heard.expect("fetched");
    assert_eq!(heard.bytes, b"OggS voice bytes");
    // The type the message declared, not the file server's application/octet-stream.
    assert_eq!(heard.content_type.as_deref(), Some("audio/ogg"));
    let downloads = emu.downloads();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert_eq!(
        (downloads[0].status, downloads[0].bytes),
        (200, bytes.len() as u64)
    );
}

#[test]
fn files_too_large_are_refused_for_good_and_errors_never_show_the_token() {
    let emu = emulator();
    let ada = ada();
    let token = emu.token();
    let secret = token.split_once(':').unwrap().1.to_string();
    let telegram = platform(&emu, &emu.base_url());
    let small = emu.send_file(
        &ada.chat(),
        &ada,
        "a.txt",
        "text/plain",
        &[b'a'; 2000],
        None,
    );
    let small = inbound(&emu, &small).attachments.remove(0);
    let huge = vec![0u8; 20 * 1024 * 1024 + 1];
    let huge = emu.send_file(&ada.chat(), &ada, "big.zip", "application/zip", &huge, None);
    let huge = inbound(&emu, &huge).attachments.remove(0);
    let unknown = Attachment::new("telegram:file/AgACnothing", Some("image/jpeg".into()));
    let foreign = Attachment::new("https://example.com/a.jpg", Some("image/jpeg".into()));
    let gone = platform(&emu, "http://127.0.0.1:9");
    let errors = on_actix(async {
        [
            telegram.fetch_media(&small, 1000).await,
            telegram.fetch_media(&huge, 100 * 1024 * 1024).await,
            telegram.fetch_media(&unknown, 1000).await,
            telegram.fetch_media(&foreign, 1000).await,
            gone.fetch_media(&small, 1000).await,
        ]
    });
    let errors: Vec<FetchError> = errors
        .into_iter()
        .map(|r| r.expect_err("refused"))
        .collect();
    for error in &errors {
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(&secret), "{shown}");
        assert!(!shown.contains("/file/"), "{shown}");
    }
    assert!(
        matches!(&errors[0], FetchError::Permanent(m) if m.contains("larger than 1 KB")),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], FetchError::Permanent(m) if m.contains("20 MB")),
        "{:?}",
        errors[1]
    );
    assert!(matches!(errors[2], FetchError::Permanent(_)), "{errors:?}");
    assert!(matches!(errors[3], FetchError::Permanent(_)), "{errors:?}");
    assert!(matches!(errors[4], FetchError::Retry(_)), "{errors:?}");
    // Neither file over a limit was downloaded: getFile said how large they are.
    assert!(emu.downloads().is_empty(), "{:?}", emu.downloads());
}

/// Formats `markdown` with `media` and sends every part to Ada; returns the messages sent.
fn reply(
    emu: &Emulator,
    markdown: &str,
    media: Vec<PartMedia>,
) -> Vec<platform_telegram::emulator::SentMessage> {
    let ada = ada();
    emu.add_chat(&ada.chat());
    let telegram = platform(emu, &emu.base_url());
    let formatted = telegram.format_media(markdown, media);
    assert!(formatted.refused.is_empty(), "{:?}", formatted.refused);
    on_actix(async {
        for part in &formatted.parts {
            telegram
                .send(&ada.id.to_string(), part)
                .await
                .expect("sent");
        }
    });
    emu.sent()
}

#[test]
fn a_photo_with_a_short_reply_is_one_message_with_a_caption() {
    let emu = emulator();
    let png = png(3, 2);
    let sent = reply(
        &emu,
        "Here is the **chart** for `x<y`.",
        vec![file("chart.png", "image/png", SendAs::Photo, &png)],
    );
    assert_eq!(sent.len(), 1);
    let media = sent[0].media.as_ref().expect("a file");
    assert_eq!(media.kind, "photo");
    assert_eq!(media.file_name.as_deref(), Some("chart.png"));
    assert_eq!(media.file_size, Some(png.len() as u64));
    assert_eq!(sent[0].text, "Here is the chart for x<y.");
    assert_eq!(
        sent[0].body,
        "Here is the <b>chart</b> for <code>x&lt;y</code>."
    );
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    let styles: Vec<&str> = sent[0].entities.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(styles, ["bold", "code"]);
}

#[test]
fn a_reply_too_long_for_a_caption_goes_first_and_the_photo_follows() {
    let emu = emulator();
    let long = "A sentence of the report that keeps going. ".repeat(40);
    let sent = reply(
        &emu,
        &long,
        vec![file("chart.png", "image/png", SendAs::Photo, &png(3, 2))],
    );
    assert_eq!(sent.len(), 2);
    assert!(sent[0].media.is_none());
    assert_eq!(sent[0].text, long.trim());
    assert_eq!(sent[1].media.as_ref().unwrap().kind, "photo");
    assert_eq!(sent[1].text, "");
}

#[test]
fn voice_notes_documents_and_pictures_as_documents_use_their_methods() {
    let emu = emulator();
    let sent = reply(
        &emu,
        "",
        vec![
            file("note.ogg", "audio/ogg", SendAs::Voice, b"OggS opus"),
            file(
                "report.pdf",
                "application/pdf",
                SendAs::Document,
                b"%PDF-1.7",
            ),
            // `[[as_document]]`: a picture sent as a file.
            file("scan.png", "image/png", SendAs::Document, &png(3, 2)),
            file("song.mp3", "audio/mpeg", SendAs::Audio, b"ID3"),
            file("clip.mp4", "video/mp4", SendAs::Video, b"mp4"),
        ],
    );
    let kinds: Vec<(&str, Option<&str>)> = sent
        .iter()
        .map(|m| {
            let media = m.media.as_ref().expect("a file");
            (media.kind.as_str(), media.file_name.as_deref())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("voice", Some("note.ogg")),
            ("document", Some("report.pdf")),
            ("document", Some("scan.png")),
            ("audio", Some("song.mp3")),
            ("video", Some("clip.mp4")),
        ]
    );
    assert!(sent.iter().all(|m| m.text.is_empty()));
    assert_eq!(
        sent[1].media.as_ref().unwrap().content_type.as_deref(),
        Some("application/pdf")
    );
}

#[test]
fn a_caption_telegram_cannot_parse_is_sent_as_plain_text() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let telegram = platform(&emu, &emu.base_url());
    let part = Part {
        media: vec![file("a.pdf", "application/pdf", SendAs::Document, b"%PDF")],
        ..Part::plain("<b>bold <unknown>tag</b>")
    };
    on_actix(async {
        telegram
            .send(&ada.id.to_string(), &part)
            .await
            .expect("sent as plain text")
    });
    let sent = emu.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].parse_mode, None);
    assert_eq!(sent[0].text, "bold tag");
    assert_eq!(sent[0].media.as_ref().unwrap().kind, "document");
}

#[test]
fn sends_of_files_fail_as_sends_of_text_fail() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let telegram = platform(&emu, &emu.base_url());
    let chat = ada.id.to_string();
    let pdf = file("a.pdf", "application/pdf", SendAs::Document, b"%PDF");
    let two = Part {
        media: vec![pdf.clone(), pdf.clone()],
        ..Part::plain("")
    };
    let unloaded = Part {
        media: vec![PartMedia {
            bytes: None,
            ..pdf.clone()
        }],
        ..Part::plain("")
    };
    let not_a_picture = Part {
        media: vec![file("a.png", "image/png", SendAs::Photo, b"not a png")],
        ..Part::plain("")
    };
    let document = Part {
        media: vec![pdf],
        ..Part::plain("")
    };
    let errors = on_actix(async {
        let mut errors = Vec::new();
        for part in [&two, &unloaded, &not_a_picture] {
            errors.push(telegram.send(&chat, part).await.unwrap_err());
        }
        emu.block(ada.id);
        errors.push(telegram.send(&chat, &document).await.unwrap_err());
        errors
    });
    assert!(
        matches!(&errors[0], SendError::Permanent { message, .. } if message.contains("one file")),
        "{errors:?}"
    );
    assert!(
        matches!(&errors[1], SendError::Permanent { message, .. } if message.contains("a.pdf")),
        "{errors:?}"
    );
    assert!(
        matches!(&errors[2], SendError::Permanent { code: Some(400), message } if message.contains("IMAGE_PROCESS_FAILED")),
        "{errors:?}"
    );
    assert!(
        matches!(errors[3], SendError::OptedOut { .. }),
        "{errors:?}"
    );
    assert!(emu.sent().is_empty());
}

#[test]
fn an_upload_refused_for_now_is_retried_later() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let telegram = platform(&emu, &emu.base_url());
    let chat = ada.id.to_string();
    let part = Part {
        media: vec![file("chart.png", "image/png", SendAs::Photo, &png(3, 2))],
        ..Part::plain("Chart")
    };
    emu.push_fault(Fault::TooManyRequests { retry_after: 4 });
    emu.push_fault(Fault::BadGateway);
    let (limited, broken, sent) = on_actix(async {
        (
            telegram.send(&chat, &part).await,
            telegram.send(&chat, &part).await,
            telegram.send(&chat, &part).await,
        )
    });
    assert!(
        matches!(limited, Err(SendError::Retry { after: Some(d), .. }) if d == Duration::from_secs(4)),
        "{limited:?}"
    );
    assert!(
        matches!(broken, Err(SendError::Retry { after: None, .. })),
        "{broken:?}"
    );
    let receipt = sent.expect("sent the third time");
    assert_eq!(receipt.provider_id, format!("{}:1", ada.id));
    let attempts: Vec<(String, Option<u16>, Option<String>)> = emu
        .attempts()
        .into_iter()
        .map(|a| (a.method, a.status, a.text))
        .collect();
    let photo = |status| {
        (
            "sendPhoto".to_string(),
            Some(status),
            Some("Chart".to_string()),
        )
    };
    assert_eq!(attempts, [photo(429), photo(502), photo(200)]);
    assert_eq!(emu.sent().len(), 1);
}

#[test]
fn a_file_over_50_mb_is_named_in_the_text_instead() {
    let emu = emulator();
    let telegram = platform(&emu, &emu.base_url());
    let mut big = file("movie.mp4", "video/mp4", SendAs::Video, b"");
    big.size = 60_000_000;
    big.bytes = None;
    let formatted = telegram.format_media("Here it is.", vec![big]);
    assert_eq!(formatted.refused.len(), 1);
    assert_eq!(formatted.parts.len(), 1);
    assert!(formatted.parts[0].media.is_empty());
    assert_eq!(
        formatted.parts[0].body,
        "Here it is.\n\n(movie.mp4 not sent: 60.0 MB, over the 50.0 MB a file that Telegram allows)"
    );
}
