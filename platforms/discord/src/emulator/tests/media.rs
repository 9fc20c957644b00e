//! Files both ways against the emulator: attachments received, fetched from their signed
//! links, and files uploaded with the bot's messages.
use platform_api::{Attachment, FetchError, PartMedia, SendAs};
use sha2::{Digest, Sha256};

use super::*;

/// A file the host has loaded for sending.
fn file(name: &str, content_type: &str, bytes: &[u8]) -> PartMedia {
    PartMedia {
        token: format!("token-{name}"),
        name: name.to_string(),
        content_type: content_type.to_string(),
        size: bytes.len() as u64,
        send_as: SendAs::of(content_type, false, false),
        bytes: Some(Arc::from(bytes)),
        url: None,
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names of a created message's files, in order.
fn names(message: &CreatedMessage) -> Vec<&str> {
    message.files.iter().map(|f| f.filename.as_str()).collect()
}

#[test]
fn a_photo_and_a_voice_message_arrive_as_attachments() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    emulator.post(Post::dm(ALICE, "").attach("cat photo.png", Some("image/png"), PNG_1X1));
    let voice = Voice {
        duration_secs: 2.0,
        waveform: "AAAA".into(),
    };
    emulator.post(Post::dm(ALICE, "").voice(b"OggS voice", voice));
    let got = receiving.sink.wait_for(2);
    assert_eq!(got.len(), 2, "a message of files only is for the agent");
    let photo = &got[0].attachments[0];
    assert_eq!(
        (
            photo.name.as_deref(),
            photo.content_type.as_deref(),
            photo.size
        ),
        (
            Some("cat_photo.png"),
            Some("image/png"),
            Some(PNG_1X1.len() as u64)
        )
    );
    assert_eq!(got[0].text, "");
    let voice = &got[1].attachments[0];
    assert_eq!(
        (
            voice.name.as_deref(),
            voice.content_type.as_deref(),
            voice.size
        ),
        (Some("voice-message.ogg"), Some("audio/ogg"), Some(10))
    );
}

#[test]
fn an_attachment_is_fetched_from_its_signed_link_until_it_expires() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let receiving = Receiving::start(&discord);
    connected(&emulator);
    emulator.post(Post::dm(ALICE, "look").attach("cat.png", Some("image/png"), PNG_1X1));
    let attachment = receiving.sink.wait_for(1)[0].attachments[0].clone();
    let (fetched, too_small) = block_on(async {
        (
            discord.fetch_media(&attachment, 1024).await,
            discord.fetch_media(&attachment, 10).await,
        )
    });
    let fetched = fetched.unwrap();
    assert_eq!(fetched.bytes, PNG_1X1);
    assert_eq!(fetched.content_type.as_deref(), Some("image/png"));
    assert_eq!(fetched.name.as_deref(), Some("cat.png"));
    assert!(
        matches!(&too_small, Err(FetchError::Permanent(m)) if m.contains("larger than")),
        "{too_small:?}"
    );
    emulator.expire_attachments();
    let expired = block_on(discord.fetch_media(&attachment, 1024));
    let Err(FetchError::Permanent(reason)) = expired else {
        panic!("an expired link is permanent: {expired:?}");
    };
    assert!(reason.contains("404"), "{reason}");
    assert!(
        !reason.contains("hm="),
        "the error never shows the signed URL: {reason}"
    );
    let statuses: Vec<(String, u16)> = emulator
        .downloads()
        .into_iter()
        .map(|d| (d.filename, d.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("cat.png".to_string(), 200),
            ("cat.png".to_string(), 200),
            ("cat.png".to_string(), 404)
        ]
    );
    // A link that is not a URL is refused, not retried.
    let bad = block_on(discord.fetch_media(&Attachment::new("not a url", None), 1024));
    assert!(matches!(bad, Err(FetchError::Permanent(_))), "{bad:?}");
}

