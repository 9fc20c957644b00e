use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;

use super::*;
use sha1::Digest;

const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "secret-token";
const OWNED: &str = "+15550001111";
const USER: &str = "+15557654321";

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        account_sid: SID.to_string(),
        auth_token: TOKEN.to_string(),
        phone_number: OWNED.to_string(),
        sms_url: Some("https://gateway.example.com/webhooks/twilio".to_string()),
        sms_method: "POST".to_string(),
    })
    .expect("the emulator starts")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    json: Value,
}

/// One HTTP/1.1 exchange over a fresh connection; `Err` when no answer came within `timeout`.
fn exchange(
    emu: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    timeout: Duration,
) -> io::Result<Answer> {
    let mut stream = TcpStream::connect(emu.server.addr())?;
    stream.set_read_timeout(Some(timeout))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        emu.server.addr(),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let (status, headers, body) = split_answer(&raw);
    let retry_after = header_of(&headers, "retry-after").map(str::to_string);
    let json = serde_json::from_slice(body).expect("a JSON body");
    Ok(Answer {
        status,
        retry_after,
        json,
    })
}

fn call(
    emu: &Emulator,
    method: &str,
    path: &str,
    auth: Option<String>,
    form: &[(&str, &str)],
) -> Answer {
    let mut headers = vec![(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    let body = serde_urlencoded::to_string(form).expect("a form");
    exchange(emu, method, path, &headers, &body, Duration::from_secs(10))
        .expect("the emulator answers")
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{SID}/Messages.json")
}

fn send(emu: &Emulator, to: &str, body: &str) -> Answer {
    call(
        emu,
        "POST",
        &messages_path(),
        Some(basic(SID, TOKEN)),
        &[("To", to), ("From", OWNED), ("Body", body)],
    )
}

/// Sends with a client that gives up after `timeout`.
fn send_with_timeout(emu: &Emulator, body: &str, timeout: Duration) -> io::Result<Answer> {
    let form = serde_urlencoded::to_string([("To", USER), ("From", OWNED), ("Body", body)])
        .expect("a form");
    let headers = [
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("Authorization", basic(SID, TOKEN)),
    ];
    exchange(emu, "POST", &messages_path(), &headers, &form, timeout)
}

fn assert_error(answer: &Answer, status: u16, code: i64) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.json["code"], code, "{}", answer.json);
    assert_eq!(answer.json["status"], status);
    assert_eq!(
        answer.json["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    let message = answer.json["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{}", answer.json);
}

#[test]
fn emulator_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Emulator>();
}

#[test]
fn formats_dates_like_twilio() {
    assert_eq!(
        rfc2822(std::time::UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 +0000"
    );
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(rfc2822(t), "Tue, 14 Nov 2023 22:13:20 +0000");
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_709_164_800);
    assert_eq!(rfc2822(t), "Thu, 29 Feb 2024 00:00:00 +0000");
}

#[test]
fn parses_resource_paths() {
    assert_eq!(
        resource("/2010-04-01/Accounts/AC1.json"),
        Some(("AC1", Resource::Account))
    );
    assert_eq!(
        resource("/2010-04-01/Accounts/AC1/Messages.json"),
        Some(("AC1", Resource::Messages))
    );
    assert_eq!(
        resource("/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN2.json"),
        Some(("AC1", Resource::Number("PN2")))
    );
    assert_eq!(
        resource("/2010-04-01/Accounts/AC1/Messages/MM3/Media/ME4"),
        Some(("AC1", Resource::Media("MM3", "ME4")))
    );
    assert_eq!(resource("/2010-04-01/Accounts/AC1/Calls.json"), None);
    assert_eq!(resource("/2010-04-01/Accounts/AC1"), None);
}

#[test]
fn valid_send_is_accepted_and_recorded() {
    let emu = emulator();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    emu.set_on_message(Box::new(move |m: &SentMessage| {
        sink.lock().expect("test lock").push(m.sid.clone())
    }));
    let short = send(&emu, USER, "hello there");
    let long = send(&emu, USER, &"a".repeat(161));
    let unicode = send(&emu, USER, "héllo 👋");

    assert_eq!(short.status, 201, "{}", short.json);
    let json = &short.json;
    let sid = json["sid"].as_str().expect("a sid");
    assert!(is_sid(sid, "SM") && sid[2..] == sid[2..].to_ascii_lowercase());
    assert_eq!(json["status"], "queued");
    assert_eq!(json["num_segments"], "1");
    assert_eq!(json["num_media"], "0");
    assert_eq!(json["body"], "hello there");
    assert_eq!(json["to"], USER);
    assert_eq!(json["from"], OWNED);
    assert_eq!(json["messaging_service_sid"], Value::Null);
    assert_eq!(json["account_sid"], SID);
    assert_eq!(json["api_version"], "2010-04-01");
    assert_eq!(json["direction"], "outbound-api");
    assert_eq!(json["price"], Value::Null);
    assert_eq!(json["error_code"], Value::Null);
    assert_eq!(
        json["uri"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
    );
    let date = json["date_created"].as_str().expect("a date");
    assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");
    assert_eq!(long.json["num_segments"], "2");
    assert_eq!(unicode.json["num_segments"], "1");

    let messages = emu.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].sid, sid);
    assert_eq!(messages[0].to, USER);
    assert_eq!(messages[0].from.as_deref(), Some(OWNED));
    assert_eq!(messages[0].body, "hello there");
    assert_eq!(messages[0].segments, 1);
    assert_eq!(messages[0].encoding, "GSM-7");
    assert_eq!(messages[1].segments, 2);
    assert_eq!(messages[1].encoding, "GSM-7");
    assert_eq!(messages[2].encoding, "UCS-2");
    let sids: Vec<String> = messages.iter().map(|m| m.sid.clone()).collect();
    assert_eq!(*seen.lock().expect("test lock"), sids);
    let attempts = emu.attempts();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.status == Some(201)));
    assert_eq!(attempts[0].sid.as_deref(), Some(sid));
    assert_eq!(emu.wait_for_messages(3, Duration::from_millis(1)).len(), 3);
    assert_eq!(emu.wait_for_messages(4, Duration::from_millis(50)).len(), 3);
    emu.stop();
}

#[test]
fn messaging_service_and_media_urls() {
    let emu = emulator();
    let mg = "MG0123456789abcdef0123456789abcdef";
    let auth = || Some(basic(SID, TOKEN));
    let path = messages_path();
    let ok = call(
        &emu,
        "POST",
        &path,
        auth(),
        &[("To", USER), ("MessagingServiceSid", mg), ("Body", "hi")],
    );
    let bad_mg = call(
        &emu,
        "POST",
        &path,
        auth(),
        &[
            ("To", USER),
            ("MessagingServiceSid", "MG123"),
            ("Body", "hi"),
        ],
    );
    // The emulator fetches media URLs as Twilio does: these lead nowhere, off the network.
    let (a, b) = (closed_url("/a.png"), closed_url("/b.png"));
    let media_only = call(
        &emu,
        "POST",
        &path,
        auth(),
        &[
            ("To", USER),
            ("From", OWNED),
            ("MediaUrl", &a),
            ("MediaUrl", &b),
        ],
    );
    assert_eq!(ok.status, 201, "{}", ok.json);
    assert_eq!(ok.json["from"], Value::Null);
    assert_eq!(ok.json["messaging_service_sid"], mg);
    assert_error(&bad_mg, 400, 21701);
    assert_eq!(media_only.status, 201, "{}", media_only.json);
    assert_eq!(media_only.json["num_media"], "2");
    let messages = emu.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].messaging_service_sid.as_deref(), Some(mg));
    // The service picked the sender once the carrier took the message.
    assert_eq!(messages[0].from.as_deref(), Some(OWNED));
    assert_eq!(messages[0].status, "delivered");
    assert_eq!(messages[1].media_urls, [a, b]);
}

