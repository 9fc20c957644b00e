//! Hostile input on the webhook: every category is answered with a 4xx (never a 200 without a
//! valid signature, never a 5xx), reaches no agent, sends nothing, and the gateway keeps serving.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gateway_tests::harness::*;
use gateway_tests::http;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

struct Target {
    home: Home,
    twilio: platform_sms::emulator::Emulator,
    gw: Gateway,
}

impl Target {
    fn new() -> Target {
        let home = Home::new();
        let twilio = emulator();
        let gw = sms_gateway(&home, &twilio, &[("SMS_ALLOW_ALL_USERS", "true")]);
        Target { home, twilio, gw }
    }

    fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        http::request(self.gw.addr(), "POST", "/webhooks/twilio", headers, body)
            .map(|r| r.status)
            .unwrap_or(0)
    }

    /// Nothing was stored or sent, and a legitimate message still gets through.
    fn unharmed(&self, case: &str) {
        assert_eq!(
            count(&self.home, "SELECT COUNT(*) FROM inbound"),
            0,
            "{case}: nothing stored"
        );
        assert!(self.twilio.messages().is_empty(), "{case}: nothing sent");
        assert_eq!(self.gw.get("/health").status, 200, "{case}: still serving");
    }
}

fn assert_4xx(status: u16, case: &str) {
    assert!((400..500).contains(&status), "{case}: answered {status}");
}

#[test]
fn malformed_bodies_are_4xx_and_harmless() {
    let t = Target::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    };
    for i in 0..20 {
        let mut body = random(64 + i * 97);
        body[0] = 0xff;
        assert_4xx(
            t.post(&[FORM, ("X-Twilio-Signature", "AAAA")], &body),
            "random bytes",
        );
    }
    let cases: &[(&str, &[u8])] = &[
        (
            "invalid UTF-8",
            b"From=%2B15550001111&Body=%FF%FE&MessageSid=SM1",
        ),
        ("bad escape", b"From=%2B15550001111&Body=%G1&MessageSid=SM1"),
        (
            "trailing percent",
            b"From=%2B15550001111&Body=abc%&MessageSid=SM1",
        ),
        ("raw invalid UTF-8", b"From=\xc3\x28&MessageSid=SM1"),
    ];
    for (case, body) in cases {
        assert_4xx(t.post(&[FORM, ("X-Twilio-Signature", "AAAA")], body), case);
    }
    t.unharmed("malformed bodies");
}

#[test]
fn unsigned_or_forged_requests_never_get_a_200() {
    let t = Target::new();
    let legit = inbound_sms(ALICE, "hi", "SMu0000000000000000000000000000001");
    let body = encode_form(&legit);
    let good_sig = sign(AUTH_TOKEN, WEBHOOK_URL, &legit);

    let many: String = (0..4000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&")
        + "&"
        + &body;
    assert_4xx(
        t.post(&[FORM, ("X-Twilio-Signature", &good_sig)], many.as_bytes()),
        "thousands of keys",
    );
    let dup = format!("{body}&From=%2B15550009999");
    assert_4xx(
        t.post(&[FORM, ("X-Twilio-Signature", &good_sig)], dup.as_bytes()),
        "duplicate keys",
    );
    let near_cap = format!("{body}&Padding={}", "x".repeat(60 * 1024));
    assert_4xx(
        t.post(
            &[FORM, ("X-Twilio-Signature", &good_sig)],
            near_cap.as_bytes(),
        ),
        "near the size cap",
    );
    let forged = sign("ffffffffffffffffffffffffffffffff", WEBHOOK_URL, &legit);
    assert_4xx(
        t.post(&[FORM, ("X-Twilio-Signature", &forged)], body.as_bytes()),
        "signed with another token",
    );
    assert_4xx(t.post(&[FORM], body.as_bytes()), "no signature");
    let huge_sig = "A".repeat(8 * 1024);
    assert_4xx(
        t.post(&[FORM, ("X-Twilio-Signature", &huge_sig)], body.as_bytes()),
        "oversized signature",
    );
    assert_4xx(
        t.post(
            &[
                FORM,
                ("X-Twilio-Signature", &good_sig),
                ("X-Twilio-Signature", &good_sig),
            ],
            body.as_bytes(),
        ),
        "repeated signature headers",
    );
    for ct in [
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        assert_4xx(
            t.post(
                &[("Content-Type", ct), ("X-Twilio-Signature", &good_sig)],
                body.as_bytes(),
            ),
            ct,
        );
    }
    assert_4xx(
        t.post(&[("X-Twilio-Signature", &good_sig)], body.as_bytes()),
        "no content type",
    );
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = http::request(
            t.gw.addr(),
            method,
            "/webhooks/twilio",
            &[FORM],
            body.as_bytes(),
        )
        .unwrap();
        assert_4xx(r.status, method);
    }
    let over = format!("{body}&Padding={}", "x".repeat(70 * 1024));
    assert_eq!(
        t.post(&[FORM, ("X-Twilio-Signature", &good_sig)], over.as_bytes()),
        413
    );
    t.unharmed("unsigned or forged");
    // The genuine request still works after all that.
    assert_eq!(
        t.post(&[FORM, ("X-Twilio-Signature", &good_sig)], body.as_bytes()),
        200
    );
    assert_eq!(
        t.twilio.wait_for_messages(1, Duration::from_secs(20)).len(),
        1
    );
}

#[test]
fn slow_clients_are_cut_off_and_cannot_pin_workers() {
    let t = Target::new();
    let addr = t.gw.addr();
    let slow: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let request = b"POST /webhooks/twilio HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
                let started = Instant::now();
                for byte in request.iter().take(40) {
                    if s.write_all(&[*byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(400));
                }
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                started.elapsed()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile, everyone else is served at once.
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(t.gw.get("/health").status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "served while slow clients hang on"
        );
    }
    for handle in slow {
        let held = handle.join().unwrap();
        assert!(
            held < Duration::from_secs(12),
            "the server closed the slow client after {held:?}"
        );
    }
    t.unharmed("slow clients");
}
