//! Pace, rate windows and home channels, against every backend; shared between gateways on
//! a database that several can use.
use super::backends;
use crate::*;

#[test]
fn a_sending_budget_is_reserved_in_turn_and_shared() {
    for backend in backends() {
        let a = backend.open();
        // One segment per second: 1,000,000 us each.
        assert_eq!(a.reserve_pace("sms", 1_000_000, 5_000_000).unwrap(), 0);
        assert_eq!(
            a.reserve_pace("sms", 1_000_000, 5_000_000).unwrap(),
            1_000_000
        );
        assert_eq!(
            a.reserve_pace("sms", 1_000_000, 5_500_000).unwrap(),
            1_500_000
        );
        // An idle budget is not saved up.
        assert_eq!(a.reserve_pace("sms", 1_000_000, 60_000_000).unwrap(), 0);
        assert_eq!(a.reserve_pace("webhook", 10, 60_000_000).unwrap(), 0);
        if let Some(b) = backend.open_replica("replica-b") {
            assert_eq!(
                b.reserve_pace("sms", 1_000_000, 60_000_000).unwrap(),
                1_000_000,
                "{}: the number's budget is one for all gateways",
                backend.name
            );
        }
    }
}

#[test]
fn a_rate_window_counts_a_sender_and_notices_once() {
    for backend in backends() {
        let a = backend.open();
        let hit = |store: &Store, now| store.rate_hit("sms\u{1f}+1555", 60_000, 2, now).unwrap();
        let allowed = RateHit {
            allowed: true,
            notice: false,
        };
        assert_eq!(hit(&a, 1_000), allowed);
        let b = backend.open_replica("replica-b");
        let other = b.as_ref().unwrap_or(&a);
        assert_eq!(hit(other, 2_000), allowed);
        assert_eq!(
            hit(&a, 3_000),
            RateHit {
                allowed: false,
                notice: true
            }
        );
        assert_eq!(
            hit(other, 4_000),
            RateHit {
                allowed: false,
                notice: false
            },
            "{}: one notice per window",
            backend.name
        );
        // A new window starts a minute after the first message of the last one.
        assert_eq!(hit(other, 61_000), allowed);
        assert_eq!(
            a.rate_hit("sms\u{1f}+1666", 60_000, 2, 61_000).unwrap(),
            allowed
        );
    }
}

#[test]
fn a_home_channel_set_anywhere_is_seen_everywhere() {
    for backend in backends() {
        let a = backend.open();
        assert_eq!(a.home_override("sms").unwrap(), None);
        a.set_home_override("sms", "+15550003333", "Home").unwrap();
        a.set_home_override("sms", "+15550004444", "Office")
            .unwrap();
        let expected = Some(("+15550004444".to_string(), "Office".to_string()));
        assert_eq!(a.home_override("sms").unwrap(), expected);
        if let Some(b) = backend.open_replica("replica-b") {
            assert_eq!(b.home_override("sms").unwrap(), expected);
        }
        assert_eq!(a.home_override("webhook").unwrap(), None);
    }
}

#[test]
fn a_receive_position_is_kept_across_reopening_and_replicas() {
    for backend in backends() {
        let a = backend.open();
        assert_eq!(a.receive_cursor("telegram").unwrap(), None);
        a.save_receive_cursor("telegram", "41", 1).unwrap();
        a.save_receive_cursor("telegram", "42", 2).unwrap();
        assert_eq!(a.receive_cursor("telegram").unwrap().as_deref(), Some("42"));
        assert_eq!(a.receive_cursor("discord").unwrap(), None);
        if let Some(b) = backend.open_replica("replica-b") {
            assert_eq!(b.receive_cursor("telegram").unwrap().as_deref(), Some("42"));
        }
        drop(a);
        let again = backend.open();
        assert_eq!(
            again.receive_cursor("telegram").unwrap().as_deref(),
            Some("42"),
            "{}",
            backend.name
        );
    }
}