#[test]
fn rejects_like_twilio() {
    let emu = emulator();
    emu.opt_out(USER);
    let auth = || Some(basic(SID, TOKEN));
    let path = messages_path();
    let other_account = "/2010-04-01/Accounts/AC99999999999999999999999999999999/Messages.json";
    let other = "+15550002222";
    let cases = [
        (call(&emu, "POST", &path, None, &[("To", USER)]), 401, 20003),
        (
            call(&emu, "POST", &path, Some(basic(SID, "wrong")), &[]),
            401,
            20003,
        ),
        (call(&emu, "POST", other_account, auth(), &[]), 404, 20404),
        (send(&emu, "+1555", "hi"), 400, 21211),
        (send(&emu, "not a number", "hi"), 400, 21211),
        (send(&emu, USER, "hi"), 400, 21610),
        (
            call(
                &emu,
                "POST",
                &path,
                auth(),
                &[("To", other), ("From", "+15559999999"), ("Body", "hi")],
            ),
            400,
            21606,
        ),
        (
            call(
                &emu,
                "POST",
                &path,
                auth(),
                &[("To", other), ("From", OWNED)],
            ),
            400,
            21602,
        ),
        (send(&emu, other, &"x".repeat(1601)), 400, 21617),
        (
            call(
                &emu,
                "POST",
                &path,
                auth(),
                &[("From", OWNED), ("Body", "hi")],
            ),
            400,
            21604,
        ),
        (
            call(&emu, "POST", &path, auth(), &[("To", USER), ("Body", "hi")]),
            400,
            21603,
        ),
        (
            call(
                &emu,
                "GET",
                "/2010-04-01/Accounts/AC1/Calls.json",
                None,
                &[],
            ),
            401,
            20003,
        ),
        (call(&emu, "DELETE", &path, auth(), &[]), 405, 20004),
    ];
    for (answer, status, code) in &cases {
        assert_error(answer, *status, *code);
    }
    assert_eq!(
        cases[3].0.json["message"],
        "The 'To' number +1555 is not a valid phone number."
    );
    assert_eq!(
        cases[5].0.json["message"],
        "Attempt to send to unsubscribed recipient"
    );
    assert!(emu.messages().is_empty());
    let attempts = emu.attempts();
    // Every Messages.json POST is an attempt, including the ones refused before processing.
    assert_eq!(attempts.len(), 11);
    assert_eq!(attempts[0].status, Some(401));
    assert_eq!(attempts[2].code, Some(20404));
    assert_eq!(attempts[5].code, Some(21610));

    emu.opt_in(USER);
    assert_eq!(send(&emu, USER, "hi again").status, 201);
    assert_eq!(emu.messages().len(), 1);
}

#[test]
fn wrong_content_type_is_415() {
    let emu = emulator();
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("Authorization", basic(SID, TOKEN)),
    ];
    let body = json!({"To": USER, "From": OWNED, "Body": "hi"}).to_string();
    let path = messages_path();
    let answer = exchange(
        &emu,
        "POST",
        &path,
        &headers,
        &body,
        Duration::from_secs(10),
    )
    .expect("an answer");
    assert_eq!(answer.status, 415);
    assert_eq!(answer.json["status"], 415);
    assert!(emu.messages().is_empty());
    assert_eq!(emu.attempts()[0].status, Some(415));
}

#[test]
fn faults_are_answered_in_order() {
    let emu = emulator();
    emu.push_fault(Fault::TooManyRequests {
        retry_after: Some(7),
    });
    emu.push_fault(Fault::TooManyRequests { retry_after: None });
    emu.push_fault(Fault::ServerError);
    emu.push_fault(Fault::ServiceUnavailable);
    emu.push_fault(Fault::Error {
        status: 400,
        code: 21408,
    });
    emu.push_fault(Fault::Error {
        status: 400,
        code: 21614,
    });
    emu.push_fault(Fault::Error {
        status: 500,
        code: 30007,
    });
    let answers: Vec<Answer> = (0..8)
        .map(|i| send(&emu, USER, &format!("try {i}")))
        .collect();
    assert_error(&answers[0], 429, 20429);
    assert_eq!(answers[0].retry_after.as_deref(), Some("7"));
    assert_error(&answers[1], 429, 20429);
    assert_eq!(answers[1].retry_after, None);
    assert_error(&answers[2], 500, 20500);
    assert_error(&answers[3], 503, 20503);
    assert_error(&answers[4], 400, 21408);
    assert_eq!(
        answers[4].json["message"],
        format!(
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {USER}."
        )
    );
    assert_error(&answers[5], 400, 21614);
    assert_error(&answers[6], 500, 30007);
    assert_eq!(answers[7].status, 201);
    let messages = emu.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body, "try 7");
    let statuses: Vec<Option<u16>> = emu.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, [429, 429, 500, 503, 400, 400, 500, 201].map(Some));
}

#[test]
fn hang_is_never_answered_nor_sent() {
    let emu = emulator();
    emu.push_fault(Fault::Hang);
    let started = Instant::now();
    let hung = send_with_timeout(&emu, "lost", Duration::from_millis(400));
    assert!(hung.is_err(), "a hung request gets no answer");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(send(&emu, USER, "after").status, 201);
    let messages = emu.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body, "after");
    let attempts = emu.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, None);
    assert_eq!(attempts[0].body.as_deref(), Some("lost"));
    emu.stop();
}

#[test]
fn delay_answers_late_but_sends() {
    let emu = emulator();
    emu.push_fault(Fault::Delay(Duration::from_millis(300)));
    emu.push_fault(Fault::Delay(Duration::from_secs(2)));
    let started = Instant::now();
    let answer = send(&emu, USER, "slow");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert_eq!(answer.status, 201);
    // Long enough to send the request on a busy machine, well short of the 2 s it is held.
    let gave_up = send_with_timeout(&emu, "ambiguous", Duration::from_secs(1));
    assert!(gave_up.is_err());
    // The client gave up, but Twilio had already taken the message.
    let bodies: Vec<String> = emu.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["slow", "ambiguous"]);
}

