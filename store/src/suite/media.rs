//! Media, and the files queued parts carry, against every backend.
use std::sync::Arc;

use platform_api::{Part, PartMedia, SendAs};

use super::{LEASE, backends};
use crate::*;

const CHAT: &str = "+15550001111";

fn inbound_file<'a>(
    inbound_id: i64,
    index: i64,
    name: &'a str,
    bytes: &'a [u8],
) -> InboundFile<'a> {
    InboundFile {
        inbound_id,
        index,
        content_type: "image/jpeg",
        name,
        bytes,
    }
}

fn outbound_file<'a>(token: &'a str, bytes: &'a [u8], expires_at: Millis) -> OutboundFile<'a> {
    OutboundFile {
        token,
        content_type: "application/pdf",
        name: "report.pdf",
        bytes,
        expires_at,
    }
}

/// A file a part carries, as the host places it: with bytes and a URL that are never stored.
fn part_media(token: &str, name: &str, send_as: SendAs) -> PartMedia {
    PartMedia {
        token: token.into(),
        name: name.into(),
        content_type: "image/png".into(),
        size: 1234,
        send_as,
        bytes: Some(Arc::from(&b"not stored"[..])),
        url: Some(format!("https://gateway.example/media/{token}")),
    }
}

/// A part carrying `media`.
fn with_media(body: &str, media: Vec<PartMedia>) -> Part {
    Part {
        media,
        ..Part::plain(body)
    }
}

/// `media` as the outbox gives it back: without bytes or URL.
fn as_stored(media: &[PartMedia]) -> Vec<PartMedia> {
    media
        .iter()
        .map(|m| PartMedia {
            bytes: None,
            url: None,
            ..m.clone()
        })
        .collect()
}

#[test]
fn inbound_files_are_kept_replaced_failed_and_transcribed_by_message_and_index() {
    for backend in backends() {
        let store = backend.open();
        let before = store.now();
        let second = store
            .put_inbound_media(&inbound_file(7, 1, "b.jpg", b"second"))
            .unwrap();
        let first = store
            .put_inbound_media(&inbound_file(7, 0, "a.jpg", b"first"))
            .unwrap();
        let other = store
            .inbound_media_failed(3, 0, "audio/ogg", "voice.ogg", "the provider answered 404")
            .unwrap();
        store
            .put_inbound_media(&inbound_file(9, 0, "unasked.jpg", b"x"))
            .unwrap();

        let kept = store.inbound_media(&[7, 3]).unwrap();
        let order: Vec<(Option<i64>, i64)> = kept.iter().map(|m| (m.inbound_id, m.index)).collect();
        assert_eq!(
            order,
            [(Some(3), 0), (Some(7), 0), (Some(7), 1)],
            "{}",
            backend.name
        );
        assert_eq!(kept[0].id, other);
        assert_eq!(kept[0].state, MediaState::Failed);
        assert_eq!(kept[0].error.as_deref(), Some("the provider answered 404"));
        assert_eq!(kept[0].size, 0);
        assert_eq!(kept[1].id, first);
        assert_eq!(kept[1].state, MediaState::Fetched);
        assert_eq!(kept[1].name, "a.jpg");
        assert_eq!(kept[1].content_type, "image/jpeg");
        assert_eq!(kept[1].size, 5);
        assert_eq!(kept[1].token, None);
        assert_eq!(kept[1].expires_at, None);
        assert!(kept[1].created_at >= before - 1000, "{}", backend.name);
        assert_eq!(
            store.media_bytes(first).unwrap().as_deref(),
            Some(&b"first"[..])
        );
        assert_eq!(
            store.media_bytes(second).unwrap().as_deref(),
            Some(&b"second"[..])
        );
        assert_eq!(store.media_bytes(other).unwrap(), None);
        assert!(store.inbound_media(&[]).unwrap().is_empty());
        assert!(store.inbound_media(&[42]).unwrap().is_empty());

        // A failure fetched again later replaces the record, keeping its row.
        store
            .set_transcript(first, "a picture has no words")
            .unwrap();
        let again = store
            .put_inbound_media(&inbound_file(3, 0, "voice.ogg", b"ogg bytes"))
            .unwrap();
        assert_eq!(again, other);
        let kept = store.inbound_media(&[3]).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, MediaState::Fetched);
        assert_eq!(kept[0].error, None);
        assert_eq!(kept[0].size, 9);
        assert_eq!(
            store.media_bytes(again).unwrap().as_deref(),
            Some(&b"ogg bytes"[..])
        );
        store.set_transcript(again, "call me back").unwrap();
        assert_eq!(
            store.inbound_media(&[3]).unwrap()[0].transcript.as_deref(),
            Some("call me back")
        );
        // A kept file that then fails (a turn run again) keeps no bytes and no transcript.
        store
            .inbound_media_failed(3, 0, "audio/ogg", "voice.ogg", "too large")
            .unwrap();
        let kept = store.inbound_media(&[3]).unwrap();
        assert_eq!(kept[0].state, MediaState::Failed);
        assert_eq!(kept[0].transcript, None);
        assert_eq!(store.media_bytes(again).unwrap(), None);
        assert_eq!(
            store.inbound_media(&[7]).unwrap()[0].transcript.as_deref(),
            Some("a picture has no words")
        );
    }
}

