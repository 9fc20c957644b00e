//! TLS to the shared database: `sslmode` and `sslrootcert` in `HERMES_DATABASE_URL` mean what
//! they mean to `psql`. A gateway that checks the server's certificate works as one that does
//! not; a certificate the trusted roots do not vouch for, or one that names another host, is
//! refused with a line that says so; the doctor tells how the connection is protected.
//!
//! Needs `HERMES_TEST_DATABASE_URL` and `HERMES_TEST_PG_ROOT_CERT` (see
//! `gateway_tests::postgres`): the test server's certificate names `localhost` and is signed by
//! that authority.
use std::process::Output;
use std::time::Duration;

use gateway_tests::harness::*;
use gateway_tests::postgres::TestDatabase;
use platform_sms::emulator::Emulator;

/// Runs `hermes ARGS` with the SMS settings of `twilio` and the database at `url`.
fn hermes(home: &Home, twilio: &Emulator, url: &str, args: &[&str]) -> Output {
    let mut env = sms_env(&twilio.base_url());
    env.push(("HERMES_DATABASE_URL".to_string(), url.to_string()));
    run_hermes(home, &env, args)
}

/// A fresh schema on the test server and the authority that signed its certificate, or `None`
/// (after saying so) when the tests have no server or no such authority.
fn tls_database(test: &str) -> Option<(TestDatabase, String)> {
    let db = TestDatabase::new(test)?;
    let ca = TestDatabase::root_cert(test)?;
    Some((db, ca))
}

/// The doctor's line about `subject`; panics with its whole output when there is none.
fn doctor_line(out: &Output, subject: &str) -> String {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find(|l| l.contains(subject))
        .unwrap_or_else(|| panic!("no {subject} line:\n{stdout}"))
        .to_string()
}

#[test]
fn a_gateway_that_checks_the_servers_certificate_works_and_the_doctor_says_so() {
    let Some((db, ca)) = tls_database("a_gateway_that_checks_the_servers_certificate") else {
        return;
    };
    let url = db.url_at(
        &format!("localhost:{}", db.port()),
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let twilio = emulator();
    let home = Home::new();
    let gw = sms_gateway(&home, &twilio, &[("HERMES_DATABASE_URL", url.as_str())]);
    assert_eq!(
        gw.text("+15550001111", "over TLS", &format!("SMt{:0>31}", 1))
            .status,
        200
    );
    let sent = twilio.wait_for_messages(1, Duration::from_secs(20));
    assert_eq!(sent.len(), 1, "{}", gw.logs());
    assert_eq!(db.count("SELECT COUNT(*) FROM inbound"), 1);
    let logs = gw.logs();
    assert!(
        logs.contains("state in the shared database (HERMES_DATABASE_URL; TLSv1.")
            && logs.contains("checked against the trusted roots and the host name)"),
        "{logs}"
    );
    assert!(!logs.contains("crosses a network"), "{logs}");

    let out = hermes(&home, &twilio, &url, &["gateway", "doctor"]);
    let line = doctor_line(&out, "database connection:");
    assert!(line.contains("ok"), "{line}");
    assert!(line.contains("encrypted (TLSv1."), "{line}");
    assert!(
        line.contains("checked against the trusted roots and the host name"),
        "{line}"
    );

    // verify-ca checks the chain, not the name: 127.0.0.1 is not in the certificate.
    let by_address = db.url_at(
        &format!("127.0.0.1:{}", db.port()),
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    let out = hermes(&home, &twilio, &by_address, &["gateway", "doctor"]);
    let line = doctor_line(&out, "database connection:");
    assert!(
        line.contains("encrypted (TLSv1.")
            && line.contains("checked against the trusted roots;")
            && line.contains("on this machine"),
        "{line}"
    );

    // Without sslmode, TLS is used when the server offers it, as psql does.
    let out = hermes(&home, &twilio, &db.url(), &["gateway", "doctor"]);
    let line = doctor_line(&out, "database connection:");
    assert!(
        line.contains("encrypted (TLSv1.") && line.contains("not checked"),
        "{line}"
    );
    let plain = db.url_at(&format!("127.0.0.1:{}", db.port()), "sslmode=disable");
    let out = hermes(&home, &twilio, &plain, &["gateway", "doctor"]);
    let line = doctor_line(&out, "database connection:");
    assert!(line.contains("not encrypted"), "{line}");
}

#[test]
fn a_certificate_the_roots_do_not_vouch_for_or_for_another_host_is_refused() {
    let Some((db, ca)) = tls_database("a_certificate_the_roots_do_not_vouch_for") else {
        return;
    };
    let twilio = emulator();
    let home = Home::new();
    let port = db.port();
    let fix = "set sslrootcert=/path/to/ca.pem";
    for (url, expected, fix) in [
        // The public roots did not sign the test server's certificate.
        (
            db.url_at(&format!("localhost:{port}"), "sslmode=verify-full"),
            "UnknownIssuer",
            fix,
        ),
        // The right authority, but the certificate names localhost, not this address.
        (
            db.url_at(
                &format!("127.0.0.1:{port}"),
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            "not valid for name",
            fix,
        ),
        (
            db.url_at(
                &format!("localhost:{port}"),
                "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            ),
            "sslrootcert /nonexistent/ca.pem",
            "readable PEM file",
        ),
    ] {
        let out = hermes(&home, &twilio, &url, &["gateway"]);
        let said = text(&out.stderr) + &text(&out.stdout);
        assert!(!out.status.success(), "{url}: {said}");
        assert!(said.contains("HERMES_DATABASE_URL"), "{said}");
        assert!(said.contains(expected), "{said}");
        assert!(!said.contains("hermes_test:hermes_test"), "{said}");

        let out = hermes(&home, &twilio, &url, &["gateway", "doctor"]);
        let line = doctor_line(&out, "database:");
        assert!(line.contains("problem"), "{line}");
        assert!(line.contains(expected), "{line}");
        let stdout = text(&out.stdout);
        assert!(stdout.contains(fix), "{stdout}");
    }
}
