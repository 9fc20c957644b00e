//! Contract: what the SMS sender posts to Twilio validates against Twilio's own OpenAPI
//! description, served by Prism (a 422 from Prism means the request broke the spec).
use std::time::Duration;

use gateway_tests::harness::*;
use gateway_tests::prism::{Prism, twilio_spec};

const WAIT: Duration = Duration::from_secs(30);

fn final_states(home: &Home, n: i64) -> Vec<(String, Option<String>)> {
    eventually(WAIT, || {
        let db = home.db();
        let mut stmt = db
            .prepare("SELECT state, error FROM outbox ORDER BY id")
            .unwrap();
        let rows: Vec<(String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (rows.len() as i64 >= n && rows.iter().all(|(s, _)| s != "pending" && s != "sending"))
            .then_some(rows)
    })
    .expect("parts reach a final state")
}

#[test]
fn every_send_validates_against_twilios_spec() {
    let Some(prism) = Prism::start(&twilio_spec()) else {
        return;
    };
    for extra in [
        vec![],
        vec![(
            "TWILIO_MESSAGING_SERVICE_SID",
            "MG0123456789abcdef0123456789abcdef",
        )],
    ] {
        let home = Home::new();
        let mut env = sms_env(&prism.base_url());
        for (k, v) in &extra {
            env.push((k.to_string(), v.to_string()));
        }
        let gw = Gateway::start(home.path(), &env);
        gw.text(
            ALICE,
            "Hello, contract",
            "SMt0000000000000000000000000000001",
        );
        let long = "A sentence with “curly quotes” and an emoji 🎉 that goes on. ".repeat(40);
        gw.text(BOB, long.trim(), "SMt0000000000000000000000000000002");
        let states = final_states(&home, 3);
        assert!(
            states.iter().all(|(s, _)| s == "sent"),
            "{states:?}\n{}",
            prism.log()
        );
    }
    let posts: Vec<_> = prism
        .requests()
        .into_iter()
        .filter(|r| r.method == "post" && r.path.contains("/Messages.json"))
        .collect();
    assert!(posts.len() >= 6, "{}", prism.log());
    for request in posts {
        assert!(
            request.valid,
            "request broke Twilio's spec: {:?}",
            request.violations
        );
    }
}

#[test]
fn a_look_up_of_an_unknown_outcome_validates_against_twilios_spec() {
    use platform_api::{ConfigSection, Lookup, Part};
    use platform_sms::settings::SmsSettings;

    let Some(prism) = Prism::start(&twilio_spec()) else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = prism.base_url();
    for service in [None, Some("MG0123456789abcdef0123456789abcdef")] {
        let mut pairs = vec![
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
            ("TWILIO_PHONE_NUMBER", OUR_NUMBER),
            ("SMS_WEBHOOK_URL", WEBHOOK_URL),
            ("TWILIO_API_BASE_URL", base.as_str()),
        ];
        if let Some(sid) = service {
            pairs.push(("TWILIO_MESSAGING_SERVICE_SID", sid));
        }
        let settings = SmsSettings::from_config(&ConfigSection::from_pairs(pairs)).unwrap();
        let part = Part::plain("You said: hello");
        let attempted = std::time::SystemTime::now() - Duration::from_secs(5);
        let found = actix_rt::System::new().block_on(hermes_twilio::messages::lookup(
            &settings.line(),
            ALICE,
            &part,
            attempted,
        ));
        // Prism answers the spec's example page (messages from 2017): nothing matches.
        assert_eq!(found, Lookup::Matches(vec![]), "{}", prism.log());
    }
    let lists: Vec<_> = prism
        .requests()
        .into_iter()
        .filter(|r| r.method == "get" && r.path.contains("/Messages.json"))
        .collect();
    assert!(lists.len() >= 2, "{}", prism.log());
    for request in lists {
        assert!(
            request.valid,
            "look-up broke Twilio's spec: {:?}",
            request.violations
        );
    }
}

#[test]
fn a_send_with_media_validates_against_twilios_spec() {
    let Some(prism) = Prism::start(&twilio_spec()) else {
        return;
    };
    let home = Home::new();
    let dir = home.path().join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let chart = dir.join("chart.png");
    std::fs::write(&chart, b"\x89PNG\r\n\x1a\n a chart").unwrap();
    let mut env = sms_env(&prism.base_url());
    env.push(("HERMES_AGENT".into(), "command".into()));
    env.push((
        "HERMES_AGENT_COMMAND".into(),
        format!("printf 'Your chart\\nMEDIA:%s\\n' '{}'", chart.display()),
    ));
    let gw = Gateway::start(home.path(), &env);
    gw.text(ALICE, "chart please", "SMt0000000000000000000000000000003");
    let states = final_states(&home, 1);
    assert_eq!(states, [("sent".to_string(), None)], "{}", prism.log());
    let media: String = home
        .db()
        .query_row("SELECT media FROM outbox", [], |r| r.get(0))
        .expect("the part carried the file");
    assert!(media.contains("chart.png"), "{media}");
    let posts: Vec<_> = prism
        .requests()
        .into_iter()
        .filter(|r| r.method == "post" && r.path.contains("/Messages.json"))
        .collect();
    assert_eq!(posts.len(), 1, "{}", prism.log());
    assert!(
        posts[0].valid,
        "a send with MediaUrl broke Twilio's spec: {:?}",
        posts[0].violations
    );
}