#[test]
fn a_photo_goes_with_the_text_in_one_message() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let photo = file("chart (1).png", "image/png", PNG_1X1);
    let formatted = discord.format_media("Here is the **chart**.", vec![photo]);
    assert!(formatted.refused.is_empty());
    let [part] = formatted.parts.as_slice() else {
        panic!("one part: {formatted:?}");
    };
    let receipt = block_on(discord.send(GENERAL_CHANNEL, part)).unwrap();
    let sent = emulator.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, receipt.provider_id);
    assert_eq!(sent[0].content, "Here is the **chart**.");
    let uploaded = &sent[0].files[0];
    assert_eq!(uploaded.filename, "chart__1_.png");
    assert_eq!(uploaded.content_type.as_deref(), Some("image/png"));
    assert_eq!(uploaded.sha256, sha256(PNG_1X1));
    // The recipient sees the name as given, and the image's size.
    let message = stored(&emulator, GENERAL_CHANNEL, &receipt.provider_id);
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["title"], "chart (1).png");
    assert_eq!(
        (&attachment["width"], &attachment["height"]),
        (&json!(1), &json!(1))
    );
    let (status, _, bytes) = fetch(attachment["url"].as_str().unwrap());
    assert_eq!((status, bytes.as_slice()), (200, PNG_1X1));
}

#[test]
fn eleven_files_go_in_two_messages() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let media: Vec<PartMedia> = (0..11)
        .map(|i| {
            file(
                &format!("page-{i}.txt"),
                "text/plain",
                format!("page {i}").as_bytes(),
            )
        })
        .collect();
    let formatted = discord.format_media("The pages:", media);
    assert_eq!(formatted.parts.len(), 2);
    block_on(async {
        for part in &formatted.parts {
            discord.send(GENERAL_CHANNEL, part).await.unwrap();
        }
    });
    let sent = emulator.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].content, "The pages:");
    assert_eq!(sent[0].files.len(), MAX_FILES);
    assert_eq!(sent[1].content, "", "the rest come as files alone");
    assert_eq!(names(&sent[1]), ["page-10.txt"]);
    assert_eq!(sent[1].files[0].sha256, sha256(b"page 10"));
    let expected: Vec<String> = (0..10).map(|i| format!("page-{i}.txt")).collect();
    assert_eq!(names(&sent[0]), expected);
}

#[test]
fn a_file_over_discords_limit_is_named_in_the_text() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let big = vec![7u8; 12 * 1024 * 1024];
    let media = vec![
        file("video.mp4", "video/mp4", &big),
        file("cat.png", "image/png", PNG_1X1),
    ];
    let formatted = discord.format_media("Two files.", media);
    assert_eq!(formatted.refused.len(), 1);
    assert_eq!(formatted.refused[0].media.name, "video.mp4");
    let [part] = formatted.parts.as_slice() else {
        panic!("one part: {formatted:?}");
    };
    assert_eq!(
        part.body,
        "Two files.\n\n(video.mp4 not sent: 12.6 MB, over the 10.5 MB a file that Discord allows)"
    );
    block_on(discord.send(GENERAL_CHANNEL, part)).unwrap();
    let sent = emulator.messages();
    assert_eq!(names(&sent[0]), ["cat.png"]);
    // Sent anyway, Discord refuses the upload: permanent, with its code.
    let forced = Part {
        media: vec![file("video.mp4", "video/mp4", &big)],
        ..Part::plain("")
    };
    let err = block_on(discord.send(GENERAL_CHANNEL, &forced)).unwrap_err();
    assert!(
        matches!(
            err,
            SendError::Permanent {
                code: Some(crate::error::REQUEST_ENTITY_TOO_LARGE),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(emulator.attempts().last().map(|a| a.status), Some(413));
}

#[test]
fn a_file_whose_bytes_were_not_loaded_is_refused_before_any_call() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let mut photo = file("cat.png", "image/png", PNG_1X1);
    photo.bytes = None;
    let part = Part {
        media: vec![photo],
        ..Part::plain("Hi")
    };
    let err = block_on(discord.send(GENERAL_CHANNEL, &part)).unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { message, .. } if message.contains("cat.png")),
        "{err:?}"
    );
    assert!(emulator.attempts().is_empty());
}