#[test]
fn incoming_numbers_lookup_and_update() {
    let emu = emulator();
    let pn = emu.number_sid();
    assert!(is_sid(&pn, "PN"));
    let auth = || Some(basic(SID, TOKEN));
    let list = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
    let number = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/{pn}.json");
    let get = |path: &str| call(&emu, "GET", path, auth(), &[]);
    let encoded = get(&format!("{list}?PhoneNumber=%2B15550001111"));
    let raw_plus = get(&format!("{list}?PhoneNumber=+15550001111"));
    let all = get(&list);
    for page in [&encoded, &raw_plus, &all] {
        assert_eq!(page.status, 200);
        let numbers = page.json["incoming_phone_numbers"]
            .as_array()
            .expect("a list");
        assert_eq!(numbers.len(), 1, "{}", page.json);
        let n = &numbers[0];
        assert_eq!(n["sid"], pn);
        assert_eq!(n["phone_number"], OWNED);
        assert_eq!(n["friendly_name"], "(555) 000-1111");
        assert_eq!(n["sms_url"], "https://gateway.example.com/webhooks/twilio");
        assert_eq!(n["sms_method"], "POST");
        assert_eq!(
            n["capabilities"],
            json!({"voice": true, "sms": true, "mms": true, "fax": false})
        );
        assert_eq!(page.json["page"], 0);
        assert_eq!(page.json["page_size"], 50);
        assert_eq!(page.json["next_page_uri"], Value::Null);
        assert!(page.json["first_page_uri"].as_str().is_some());
    }
    let other = get(&format!("{list}?PhoneNumber=%2B15559990000"));
    assert_eq!(other.status, 200);
    assert_eq!(other.json["incoming_phone_numbers"], json!([]));

    let account = get(&format!("/2010-04-01/Accounts/{SID}.json"));
    assert_eq!(account.status, 200);
    assert_eq!(account.json["sid"], SID);
    assert_eq!(account.json["status"], "active");
    assert_eq!(account.json["type"], "Full");
    assert!(account.json.get("auth_token").is_none());

    let updated = call(
        &emu,
        "POST",
        &number,
        auth(),
        &[
            ("SmsUrl", "https://new.example.com/sms"),
            ("SmsMethod", "GET"),
        ],
    );
    assert_eq!(updated.status, 200, "{}", updated.json);
    assert_eq!(updated.json["sid"], pn);
    assert_eq!(updated.json["sms_url"], "https://new.example.com/sms");
    assert_eq!(updated.json["sms_method"], "GET");
    let fetched = get(&number);
    assert_eq!(fetched.json["sms_url"], "https://new.example.com/sms");
    assert_eq!(
        emu.incoming_number(),
        (
            Some("https://new.example.com/sms".to_string()),
            "GET".to_string()
        )
    );
    let bad_method = call(&emu, "POST", &number, auth(), &[("SmsMethod", "PUT")]);
    assert_error(&bad_method, 400, 21403);
    let unknown_path = format!(
        "/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/PN00000000000000000000000000000000.json"
    );
    let unknown = call(
        &emu,
        "POST",
        &unknown_path,
        auth(),
        &[("SmsUrl", "https://x.example.com")],
    );
    assert_error(&unknown, 404, 20404);
    assert_error(&call(&emu, "GET", &list, None, &[]), 401, 20003);
    let cleared = call(&emu, "POST", &number, auth(), &[("SmsUrl", "")]);
    assert_eq!(cleared.json["sms_url"], Value::Null);
    assert_eq!(emu.incoming_number(), (None, "GET".to_string()));
    assert!(emu.attempts().is_empty());
}

#[test]
fn incoming_number_fallback_is_shown_updated_and_checked_like_twilio() {
    let emu = emulator();
    let auth = || Some(basic(SID, TOKEN));
    let number = format!(
        "/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/{}.json",
        emu.number_sid()
    );
    let fetched = call(&emu, "GET", &number, auth(), &[]);
    assert_eq!(fetched.status, 200);
    // Twilio writes an unset fallback URL as an empty string, with POST as its method.
    assert_eq!(fetched.json["sms_fallback_url"], "");
    assert_eq!(fetched.json["sms_fallback_method"], "POST");
    assert_eq!(emu.incoming_fallback(), (None, "POST".to_string()));

    // Primary and fallback in one request.
    let both = call(
        &emu,
        "POST",
        &number,
        auth(),
        &[
            ("SmsUrl", "https://primary.example.com/webhooks/twilio"),
            ("SmsMethod", "POST"),
            (
                "SmsFallbackUrl",
                "https://standby.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx",
            ),
            ("SmsFallbackMethod", "get"),
        ],
    );
    assert_eq!(both.status, 200, "{}", both.json);
    assert_eq!(
        both.json["sms_url"],
        "https://primary.example.com/webhooks/twilio"
    );
    assert_eq!(
        both.json["sms_fallback_url"],
        "https://standby.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx"
    );
    assert_eq!(both.json["sms_fallback_method"], "GET");
    let listed = call(
        &emu,
        "GET",
        &format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json"),
        auth(),
        &[],
    );
    assert_eq!(
        listed.json["incoming_phone_numbers"][0]["sms_fallback_url"],
        "https://standby.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx"
    );
    let set = (
        Some("https://standby.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx".to_string()),
        "GET".to_string(),
    );
    assert_eq!(emu.incoming_fallback(), set);

    // Refusals change nothing, the primary included.
    for (params, code) in [
        (&[("SmsFallbackUrl", "standby.example.com")][..], 21402),
        (
            &[("SmsFallbackUrl", "ftp://standby.example.com")][..],
            21402,
        ),
        (&[("SmsFallbackMethod", "PUT")][..], 21403),
        (
            &[
                ("SmsUrl", "https://other.example.com/sms"),
                ("SmsFallbackMethod", "DELETE"),
            ][..],
            21403,
        ),
        (
            &[
                ("SmsUrl", "https://other.example.com/sms"),
                ("SmsFallbackUrl", "not a url"),
            ][..],
            21402,
        ),
    ] {
        let refused = call(&emu, "POST", &number, auth(), params);
        assert_error(&refused, 400, code);
        assert_eq!(emu.incoming_fallback(), set, "{params:?}");
        assert_eq!(
            emu.incoming_number().0.as_deref(),
            Some("https://primary.example.com/webhooks/twilio"),
            "{params:?}"
        );
    }
    let refused = call(
        &emu,
        "POST",
        &number,
        auth(),
        &[("SmsFallbackUrl", "nowhere")],
    );
    assert!(
        refused.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("SmsFallbackUrl")),
        "{}",
        refused.json
    );

    // An update that leaves the fallback out keeps it; an empty one clears it.
    let primary_only = call(
        &emu,
        "POST",
        &number,
        auth(),
        &[("SmsUrl", "https://moved.example.com/sms")],
    );
    assert_eq!(
        primary_only.json["sms_fallback_url"],
        "https://standby.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx"
    );
    let cleared = call(&emu, "POST", &number, auth(), &[("SmsFallbackUrl", "")]);
    assert_eq!(cleared.status, 200, "{}", cleared.json);
    assert_eq!(cleared.json["sms_fallback_url"], "");
    assert_eq!(cleared.json["sms_url"], "https://moved.example.com/sms");
    assert_eq!(emu.incoming_fallback(), (None, "GET".to_string()));

    // Like Twilio, a fallback needs a primary URL to fall back from.
    let no_primary = call(
        &emu,
        "POST",
        &number,
        auth(),
        &[
            ("SmsUrl", ""),
            ("SmsFallbackUrl", "https://standby.example.com/sms"),
        ],
    );
    assert_error(&no_primary, 400, 21406);
    assert_eq!(
        emu.incoming_number().0.as_deref(),
        Some("https://moved.example.com/sms")
    );
    assert_eq!(emu.incoming_fallback().0, None);
    assert!(emu.attempts().is_empty());
}

#[test]
fn control_surface_lists_messages() {
    let emu = emulator();
    let sent = send(&emu, USER, "hello");
    let listed = call(&emu, "GET", "/_emulator/messages", None, &[]);
    assert_eq!(sent.status, 201);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json[0]["sid"], sent.json["sid"]);
    assert_eq!(listed.json[0]["segments"], 1);
    assert_eq!(listed.json[0]["encoding"], "GSM-7");
}

#[test]
fn works_inside_another_actix_system() {
    let emu = actix_web::rt::System::new().block_on(async { emulator() });
    assert_eq!(send(&emu, USER, "hi").status, 201);
}

#[test]
fn stops_and_frees_the_port() {
    let emu = emulator();
    let addr = emu.server.addr();
    let other = emu.clone();
    drop(emu);
    assert!(TcpStream::connect(addr).is_ok());
    drop(other);
    assert!(TcpStream::connect(addr).is_err());
}

/// `GET Messages.json` with a query, authenticated.
fn list(emu: &Emulator, query: &[(&str, &str)]) -> Answer {
    let query = serde_urlencoded::to_string(query).expect("a query");
    call(
        emu,
        "GET",
        &format!("{}?{query}", messages_path()),
        Some(basic(SID, TOKEN)),
        &[],
    )
}

fn sids(answer: &Answer) -> Vec<String> {
    answer.json["messages"]
        .as_array()
        .expect("a message list")
        .iter()
        .map(|m| m["sid"].as_str().expect("a sid").to_string())
        .collect()
}

