//! Inbound, conversations, the outbox and suppression, against every backend.
use std::time::{Duration, SystemTime};

use platform_api::{Accepted, Inbound, Part};

use super::{LEASE, backends};
use crate::*;

/// An inbound SMS from one test sender.
pub(crate) fn inbound(id: &str, text: &str) -> Inbound {
    Inbound {
        sender_name: None,
        platform: "sms".into(),
        chat: "+15550001111".into(),
        sender: "+15550001111".into(),
        text: text.into(),
        attachments: vec![],
        provider_id: id.into(),
        received_at: SystemTime::now(),
        control: None,
    }
}

/// The ids of the inbound messages waiting, oldest first.
pub(crate) fn pending_ids(store: &Store) -> Vec<i64> {
    store
        .pending_inbound(100)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect()
}

#[test]
fn a_chats_last_inbound_message_is_kept_on_the_databases_clock_and_shared() {
    for backend in backends() {
        let store = backend.open();
        assert_eq!(store.last_inbound_at("sms", "+15550001111").unwrap(), None);
        let before = store.now();
        store.insert_inbound(&inbound("SM10", "first")).unwrap();
        let first = store
            .last_inbound_at("sms", "+15550001111")
            .unwrap()
            .expect("recorded");
        assert!(first >= before - 1_000 && first <= store.now(), "{first}");
        // A duplicate changes nothing; a message imported from the journal moves it on.
        store.insert_inbound(&inbound("SM10", "again")).unwrap();
        assert_eq!(
            store.last_inbound_at("sms", "+15550001111").unwrap(),
            Some(first)
        );
        let to = journal::Position {
            generation: 1,
            offset: 10,
        };
        let mut other = inbound("SM11", "other chat");
        other.chat = "+15550002222".into();
        store
            .import_inbound(&[inbound("SM12", "second"), other], to)
            .unwrap();
        let second = store
            .last_inbound_at("sms", "+15550001111")
            .unwrap()
            .expect("recorded");
        assert!(second >= first, "{second} < {first}");
        assert!(
            store
                .last_inbound_at("sms", "+15550002222")
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store.last_inbound_at("whatsapp", "+15550001111").unwrap(),
            None
        );
        // The chat's display name: the latest one a sender showed, kept when a message has none.
        assert_eq!(store.chat_name("sms", "+15550001111").unwrap(), None);
        let mut named = inbound("SM13", "named");
        named.sender_name = Some("Ada".into());
        store.insert_inbound(&named).unwrap();
        assert_eq!(
            store.chat_name("sms", "+15550001111").unwrap().as_deref(),
            Some("Ada")
        );
        let mut renamed = inbound("SM14", "renamed");
        renamed.sender_name = Some("Ada L.".into());
        let to = journal::Position {
            generation: 1,
            offset: 20,
        };
        store
            .import_inbound(&[renamed, inbound("SM15", "nameless")], to)
            .unwrap();
        assert_eq!(
            store.chat_name("sms", "+15550001111").unwrap().as_deref(),
            Some("Ada L.")
        );
        if let Some(replica) = backend.open_replica("b") {
            assert_eq!(
                replica.last_inbound_at("sms", "+15550001111").unwrap(),
                store.last_inbound_at("sms", "+15550001111").unwrap()
            );
            assert!(replica.last_inbound_at("sms", "+15550001111").unwrap() >= Some(second));
            assert_eq!(
                replica.chat_name("sms", "+15550001111").unwrap().as_deref(),
                Some("Ada L.")
            );
        }
    }
}

#[test]
fn an_import_commits_together_deduplicates_and_records_its_position() {
    for backend in backends() {
        let store = backend.open();
        store.insert_inbound(&inbound("SM0", "before")).unwrap();
        let batch = [
            inbound("SM0", "again"),
            inbound("SM1", "a"),
            inbound("SM1", "a"),
            inbound("SM2", "b"),
        ];
        let to = journal::Position {
            generation: 3,
            offset: 1234,
        };
        assert_eq!(
            store.import_inbound(&batch, to).unwrap(),
            [
                Accepted::Duplicate,
                Accepted::Stored,
                Accepted::Duplicate,
                Accepted::Stored
            ]
        );
        assert_eq!(store.journal_position().unwrap(), to);
        assert_eq!(store.pending_inbound(10).unwrap().len(), 3);
        let ids = pending_ids(&store);
        store
            .mark_inbound_states(&[(ids[0], "done"), (ids[1], "unauthorized")])
            .unwrap();
        assert_eq!(store.pending_inbound(10).unwrap().len(), 1);
    }
}