#[test]
fn an_upload_is_rate_limited_like_any_message() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    emulator.push_fault(Fault::RateLimited {
        retry_after: 0.2,
        global: false,
    });
    emulator.push_fault(Fault::ServerError);
    let part = Part {
        media: vec![file("cat.png", "image/png", PNG_1X1)],
        ..Part::plain("")
    };
    let (limited, failed, sent) = block_on(async {
        (
            discord.send(GENERAL_CHANNEL, &part).await,
            discord.send(GENERAL_CHANNEL, &part).await,
            discord.send(GENERAL_CHANNEL, &part).await,
        )
    });
    assert!(
        matches!(limited, Err(SendError::Retry { after: Some(after), .. }) if after == Duration::from_millis(200)),
        "{limited:?}"
    );
    assert!(matches!(failed, Err(SendError::Retry { .. })), "{failed:?}");
    assert_eq!(emulator.messages()[0].id, sent.unwrap().provider_id);
}

#[test]
fn an_ambiguous_upload_is_found_by_its_text_and_file_names() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let attempted_at = SystemTime::now();
    let part = Part {
        media: vec![
            file("report final.pdf", "application/pdf", b"%PDF-1.7"),
            file("cat.png", "image/png", PNG_1X1),
        ],
        ..Part::plain("Your files.")
    };
    send_unanswered(&emulator, &discord, &part);
    let reordered = Part {
        media: part.media.iter().rev().cloned().collect(),
        ..part.clone()
    };
    let text_only = Part::plain("Your files.");
    let [found, other_order, text_only] = [&part, &reordered, &text_only]
        .map(|part| block_on(discord.lookup(GENERAL_CHANNEL, part, attempted_at)));
    let created = emulator.messages();
    assert_eq!(names(&created[0]), ["report_final.pdf", "cat.png"]);
    assert_eq!(found, found_only(&created[0].id));
    assert_eq!(other_order, Lookup::Matches(Vec::new()));
    assert_eq!(text_only, Lookup::Matches(Vec::new()));
}

#[test]
fn files_that_come_with_an_edit_follow_it_once() {
    let emulator = emulator();
    let discord = platform(&emulator, TOKEN);
    let live = block_on(discord.send(GENERAL_CHANNEL, &Part::plain("Drawing the chart…")))
        .unwrap()
        .provider_id;
    let part = Part {
        edit: Some(live.clone()),
        media: vec![file("chart.png", "image/png", PNG_1X1)],
        ..Part::plain("Here is the chart.")
    };
    // The edit is sent again, as the host does after an unknown outcome.
    let (first, again) = block_on(async {
        (
            discord.send(GENERAL_CHANNEL, &part).await,
            discord.send(GENERAL_CHANNEL, &part).await,
        )
    });
    assert_eq!(
        first.unwrap().provider_id,
        live,
        "the part is the edited message"
    );
    assert_eq!(again.unwrap().provider_id, live);
    assert_eq!(
        emulator.versions(&live).last().unwrap().content,
        "Here is the chart."
    );
    let sent = emulator.messages();
    assert_eq!(sent.len(), 2, "the files were posted once: {sent:?}");
    assert_eq!(
        (sent[1].content.as_str(), names(&sent[1])),
        ("", vec!["chart.png"])
    );

    // When the message to edit is gone, the text and the files go as one new message.
    let gone = Part {
        edit: Some("1999999999999999999".into()),
        ..part.clone()
    };
    block_on(discord.send(GENERAL_CHANNEL, &gone)).unwrap();
    let sent = emulator.messages();
    assert_eq!(sent.len(), 3);
    assert_eq!(
        (sent[2].content.as_str(), names(&sent[2])),
        ("Here is the chart.", vec!["chart.png"])
    );

    // Files with no text leave the message as it is: the part is the files' message.
    let other = block_on(discord.send(GENERAL_CHANNEL, &Part::plain("Thinking…")))
        .unwrap()
        .provider_id;
    let edits = emulator.edits().len();
    let files_only = Part {
        edit: Some(other),
        body: String::new(),
        ..part
    };
    let receipt = block_on(discord.send(GENERAL_CHANNEL, &files_only)).unwrap();
    let sent = emulator.messages();
    assert_eq!(sent.last().unwrap().id, receipt.provider_id);
    assert_eq!(names(sent.last().unwrap()), ["chart.png"]);
    assert_eq!(emulator.edits().len(), edits, "nothing to edit to");
}