#[test]
fn a_large_file_comes_back_byte_for_byte() {
    for backend in backends() {
        let store = backend.open();
        let bytes: Vec<u8> = (0..5 * 1024 * 1024)
            .map(|i: u32| (i * 31 % 251) as u8)
            .collect();
        let id = store
            .put_inbound_media(&inbound_file(1, 0, "big.jpg", &bytes))
            .unwrap();
        assert_eq!(
            store.inbound_media(&[1]).unwrap()[0].size,
            bytes.len() as i64
        );
        assert!(
            store.media_bytes(id).unwrap() == Some(bytes.clone()),
            "{}",
            backend.name
        );
        store
            .put_outbound_media(&outbound_file("tok-big", &bytes, store.now() + 60_000))
            .unwrap();
        let (meta, served) = store.outbound_media("tok-big").unwrap().unwrap();
        assert_eq!(meta.size, bytes.len() as i64);
        assert!(served == bytes, "{}", backend.name);
        // An empty file is a file too.
        let empty = store
            .put_inbound_media(&inbound_file(1, 1, "empty.txt", b""))
            .unwrap();
        assert_eq!(store.media_bytes(empty).unwrap(), Some(Vec::new()));
    }
}

#[test]
fn reply_files_are_served_by_token() {
    for backend in backends() {
        let store = backend.open();
        let expires_at = store.now() + 3_600_000;
        let id = store
            .put_outbound_media(&outbound_file("tok-1", b"%PDF-1.7", expires_at))
            .unwrap();
        let (meta, bytes) = store.outbound_media("tok-1").unwrap().unwrap();
        assert_eq!(meta.id, id);
        assert_eq!(meta.token.as_deref(), Some("tok-1"));
        assert_eq!(meta.inbound_id, None);
        assert_eq!(meta.state, MediaState::Fetched);
        assert_eq!(meta.name, "report.pdf");
        assert_eq!(meta.content_type, "application/pdf");
        assert_eq!(meta.size, 8);
        assert_eq!(meta.expires_at, Some(expires_at));
        assert_eq!(bytes, b"%PDF-1.7");
        assert!(store.outbound_media("tok-2").unwrap().is_none());
        // A token names one file.
        assert!(
            store
                .put_outbound_media(&outbound_file("tok-1", b"other", expires_at))
                .is_err(),
            "{}",
            backend.name
        );
        assert_eq!(
            store.outbound_media("tok-1").unwrap().unwrap().1,
            b"%PDF-1.7"
        );
    }
}

#[test]
fn purging_deletes_inbound_files_by_age_and_reply_files_once_expired_and_old() {
    for backend in backends() {
        let store = backend.open();
        let inbound = store
            .put_inbound_media(&inbound_file(1, 0, "a.jpg", b"aaaa"))
            .unwrap();
        store
            .inbound_media_failed(1, 1, "image/png", "b.png", "gone")
            .unwrap();
        let created = store.inbound_media(&[1]).unwrap()[0].created_at;
        let expires = created + 100_000;
        store
            .put_outbound_media(&outbound_file("tok-long", b"long", expires))
            .unwrap();
        store
            .put_outbound_media(&outbound_file("tok-short", b"short", created))
            .unwrap();
        assert_eq!(
            store.media_usage().unwrap(),
            (3, 4 + 4 + 5),
            "{}",
            backend.name
        );

        // Nothing is old enough yet.
        assert_eq!(store.purge_media(created + 1_000, 10_000).unwrap(), 0);
        // The inbound files (the failure too) are old; the short reply file has expired and is
        // old; the long one is old but still served.
        assert_eq!(
            store.purge_media(created + 50_000, 10_000).unwrap(),
            3,
            "{}",
            backend.name
        );
        assert!(store.inbound_media(&[1]).unwrap().is_empty());
        assert_eq!(store.media_bytes(inbound).unwrap(), None);
        assert!(store.outbound_media("tok-short").unwrap().is_none());
        assert!(store.outbound_media("tok-long").unwrap().is_some());
        assert_eq!(store.media_usage().unwrap(), (1, 4));
        // Expired but stored within the retention period: kept.
        assert_eq!(store.purge_media(expires + 1, 200_000).unwrap(), 0);
        assert_eq!(store.purge_media(expires, 10_000).unwrap(), 1);
        assert!(store.outbound_media("tok-long").unwrap().is_none());
        assert_eq!(store.media_usage().unwrap(), (0, 0));
    }
}

