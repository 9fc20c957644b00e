//! Reconciliation and delivery statuses, against every backend.

use platform_api::{DeliveryStatus, Part};

use super::{LEASE, backends, send};
use crate::*;

fn status(sid: &str, word: &str, code: Option<i64>) -> DeliveryStatus {
    DeliveryStatus {
        platform: "sms".into(),
        provider_id: sid.into(),
        status: word.into(),
        error_code: code,
        chat: None,
        opted_out: false,
    }
}

#[test]
fn statuses_only_move_forward_and_repeats_change_nothing() {
    for backend in backends() {
        let store = backend.open();
        let ids = store
            .enqueue("sms", "+15550001111", &[Part::plain("x")], "reply")
            .unwrap();
        send(&store, ids[0], "SM1", Some(1));
        assert!(
            store
                .record_delivery(&status("SM1", "queued", None))
                .unwrap()
        );
        assert!(store.record_delivery(&status("SM1", "sent", None)).unwrap());
        assert!(!store.record_delivery(&status("SM1", "sent", None)).unwrap());
        assert!(
            store
                .record_delivery(&status("SM1", "undelivered", Some(30007)))
                .unwrap()
        );
        // Late and repeated reports never move a final status back.
        assert!(!store.record_delivery(&status("SM1", "sent", None)).unwrap());
        assert!(
            !store
                .record_delivery(&status("SM1", "queued", None))
                .unwrap()
        );
        assert!(
            !store
                .record_delivery(&status("SM1", "delivered", None))
                .unwrap()
        );
        let rows = store
            .outbox_list(&OutboxFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows[0].status.as_deref(), Some("undelivered"));
        assert_eq!(rows[0].error_code, Some(30007));
        assert_eq!(rows[0].state, "sent");
        // A report may come before the send's answer is recorded: it waits in the table.
        assert!(
            store
                .record_delivery(&status("SM2", "delivered", None))
                .unwrap()
        );
        let late = store
            .enqueue("sms", "+15550001111", &[Part::plain("y")], "reply")
            .unwrap();
        send(&store, late[0], "SM2", None);
        assert_eq!(
            store
                .last_reply("sms", "+15550001111")
                .unwrap()
                .unwrap()
                .status
                .as_deref(),
            Some("delivered")
        );
        let summary = store.delivery_summary(0).unwrap();
        assert!(
            summary
                .iter()
                .any(|s| s.outcome == "undelivered" && s.code == Some(30007) && s.count == 1)
        );
    }
}

#[test]
fn ambiguous_parts_hold_their_chat_until_looked_up_and_settle_once() {
    for backend in backends() {
        let store = backend.open();
        let ids = store
            .enqueue(
                "sms",
                "+15550001111",
                &[Part::plain("a"), Part::plain("b")],
                "reply",
            )
            .unwrap();
        let claim = store.claim(ids[0], LEASE).unwrap().unwrap();
        assert!(
            store
                .mark_ambiguous(claim, "timed out", Some(1000))
                .unwrap()
        );
        assert!(
            store.due_parts(now_ms(), 10).unwrap().is_empty(),
            "part 2 waits for part 1"
        );
        let due = store.reconcilable(now_ms(), 10).unwrap();
        assert_eq!(due.len(), 1);
        let held = now_ms() + 60_000;
        assert!(
            store
                .reschedule_reconcile(ids[0], 1000, Some(held))
                .unwrap()
        );
        assert!(
            !store.reschedule_reconcile(ids[0], 1000, Some(5)).unwrap(),
            "claimed once"
        );
        assert!(
            !store.reconcile_unsent(ids[0], held + 1).unwrap(),
            "only the look-up's holder settles it"
        );
        assert!(store.reconcile_unsent(ids[0], held).unwrap());
        assert!(!store.reconcile_unsent(ids[0], held).unwrap());
        assert_eq!(store.due_parts(now_ms(), 10).unwrap()[0].id, ids[0]);
        // Ambiguous for good (no look-up possible): the chat goes on.
        let claim = store.claim(ids[0], LEASE).unwrap().unwrap();
        assert!(store.mark_ambiguous(claim, "timed out", None).unwrap());
        assert_eq!(store.due_parts(now_ms(), 10).unwrap()[0].id, ids[1]);
        assert_eq!(store.retry_part(ids[0]).unwrap(), Retried::Queued);
        assert_eq!(
            store.retry_part(ids[0]).unwrap(),
            Retried::NotRetryable(PartState::Pending)
        );
        assert_eq!(store.retry_part(999).unwrap(), Retried::Missing);
        let claim = store.claim(ids[0], LEASE).unwrap().unwrap();
        assert!(store.mark_ambiguous(claim, "timed out", Some(1)).unwrap());
        assert!(store.reschedule_reconcile(ids[0], 1, Some(held)).unwrap());
        assert!(store.reconcile_sent(ids[0], held, "SM9", Some(1)).unwrap());
        assert!(store.provider_id_known("sms", "SM9").unwrap());
        assert_eq!(store.part_state(ids[0]).unwrap(), Some(PartState::Sent));
    }
}
