//! MMS both ways against the Twilio emulator: inbound files fetched with the account's
//! credentials through Twilio's redirect, outbound files fetched by the emulator from the
//! `MediaUrl`s of a local server standing in for the gateway's `/media/<token>`, and the
//! look-up of an MMS whose send had an unknown outcome.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use actix_web::{App, HttpResponse, HttpServer, web};
use platform_api::{
    Accepted, ConfigSection, FetchError, Inbound, InboundSink, Lookup, Part, PartMedia, Platform,
    SendAs, SinkError, async_trait,
};
use platform_sms::Sms;
use platform_sms::emulator::{Emulator, EmulatorConfig, MediaFile};
use platform_sms::settings::SmsSettings;
use sha1::{Digest, Sha1};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "secret-token";
const OWNED: &str = "+15550001111";
const USER: &str = "+15557654321";
const WEBHOOK_URL: &str = "https://gateway.example.com/webhooks/twilio";
const WAIT: Duration = Duration::from_secs(20);

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        account_sid: SID.to_string(),
        auth_token: TOKEN.to_string(),
        phone_number: OWNED.to_string(),
        sms_url: Some(WEBHOOK_URL.to_string()),
        sms_method: "POST".to_string(),
    })
    .expect("the emulator starts")
}

fn settings(emu: &Emulator, auth_token: &str) -> SmsSettings {
    settings_at(&emu.base_url(), auth_token)
}

/// Settings for a Twilio API at `base`.
fn settings_at(base: &str, auth_token: &str) -> SmsSettings {
    SmsSettings::from_config(&ConfigSection::from_pairs([
        ("TWILIO_ACCOUNT_SID", SID),
        ("TWILIO_AUTH_TOKEN", auth_token),
        ("TWILIO_PHONE_NUMBER", OWNED),
        ("SMS_WEBHOOK_URL", WEBHOOK_URL),
        ("TWILIO_API_BASE_URL", base),
    ]))
    .expect("valid settings")
}

/// Runs `f` on an actix system of its own, as the gateway's send and fetch calls run.
fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    let _ = rustls::crypto::ring::default_provider().install_default();
    actix_web::rt::System::new().block_on(f)
}

/// Serves `app` on a loopback port from a thread of its own; returns `http://127.0.0.1:PORT`.
fn serve<F>(app: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || App::new().configure(app.clone()))
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("a port");
            tx.send(server.addrs()[0]).expect("the test waits");
            server.run().await
        })
    });
    format!(
        "http://{}",
        rx.recv_timeout(WAIT).expect("the server starts")
    )
}

/// The host's side of receive, keeping what it is given.
#[derive(Default)]
struct Recorder(Mutex<Vec<Inbound>>);

#[async_trait(?Send)]
impl InboundSink for Recorder {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
        self.0.lock().expect("not poisoned").push(inbound);
        Ok(Accepted::Stored)
    }
}

/// A person texts an MMS with `files` through the platform's real webhook route; returns the
/// message as the platform handed it to the host.
fn receive(emu: &Emulator, sms: &Arc<Sms>, files: &[MediaFile]) -> Inbound {
    let sink = Arc::new(Recorder::default());
    let (platform, for_routes) = (sms.clone(), sink.clone());
    let base = serve(move |cfg| platform.routes(cfg, for_routes.clone()));
    let mms = emu
        .text_with_media(USER, "what is this?", files, Some(&base))
        .expect("the webhook answers");
    assert_eq!(mms.answered, 200);
    let inbound = sink.0.lock().expect("not poisoned").pop();
    inbound.expect("the platform handed the MMS to the host")
}

fn picture(size: usize) -> MediaFile {
    MediaFile {
        content_type: "image/jpeg".to_string(),
        bytes: (0..size).map(|i| (i % 251) as u8).collect(),
    }
}

#[test]
fn an_inbound_mms_file_is_fetched_with_the_credentials_through_twilios_redirect() {
    let emu = emulator();
    let sms = Arc::new(Sms::new(settings(&emu, TOKEN)));
    let file = picture(3000);
    let inbound = receive(&emu, &sms, std::slice::from_ref(&file));
    assert_eq!(inbound.attachments.len(), 1);
    let attachment = &inbound.attachments[0];
    // What is stored is Twilio's media URL, never the credentials that open it.
    assert!(!attachment.url.contains(TOKEN), "{}", attachment.url);
    assert!(!attachment.url.contains('@'), "{}", attachment.url);
    assert_eq!(attachment.content_type.as_deref(), Some("image/jpeg"));

    let fetched = run(sms.fetch_media(attachment, 20_000_000)).expect("fetched");
    assert_eq!(fetched.bytes, file.bytes);
    assert_eq!(fetched.content_type.as_deref(), Some("image/jpeg"));
    let media_sid = attachment.url.rsplit('/').next().expect("a media SID");
    assert!(media_sid.starts_with("ME"), "{media_sid}");
    assert_eq!(fetched.name, Some(format!("{media_sid}.jpg")));
    let fetches = emu.media_fetches();
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    // The media URL with the credentials, answered with a redirect; the CDN link without.
    assert!(
        fetches[0].authorized && fetches[0].status == 302,
        "{fetches:?}"
    );
    assert!(
        fetches[1].path.starts_with("/_emulator/media-cdn/"),
        "{fetches:?}"
    );
    assert_eq!(fetches[1].status, 200);
}

