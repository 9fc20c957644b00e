//! The gateways sharing a database: who holds a conversation, a part or a look-up, judged on
//! the database's clock, and what a gateway that lost its hold may still write (nothing).
use std::time::Duration;

use platform_api::Part;

use super::messages::{inbound, pending_ids};
use super::{FIRST_REPLICA, LEASE, backends};
use crate::*;

#[test]
fn one_gateway_at_a_time_holds_a_conversation() {
    for backend in backends() {
        let a = backend.open();
        assert!(a.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        assert!(a.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        let Some(b) = backend.open_replica("replica-b") else {
            continue;
        };
        a.heartbeat().unwrap();
        b.heartbeat().unwrap();
        assert!(!b.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        assert!(b.claim_conversation("sms", "+15550002222", LEASE).unwrap());
        // Only the holder gives it back.
        b.release_conversation("sms", "+15550001111").unwrap();
        assert!(!b.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        a.release_conversation("sms", "+15550001111").unwrap();
        assert!(
            b.claim_conversation("sms", "+15550001111", Duration::ZERO)
                .unwrap()
        );
        // A hold that lapsed (on the database's clock) is taken over.
        std::thread::sleep(Duration::from_millis(2));
        assert!(a.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        assert!(!b.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        // So is one whose gateway stopped: no heartbeat for a while.
        backend.stall(FIRST_REPLICA);
        assert!(b.claim_conversation("sms", "+15550001111", LEASE).unwrap());
    }
}

#[test]
fn a_look_up_held_by_a_stopped_gateway_is_due_at_once() {
    for backend in backends() {
        let a = backend.open();
        let Some(b) = backend.open_replica("replica-b") else {
            continue;
        };
        a.heartbeat().unwrap();
        b.heartbeat().unwrap();
        let ids = a
            .enqueue("sms", "+15550001111", &[Part::plain("hi")], "reply")
            .unwrap();
        let claim = a.claim(ids[0], LEASE).unwrap().unwrap();
        let due = a.now();
        assert!(a.mark_ambiguous(claim, "no answer", Some(due)).unwrap());
        // a takes the look-up for two minutes, then stops without a word.
        assert!(
            a.reschedule_reconcile(ids[0], due, Some(due + 120_000))
                .unwrap()
        );
        assert!(
            b.reconcilable(b.now(), 10).unwrap().is_empty(),
            "a holds it"
        );
        b.expire_leases().unwrap();
        assert!(
            b.reconcilable(b.now(), 10).unwrap().is_empty(),
            "a is alive"
        );
        backend.stall(FIRST_REPLICA);
        b.expire_leases().unwrap();
        let due: Vec<i64> = b
            .reconcilable(b.now() + 1_000, 10)
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
        a.heartbeat().unwrap();
        b.heartbeat().unwrap();
        let ids = a
            .enqueue("sms", "+15550001111", &[Part::plain("hi")], "reply")
            .unwrap();
        assert!(a.claim(ids[0], LEASE).unwrap().is_some());
        assert_eq!(b.expire_leases().unwrap(), 0, "a is alive");
        let live: Vec<String> = b.replicas().unwrap().into_iter().map(|r| r.home).collect();
        assert_eq!(live.len(), 2, "{live:?}");
        assert!(live.contains(&"replica-b".to_string()));
        // a stops without a word: once its heartbeat is stale, b takes the part back as
        // ambiguous (to be looked up, never sent blindly).
        backend.stall(FIRST_REPLICA);
        assert_eq!(b.expire_leases().unwrap(), 1);
        assert_eq!(b.part_state(ids[0]).unwrap(), Some(PartState::Ambiguous));
        assert_eq!(b.replicas().unwrap().len(), 1);
        b.leave().unwrap();
        assert!(b.replicas().unwrap().iter().all(|r| r.home != "replica-b"));
    }
}

#[test]
fn a_late_write_from_a_lost_claim_changes_nothing() {
    for backend in backends() {
        let a = backend.open();
        let ids = a
            .enqueue(
                "sms",
                "+15550001111",
                &[Part::plain("one"), Part::plain("two")],
                "reply",
            )
            .unwrap();
        // a claims the first part, then pauses past its lease: the part is taken back as
        // ambiguous, found unsent by a look-up and claimed again.
        let stale = a.claim(ids[0], Duration::ZERO).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(a.expire_leases().unwrap(), 1);
        let held = a.now() + 60_000;
        // Due now on the database's clock, which this reading of it may trail by a moment.
        let due = a.reconcilable(a.now() + 1_000, 10).unwrap()[0].reconcile_at;
        assert!(a.reschedule_reconcile(ids[0], due, Some(held)).unwrap());
        assert!(a.reconcile_unsent(ids[0], held).unwrap());
        let fresh = a.claim(ids[0], LEASE).unwrap().unwrap();
        assert_ne!(fresh, stale);
        // The paused sender wakes up: none of its writes lands on the new claim.
        assert!(!a.mark_sent(stale, "SM-late", Some(1)).unwrap());
        assert!(!a.mark_retry(stale, 0, "late", None).unwrap());
        assert!(
            !a.mark_final(stale, PartState::Failed, "late", None)
                .unwrap()
        );
        assert!(!a.mark_ambiguous(stale, "late", Some(0)).unwrap());
        assert_eq!(a.part_state(ids[0]).unwrap(), Some(PartState::Sending));
        assert!(!a.provider_id_known("sms", "SM-late").unwrap());
        // The holder's own write lands.
        assert!(a.mark_sent(fresh, "SM-new", Some(1)).unwrap());
        assert_eq!(a.part_state(ids[0]).unwrap(), Some(PartState::Sent));
        assert!(
            !a.mark_final(fresh, PartState::Failed, "twice", None)
                .unwrap()
        );
        assert_eq!(a.part_state(ids[0]).unwrap(), Some(PartState::Sent));

        // A conversation's turn commits only while its gateway holds the conversation.
        let Some(b) = backend.open_replica("replica-b") else {
            continue;
        };
        a.heartbeat().unwrap();
        b.heartbeat().unwrap();
        a.insert_inbound(&inbound("SM1", "hi")).unwrap();
        let pending = pending_ids(&a);
        assert!(a.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        backend.stall(FIRST_REPLICA);
        assert!(b.claim_conversation("sms", "+15550001111", LEASE).unwrap());
        let parts = [Part::plain("late reply")];
        let late = TurnCommit {
            platform: "sms",
            chat: "+15550001111",
            inbound_ids: &pending,
            user: Some("hi"),
            assistant: Some("late reply"),
            parts: &parts,
            origin: "reply",
            refused: &[],
        };
        let err = a.commit_turn(&late).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert_eq!(pending_ids(&b), pending, "the message still waits for b");
        assert!(b.history("sms", "+15550001111", 10).unwrap().is_empty());
        assert!(b.commit_turn(&late).is_ok());
    }
}