#[test]
fn a_chats_waiting_messages_are_listed_after_an_id_in_order() {
    for backend in backends() {
        let store = backend.open();
        let other = Inbound {
            sender_name: None,
            chat: "+15550002222".into(),
            sender: "+15550002222".into(),
            ..inbound("SMo", "elsewhere")
        };
        store.insert_inbound(&inbound("SM1", "one")).unwrap();
        store.insert_inbound(&other).unwrap();
        for (i, text) in ["two", "three", "four"].iter().enumerate() {
            store
                .insert_inbound(&inbound(&format!("SM{}", i + 2), text))
                .unwrap();
        }
        let first = store.pending_inbound(1).unwrap()[0].id;
        let rest = store
            .pending_inbound_of("sms", "+15550001111", first, 10)
            .unwrap();
        let texts: Vec<&str> = rest.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["two", "three", "four"]);
        store.mark_inbound(&[rest[0].id], "done").unwrap();
        let rest = store
            .pending_inbound_of("sms", "+15550001111", first, 1)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].text, "three");
        let others = store
            .pending_inbound_of("sms", "+15550002222", 0, 10)
            .unwrap();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].text, "elsewhere");
    }
}

#[test]
fn inbound_is_deduplicated_across_reopen() {
    for backend in backends() {
        let store = backend.open();
        assert_eq!(
            store.insert_inbound(&inbound("SM1", "hi")).unwrap(),
            Accepted::Stored
        );
        assert_eq!(
            store.insert_inbound(&inbound("SM1", "hi")).unwrap(),
            Accepted::Duplicate
        );
        drop(store);
        let store = backend.open();
        assert_eq!(
            store.insert_inbound(&inbound("SM1", "hi")).unwrap(),
            Accepted::Duplicate
        );
        assert_eq!(store.pending_inbound(100).unwrap().len(), 1);
    }
}

#[test]
fn turns_commit_history_parts_and_inbound_together() {
    for backend in backends() {
        let store = backend.open();
        store.insert_inbound(&inbound("SM1", "hi")).unwrap();
        let pending = store.pending_inbound(100).unwrap();
        let parts = vec![Part::plain("one"), Part::plain("two")];
        assert!(
            store
                .claim_conversation("sms", "+15550001111", LEASE)
                .unwrap()
        );
        let ids = store
            .commit_turn(&TurnCommit {
                platform: "sms",
                chat: "+15550001111",
                inbound_ids: &[pending[0].id],
                user: Some("hi"),
                assistant: Some("one two"),
                parts: &parts,
                origin: "reply",
                refused: &[],
            })
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(store.pending_inbound(100).unwrap().is_empty());
        assert_eq!(store.history("sms", "+15550001111", 10).unwrap().len(), 2);
        // Only the first part of the chat is due; the second waits for it.
        let due = store.due_parts(now_ms(), 10).unwrap();
        assert_eq!(due.iter().map(|p| p.id).collect::<Vec<_>>(), vec![ids[0]]);
        let claim = store.claim(ids[0], LEASE).unwrap().unwrap();
        assert_eq!(claim.attempt, 1);
        assert!(store.claim(ids[0], LEASE).unwrap().is_none());
        assert!(store.due_parts(now_ms(), 10).unwrap().is_empty());
        assert!(store.mark_sent(claim, "SM-out", Some(1)).unwrap());
        assert_eq!(store.due_parts(now_ms(), 10).unwrap()[0].id, ids[1]);
        store.reset_conversation("sms", "+15550001111").unwrap();
        assert!(store.history("sms", "+15550001111", 10).unwrap().is_empty());
    }
}

#[test]
fn a_chat_keeps_its_conversation_until_it_is_reset() {
    for backend in backends() {
        let store = backend.open();
        let first = store.conversation("sms", "+15550001111").unwrap();
        assert_eq!(store.conversation("sms", "+15550001111").unwrap(), first);
        let other = store.conversation("sms", "+15550002222").unwrap();
        assert_ne!(other.id, first.id, "{}", backend.name);
        // A turn is recorded in the conversation already started, not in a new one.
        store.insert_inbound(&inbound("SM1", "hi")).unwrap();
        assert!(
            store
                .claim_conversation("sms", "+15550001111", LEASE)
                .unwrap()
        );
        store
            .commit_turn(&TurnCommit {
                platform: "sms",
                chat: "+15550001111",
                inbound_ids: &pending_ids(&store),
                user: Some("hi"),
                assistant: Some("hello"),
                origin: "reply",
                refused: &[],
                ..TurnCommit::default()
            })
            .unwrap();
        assert_eq!(
            backend.open().conversation("sms", "+15550001111").unwrap(),
            first
        );
        store.reset_conversation("sms", "+15550001111").unwrap();
        let next = store.conversation("sms", "+15550001111").unwrap();
        assert!(
            next.id > first.id,
            "{}: {next:?} after {first:?}",
            backend.name
        );
        assert!(next.started_at >= first.started_at);
        assert_eq!(store.turn_count("sms", "+15550001111").unwrap(), 0);
        assert_eq!(store.conversation("sms", "+15550002222").unwrap(), other);
    }
}