#[test]
fn inbound_media_is_refused_without_the_right_credentials_and_off_twilio() {
    let emu = emulator();
    let sms = Arc::new(Sms::new(settings(&emu, TOKEN)));
    let inbound = receive(&emu, &sms, &[picture(100)]);
    let attachment = &inbound.attachments[0];

    let wrong = Sms::new(settings(&emu, "not-the-token"));
    let err = run(wrong.fetch_media(attachment, 20_000_000)).unwrap_err();
    assert!(matches!(err, FetchError::Permanent(_)), "{err:?}");
    let fetches = emu.media_fetches();
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert!(
        !fetches[0].authorized && fetches[0].status == 401,
        "{fetches:?}"
    );

    // A file Twilio does not have: 404, permanent.
    let gone = platform_api::Attachment::new(
        attachment.url.replace("/Media/ME", "/Media/MEffff"),
        Some("image/jpeg".into()),
    );
    let err = run(sms.fetch_media(&gone, 20_000_000)).unwrap_err();
    assert_eq!(
        err,
        FetchError::Permanent("Twilio answered 404 Not Found".into())
    );
    assert_eq!(emu.media_fetches()[1].status, 404);

    // A media URL that is not Twilio's is never sent the account's credentials.
    let elsewhere = platform_api::Attachment::new(
        "https://collector.example.net/Media/ME1",
        Some("image/jpeg".into()),
    );
    let err = run(sms.fetch_media(&elsewhere, 20_000_000)).unwrap_err();
    assert!(matches!(err, FetchError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("TWILIO_API_BASE_URL"), "{err}");
    assert!(!err.to_string().contains("collector"), "{err}");
    assert_eq!(emu.media_fetches().len(), 2);
}

#[test]
fn an_inbound_file_over_the_limit_is_refused_while_it_is_read() {
    let emu = emulator();
    let sms = Arc::new(Sms::new(settings(&emu, TOKEN)));
    let inbound = receive(&emu, &sms, &[picture(200_000)]);
    let err = run(sms.fetch_media(&inbound.attachments[0], 50_000)).unwrap_err();
    assert!(matches!(err, FetchError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("larger than 50 KB"), "{err}");
}

#[test]
fn an_inbound_file_twilio_cannot_serve_now_is_fetched_again_later() {
    for status in [429u16, 503] {
        let base = serve(move |cfg| {
            cfg.default_service(web::to(move || async move {
                HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(status).expect("a status"),
                )
                .finish()
            }));
        });
        let sms = Sms::new(settings_at(&base, TOKEN));
        let attachment = platform_api::Attachment::new(
            format!("{base}/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1"),
            Some("image/jpeg".into()),
        );
        let err = run(sms.fetch_media(&attachment, 1000)).unwrap_err();
        assert!(matches!(err, FetchError::Retry(_)), "{status}: {err:?}");
    }
}

/// A file the gateway would serve at `/media/<token>`.
struct Served {
    media: PartMedia,
    bytes: Vec<u8>,
}

fn served(name: &str, content_type: &str, size: usize) -> Served {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
    Served {
        media: PartMedia {
            token: format!("tok{:032x}", rand::random::<u128>()),
            name: name.to_string(),
            content_type: content_type.to_string(),
            size: size as u64,
            send_as: SendAs::of(content_type, false, false),
            bytes: None,
            url: None,
        },
        bytes,
    }
}

/// Serves `files` at `/media/<token>` as the gateway does (404 for any other token); returns
/// their media with the public URLs set, as the host sets them before a send.
fn media_server(files: &[Served]) -> Vec<PartMedia> {
    let table: HashMap<String, (String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.media.token.clone(),
                (f.media.content_type.clone(), f.bytes.clone()),
            )
        })
        .collect();
    let table = web::Data::new(table);
    let origin = serve(move |cfg| {
        cfg.app_data(table.clone()).route(
            "/media/{token}",
            web::get().to(
                |token: web::Path<String>,
                 table: web::Data<HashMap<String, (String, Vec<u8>)>>| async move {
                    match table.get(token.as_str()) {
                        Some((content_type, bytes)) => HttpResponse::Ok()
                            .content_type(content_type.as_str())
                            .body(bytes.clone()),
                        None => HttpResponse::NotFound().finish(),
                    }
                },
            ),
        );
    });
    files
        .iter()
        .map(|f| PartMedia {
            url: Some(format!("{origin}/media/{}", f.media.token)),
            ..f.media.clone()
        })
        .collect()
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