#[test]
fn a_part_keeps_its_files_through_the_outbox() {
    for backend in backends() {
        let store = backend.open();
        let media = vec![
            part_media("tok-a", "chart.png", SendAs::Photo),
            part_media("tok-b", "notes.ogg", SendAs::Voice),
        ];
        let parts = [
            with_media("here you go", media.clone()),
            Part::plain("and more"),
        ];
        let ids = store.enqueue("sms", CHAT, &parts, "send").unwrap();
        let due = store.due_parts(store.now() + 1, 10).unwrap();
        assert_eq!(due.len(), 1, "{}", backend.name);
        assert_eq!(due[0].id, ids[0]);
        assert_eq!(due[0].part.media, as_stored(&media), "{}", backend.name);
        assert_eq!(due[0].part.body, "here you go");

        // A part whose send had an unknown outcome is looked up with its files.
        let claim = store.claim(ids[0], LEASE).unwrap().unwrap();
        assert!(store.mark_ambiguous(claim, "timed out", Some(0)).unwrap());
        let looked_up = store.reconcilable(store.now() + 1, 10).unwrap();
        assert_eq!(looked_up.len(), 1);
        assert_eq!(looked_up[0].part.part.media, as_stored(&media));
        assert!(looked_up[0].attempted_at > 0);
        assert_eq!(looked_up[0].reconcile_at, 0);

        let rows = store
            .outbox_list(&OutboxFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows[0].id, ids[1]);
        assert!(rows[0].media.is_empty());
        assert_eq!(rows[1].media, ["chart.png", "notes.ogg"]);
    }
}

#[test]
fn refused_files_are_recorded_failed_and_hold_up_nothing() {
    for backend in backends() {
        let store = backend.open();
        assert!(store.claim_conversation("sms", CHAT, LEASE).unwrap());
        let reason = "huge.mov is 80 MB, over the 16 MB this platform sends";
        let refused = [(
            with_media("", vec![part_media("tok-x", "huge.mov", SendAs::Video)]),
            reason.to_string(),
        )];
        let reply = [Part::plain("the video is too large to send")];
        let turn = TurnCommit {
            platform: "sms",
            chat: CHAT,
            parts: &reply,
            refused: &refused,
            origin: "reply",
            ..Default::default()
        };
        // A commit that records nothing records no refusal either.
        let answered = TurnCommit {
            inbound_ids: &[12345],
            ..turn
        };
        assert!(matches!(
            store.commit_turn(&answered),
            Err(StoreError::Conflict(_))
        ));
        let listed = |store: &Store| {
            store
                .outbox_list(&OutboxFilter {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
        };
        assert!(listed(&store).is_empty(), "{}", backend.name);

        let sent = store.commit_turn(&turn).unwrap();
        assert_eq!(sent.len(), 1);
        // Without a turn: cron output, `hermes send`.
        let cron = [(
            with_media("", vec![part_media("tok-y", "big.pdf", SendAs::Document)]),
            "big.pdf is too large".to_string(),
        )];
        store.record_refused("sms", CHAT, &cron, "cron").unwrap();
        let later = store
            .enqueue("sms", CHAT, &[Part::plain("later")], "send")
            .unwrap();

        let rows = listed(&store);
        assert_eq!(rows.len(), 4, "{}", backend.name);
        let failed: Vec<&OutboxRow> = rows.iter().filter(|r| r.state == "failed").collect();
        assert_eq!(failed.len(), 2, "{}", backend.name);
        assert_eq!(failed[0].media, ["big.pdf"]);
        assert_eq!(failed[0].error.as_deref(), Some("big.pdf is too large"));
        assert_eq!(failed[0].origin, "cron");
        assert_eq!(failed[1].media, ["huge.mov"]);
        assert_eq!(failed[1].error.as_deref(), Some(reason));
        assert_eq!(failed[1].origin, "reply");
        assert!(failed.iter().all(|r| r.attempts == 0 && r.chat == CHAT));
        assert_eq!(store.part_state(sent[0]).unwrap(), Some(PartState::Pending));

        // The chat's queue goes on past them.
        let due = |store: &Store| -> Vec<i64> {
            let now = store.now() + 1;
            store
                .due_parts(now, 10)
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect()
        };
        assert_eq!(due(&store), sent, "{}", backend.name);
        super::send(&store, sent[0], "SM1", None);
        assert_eq!(due(&store), later, "{}", backend.name);
        assert_eq!(store.outbox_depth().unwrap(), 1);
    }
}
