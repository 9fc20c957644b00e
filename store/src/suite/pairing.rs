//! Pairing codes, against every backend.

use super::backends;
use crate::*;

#[test]
fn codes_are_limited_approved_and_revoked() {
    for backend in backends() {
        let store = backend.open();
        let hour = 3_600_000;
        let req = |sender: &str, code: &str, now| {
            store
                .request_pairing("sms", sender, code, now, hour, 2)
                .unwrap()
        };
        assert_eq!(
            req("+15550000001", "ABCD2345", 0),
            PairingRequest::Issued("ABCD2345".into())
        );
        assert_eq!(
            req("+15550000001", "ZZZZ2345", 10),
            PairingRequest::AlreadyIssued
        );
        assert_eq!(
            req("+15550000002", "BBBB2345", 20),
            PairingRequest::Issued("BBBB2345".into())
        );
        assert_eq!(req("+15550000003", "CCCC2345", 30), PairingRequest::Limited);
        assert!(!store.is_approved("sms", "+15550000001").unwrap());
        assert_eq!(
            store
                .approve_pairing("sms", "abcd2345", 40)
                .unwrap()
                .as_deref(),
            Some("+15550000001")
        );
        assert!(store.is_approved("sms", "+15550000001").unwrap());
        assert_eq!(
            store.approve_pairing("sms", "BBBB2345", hour + 21).unwrap(),
            None,
            "expired"
        );
        assert!(store.revoke_pairing("sms", "+15550000001").unwrap());
        assert!(!store.is_approved("sms", "+15550000001").unwrap());
    }
}