#[test]
fn mms_files_are_fetched_by_twilio_from_their_public_urls() {
    let emu = emulator();
    let sms = Sms::new(settings(&emu, TOKEN));
    assert!(!sms.uploads_media());
    assert_eq!(
        sms.public_origin().as_deref(),
        Some("https://gateway.example.com")
    );
    let mut files: Vec<Served> = (0..11)
        .map(|i| served(&format!("photo{i}.jpg"), "image/jpeg", 2000 + i))
        .collect();
    files.push(served("video.mp4", "video/mp4", 6_000_000));
    let media = media_server(&files);
    let text = "Here are your photos. ".repeat(20);
    let formatted = sms.format_media(&text, media);
    assert_eq!(formatted.refused.len(), 1);
    assert_eq!(formatted.refused[0].media.name, "video.mp4");
    assert_eq!(formatted.parts.len(), 2);

    let receipts = run(async {
        let mut receipts = Vec::new();
        for part in &formatted.parts {
            receipts.push(sms.send(USER, part).await.expect("sent"));
        }
        receipts
    });
    // An MMS is billed as one message, however long its text.
    assert!(
        receipts.iter().all(|r| r.segments == Some(1)),
        "{receipts:?}"
    );
    let messages = emu.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].media_urls.len(), 10);
    assert!(messages[0].body.starts_with("Here are your photos."));
    assert!(
        messages[0]
            .body
            .contains("(video.mp4 not sent: 6.0 MB, over the 5.0 MB a file that MMS allows)"),
        "{}",
        messages[0].body
    );
    assert_eq!(messages[1].body, "");
    assert_eq!(messages[1].media_urls.len(), 1);

    let downloads = emu.wait_for_downloads(11, WAIT);
    assert_eq!(downloads.len(), 11, "{downloads:?}");
    // Each message's files are fetched in order, the two messages side by side.
    for (message, part) in messages.iter().zip(&formatted.parts) {
        let fetched: Vec<&str> = downloads
            .iter()
            .filter(|d| d.message_sid == message.sid)
            .map(|d| d.url.as_str())
            .collect();
        let urls: Vec<&str> = part.media.iter().filter_map(|m| m.url.as_deref()).collect();
        assert_eq!(fetched, urls);
        assert_eq!(message.media_urls, urls);
    }
    for download in &downloads {
        let file = files
            .iter()
            .find(|f| download.url.ends_with(&format!("/media/{}", f.media.token)))
            .expect("a served file");
        assert_eq!(download.status, Some(200), "{download:?}");
        assert_eq!(download.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(download.sha1, Some(sha1_hex(&file.bytes)));
    }
}

#[test]
fn a_part_with_files_but_no_public_url_fails_before_twilio_is_asked() {
    let emu = emulator();
    let sms = Sms::new(settings(&emu, TOKEN));
    let file = served("chart.png", "image/png", 100);
    let part = platform_api::media::media_part(vec![file.media]);
    let err = run(sms.send(USER, &part)).unwrap_err();
    assert!(
        matches!(err, platform_api::SendError::Permanent { .. }),
        "{err:?}"
    );
    assert!(emu.attempts().is_empty());
}

#[test]
fn the_look_up_of_an_mms_matches_its_body_and_its_files() {
    let emu = emulator();
    let sms = Sms::new(settings(&emu, TOKEN));
    let files = [
        served("a.png", "image/png", 100),
        served("b.png", "image/png", 200),
    ];
    let media = media_server(&files);
    let body = "Your boarding passes.";
    let mms = Part {
        media: media.clone(),
        ..sms.format(body).remove(0)
    };
    let one_file = Part {
        media: media[..1].to_vec(),
        ..mms.clone()
    };
    let text_only = sms.format(body).remove(0);
    let attempted = SystemTime::now();
    let (sent_mms, sent_one, sent_text) = run(async {
        (
            sms.send(USER, &mms).await.expect("sent"),
            sms.send(USER, &one_file).await.expect("sent"),
            sms.send(USER, &text_only).await.expect("sent"),
        )
    });
    let (found_mms, found_one, found_text) = run(async {
        (
            sms.lookup(USER, &mms, attempted).await,
            sms.lookup(USER, &one_file, attempted).await,
            sms.lookup(USER, &text_only, attempted).await,
        )
    });
    let sids = |found: Lookup| match found {
        Lookup::Matches(receipts) => receipts
            .into_iter()
            .map(|r| r.provider_id)
            .collect::<Vec<_>>(),
        other => panic!("the look-up failed: {other:?}"),
    };
    assert_eq!(sids(found_mms), [sent_mms.provider_id]);
    assert_eq!(sids(found_one), [sent_one.provider_id]);
    assert_eq!(sids(found_text), [sent_text.provider_id]);
}
