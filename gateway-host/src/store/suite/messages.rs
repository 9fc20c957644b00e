//! Inbound, conversations, the outbox and suppression, against every backend.
use std::time::SystemTime;

use platform_api::{Accepted, Inbound, Part};

use super::backends;
use crate::store::*;

/// An inbound SMS from one test sender.
pub(crate) fn inbound(id: &str, text: &str) -> Inbound {
    Inbound {
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
fn pending_ids(store: &Store) -> Vec<i64> {
    store
        .pending_inbound(100)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect()
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
        let ids = store
            .commit_turn(&TurnCommit {
                platform: "sms",
                chat: "+15550001111",
                inbound_ids: &[pending[0].id],
                user: Some("hi"),
                assistant: Some("one two"),
                parts: &parts,
                origin: "reply",
            })
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(store.pending_inbound(100).unwrap().is_empty());
        assert_eq!(store.history("sms", "+15550001111", 10).unwrap().len(), 2);
        // Only the first part of the chat is due; the second waits for it.
        let due = store.due_parts(now_ms(), 10).unwrap();
        assert_eq!(due.iter().map(|p| p.id).collect::<Vec<_>>(), vec![ids[0]]);
        assert!(store.claim(ids[0], now_ms() + 1000).unwrap());
        assert!(!store.claim(ids[0], now_ms() + 1000).unwrap());
        assert!(store.due_parts(now_ms(), 10).unwrap().is_empty());
        store.mark_sent(ids[0], "SM-out", Some(1)).unwrap();
        assert_eq!(store.due_parts(now_ms(), 10).unwrap()[0].id, ids[1]);
        store.reset_conversation("sms", "+15550001111").unwrap();
        assert!(store.history("sms", "+15550001111", 10).unwrap().is_empty());
    }
}

#[test]
fn expired_leases_become_ambiguous_not_resent() {
    for backend in backends() {
        let store = backend.open();
        let ids = store
            .enqueue("sms", "+15550001111", &[Part::plain("x")], "send")
            .unwrap();
        assert!(store.claim(ids[0], now_ms() - 1).unwrap());
        assert_eq!(store.expire_leases(now_ms()).unwrap(), 1);
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
        let commit = TurnCommit {
            platform: "sms",
            chat: "+15550001111",
            inbound_ids: &ids,
            user: Some("hi\nagain"),
            assistant: Some("reply"),
            parts: &parts,
            origin: "reply",
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
fn one_gateway_at_a_time_holds_a_conversation() {
    for backend in backends() {
        let a = backend.open();
        let later = now_ms() + 60_000;
        assert!(a.claim_conversation("sms", "+15550001111", later).unwrap());
        assert!(
            a.claim_conversation("sms", "+15550001111", later + 1)
                .unwrap()
        );
        let Some(b) = backend.open_replica("replica-b") else {
            continue;
        };
        a.heartbeat(now_ms()).unwrap();
        b.heartbeat(now_ms()).unwrap();
        assert!(!b.claim_conversation("sms", "+15550001111", later).unwrap());
        assert!(b.claim_conversation("sms", "+15550002222", later).unwrap());
        // Only the holder gives it back.
        b.release_conversation("sms", "+15550001111").unwrap();
        assert!(!b.claim_conversation("sms", "+15550001111", later).unwrap());
        a.release_conversation("sms", "+15550001111").unwrap();
        assert!(
            b.claim_conversation("sms", "+15550001111", now_ms() - 1)
                .unwrap()
        );
        // A hold that lapsed is taken over.
        assert!(a.claim_conversation("sms", "+15550001111", later).unwrap());
        assert!(!b.claim_conversation("sms", "+15550001111", later).unwrap());
        // So is one whose gateway stopped: no heartbeat for a while.
        a.heartbeat(now_ms() - REPLICA_STALE_MS - 1000).unwrap();
        assert!(b.claim_conversation("sms", "+15550001111", later).unwrap());
    }
}

#[test]
fn a_look_up_held_by_a_stopped_gateway_is_due_at_once() {
    for backend in backends() {
        let a = backend.open();
        let Some(b) = backend.open_replica("replica-b") else {
            continue;
        };
        a.heartbeat(now_ms()).unwrap();
        b.heartbeat(now_ms()).unwrap();
        let ids = a
            .enqueue("sms", "+15550001111", &[Part::plain("hi")], "reply")
            .unwrap();
        assert!(a.claim(ids[0], now_ms() + 60_000).unwrap());
        let due = now_ms();
        a.mark_ambiguous(ids[0], "no answer", Some(due)).unwrap();
        // a takes the look-up for two minutes, then stops without a word.
        assert!(
            a.reschedule_reconcile(ids[0], due, Some(due + 120_000))
                .unwrap()
        );
        assert!(
            b.reconcilable(now_ms(), 10).unwrap().is_empty(),
            "a holds it"
        );
        b.expire_leases(now_ms()).unwrap();
        assert!(
            b.reconcilable(now_ms(), 10).unwrap().is_empty(),
            "a is alive"
        );
        a.heartbeat(now_ms() - REPLICA_STALE_MS - 1000).unwrap();
        b.expire_leases(now_ms()).unwrap();
        let due: Vec<i64> = b
            .reconcilable(now_ms(), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.part.id)
            .collect();
        assert_eq!(due, ids, "the look-up is due again");
    }
}

#[test]
fn a_stopped_gateways_parts_are_taken_back_by_the_others() {
    for backend in backends() {
        let a = backend.open();
        let Some(b) = backend.open_replica("replica-b") else {
            continue;
        };
        a.heartbeat(now_ms()).unwrap();
        b.heartbeat(now_ms()).unwrap();
        let ids = a
            .enqueue("sms", "+15550001111", &[Part::plain("hi")], "reply")
            .unwrap();
        assert!(a.claim(ids[0], now_ms() + 60_000).unwrap());
        assert_eq!(b.expire_leases(now_ms()).unwrap(), 0, "a is alive");
        let live: Vec<String> = b
            .replicas(now_ms() - REPLICA_STALE_MS)
            .unwrap()
            .into_iter()
            .map(|r| r.home)
            .collect();
        assert_eq!(live.len(), 2, "{live:?}");
        assert!(live.contains(&"replica-b".to_string()));
        // a stops without a word: once its heartbeat is stale, b takes the part back as
        // ambiguous (to be looked up, never sent blindly).
        a.heartbeat(now_ms() - REPLICA_STALE_MS - 1000).unwrap();
        assert_eq!(b.expire_leases(now_ms()).unwrap(), 1);
        assert_eq!(b.part_state(ids[0]).unwrap(), Some(PartState::Ambiguous));
        assert_eq!(b.replicas(now_ms() - REPLICA_STALE_MS).unwrap().len(), 1);
        b.leave().unwrap();
        assert!(
            b.replicas(now_ms() - REPLICA_STALE_MS)
                .unwrap()
                .iter()
                .all(|r| r.home != "replica-b")
        );
    }
}