#[test]
fn expired_leases_become_ambiguous_not_resent() {
    for backend in backends() {
        let store = backend.open();
        let ids = store
            .enqueue("sms", "+15550001111", &[Part::plain("x")], "send")
            .unwrap();
        assert!(store.claim(ids[0], Duration::ZERO).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(store.expire_leases().unwrap(), 1);
        assert_eq!(
            store.part_state(ids[0]).unwrap(),
            Some(PartState::Ambiguous)
        );
        assert!(store.due_parts(now_ms(), 10).unwrap().is_empty());
    }
}

#[test]
fn a_turn_whose_messages_were_answered_meanwhile_records_nothing() {
    for backend in backends() {
        let store = backend.open();
        store.insert_inbound(&inbound("SM1", "hi")).unwrap();
        store.insert_inbound(&inbound("SM2", "again")).unwrap();
        let ids = pending_ids(&store);
        store.mark_inbound(&ids[1..], "cancelled").unwrap();
        let parts = [Part::plain("reply")];
        assert!(
            store
                .claim_conversation("sms", "+15550001111", LEASE)
                .unwrap()
        );
        let commit = TurnCommit {
            platform: "sms",
            chat: "+15550001111",
            inbound_ids: &ids,
            user: Some("hi\nagain"),
            assistant: Some("reply"),
            parts: &parts,
            origin: "reply",
            refused: &[],
        };
        let err = store.commit_turn(&commit).unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "{}: {err}",
            backend.name
        );
        assert!(store.due_parts(now_ms(), 10).unwrap().is_empty());
        assert!(store.history("sms", "+15550001111", 10).unwrap().is_empty());
        assert_eq!(
            store.pending_inbound(10).unwrap().len(),
            1,
            "the first message still waits"
        );
    }
}

#[test]
fn a_live_message_is_kept_with_its_inbound_and_a_part_names_what_it_edits() {
    for backend in backends() {
        let store = backend.open();
        store.insert_inbound(&inbound("SM1", "tell me")).unwrap();
        store.insert_inbound(&inbound("SM2", "more")).unwrap();
        let ids = pending_ids(&store);
        assert!(
            store
                .pending_inbound(10)
                .unwrap()
                .iter()
                .all(|m| m.live_message.is_none())
        );
        store
            .set_live_message(ids[0], "1300000000000000001")
            .unwrap();
        // A restarted gateway reads it back, from either listing.
        drop(store);
        let store = backend.open();
        let pending = store.pending_inbound(10).unwrap();
        assert_eq!(
            pending[0].live_message.as_deref(),
            Some("1300000000000000001")
        );
        assert_eq!(pending[1].live_message, None);
        let of_chat = store
            .pending_inbound_of("sms", "+15550001111", 0, 10)
            .unwrap();
        assert_eq!(
            of_chat[0].live_message.as_deref(),
            Some("1300000000000000001")
        );
        let parts = [
            Part {
                edit: Some("1300000000000000001".into()),
                ..Part::plain("the whole reply")
            },
            Part::plain("its second part"),
        ];
        assert!(
            store
                .claim_conversation("sms", "+15550001111", LEASE)
                .unwrap()
        );
        let queued = store
            .commit_turn(&TurnCommit {
                platform: "sms",
                chat: "+15550001111",
                inbound_ids: &ids,
                user: Some("tell me\nmore"),
                assistant: Some("the whole reply"),
                parts: &parts,
                origin: "reply",
                refused: &[],
            })
            .unwrap();
        let due = store.due_parts(now_ms(), 10).unwrap();
        assert_eq!(due[0].part, parts[0], "{}", backend.name);
        // Interrupted mid-send, the part is looked up with what it edits.
        assert!(store.claim(queued[0], Duration::ZERO).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(store.expire_leases().unwrap(), 1);
        let ambiguous = store.reconcilable(store.now() + 1000, 10).unwrap();
        assert_eq!(ambiguous[0].part.part, parts[0], "{}", backend.name);
        assert!(
            store
                .reconcile_unsent(queued[0], ambiguous[0].reconcile_at)
                .unwrap()
        );
        let due = store.due_parts(now_ms(), 10).unwrap();
        assert_eq!(due[0].part.edit.as_deref(), Some("1300000000000000001"));
        assert_eq!(due[0].id, queued[0]);
    }
}