#[test]
fn lists_messages_newest_first_with_twilios_filters_and_paging() {
    let emu = emulator();
    let other = "+15553334444";
    let mut sent = Vec::new();
    for i in 0..5 {
        let to = if i == 2 { other } else { USER };
        let answer = send(&emu, to, &format!("message {i}"));
        sent.push(answer.json["sid"].as_str().expect("a sid").to_string());
        std::thread::sleep(Duration::from_millis(5));
    }
    let mine: Vec<String> = [4, 3, 1, 0].iter().map(|&i| sent[i].clone()).collect();

    let all = list(&emu, &[("To", USER), ("From", OWNED)]);
    assert_eq!(all.status, 200, "{}", all.json);
    assert_eq!(sids(&all), mine);
    assert_eq!(all.json["page"], 0);
    assert_eq!(all.json["page_size"], 50);
    assert_eq!(all.json["next_page_uri"], Value::Null);
    assert_eq!(all.json["messages"][0]["body"], "message 4");
    assert_eq!(all.json["messages"][0]["status"], "delivered");
    assert!(all.json["messages"][0]["date_sent"].is_string());

    // Pages of two, followed through next_page_uri as a client does.
    let mut uri = format!("{}?To=%2B15557654321&PageSize=2", messages_path());
    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let page = call(&emu, "GET", &uri, Some(basic(SID, TOKEN)), &[]);
        assert_eq!(page.status, 200, "{}", page.json);
        paged.extend(sids(&page));
        pages += 1;
        match page.json["next_page_uri"].as_str() {
            Some(next) => uri = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(paged, mine);

    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().expect("a date").to_string();
    let yesterday = today.pred_opt().expect("a date").to_string();
    let since = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(
        sids(&list(&emu, &[("To", USER), ("DateSent>", &since)])),
        mine
    );
    assert_eq!(sids(&list(&emu, &[("DateSent>", &tomorrow)])).len(), 0);
    assert_eq!(sids(&list(&emu, &[("DateSent<", &yesterday)])).len(), 0);
    assert_eq!(
        sids(&list(&emu, &[("DateSent", &today.to_string())])).len(),
        5
    );
    assert_eq!(sids(&list(&emu, &[("To", other)])), [sent[2].clone()]);
    assert_eq!(sids(&list(&emu, &[("From", "+15559999999")])).len(), 0);

    assert_error(&list(&emu, &[("PageSize", "1001")]), 400, 20001);
    assert_error(&list(&emu, &[("DateSent>", "last week")]), 400, 20001);
    let unauthenticated = call(&emu, "GET", &messages_path(), None, &[]);
    assert_error(&unauthenticated, 401, 20003);

    let queries = emu.list_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    assert_eq!(
        queries[0],
        [
            ("To".to_string(), USER.to_string()),
            ("From".to_string(), OWNED.to_string())
        ]
    );
}

#[test]
fn accept_then_hang_sends_without_answering() {
    let emu = emulator();
    emu.push_fault(Fault::AcceptThenHang);
    let hung = send_with_timeout(&emu, "taken", Duration::from_millis(400));
    assert!(hung.is_err(), "no answer comes");
    let messages = emu.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body, "taken");
    let attempts = emu.attempts();
    assert_eq!(attempts[0].status, None);
    assert_eq!(attempts[0].sid.as_deref(), Some(messages[0].sid.as_str()));
    // The message is in the list all the same.
    assert_eq!(
        sids(&list(&emu, &[("To", USER)])),
        [messages[0].sid.clone()]
    );
    emu.stop();
}

#[test]
fn a_bad_status_callback_url_is_21609() {
    let emu = emulator();
    let answer = call(
        &emu,
        "POST",
        &messages_path(),
        Some(basic(SID, TOKEN)),
        &[
            ("To", USER),
            ("From", OWNED),
            ("Body", "hi"),
            ("StatusCallback", "gateway.example.com/status"),
        ],
    );
    assert_error(&answer, 400, 21609);
    assert!(emu.messages().is_empty());
}

/// A loopback receiver of HTTP posts: answers each with `status` and hands over its raw request.
fn receiver(status: u16) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            let answer =
                format!("HTTP/1.1 {status} OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
            if tx.send(String::from_utf8_lossy(&raw).to_string()).is_err() {
                return;
            }
        }
    });
    (base, rx)
}

/// A raw request posted by the emulator, checked to start with `request_line`: its form and
/// its `X-Twilio-Signature`.
fn signed_form(raw: &str, request_line: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a request");
    assert!(head.starts_with(request_line), "{head}");
    let params = serde_urlencoded::from_str(body).expect("a form");
    (params, signature_of(head))
}

/// The `X-Twilio-Signature` of a raw request.
fn signature_of(head: &str) -> String {
    head.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("x-twilio-signature"))
        .map(|(_, v)| v.trim().to_string())
        .expect("signed")
}

#[test]
fn status_callbacks_are_signed_in_order_and_report_failures() {
    let emu = emulator();
    let (base, requests) = receiver(200);
    let callback = "https://gateway.example.com/webhooks/twilio/status?line=1";
    emu.deliver_status_callbacks(Some(&base));
    emu.fail_delivery("+15553334444", "undelivered", 30007);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    emu.set_on_status(Box::new(move |m| {
        sink.lock().unwrap().push((m.sid.clone(), m.status.clone()))
    }));
    let mut sids = Vec::new();
    for to in [USER, "+15553334444"] {
        let answer = call(
            &emu,
            "POST",
            &messages_path(),
            Some(basic(SID, TOKEN)),
            &[
                ("To", to),
                ("From", OWNED),
                ("Body", "hi"),
                ("StatusCallback", callback),
            ],
        );
        assert_eq!(answer.status, 201, "{}", answer.json);
        assert_eq!(answer.json["status"], "queued");
        sids.push(answer.json["sid"].as_str().unwrap().to_string());
    }
    let posted = emu.wait_for_callbacks(4, Duration::from_secs(10));
    assert_eq!(posted.len(), 4, "{posted:?}");
    for sid in &sids {
        let statuses: Vec<&str> = posted
            .iter()
            .filter(|p| &p.sid == sid)
            .map(|p| p.status.as_str())
            .collect();
        assert_eq!(statuses[0], "sent");
        assert_eq!(statuses.len(), 2);
    }
    let failed = posted
        .iter()
        .find(|p| p.sid == sids[1] && p.status != "sent")
        .expect("the failure is posted");
    assert_eq!(
        (failed.status.as_str(), failed.error_code),
        ("undelivered", Some(30007))
    );
    assert!(
        posted
            .iter()
            .all(|p| p.answered == Some(200) && p.url == callback)
    );
    assert_eq!(seen.lock().unwrap().len(), 4);

    // What arrived is what Twilio posts: the callback's path and query, a form signed over
    // the callback URL.
    for _ in 0..4 {
        let raw = requests
            .recv_timeout(Duration::from_secs(5))
            .expect("a callback");
        let (params, signature) = signed_form(&raw, "POST /webhooks/twilio/status?line=1 ");
        assert_eq!(
            crate::signature::verify_signature(TOKEN, &[callback.to_string()], &params, &signature),
            Some(callback)
        );
        let status = crate::status::parse(&crate::webhook::test_channels::SMS, &params)
            .expect("a status callback");
        assert!(sids.contains(&status.provider_id));
    }
    let listed = list(&emu, &[("To", "+15553334444")]);
    assert_eq!(listed.json["messages"][0]["status"], "undelivered");
    assert_eq!(listed.json["messages"][0]["error_code"], 30007);
}

/// One raw GET over a fresh connection to `addr`: the status, the headers and the body.
fn get(addr: &str, path: &str, auth: Option<String>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("an answer");
    let (status, headers, body) = split_answer(&raw);
    (status, headers, body.to_vec())
}

/// An HTTP answer's status, headers (names in lowercase) and body.
fn split_answer(raw: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, &raw[split + 4..])
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A media URL's path and query, to ask the emulator for it.
fn path_of(url: &str) -> String {
    let uri: awc::http::Uri = url.parse().expect("a URL");
    uri.path_and_query().expect("a path").to_string()
}

fn png() -> MediaFile {
    MediaFile {
        content_type: "image/png".to_string(),
        bytes: b"\x89PNG\r\n\x1a\nnot really a picture".to_vec(),
    }
}

/// Texts an MMS with `files` through a webhook receiver; returns what was posted.
fn text_mms(emu: &Emulator, files: &[MediaFile]) -> (InboundMms, String) {
    let (base, requests) = receiver(200);
    let mms = emu
        .text_with_media(USER, "look at this", files, Some(&base))
        .expect("the webhook is answered");
    let raw = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("a webhook");
    (mms, raw)
}

/// The CDN link a media URL redirects the account to.
fn cdn_link(emu: &Emulator, media_url: &str) -> String {
    let (status, headers, _) = get(
        &emu.server.addr().to_string(),
        &path_of(media_url),
        Some(basic(SID, TOKEN)),
    );
    assert_eq!(status, 302);
    header_of(&headers, "location")
        .expect("a Location")
        .to_string()
}

#[test]
fn inbound_mms_is_posted_signed_with_its_media() {
    let emu = emulator();
    let pdf = MediaFile {
        content_type: "application/pdf".to_string(),
        bytes: b"%PDF-1.4 a file".to_vec(),
    };
    let (mms, raw) = text_mms(&emu, &[png(), pdf]);
    assert_eq!(mms.answered, 200);
    assert!(is_sid(&mms.message_sid, "MM"), "{}", mms.message_sid);
    let (params, signature) = signed_form(&raw, "POST /webhooks/twilio ");
    let webhook = "https://gateway.example.com/webhooks/twilio".to_string();
    assert_eq!(
        crate::signature::verify_signature(
            TOKEN,
            std::slice::from_ref(&webhook),
            &params,
            &signature
        ),
        Some(webhook.as_str())
    );
    assert_eq!(param(&params, "NumMedia"), Some("2"));
    assert_eq!(param(&params, "MessageSid"), Some(mms.message_sid.as_str()));
    assert_eq!(param(&params, "From"), Some(USER));
    assert_eq!(param(&params, "MediaContentType0"), Some("image/png"));
    assert_eq!(param(&params, "MediaContentType1"), Some("application/pdf"));
    assert_eq!(
        param(&params, "MediaUrl0"),
        Some(mms.media_urls[0].as_str())
    );
    assert_eq!(
        param(&params, "MediaUrl1"),
        Some(mms.media_urls[1].as_str())
    );
    let prefix = format!(
        "{}/2010-04-01/Accounts/{SID}/Messages/{}/Media/ME",
        emu.base_url(),
        mms.message_sid
    );
    assert!(mms.media_urls.iter().all(|url| url.starts_with(&prefix)));
}

#[test]
fn inbound_media_needs_the_credentials_and_redirects_to_an_expiring_link() {
    let emu = emulator();
    let addr = emu.server.addr().to_string();
    let (mms, _) = text_mms(&emu, &[png()]);
    let path = path_of(&mms.media_urls[0]);

    for auth in [None, Some(basic(SID, "wrong-token"))] {
        let (status, _, body) = get(&addr, &path, auth);
        assert_eq!(status, 401);
        let json: Value = serde_json::from_slice(&body).expect("Twilio's error JSON");
        assert_eq!(json["code"], 20003);
    }
    let unknown = format!(
        "/2010-04-01/Accounts/{SID}/Messages/{}/Media/{}",
        mms.message_sid,
        random_sid("ME")
    );
    let elsewhere = path.replace(&mms.message_sid, &random_sid("MM"));
    for path in [&unknown, &elsewhere] {
        let (status, _, body) = get(&addr, path, Some(basic(SID, TOKEN)));
        assert_eq!(status, 404);
        let json: Value = serde_json::from_slice(&body).expect("Twilio's error JSON");
        assert_eq!(json["code"], 20404);
    }

    let link = cdn_link(&emu, &mms.media_urls[0]);
    let link_path = path_of(&link);
    let (status, headers, body) = get(&addr, &link_path, None);
    assert_eq!(status, 200);
    assert_eq!(header_of(&headers, "content-type"), Some("image/png"));
    assert_eq!(body, png().bytes);

    emu.expire_media_links();
    assert_eq!(get(&addr, &link_path, None).0, 403);
    assert_eq!(get(&addr, "/_emulator/media-cdn/0123", None).0, 404);

    let fetches: Vec<(bool, u16)> = emu
        .media_fetches()
        .iter()
        .map(|f| (f.authorized, f.status))
        .collect();
    assert_eq!(
        fetches,
        [
            (false, 401),
            (false, 401),
            (true, 404),
            (true, 404),
            (true, 302),
            (false, 200),
            (false, 403),
            (false, 404)
        ]
    );
    assert_eq!(emu.media_fetches()[0].path, path);
}

/// A loopback URL nobody listens on (a port just freed), with `path`.
fn closed_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    format!(
        "http://{}{path}",
        listener.local_addr().expect("an address")
    )
}

/// A loopback server that answers every GET with a 302 to `location`.
fn redirector(location: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    base
}

/// Sends a message with `media` as its `MediaUrl`s and a status callback to a receiver.
fn send_media(emu: &Emulator, media: &[String]) -> Answer {
    let mut form = vec![
        ("To", USER),
        ("From", OWNED),
        ("StatusCallback", "https://gateway.example.com/status"),
    ];
    form.extend(media.iter().map(|url| ("MediaUrl", url.as_str())));
    post_message(emu, &form)
}

/// Posts `form` to `Messages.json` with the account's credentials.
fn post_message(emu: &Emulator, form: &[(&str, &str)]) -> Answer {
    call(emu, "POST", &messages_path(), Some(basic(SID, TOKEN)), form)
}

#[test]
fn outbound_media_is_fetched_following_redirects_before_sending() {
    let emu = emulator();
    let (mms, _) = text_mms(&emu, &[png()]);
    let link = cdn_link(&emu, &mms.media_urls[0]);
    let via = redirector(link);
    let (base, _requests) = receiver(200);
    emu.deliver_status_callbacks(Some(&base));
    let url = format!("{via}/media/abc");
    let answer = send_media(&emu, std::slice::from_ref(&url));
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["num_media"], "1");
    let sid = answer.json["sid"].as_str().expect("a sid").to_string();

    let downloads = emu.wait_for_downloads(1, Duration::from_secs(10));
    let bytes = png().bytes;
    assert_eq!(
        downloads,
        [MediaDownload {
            message_sid: sid.clone(),
            url,
            status: Some(200),
            content_type: Some("image/png".to_string()),
            filename: None,
            size: bytes.len(),
            sha1: Some(
                sha1::Sha1::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        }]
    );
    let posted = emu.wait_for_callbacks(2, Duration::from_secs(10));
    let statuses: Vec<&str> = posted.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
}

#[test]
fn outbound_media_that_cannot_be_fetched_fails_the_message_with_11200() {
    let emu = emulator();
    let (mms, _) = text_mms(&emu, &[png()]);
    let (base, _requests) = receiver(200);
    emu.deliver_status_callbacks(Some(&base));
    // Twilio's own media URL without credentials answers 401.
    let answer = send_media(&emu, std::slice::from_ref(&mms.media_urls[0]));
    assert_eq!(answer.status, 201, "{}", answer.json);
    let refused = answer.json["sid"].as_str().expect("a sid").to_string();
    let posted = emu.wait_for_callbacks(1, Duration::from_secs(10));
    assert_eq!(posted.len(), 1);
    assert_eq!(
        (
            posted[0].sid.as_str(),
            posted[0].status.as_str(),
            posted[0].error_code
        ),
        (refused.as_str(), "failed", Some(11200))
    );
    assert_eq!(emu.downloads()[0].status, Some(401));
    assert_eq!(emu.downloads()[0].sha1, None);

    let closed = closed_url("/media/x");
    let answer = send_media(&emu, &[closed]);
    assert_eq!(answer.status, 201, "{}", answer.json);
    let posted = emu.wait_for_callbacks(2, Duration::from_secs(20));
    assert_eq!(posted.len(), 2);
    assert_eq!(
        (posted[1].status.as_str(), posted[1].error_code),
        ("failed", Some(11200))
    );
    assert_eq!(emu.downloads()[1].status, None);
    let listed = list(&emu, &[]);
    assert!(
        listed.json["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .all(|m| m["status"] == "failed"
                && m["error_code"] == 11200
                && m["date_sent"].is_null())
    );
}

#[test]
fn outbound_media_over_5_mb_fails_with_11751() {
    let emu = emulator();
    let big = MediaFile {
        content_type: "image/jpeg".to_string(),
        bytes: vec![7u8; 5 * 1024 * 1024 + 1],
    };
    let (mms, _) = text_mms(&emu, &[png(), big]);
    let links: Vec<String> = mms.media_urls.iter().map(|u| cdn_link(&emu, u)).collect();
    let (base, _requests) = receiver(200);
    emu.deliver_status_callbacks(Some(&base));
    let answer = send_media(&emu, &links);
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["num_media"], "2");
    let posted = emu.wait_for_callbacks(1, Duration::from_secs(20));
    assert_eq!(
        (posted[0].status.as_str(), posted[0].error_code),
        ("failed", Some(11751))
    );
    let downloads = emu.downloads();
    assert_eq!(downloads.len(), 2);
    assert_eq!(downloads[0].size, png().bytes.len());
    assert_eq!(downloads[1].sha1, None);
}

#[test]
fn more_than_ten_media_urls_are_21623() {
    let emu = emulator();
    let urls: Vec<String> = (0..11)
        .map(|i| format!("https://example.com/{i}.png"))
        .collect();
    assert_error(&send_media(&emu, &urls), 400, 21623);
    assert!(emu.messages().is_empty());
    let (mms, _) = text_mms(&emu, &[png()]);
    let link = cdn_link(&emu, &mms.media_urls[0]);
    let ten = vec![link; 10];
    let answer = send_media(&emu, &ten);
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["num_media"], "10");
    assert_eq!(
        emu.wait_for_downloads(10, Duration::from_secs(10)).len(),
        10
    );
}

#[test]
fn inbound_mms_to_a_get_webhook_is_signed_over_its_query() {
    let emu = Emulator::start(EmulatorConfig {
        account_sid: SID.to_string(),
        auth_token: TOKEN.to_string(),
        phone_number: OWNED.to_string(),
        sms_url: Some("https://gateway.example.com/webhooks/twilio?line=2".to_string()),
        sms_method: "GET".to_string(),
    })
    .expect("the emulator starts");
    let (mms, raw) = text_mms(&emu, &[png()]);
    let request_line = raw.lines().next().expect("a request line");
    let target = request_line
        .strip_prefix("GET ")
        .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
        .expect("a GET");
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(target.split_once('?').expect("a query").1).expect("a query");
    assert_eq!(param(&query, "line"), Some("2"));
    assert_eq!(param(&query, "NumMedia"), Some("1"));
    assert_eq!(param(&query, "MediaUrl0"), Some(mms.media_urls[0].as_str()));
    let signature = signature_of(&raw);
    let url = format!("https://gateway.example.com{target}");
    assert_eq!(
        crate::signature::verify_signature(TOKEN, std::slice::from_ref(&url), &[], &signature),
        Some(url.as_str())
    );
}

#[test]
fn control_surface_lists_media_fetches_and_downloads() {
    let emu = emulator();
    let (mms, _) = text_mms(&emu, &[png()]);
    let link = cdn_link(&emu, &mms.media_urls[0]);
    assert_eq!(send_media(&emu, &[link]).status, 201);
    assert_eq!(emu.wait_for_downloads(1, Duration::from_secs(10)).len(), 1);
    let fetches = call(&emu, "GET", "/_emulator/media-fetches", None, &[]);
    assert_eq!(
        fetches.json.as_array().map(Vec::len),
        Some(2),
        "{}",
        fetches.json
    );
    assert_eq!(fetches.json[0]["authorized"], true);
    assert_eq!(fetches.json[1]["status"], 200);
    let downloads = call(&emu, "GET", "/_emulator/downloads", None, &[]);
    assert_eq!(downloads.json[0]["size"], png().bytes.len());
    assert_eq!(downloads.json[0]["content_type"], "image/png");
}

#[test]
fn outbound_media_that_never_answers_times_out_with_11200() {
    let emu = emulator();
    let (base, _requests) = receiver(200);
    emu.deliver_status_callbacks(Some(&base));
    emu.set_media_fetch_timeout(Duration::from_millis(300));
    // A server that takes the connection and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!(
        "http://{}/slow.png",
        listener.local_addr().expect("an address")
    );
    let held = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let answer = send_media(&emu, std::slice::from_ref(&url));
    assert_eq!(answer.status, 201, "{}", answer.json);
    let posted = emu.wait_for_callbacks(1, Duration::from_secs(10));
    assert_eq!(
        (posted[0].status.as_str(), posted[0].error_code),
        ("failed", Some(11200))
    );
    let downloads = emu.downloads();
    assert_eq!(
        (downloads[0].url.as_str(), downloads[0].status),
        (url.as_str(), None)
    );
    assert!(
        held.join().expect("the server thread").is_ok(),
        "the fetch connected"
    );
}

/// The Sandbox for WhatsApp's sender.
const SENDER: &str = "+14155238886";
const WHATSAPP_URL: &str = "https://gateway.example.com/webhooks/whatsapp";
const TEMPLATE: &str = "HX0123456789abcdef0123456789abcdef";

/// An emulator with a WhatsApp sender and one approved template.
fn whatsapp_emulator() -> Emulator {
    let emu = emulator();
    emu.enable_whatsapp(SENDER, WHATSAPP_URL);
    emu.add_template(TEMPLATE, "Hello {{1}}, your code is {{ 2 }}.");
    emu
}

fn whatsapp_address(number: &str) -> String {
    format!("whatsapp:{number}")
}

/// Posts a WhatsApp message from the sender to `USER` with `extra` parameters.
fn send_whatsapp(emu: &Emulator, extra: &[(&str, &str)]) -> Answer {
    let to = whatsapp_address(USER);
    let from = whatsapp_address(SENDER);
    let mut form = vec![("To", to.as_str()), ("From", from.as_str())];
    form.extend_from_slice(extra);
    post_message(emu, &form)
}

/// Asserts that message `index` of `emu` is now `status` with `code`.
fn assert_outcome(emu: &Emulator, index: usize, status: &str, code: Option<i64>) {
    let message = &emu.messages()[index];
    assert_eq!(
        (message.status.as_str(), message.error_code),
        (status, code)
    );
}

/// A raw request the emulator posted, checked to start with `request_line` and to be signed
/// with the auth token over `url`; its form.
fn signed_over(raw: &str, request_line: &str, url: &str) -> Vec<(String, String)> {
    let (params, signature) = signed_form(raw, request_line);
    let urls = [url.to_string()];
    assert_eq!(
        crate::signature::verify_signature(TOKEN, &urls, &params, &signature),
        Some(url)
    );
    params
}

/// A WhatsApp user writes through a webhook receiver; returns what was posted.
fn write_on_whatsapp(emu: &Emulator, files: &[MediaFile]) -> (InboundMms, Vec<(String, String)>) {
    let (base, requests) = receiver(200);
    let inbound = emu
        .whatsapp_text(USER, "hello there", "Ada", files, Some(&base))
        .expect("the webhook is answered");
    let raw = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("a webhook");
    let params = signed_over(&raw, "POST /webhooks/whatsapp ", WHATSAPP_URL);
    (inbound, params)
}

#[test]
fn whatsapp_inbound_is_posted_signed_with_whatsapps_parameters() {
    let emu = whatsapp_emulator();
    let (text, params) = write_on_whatsapp(&emu, &[]);
    assert_eq!(text.answered, 200);
    assert!(is_sid(&text.message_sid, "SM"), "{}", text.message_sid);
    let expected = [
        ("From", whatsapp_address(USER)),
        ("To", whatsapp_address(SENDER)),
        ("ProfileName", "Ada".to_string()),
        ("WaId", "15557654321".to_string()),
        ("Body", "hello there".to_string()),
        ("NumMedia", "0".to_string()),
        ("MessageType", "text".to_string()),
        ("MessageSid", text.message_sid.clone()),
        ("SmsMessageSid", text.message_sid.clone()),
        ("SmsSid", text.message_sid.clone()),
        ("SmsStatus", "received".to_string()),
        ("NumSegments", "1".to_string()),
        ("AccountSid", SID.to_string()),
        ("ApiVersion", API_VERSION.to_string()),
    ];
    for (name, value) in &expected {
        assert_eq!(param(&params, name), Some(value.as_str()), "{name}");
    }

    let (picture, params) = write_on_whatsapp(&emu, &[png()]);
    assert!(
        is_sid(&picture.message_sid, "MM"),
        "{}",
        picture.message_sid
    );
    assert_eq!(param(&params, "NumMedia"), Some("1"));
    assert_eq!(param(&params, "MessageType"), Some("image"));
    assert_eq!(param(&params, "MediaContentType0"), Some("image/png"));
    assert_eq!(
        param(&params, "MediaUrl0"),
        Some(picture.media_urls[0].as_str())
    );
    let link = cdn_link(&emu, &picture.media_urls[0]);
    let (status, _, bytes) = get(&emu.server.addr().to_string(), &path_of(&link), None);
    assert_eq!((status, bytes), (200, png().bytes));
    // Writing opened the user's window: free-form messages reach them.
    assert_eq!(send_whatsapp(&emu, &[("Body", "hi")]).status, 201);
    assert_outcome(&emu, 0, "read", None);
}

#[test]
fn whatsapp_inbound_is_signed_with_the_shared_key_when_the_account_has_one() {
    let emu = whatsapp_emulator();
    emu.sign_with_shared_key(crate::signature::SHA256, "shared-key");
    let (base, requests) = receiver(200);
    emu.whatsapp_text(USER, "hi", "Ada", &[], Some(&base))
        .expect("the webhook is answered");
    let raw = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("a webhook");
    let (head, _) = raw.split_once("\r\n\r\n").expect("a request");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-twilio-webhooks-signature-settings: algorithm=hmac_sha256"),
        "{head}"
    );
    let (params, signature) = signed_form(&raw, "POST /webhooks/whatsapp ");
    let url = [WHATSAPP_URL.to_string()];
    let key = crate::signature::Scheme::SharedKey("shared-key");
    assert_eq!(
        crate::signature::verify(key, &url, &params, &signature),
        Some(WHATSAPP_URL)
    );
    assert_eq!(
        crate::signature::verify_signature(TOKEN, &url, &params, &signature),
        None
    );
}

#[test]
fn whatsapp_text_needs_a_sender() {
    let emu = emulator();
    assert!(emu.whatsapp_text(USER, "hi", "Ada", &[], None).is_err());
}

/// The statuses posted for message `sid`, in order.
fn statuses_of(posted: &[CallbackPost], sid: &str) -> Vec<(String, Option<i64>)> {
    posted
        .iter()
        .filter(|p| p.sid == sid)
        .map(|p| (p.status.clone(), p.error_code))
        .collect()
}

#[test]
fn whatsapp_inside_the_window_is_sent_delivered_then_read_with_signed_callbacks() {
    let emu = whatsapp_emulator();
    let (base, requests) = receiver(200);
    emu.deliver_status_callbacks(Some(&base));
    let callback = "https://gateway.example.com/webhooks/whatsapp/status";
    emu.open_window(USER);
    // Longer than one SMS segment: WhatsApp bills it as one message.
    let body = "a".repeat(400);
    let answer = send_whatsapp(&emu, &[("Body", &body), ("StatusCallback", callback)]);
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["status"], "queued");
    assert_eq!(answer.json["num_segments"], "1");
    assert_eq!(answer.json["to"], whatsapp_address(USER));
    assert_eq!(answer.json["from"], whatsapp_address(SENDER));
    let sid = answer.json["sid"].as_str().expect("a SID").to_string();
    let posted = emu.wait_for_callbacks(3, Duration::from_secs(10));
    let statuses: Vec<String> = statuses_of(&posted, &sid)
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);
    for expected in ["sent", "delivered", "read"] {
        let raw = requests
            .recv_timeout(Duration::from_secs(5))
            .expect("a callback");
        let params = signed_over(&raw, "POST /webhooks/whatsapp/status ", callback);
        assert_eq!(param(&params, "MessageStatus"), Some(expected));
        assert_eq!(param(&params, "To"), Some(whatsapp_address(USER).as_str()));
        assert_eq!(
            param(&params, "From"),
            Some(whatsapp_address(SENDER).as_str())
        );
        assert_eq!(param(&params, "ChannelPrefix"), Some("whatsapp"));
    }
    let message = &emu.messages()[0];
    assert_eq!((message.status.as_str(), message.segments), ("read", 1));
}

#[test]
fn whatsapp_failed_delivery_is_never_read() {
    let emu = whatsapp_emulator();
    emu.fail_delivery(&whatsapp_address(USER), "undelivered", 63024);
    emu.open_window(USER);
    let answer = send_whatsapp(&emu, &[("Body", "hi")]);
    assert_eq!(answer.status, 201, "{}", answer.json);
    // Nobody watches: the carrier is done with it before the answer.
    assert_outcome(&emu, 0, "undelivered", Some(63024));
}

#[test]
fn whatsapp_outside_the_window_is_accepted_then_fails_with_63016() {
    let emu = whatsapp_emulator();
    emu.deliver_status_callbacks(None);
    let (base, requests) = receiver(200);
    let callback = format!("{base}/webhooks/whatsapp/status");
    // Never wrote; then wrote, 25 hours ago.
    for expire in [false, true] {
        if expire {
            emu.open_window(USER);
            emu.expire_window(USER);
        }
        let answer = send_whatsapp(&emu, &[("Body", "hi"), ("StatusCallback", &callback)]);
        assert_eq!(answer.status, 201, "{}", answer.json);
        assert_eq!(answer.json["status"], "queued");
        let sid = answer.json["sid"].as_str().expect("a SID").to_string();
        let raw = requests
            .recv_timeout(Duration::from_secs(10))
            .expect("a callback");
        let params = signed_over(&raw, "POST /webhooks/whatsapp/status ", &callback);
        assert_eq!(param(&params, "MessageSid"), Some(sid.as_str()));
        assert_eq!(param(&params, "MessageStatus"), Some("failed"));
        assert_eq!(param(&params, "ErrorCode"), Some("63016"));
        let status = crate::status::parse(&crate::webhook::test_channels::WHATSAPP, &params)
            .expect("a status callback");
        assert_eq!(status.provider_id, sid);
        assert_eq!(status.chat.as_deref(), Some(USER));
        assert_eq!(status.error_code, Some(63016));
        let listed = list(&emu, &[("To", &whatsapp_address(USER))]);
        assert_eq!(listed.json["messages"][0]["sid"], sid.as_str());
        assert_eq!(listed.json["messages"][0]["status"], "failed");
        assert_eq!(listed.json["messages"][0]["error_code"], 63016);
        assert_eq!(listed.json["messages"][0]["date_sent"], Value::Null);
    }
    // Each failed without being sent: one callback each.
    let posted = emu.wait_for_callbacks(2, Duration::from_secs(10));
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(posted.iter().all(|p| p.status == "failed"));

    // Nobody watching: the failure is there at once.
    let quiet = whatsapp_emulator();
    let answer = send_whatsapp(&quiet, &[("Body", "hi")]);
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_outcome(&quiet, 0, "failed", Some(63016));
    // Once the user writes, free-form goes again.
    quiet.open_window(USER);
    assert_eq!(send_whatsapp(&quiet, &[("Body", "hi")]).status, 201);
    assert_outcome(&quiet, 1, "read", None);
}

#[test]
fn whatsapp_template_is_rendered_and_goes_outside_the_window() {
    let emu = whatsapp_emulator();
    let variables = r#"{"1":"Ada","2":"4242"}"#;
    let answer = send_whatsapp(
        &emu,
        &[("ContentSid", TEMPLATE), ("ContentVariables", variables)],
    );
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["body"], "Hello Ada, your code is 4242.");
    let message = &emu.messages()[0];
    assert_eq!(message.body, "Hello Ada, your code is 4242.");
    assert_eq!(message.content_sid.as_deref(), Some(TEMPLATE));
    assert_eq!(message.content_variables.as_deref(), Some(variables));
    assert_eq!(
        (message.status.as_str(), message.error_code),
        ("read", None)
    );
    let listed = list(&emu, &[]);
    assert_eq!(
        listed.json["messages"][0]["body"],
        "Hello Ada, your code is 4242."
    );

    // A `Body` next to a template without variables is ignored.
    emu.add_template(
        "HXfedcba9876543210fedcba9876543210",
        "Your reply is waiting.",
    );
    let answer = send_whatsapp(
        &emu,
        &[
            ("ContentSid", "HXfedcba9876543210fedcba9876543210"),
            ("Body", "free-form text"),
        ],
    );
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["body"], "Your reply is waiting.");
    assert_outcome(&emu, 1, "read", None);
}

#[test]
fn whatsapp_template_errors_are_twilios() {
    let emu = whatsapp_emulator();
    let good = r#"{"1":"Ada","2":"4242"}"#;
    // Unknown, malformed, or known to another account only.
    for sid in ["HXffffffffffffffffffffffffffffffff", "HX123", "not-a-sid"] {
        let answer = send_whatsapp(&emu, &[("ContentSid", sid), ("ContentVariables", good)]);
        assert_error(&answer, 400, 21655);
    }
    for variables in [
        "not json",
        r#"["Ada","4242"]"#,
        r#"{"1":"Ada","2":4242}"#,
        r#"{"1":"Ada","2":""}"#,
        r#"{"1":"Ada"}"#,
    ] {
        let answer = send_whatsapp(
            &emu,
            &[("ContentSid", TEMPLATE), ("ContentVariables", variables)],
        );
        assert_error(&answer, 400, 21656);
    }
    let answer = send_whatsapp(&emu, &[("ContentSid", TEMPLATE)]);
    assert_error(&answer, 400, 21656);
    let answer = send_whatsapp(&emu, &[("Body", "hi"), ("ContentVariables", good)]);
    assert_error(&answer, 400, 21654);
    let answer = send_whatsapp(
        &emu,
        &[
            ("ContentSid", TEMPLATE),
            ("ContentVariables", good),
            ("Body", "hi"),
        ],
    );
    assert_error(&answer, 400, 35127);
    assert!(emu.messages().is_empty());
    assert_eq!(emu.attempts().len(), 11);
}

#[test]
fn whatsapp_from_must_be_the_sender_of_the_same_channel() {
    let emu = whatsapp_emulator();
    let to = whatsapp_address(USER);
    let sender = whatsapp_address(SENDER);
    let other = whatsapp_address(OWNED);
    let post = |emu: &Emulator, to: &str, from: &str| {
        post_message(emu, &[("To", to), ("From", from), ("Body", "hi")])
    };
    assert_error(&post(&emu, &to, &other), 400, 63007);
    assert_error(&post(&emu, &to, OWNED), 400, 21910);
    assert_error(&post(&emu, USER, &sender), 400, 21910);
    assert_error(&post(&emu, "whatsapp:5557654321", &sender), 400, 21211);
    // Without a sender enabled, no `whatsapp:` From is known.
    assert_error(&post(&emulator(), &to, &sender), 400, 63007);
    assert!(emu.messages().is_empty());
    assert_eq!(post(&emu, &to, &sender).status, 201);
}

#[test]
fn a_messaging_service_sends_whatsapp_from_the_whatsapp_sender() {
    let emu = whatsapp_emulator();
    let service = "MG0123456789abcdef0123456789abcdef";
    let to = whatsapp_address(USER);
    for open in [true, false] {
        if open {
            emu.open_window(USER);
        } else {
            emu.expire_window(USER);
        }
        let form = [
            ("To", to.as_str()),
            ("MessagingServiceSid", service),
            ("Body", "hi"),
        ];
        assert_eq!(post_message(&emu, &form).status, 201);
    }
    let from = whatsapp_address(SENDER);
    let froms: Vec<Option<String>> = emu.messages().into_iter().map(|m| m.from).collect();
    assert_eq!(froms, [Some(from.clone()), Some(from)]);
    assert_outcome(&emu, 0, "read", None);
    assert_outcome(&emu, 1, "failed", Some(63016));
}

#[test]
fn whatsapp_body_over_1600_characters_is_21617() {
    let emu = whatsapp_emulator();
    emu.open_window(USER);
    let answer = send_whatsapp(&emu, &[("Body", &"é".repeat(1601))]);
    assert_error(&answer, 400, 21617);
    assert!(emu.messages().is_empty());
    let answer = send_whatsapp(&emu, &[("Body", &"é".repeat(1600))]);
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["num_segments"], "1");
}

#[test]
fn the_list_filters_whatsapp_addresses_apart_from_sms() {
    let emu = whatsapp_emulator();
    emu.open_window(USER);
    let sms = send(&emu, USER, "by SMS");
    assert_eq!(sms.status, 201, "{}", sms.json);
    let media = closed_url("/a.png");
    let whatsapp = send_whatsapp(&emu, &[("Body", "by WhatsApp"), ("MediaUrl", &media)]);
    assert_eq!(whatsapp.status, 201, "{}", whatsapp.json);
    let sms_sid = sms.json["sid"].as_str().expect("a SID").to_string();
    let whatsapp_sid = whatsapp.json["sid"].as_str().expect("a SID").to_string();

    let to_whatsapp = list(&emu, &[("To", &whatsapp_address(USER))]);
    assert_eq!(sids(&to_whatsapp), std::slice::from_ref(&whatsapp_sid));
    let entry = &to_whatsapp.json["messages"][0];
    assert_eq!(entry["body"], "by WhatsApp");
    assert_eq!(entry["num_media"], "1");
    assert_eq!(entry["to"], whatsapp_address(USER));
    // A `+` sent unencoded arrives as a space.
    let unencoded = list(&emu, &[("To", "whatsapp: 15557654321")]);
    assert_eq!(sids(&unencoded), std::slice::from_ref(&whatsapp_sid));
    assert_eq!(
        sids(&list(&emu, &[("To", USER)])),
        std::slice::from_ref(&sms_sid)
    );
    assert_eq!(
        sids(&list(&emu, &[("From", &whatsapp_address(SENDER))])),
        [whatsapp_sid]
    );
    assert_eq!(sids(&list(&emu, &[("From", OWNED)])), [sms_sid]);
}
