use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use platform_api::{
    Accepted, ConfigSection, Inbound, InboundSink, Part, Platform, SendError, SinkError,
    async_trait,
};

use sha1::Digest;

use super::*;

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default()).expect("the emulator starts")
}

fn ada() -> Person {
    Person::new(4242, "Ada")
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    json: Value,
}

/// One HTTP/1.1 exchange over a fresh connection.
fn exchange(emu: &Emulator, method: &str, path: &str, content_type: &str, body: &str) -> Answer {
    exchange_bytes(emu, method, path, content_type, body.as_bytes())
}

/// One HTTP/1.1 exchange over a fresh connection, with a body of any bytes.
fn exchange_bytes(
    emu: &Emulator,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(emu.addr()).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        emu.addr(),
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("writing");
    // A server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading");
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let retry_after = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .map(|(_, value)| value.trim().to_string());
    Answer {
        status,
        retry_after,
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// Calls a method with a JSON body.
fn call(emu: &Emulator, method: &str, params: Value) -> Answer {
    let path = format!("/bot{}/{method}", emu.token());
    exchange(emu, "POST", &path, "application/json", &params.to_string())
}

#[test]
fn a_wrong_token_and_an_unknown_method_answer_as_telegram_does() {
    let emu = emulator();
    let wrong = exchange(&emu, "GET", "/bot123:nope/getMe", "text/plain", "");
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let unknown = call(&emu, "sendSmokeSignal", json!({}));
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
    let me = exchange(
        &emu,
        "GET",
        &format!("/bot{}/getMe", emu.token()),
        "text/plain",
        "",
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.json["result"]["username"], "hermes_test_bot");
    assert_eq!(me.json["result"]["is_bot"], true);
}

#[test]
fn updates_are_handed_out_until_an_offset_confirms_them() {
    let emu = emulator();
    let first = emu.user_writes(&ada(), "hello");
    let second = emu.user_writes(&ada(), "again");
    let got = call(&emu, "getUpdates", json!({"timeout": 0}));
    let updates = got.json["result"].as_array().expect("a list").clone();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["update_id"], first.update_id);
    assert_eq!(updates[0]["message"]["text"], "hello");
    assert_eq!(updates[0]["message"]["chat"]["type"], "private");
    assert_eq!(updates[1]["message"]["message_id"], 2);
    // Without an offset nothing is confirmed; an offset past the first confirms it.
    assert_eq!(emu.pending_updates().len(), 2);
    let got = call(
        &emu,
        "getUpdates",
        json!({"offset": first.update_id + 1, "timeout": 0}),
    );
    assert_eq!(got.json["result"][0]["update_id"], second.update_id);
    assert_eq!(emu.pending_updates().len(), 1);
    // A form-encoded or GET call works the same.
    let path = format!(
        "/bot{}/getUpdates?offset={}&timeout=0",
        emu.token(),
        second.update_id + 1
    );
    let got = exchange(&emu, "GET", &path, "text/plain", "");
    assert_eq!(got.json["result"], json!([]));
    assert!(emu.pending_updates().is_empty());
    let polls = emu.polls();
    assert_eq!(polls.len(), 3);
    assert_eq!(polls[2].offset, Some(second.update_id + 1));
}

#[test]
fn a_long_poll_waits_for_the_next_update_or_its_timeout() {
    let emu = emulator();
    let writer = emu.clone();
    let started = Instant::now();
    let write = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writer.user_writes(&ada(), "late")
    });
    let got = call(&emu, "getUpdates", json!({"timeout": 20}));
    let waited = started.elapsed();
    let update = write.join().expect("the writer");
    assert_eq!(got.json["result"][0]["update_id"], update.update_id);
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    let started = Instant::now();
    let empty = call(
        &emu,
        "getUpdates",
        json!({"offset": update.update_id + 1, "timeout": 1}),
    );
    assert_eq!(empty.json["result"], json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn a_second_poller_ends_the_first_with_a_conflict() {
    let emu = emulator();
    let other = emu.clone();
    let first = std::thread::spawn(move || call(&other, "getUpdates", json!({"timeout": 20})));
    // Wait until the first poll is waiting.
    std::thread::sleep(Duration::from_millis(300));
    let second = std::thread::spawn({
        let emu = emu.clone();
        move || call(&emu, "getUpdates", json!({"timeout": 1}))
    });
    let first = first.join().expect("the first poller");
    assert_eq!(first.status, 409);
    assert_eq!(
        first.json["description"],
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    );
    assert_eq!(second.join().expect("the second poller").status, 200);
}

#[test]
fn polling_conflicts_with_a_webhook_until_it_is_deleted() {
    let emu = emulator();
    let set = call(
        &emu,
        "setWebhook",
        json!({"url": "https://bot.example.com/tg", "secret_token": "abc_DEF-123"}),
    );
    assert_eq!(set.json["description"], "Webhook was set");
    let info = call(&emu, "getWebhookInfo", json!({}));
    assert_eq!(info.json["result"]["url"], "https://bot.example.com/tg");
    let polled = call(&emu, "getUpdates", json!({}));
    assert_eq!(polled.status, 409);
    assert_eq!(
        polled.json["description"],
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    );
    let bad = call(
        &emu,
        "setWebhook",
        json!({"url": "http://bot.example.com/tg"}),
    );
    assert_eq!(bad.status, 400);
    let bad = call(
        &emu,
        "setWebhook",
        json!({"url": "https://bot.example.com/tg", "secret_token": "no spaces"}),
    );
    assert_eq!(bad.status, 400);
    let deleted = call(&emu, "deleteWebhook", json!({}));
    assert_eq!(deleted.json["description"], "Webhook was deleted");
    assert_eq!(
        call(&emu, "getWebhookInfo", json!({})).json["result"]["url"],
        ""
    );
    assert_eq!(call(&emu, "getUpdates", json!({})).status, 200);
}

/// What the webhook receiver got: the secret header and the JSON body of each post.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A webhook receiver: answers 503 to the first `failures` posts, then 200; records headers.
fn receiver(failures: usize) -> (String, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then the body by its length.
            let (head, mut body) = loop {
                let read = stream.read(&mut buf).unwrap_or(0);
                if read == 0 {
                    break (String::new(), Vec::new());
                }
                raw.extend_from_slice(&buf[..read]);
                if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..at]).to_string();
                    break (head, raw[at + 4..].to_vec());
                }
            };
            let header = |name: &str| {
                head.lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while body.len() < length {
                let read = stream.read(&mut buf).unwrap_or(0);
                if read == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..read]);
            }
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            record
                .lock()
                .unwrap()
                .push((header("x-telegram-bot-api-secret-token"), json));
            let status = if n < failures {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (url, seen)
}

#[test]
fn a_webhook_gets_each_update_with_the_secret_until_it_answers_2xx() {
    let emu = emulator();
    let (url, seen) = receiver(2);
    let set = call(
        &emu,
        "setWebhook",
        json!({"url": url, "secret_token": "s3cret_token", "allowed_updates": ["message"]}),
    );
    assert_eq!(set.status, 200);
    let update = emu.user_writes(&ada(), "via webhook");
    let posts = wait_for(3, Duration::from_secs(10), || emu.webhook_posts());
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert_eq!(posts[0].status, Some(503));
    assert_eq!(posts[2].status, Some(200));
    assert!(posts.iter().all(|p| p.update_id == update.update_id));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(secret, _)| secret.as_deref() == Some("s3cret_token"))
    );
    assert_eq!(seen[0].1["message"]["text"], "via webhook");
    let info = emu.webhook_info();
    assert_eq!(
        info.last_error_message.as_deref(),
        Some("Wrong response from the webhook: 503 Service Unavailable")
    );
    assert_eq!(info.pending_update_count, 0);
    assert_eq!(info.allowed_updates, Some(vec!["message".to_string()]));
}

#[test]
fn sent_messages_are_checked_as_telegram_checks_them() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let sent = call(
        &emu,
        "sendMessage",
        json!({"chat_id": ada.id, "text": "<b>Hi</b> &amp; bye", "parse_mode": "HTML"}),
    );
    assert_eq!(sent.status, 200);
    assert_eq!(sent.json["result"]["text"], "Hi & bye");
    assert_eq!(sent.json["result"]["from"]["is_bot"], true);
    assert_eq!(sent.json["result"]["entities"][0]["type"], "bold");
    let record = &emu.sent()[0];
    assert_eq!(record.body, "<b>Hi</b> &amp; bye");
    assert_eq!(record.parse_mode.as_deref(), Some("HTML"));

    for (params, status, description) in [
        (
            json!({"chat_id": ada.id, "text": "<b>open", "parse_mode": "HTML"}),
            400,
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        ),
        (
            json!({"chat_id": ada.id, "text": "x".repeat(4097)}),
            400,
            "Bad Request: message is too long",
        ),
        (
            json!({"chat_id": 777, "text": "hello"}),
            400,
            "Bad Request: chat not found",
        ),
        (
            json!({"chat_id": ada.id, "text": "  "}),
            400,
            "Bad Request: message text is empty",
        ),
        (
            json!({"chat_id": ada.id, "text": "*x*", "parse_mode": "MarkdownV2"}),
            400,
            "Bad Request: unsupported parse_mode",
        ),
    ] {
        let answer = call(&emu, "sendMessage", params);
        assert_eq!(answer.status, status);
        assert_eq!(answer.json["description"], description);
        assert_eq!(answer.json["error_code"], status);
    }
    // Characters outside the BMP count twice.
    let flags = "🇺🇸".repeat(1025);
    let answer = call(
        &emu,
        "sendMessage",
        json!({"chat_id": ada.id, "text": flags}),
    );
    assert_eq!(
        answer.json["description"],
        "Bad Request: message is too long"
    );
    // Form-encoded parameters, as some clients send them.
    let path = format!("/bot{}/sendMessage", emu.token());
    let form = format!("chat_id={}&text=plain+text", ada.id);
    let answer = exchange(
        &emu,
        "POST",
        &path,
        "application/x-www-form-urlencoded",
        &form,
    );
    assert_eq!(answer.json["result"]["text"], "plain text");
    assert_eq!(emu.sent().len(), 2);
    assert_eq!(emu.attempts().len(), 8);
}

#[test]
fn faults_and_blocked_chats_answer_with_telegrams_errors() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    emu.push_fault(Fault::TooManyRequests { retry_after: 7 });
    emu.push_fault(Fault::ServerError);
    emu.push_fault(Fault::BadGateway);
    let send = || {
        call(
            &emu,
            "sendMessage",
            json!({"chat_id": ada.id, "text": "hi"}),
        )
    };
    let limited = send();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.retry_after.as_deref(), Some("7"));
    assert_eq!(
        limited.json,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}})
    );
    assert_eq!(send().status, 500);
    let gateway = send();
    assert_eq!(gateway.status, 502);
    assert_eq!(gateway.json, Value::Null, "an HTML page");
    assert_eq!(send().status, 200);
    emu.block(ada.id);
    let blocked = send();
    assert_eq!(blocked.status, 403);
    assert_eq!(
        blocked.json["description"],
        "Forbidden: bot was blocked by the user"
    );
    let statuses: Vec<Option<u16>> = emu.attempts().iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [Some(429), Some(500), Some(502), Some(200), Some(403)]
    );
    assert_eq!(emu.sent().len(), 1);
}

#[test]
fn drafts_are_shown_in_private_chats_until_a_message_replaces_them() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let since = Instant::now();
    let first = call(
        &emu,
        "sendMessageDraft",
        json!({"chat_id": ada.id, "draft_id": 7, "text": "<b>Hal</b>", "parse_mode": "HTML"}),
    );
    assert_eq!(first.status, 200);
    assert_eq!(first.json, json!({"ok": true, "result": true}));
    let shown = emu.showing(ada.id).expect("the draft is shown");
    assert_eq!((shown.draft_id, shown.text.as_str()), (7, "Hal"));
    assert_eq!(shown.entities[0].kind, "bold");
    // Form-encoded, with a thread, as some clients send it.
    let path = format!("/bot{}/sendMessageDraft", emu.token());
    let form = format!(
        "chat_id={}&draft_id=7&message_thread_id=3&text=Hallo+world",
        ada.id
    );
    let second = exchange(
        &emu,
        "POST",
        &path,
        "application/x-www-form-urlencoded",
        &form,
    );
    assert_eq!(second.status, 200, "{}", second.json);
    let shown = emu.showing(ada.id).expect("the draft is shown");
    assert_eq!(shown.text, "Hallo world");
    assert_eq!(shown.message_thread_id, Some(3));
    let drafts = emu.drafts_to(ada.id);
    assert_eq!(drafts.len(), 2);
    assert!(drafts[1].elapsed >= drafts[0].elapsed);

    // When text first became visible: the first draft; after it, the message that follows.
    let visible = emu.first_visible(ada.id, since).expect("visible");
    assert!(visible >= since && visible <= Instant::now());
    let later = Instant::now();
    assert_eq!(emu.first_visible(ada.id, later), None);
    let sent = call(
        &emu,
        "sendMessage",
        json!({"chat_id": ada.id, "text": "Hallo world!"}),
    );
    assert_eq!(sent.status, 200);
    assert!(
        emu.showing(ada.id).is_none(),
        "the message replaced the draft"
    );
    let message = emu.first_visible(ada.id, later).expect("the message");
    assert!(message > visible);
    let read = exchange(&emu, "GET", "/_emulator/drafts", "text/plain", "");
    assert_eq!(read.json[1]["text"], "Hallo world");
}

#[test]
fn drafts_are_refused_as_telegram_refuses_them() {
    let emu = emulator();
    let ada = ada();
    let room = group(-1001, "Ops");
    emu.add_chat(&ada.chat());
    emu.add_chat(&room);
    for (params, description) in [
        (
            json!({"chat_id": room.id, "draft_id": 1, "text": "hi"}),
            "Bad Request: TEXTDRAFT_PEER_INVALID",
        ),
        (
            json!({"chat_id": 777, "draft_id": 1, "text": "hi"}),
            "Bad Request: chat not found",
        ),
        (
            json!({"draft_id": 1, "text": "hi"}),
            "Bad Request: chat_id is empty",
        ),
        (
            json!({"chat_id": ada.id, "draft_id": 0, "text": "hi"}),
            "Bad Request: draft_id must be non-zero",
        ),
        (
            json!({"chat_id": ada.id, "text": "hi"}),
            "Bad Request: draft_id must be non-zero",
        ),
        (
            json!({"chat_id": ada.id, "draft_id": 1, "text": ""}),
            "Bad Request: message text is empty",
        ),
        (
            json!({"chat_id": ada.id, "draft_id": 1, "text": "<b></b> ", "parse_mode": "HTML"}),
            "Bad Request: message text is empty",
        ),
        (
            json!({"chat_id": ada.id, "draft_id": 1, "text": "x".repeat(4097)}),
            "Bad Request: message is too long",
        ),
        (
            json!({"chat_id": ada.id, "draft_id": 1, "text": "<i>open", "parse_mode": "HTML"}),
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"i\"",
        ),
    ] {
        let answer = call(&emu, "sendMessageDraft", params.clone());
        assert_eq!(answer.status, 400, "{params}");
        assert_eq!(answer.json["description"], description, "{params}");
        assert_eq!(answer.json["ok"], false);
    }
    // The longest text is taken.
    let longest = json!({"chat_id": ada.id, "draft_id": 1, "text": "x".repeat(4096)});
    assert_eq!(call(&emu, "sendMessageDraft", longest).status, 200);
    emu.block(ada.id);
    let blocked = call(
        &emu,
        "sendMessageDraft",
        json!({"chat_id": ada.id, "draft_id": 1, "text": "hi"}),
    );
    assert_eq!(blocked.status, 403);
    assert_eq!(emu.drafts().len(), 1);
    let statuses: Vec<Option<u16>> = emu.draft_attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses.len(), 11);
    assert_eq!(statuses[9..], [Some(200), Some(403)]);
    assert!(emu.attempts().is_empty(), "drafts are not messages");
}

/// Sends `n` draft updates to `chat` at `per_second`, on a fixed schedule; returns the answers.
fn drafts_at(emu: &Emulator, chat: i64, n: u32, per_second: f64) -> Vec<Answer> {
    let start = Instant::now();
    (0..n)
        .map(|i| {
            let due = start + Duration::from_secs_f64(f64::from(i) / per_second);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let text = format!("update {i}");
            call(
                emu,
                "sendMessageDraft",
                json!({"chat_id": chat, "draft_id": 9, "text": text}),
            )
        })
        .collect()
}

#[test]
fn draft_updates_faster_than_the_chat_allows_are_answered_429() {
    let emu = emulator();
    let (ada, bob) = (ada(), Person::new(5151, "Bob"));
    emu.add_chat(&ada.chat());
    emu.add_chat(&bob.chat());
    // Two a second, the documented pace, is never refused.
    let steady = drafts_at(&emu, ada.id, 8, 2.0);
    assert!(steady.iter().all(|a| a.status == 200));
    // Four a second is refused once the burst is spent, with Telegram's 429.
    let hurried = drafts_at(&emu, bob.id, 12, 4.0);
    let refused = hurried
        .iter()
        .position(|a| a.status == 429)
        .expect("a 429 for four updates a second");
    assert!(refused >= DRAFT_BURST as usize, "{refused}");
    let answer = &hurried[refused];
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    assert_eq!(
        answer.json,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})
    );
    // Each chat has its bucket: Ada's was not touched by Bob's.
    let one = drafts_at(&emu, ada.id, 1, 1.0);
    assert_eq!(one[0].status, 200);

    // A stricter chat limit, as a test may set it.
    let strict = Emulator::start(EmulatorConfig {
        draft_burst: 1,
        drafts_per_second: 0.5,
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts");
    strict.add_chat(&ada.chat());
    let answers = drafts_at(&strict, ada.id, 2, 100.0);
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[1].json["parameters"]["retry_after"], 2);
}

#[test]
fn chat_actions_files_and_read_backs() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    assert_eq!(
        call(
            &emu,
            "sendChatAction",
            json!({"chat_id": ada.id, "action": "typing"})
        )
        .status,
        200
    );
    let wrong = call(
        &emu,
        "sendChatAction",
        json!({"chat_id": ada.id, "action": "dancing"}),
    );
    assert_eq!(
        wrong.json["description"],
        "Bad Request: wrong parameter action in request"
    );
    assert_eq!(emu.chat_actions().len(), 1);
    assert_eq!(emu.chat_actions()[0].action, "typing");

    let update = emu.send_photo(&ada.chat(), &ada, Some("look"));
    let photo = &update.message.as_ref().unwrap().photo;
    assert_eq!(photo.len(), 3);
    let file = call(&emu, "getFile", json!({"file_id": photo[2].file_id}));
    let path = file.json["result"]["file_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fetch_file(&emu, &emu.token(), &path),
        (200, format!("emulated content of {path}").into_bytes())
    );
    assert_eq!(
        call(&emu, "getFile", json!({"file_id": "nope"})).json["description"],
        "Bad Request: invalid file_id"
    );
    let read = exchange(&emu, "GET", "/_emulator/actions", "text/plain", "");
    assert_eq!(read.json[0]["action"], "typing");
    let read = exchange(&emu, "GET", "/_emulator/updates", "text/plain", "");
    assert_eq!(read.json[0]["message"]["caption"], "look");
}

/// Downloads `/file/bot<token>/<path>` with `token`: the status and the body's bytes.
fn fetch_file(emu: &Emulator, token: &str, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(emu.addr()).expect("connecting");
    let request =
        format!("GET /file/bot{token}/{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("writing");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    (status, raw[split + 4..].to_vec())
}

#[test]
fn files_users_send_are_served_as_their_bytes_and_every_download_is_recorded() {
    let emu = emulator();
    let ada = ada();
    let small: &[u8] = b"\xFF\xD8\xFF\xE0small jpeg";
    let large: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let update = emu.send_photo_sizes(
        &ada.chat(),
        &ada,
        &[(90, 60, small), (1280, 853, &large)],
        Some("the <b>view</b>"),
    );
    let message = update.message.as_ref().expect("a message");
    assert_eq!(message.caption.as_deref(), Some("the <b>view</b>"));
    assert_eq!(message.text, None);
    assert_eq!(message.photo.len(), 2);
    assert_eq!(message.photo[1].width, 1280);
    assert_eq!(message.photo[1].file_size, Some(50_000));
    assert_ne!(message.photo[0].file_id, message.photo[1].file_id);
    assert_ne!(
        message.photo[0].file_unique_id,
        message.photo[1].file_unique_id
    );

    let file = call(
        &emu,
        "getFile",
        json!({"file_id": message.photo[1].file_id}),
    );
    assert_eq!(file.status, 200);
    assert_eq!(file.json["result"]["file_size"], 50_000);
    let path = file.json["result"]["file_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fetch_file(&emu, &emu.token(), &path), (200, large.clone()));
    let small_path = call(
        &emu,
        "getFile",
        json!({"file_id": message.photo[0].file_id}),
    )
    .json["result"]["file_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fetch_file(&emu, &emu.token(), &small_path),
        (200, small.to_vec())
    );
    assert_eq!(fetch_file(&emu, "1:wrong", &path).0, 401);
    assert_eq!(fetch_file(&emu, &emu.token(), "photos/file_999.jpg").0, 404);

    let pdf = b"%PDF-1.4 a report".to_vec();
    let update = emu.send_file(
        &ada.chat(),
        &ada,
        "report.pdf",
        "application/pdf",
        &pdf,
        None,
    );
    let document = update.message.unwrap().document.expect("a document");
    assert_eq!(document.file_name.as_deref(), Some("report.pdf"));
    assert_eq!(document.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(document.file_size, Some(pdf.len() as u64));
    let file = call(&emu, "getFile", json!({"file_id": document.file_id}));
    let pdf_path = file.json["result"]["file_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pdf_path.ends_with(".pdf"), "{pdf_path}");
    assert_eq!(fetch_file(&emu, &emu.token(), &pdf_path), (200, pdf));

    let downloads = emu.downloads();
    let answered: Vec<(&str, u16, u64)> = downloads
        .iter()
        .map(|d| (d.file_path.as_str(), d.status, d.bytes))
        .collect();
    assert_eq!(
        answered,
        [
            (path.as_str(), 200, 50_000),
            (small_path.as_str(), 200, small.len() as u64),
            (path.as_str(), 401, 0),
            ("photos/file_999.jpg", 404, 0),
            (pdf_path.as_str(), 200, 17),
        ]
    );
    let read = exchange(&emu, "GET", "/_emulator/downloads", "text/plain", "");
    assert_eq!(read.json[2]["status"], 401);
}

#[test]
fn a_file_over_20_mb_is_too_big_to_get() {
    let emu = emulator();
    let ada = ada();
    let limit = 20 * 1024 * 1024;
    let at_limit = vec![7u8; limit];
    let update = emu.send_file(
        &ada.chat(),
        &ada,
        "a.bin",
        "application/octet-stream",
        &at_limit,
        None,
    );
    let id = update.message.unwrap().document.unwrap().file_id;
    let file = call(&emu, "getFile", json!({"file_id": id}));
    assert_eq!(file.status, 200);
    assert_eq!(file.json["result"]["file_size"], limit);

    let over = vec![7u8; limit + 1];
    let update = emu.send_file(
        &ada.chat(),
        &ada,
        "b.bin",
        "application/octet-stream",
        &over,
        None,
    );
    let document = update.message.unwrap().document.unwrap();
    assert_eq!(document.file_size, Some(limit as u64 + 1));
    let refused = call(&emu, "getFile", json!({"file_id": document.file_id}));
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json["ok"], false);
    assert_eq!(refused.json["description"], "Bad Request: file is too big");
    // Its path was never handed out, and guessing it does not download it either.
    let guessed = "documents/file_2.bin";
    assert_eq!(fetch_file(&emu, &emu.token(), guessed).0, 404);
}

/// Calls a method with a multipart/form-data body: text parts, then file parts (part name,
/// file name, content type, bytes).
fn upload(
    emu: &Emulator,
    method: &str,
    texts: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> Answer {
    let boundary = "xYzZY-emulator-test-boundary";
    let mut body = Vec::new();
    for (name, value) in texts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file_name, content_type, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let path = format!("/bot{}/{method}", emu.token());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    exchange_bytes(emu, "POST", &path, &content_type, &body)
}

#[test]
fn uploaded_files_are_sent_recorded_and_answered_as_telegram_answers() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let chat = ada.id.to_string();
    let png = png(3, 2);
    let photo = upload(
        &emu,
        "sendPhoto",
        &[
            ("chat_id", &chat),
            ("caption", "a <b>chart</b>"),
            ("parse_mode", "HTML"),
        ],
        &[("photo", "chart.png", "image/png", &png)],
    );
    assert_eq!(photo.status, 200, "{}", photo.json);
    let result = &photo.json["result"];
    assert_eq!(result["caption"], "a chart");
    assert_eq!(result["caption_entities"][0]["type"], "bold");
    assert_eq!(result["photo"][0]["width"], 3);
    assert_eq!(result["photo"][0]["height"], 2);
    assert_eq!(result["photo"][0]["file_size"], png.len());
    assert_eq!(result["text"], Value::Null);

    let ogg = b"OggS\x00\x02opus voice bytes".to_vec();
    let voice = upload(
        &emu,
        "sendVoice",
        &[
            ("chat_id", &chat),
            ("duration", "3"),
            ("voice", "attach://note"),
        ],
        &[("note", "note.ogg", "audio/ogg", &ogg)],
    );
    assert_eq!(voice.status, 200, "{}", voice.json);
    assert_eq!(voice.json["result"]["voice"]["duration"], 3);
    assert_eq!(voice.json["result"]["voice"]["mime_type"], "audio/ogg");
    assert_eq!(voice.json["result"]["voice"]["file_size"], ogg.len());

    let pdf = b"%PDF-1.4 report".to_vec();
    let document = upload(
        &emu,
        "sendDocument",
        &[("chat_id", &chat)],
        &[("document", "report.pdf", "application/pdf", &pdf)],
    );
    assert_eq!(
        document.json["result"]["document"]["file_name"],
        "report.pdf"
    );
    assert_eq!(
        document.json["result"]["document"]["mime_type"],
        "application/pdf"
    );
    let audio = upload(
        &emu,
        "sendAudio",
        &[("chat_id", &chat), ("duration", "61")],
        &[("audio", "song.mp3", "audio/mpeg", b"ID3 song")],
    );
    assert_eq!(audio.json["result"]["audio"]["duration"], 61);
    assert_eq!(audio.json["result"]["audio"]["file_name"], "song.mp3");

    // The bot sends again what it sent, by file_id, and by URL; the file it sent downloads.
    let id = document.json["result"]["document"]["file_id"]
        .as_str()
        .unwrap();
    let again = call(
        &emu,
        "sendDocument",
        json!({"chat_id": ada.id, "document": id}),
    );
    assert_eq!(again.json["result"]["document"]["file_id"], id);
    let by_url = call(
        &emu,
        "sendPhoto",
        json!({"chat_id": ada.id, "photo": "https://example.com/a.jpg", "caption": "linked"}),
    );
    assert_eq!(by_url.status, 200, "{}", by_url.json);
    let path = call(&emu, "getFile", json!({"file_id": id})).json["result"]["file_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fetch_file(&emu, &emu.token(), &path), (200, pdf.clone()));

    let sent = emu.sent_to(ada.id);
    let media: Vec<&SentFile> = sent.iter().filter_map(|m| m.media.as_ref()).collect();
    let kinds: Vec<&str> = media.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["photo", "voice", "document", "audio", "document", "photo"]
    );
    assert_eq!(sent[0].text, "a chart");
    assert_eq!(sent[0].body, "a <b>chart</b>");
    assert_eq!(media[0].file_name.as_deref(), Some("chart.png"));
    assert_eq!(media[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(media[2].file_size, Some(pdf.len() as u64));
    // SHA-1 of "%PDF-1.4 report".
    assert_eq!(
        media[2].sha1.as_deref(),
        Some(
            sha1::Sha1::digest(&pdf)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .as_str()
        )
    );
    assert_eq!(media[4].reference.as_deref(), Some(id));
    assert_eq!(media[4].sha1, media[2].sha1);
    assert_eq!(
        media[5].reference.as_deref(),
        Some("https://example.com/a.jpg")
    );
    assert_eq!(
        (media[5].file_size, sent[5].text.as_str()),
        (None, "linked")
    );
    let read = exchange(&emu, "GET", "/_emulator/sent", "text/plain", "");
    assert_eq!(read.json[1]["media"]["kind"], "voice");
}

#[test]
fn files_are_refused_as_telegram_refuses_them() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let chat = ada.id.to_string();
    let refused = |answer: Answer| (answer.status, answer.json["description"].to_string());
    let text = b"just some text".to_vec();
    assert_eq!(
        refused(upload(
            &emu,
            "sendPhoto",
            &[("chat_id", &chat)],
            &[("photo", "a.jpg", "image/jpeg", &text)]
        )),
        (400, "\"Bad Request: IMAGE_PROCESS_FAILED\"".to_string())
    );
    let mut big_photo = png(3, 2);
    big_photo.resize(10 * 1024 * 1024 + 1, 0);
    assert_eq!(
        refused(upload(
            &emu,
            "sendPhoto",
            &[("chat_id", &chat)],
            &[("photo", "a.png", "image/png", &big_photo)]
        )),
        (400, "\"Bad Request: PHOTO_SAVE_FILE_INVALID\"".to_string())
    );
    let mut at_limit = big_photo;
    at_limit.resize(50 * 1024 * 1024, 0);
    assert_eq!(
        upload(
            &emu,
            "sendDocument",
            &[("chat_id", &chat)],
            &[("document", "a.png", "image/png", &at_limit)]
        )
        .status,
        200
    );
    at_limit.push(0);
    assert_eq!(
        refused(upload(
            &emu,
            "sendDocument",
            &[("chat_id", &chat)],
            &[("document", "a.png", "image/png", &at_limit)]
        )),
        (413, "\"Request Entity Too Large\"".to_string())
    );
    drop(at_limit);
    let long = "x".repeat(1025);
    assert_eq!(
        refused(upload(
            &emu,
            "sendVoice",
            &[("chat_id", &chat), ("caption", &long)],
            &[("voice", "v.ogg", "audio/ogg", b"OggS")]
        )),
        (
            400,
            "\"Bad Request: message caption is too long\"".to_string()
        )
    );
    // 1,024 visible units pass, however long the HTML around them.
    let html = format!("<b>{}</b>", "x".repeat(1024));
    assert_eq!(
        upload(
            &emu,
            "sendVoice",
            &[
                ("chat_id", &chat),
                ("caption", &html),
                ("parse_mode", "HTML")
            ],
            &[("voice", "v.ogg", "audio/ogg", b"OggS")]
        )
        .status,
        200
    );
    assert_eq!(
        refused(upload(
            &emu,
            "sendAudio",
            &[
                ("chat_id", &chat),
                ("caption", "<b>open"),
                ("parse_mode", "HTML")
            ],
            &[("audio", "a.mp3", "audio/mpeg", b"ID3")]
        ))
        .0,
        400
    );
    assert_eq!(
        refused(upload(&emu, "sendDocument", &[("chat_id", &chat)], &[])),
        (
            400,
            "\"Bad Request: there is no document in the request\"".to_string()
        )
    );
    assert_eq!(
        refused(call(
            &emu,
            "sendDocument",
            json!({"chat_id": ada.id, "document": "BQACnope"})
        )),
        (
            400,
            "\"Bad Request: wrong file identifier/HTTP URL specified\"".to_string()
        )
    );
    assert_eq!(
        refused(upload(
            &emu,
            "sendDocument",
            &[("chat_id", "999")],
            &[("document", "a.txt", "text/plain", b"a")]
        )),
        (400, "\"Bad Request: chat not found\"".to_string())
    );
    emu.block(ada.id);
    assert_eq!(
        refused(upload(
            &emu,
            "sendDocument",
            &[("chat_id", &chat)],
            &[("document", "a.txt", "text/plain", b"a")]
        ))
        .0,
        403
    );
    let kinds: Vec<String> = emu
        .sent()
        .iter()
        .filter_map(|m| m.media.as_ref().map(|f| f.kind.clone()))
        .collect();
    assert_eq!(kinds, ["document", "voice"]);
}

#[test]
fn typed_text_gets_mention_and_command_entities() {
    let found = entities("@hermes_test_bot hi /start@hermes_test_bot and a@b.com /x");
    let kinds: Vec<(&str, usize, usize)> = found
        .iter()
        .map(|e| (e.kind.as_str(), e.offset, e.length))
        .collect();
    assert_eq!(
        kinds,
        [
            ("mention", 0, 16),
            ("bot_command", 20, 22),
            ("bot_command", 55, 2)
        ]
    );
    // Offsets count UTF-16 units.
    assert_eq!(entities("👋 @someone")[0].offset, 3);
    assert!(entities("@abc is too short").is_empty());
}

/// Runs `f` on a fresh actix system (the platform's client lives on one).
fn on_actix<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

fn platform(emu: &Emulator, extra: &[(&str, &str)]) -> Arc<dyn Platform> {
    let base = emu.base_url();
    let token = emu.token();
    let mut pairs = vec![
        ("TELEGRAM_BOT_TOKEN", token.as_str()),
        ("TELEGRAM_API_BASE_URL", base.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let registration = platform_api::registration("telegram").expect("registered");
    (registration.build)(&ConfigSection::from_pairs(pairs)).expect("valid settings")
}

#[test]
fn the_platform_sends_html_and_classifies_telegrams_errors() {
    let emu = emulator();
    let ada = ada();
    emu.add_chat(&ada.chat());
    let telegram = platform(&emu, &[]);
    let chat = ada.id.to_string();
    on_actix(async {
        let parts = telegram.format("**Done** — see [docs](https://e.com/d) & `a<b`");
        let receipt = telegram.send(&chat, &parts[0]).await.expect("sent");
        assert_eq!(receipt.provider_id, format!("{}:1", ada.id));

        emu.push_fault(Fault::TooManyRequests { retry_after: 3 });
        let limited = telegram.send(&chat, &Part::plain("x")).await.unwrap_err();
        assert!(
            matches!(limited, SendError::Retry { after: Some(d), .. } if d == Duration::from_secs(3)),
            "{limited:?}"
        );

        // HTML Telegram refuses is sent again as plain text.
        let broken = Part::plain("<b>bold <unknown>tag</b>");
        telegram
            .send(&chat, &broken)
            .await
            .expect("sent as plain text");

        emu.block(ada.id);
        let refused = telegram.send(&chat, &Part::plain("x")).await.unwrap_err();
        assert!(matches!(refused, SendError::OptedOut { .. }), "{refused:?}");

        let unknown = telegram.send("777", &Part::plain("x")).await.unwrap_err();
        assert!(
            matches!(unknown, SendError::Permanent { .. }),
            "{unknown:?}"
        );

        emu.unblock(ada.id);
        telegram.typing(&chat).await;
    });
    let sent = emu.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].text, "Done — see docs & a<b");
    assert_eq!(
        sent[0].body,
        "<b>Done</b> — see <a href=\"https://e.com/d\">docs</a> &amp; <code>a&lt;b</code>"
    );
    let links: Vec<Option<&str>> = sent[0].entities.iter().map(|e| e.url.as_deref()).collect();
    assert!(links.contains(&Some("https://e.com/d")), "{links:?}");
    assert_eq!(sent[1].parse_mode, None);
    assert_eq!(sent[1].text, "bold tag");
    assert_eq!(emu.chat_actions().len(), 1);
}

#[test]
fn an_error_never_shows_the_token() {
    let emu = emulator();
    let token = emu.token();
    let secret_part = token.split_once(':').unwrap().1.to_string();
    // A server that is not there, and one that is there with another token.
    let gone = platform(&emu, &[("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9")]);
    let other = Emulator::start(EmulatorConfig::random("other_bot")).unwrap();
    let rejected = platform(&other, &[("TELEGRAM_BOT_TOKEN", token.as_str())]);
    on_actix(async {
        for platform in [&gone, &rejected] {
            let err = platform.send("4242", &Part::plain("x")).await.unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&secret_part), "{shown}");
        }
        let stopped = rejected.receive(Arc::new(Recorder::default())).await;
        let message = stopped.expect_err("a rejected token stops receiving");
        assert!(message.contains("401"), "{message}");
        assert!(!message.contains(&secret_part), "{message}");
    });
}

/// An inbound sink that records what it accepts and the cursor, and can refuse.
#[derive(Default)]
struct Recorder {
    accepted: Mutex<Vec<Inbound>>,
    cursor: Mutex<Option<String>>,
    refuse: Mutex<usize>,
}

#[async_trait(?Send)]
impl InboundSink for Recorder {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, SinkError> {
        {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Err(SinkError::Unavailable("disk nearly full".into()));
            }
        }
        let mut accepted = self.accepted.lock().unwrap();
        if accepted
            .iter()
            .any(|m| m.provider_id == inbound.provider_id)
        {
            return Ok(Accepted::Duplicate);
        }
        accepted.push(inbound);
        Ok(Accepted::Stored)
    }

    async fn cursor(&self, _platform: &str) -> Result<Option<String>, SinkError> {
        Ok(self.cursor.lock().unwrap().clone())
    }

    async fn save_cursor(&self, _platform: &str, value: &str) -> Result<(), SinkError> {
        *self.cursor.lock().unwrap() = Some(value.to_string());
        Ok(())
    }
}

/// Runs the platform's receive loop until `done` says so (or 20 s pass).
fn receive_until(
    telegram: &Arc<dyn Platform>,
    sink: Arc<Recorder>,
    done: impl Fn(&Recorder) -> bool,
) {
    on_actix(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let receiving = telegram.receive(sink.clone());
        tokio::pin!(receiving);
        loop {
            tokio::select! {
                stopped = &mut receiving => panic!("receiving stopped: {stopped:?}"),
                () = actix_web::rt::time::sleep(Duration::from_millis(20)) => {}
            }
            if done(&sink) || Instant::now() > deadline {
                return;
            }
        }
    });
}

#[test]
fn polling_hands_every_update_over_once_and_saves_the_offset_after_it() {
    let emu = emulator();
    let ada = ada();
    let bob = Person::new(5151, "Bob");
    let room = group(-1001, "Ops");
    let telegram = platform(&emu, &[]);
    emu.user_writes(&ada, "one");
    emu.write(&room, &bob, "chatter, not for the bot");
    emu.write(&room, &bob, "@hermes_test_bot status?");
    emu.write(
        &room,
        &Person::bot(6161, "other_bot"),
        "@hermes_test_bot ping",
    );
    let last = emu.user_writes(&ada, "two");
    let sink = Arc::new(Recorder::default());
    // The store refuses twice: the same update is retried, nothing is skipped.
    *sink.refuse.lock().unwrap() = 2;
    receive_until(&telegram, sink.clone(), |s| {
        s.accepted.lock().unwrap().len() >= 3
    });
    let texts: Vec<String> = sink
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|m| format!("{}/{}: {}", m.chat, m.sender, m.text))
        .collect();
    assert_eq!(
        texts,
        ["4242/4242: one", "-1001/5151: status?", "4242/4242: two"]
    );
    let expected = (last.update_id + 1).to_string();
    let saved = eventually(|| sink.cursor.lock().unwrap().clone() == Some(expected.clone()));
    assert!(saved, "the cursor is saved past the batch");
    // The next poll asks for what follows, which confirms the batch to Telegram.
    assert!(eventually(|| emu.pending_updates().is_empty()));
    let polls = emu.polls();
    assert_eq!(polls[0].offset, None);
    assert!(
        polls[1..]
            .iter()
            .all(|p| p.offset == Some(last.update_id + 1))
    );
    assert_eq!(polls[0].timeout, crate::receive::POLL_TIMEOUT_SECS);

    // A restart resumes from the saved offset: what arrived meanwhile, nothing again.
    let later = emu.user_writes(&ada, "three");
    receive_until(&telegram, sink.clone(), |s| {
        s.accepted.lock().unwrap().len() >= 4
    });
    let accepted = sink.accepted.lock().unwrap();
    assert_eq!(accepted.len(), 4);
    assert_eq!(
        accepted[3].provider_id,
        format!("4242:{}", later.message.as_ref().unwrap().message_id)
    );
}

fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn webhook_mode_registers_the_url_and_a_rejected_token_stops_receiving() {
    let emu = emulator();
    let telegram = platform(
        &emu,
        &[
            ("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/hooks/tg"),
            ("TELEGRAM_WEBHOOK_SECRET", "s3cret-value_1"),
        ],
    );
    assert_eq!(telegram.listen_addr().map(|a| a.port()), Some(8443));
    on_actix(async {
        telegram
            .receive(Arc::new(Recorder::default()))
            .await
            .expect("the webhook is set");
    });
    let info = emu.webhook_info();
    assert_eq!(info.url, "https://bot.example.com/hooks/tg");
    assert_eq!(info.allowed_updates, Some(vec!["message".to_string()]));

    let other = Emulator::start(EmulatorConfig::random("other_bot")).unwrap();
    let wrong = platform(&other, &[("TELEGRAM_BOT_TOKEN", "1:wrong")]);
    let stopped = on_actix(async { wrong.receive(Arc::new(Recorder::default())).await });
    let message = stopped.unwrap_err();
    assert!(message.contains("TELEGRAM_BOT_TOKEN"), "{message}");
}

#[test]
fn the_sandbox_points_the_platform_at_the_emulator_and_relays_replies() {
    let provider = platform_api::sandbox::sandbox_providers()
        .into_iter()
        .find(|p| p.platform == "telegram")
        .expect("the Telegram sandbox is registered");
    let sandbox = Arc::new((provider.start)(0).expect("the sandbox starts"));
    let settings = sandbox.settings();
    let section = ConfigSection::from_pairs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let registration = platform_api::registration("telegram").expect("registered");
    let telegram = (registration.build)(&section).expect("the sandbox's settings are valid");
    assert!(telegram.listen_addr().is_none(), "the sandbox polls");
    assert!(sandbox.address().starts_with('@'));
    assert!(sandbox.polled(), "the host must not wait for a listener");
    let replies = Arc::new(Mutex::new(Vec::new()));
    let seen = replies.clone();
    sandbox.on_reply(Box::new(move |reply| seen.lock().unwrap().push(reply)));
    let updates = Arc::new(Mutex::new(Vec::new()));
    let seen = updates.clone();
    sandbox.on_update(Box::new(move |update| seen.lock().unwrap().push(update)));

    // The user's message is fetched by the platform's receive loop, as the gateway runs it.
    let user = sandbox.user();
    let typing = std::thread::spawn({
        let sandbox = sandbox.clone();
        move || sandbox.send_as_user("127.0.0.1:9".parse().unwrap(), "hi **there**")
    });
    let sink = Arc::new(Recorder::default());
    // Until the sandbox saw the update confirmed, which takes the poll after it.
    receive_until(&telegram, sink.clone(), |_| typing.is_finished());
    typing.join().unwrap().expect("the message was fetched");
    let accepted = sink.accepted.lock().unwrap().clone();
    assert_eq!(
        (accepted[0].chat.as_str(), accepted[0].text.as_str()),
        (user.as_str(), "hi **there**")
    );

    on_actix(async {
        // The reply shown as it is written, then sent.
        let mut view = platform_api::LiveView {
            draft_id: 5,
            message: None,
        };
        for written in ["You said:", "You said: hi **there**"] {
            let body = &telegram.format(written)[0].body;
            telegram
                .show_live(&user, &mut view, body)
                .await
                .expect("a draft for the sandbox user");
        }
        let part = &telegram.format("You said: hi **there**")[0];
        telegram
            .send(&user, part)
            .await
            .expect("sent to the sandbox user");
    });
    let updates: Vec<String> = updates
        .lock()
        .unwrap()
        .iter()
        .map(|u| u.body.clone())
        .collect();
    assert_eq!(updates, ["You said:", "You said: hi there"]);
    let replies = replies.lock().unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].chat, user);
    assert_eq!(replies[0].body, "You said: hi there");
}

#[test]
fn the_doctor_compares_the_webhook_with_the_settings_and_fixes_it() {
    let emu = emulator();
    let closed = "http://127.0.0.1:9/telegram";
    let base = emu.base_url();
    let token = emu.token();
    let section = ConfigSection::from_pairs([
        ("TELEGRAM_BOT_TOKEN", token.as_str()),
        ("TELEGRAM_API_BASE_URL", base.as_str()),
        ("TELEGRAM_WEBHOOK_URL", closed),
        ("TELEGRAM_WEBHOOK_SECRET", "s3cret_value"),
    ]);
    let checkup = |fix: bool| on_actix(crate::doctor::checkup(&section, fix));

    let checks = checkup(false);
    assert_eq!(
        checks[0].to_string(),
        "ok       Telegram bot: @hermes_test_bot (7000000001)"
    );
    assert!(checks[1].is_problem(), "{}", checks[1]);
    assert!(
        checks[1].to_string().contains(&format!(
            "no webhook is set, not to {closed} (TELEGRAM_WEBHOOK_URL)"
        )),
        "{}",
        checks[1]
    );

    let checks = checkup(true);
    assert_eq!(
        checks[1].to_string(),
        format!("fixed    Telegram webhook: set to {closed}")
    );
    assert_eq!(emu.webhook_info().url, closed);

    // Telegram cannot reach it: the doctor says so, with Telegram's words.
    emu.user_writes(&ada(), "anyone?");
    assert!(eventually(|| emu
        .webhook_info()
        .last_error_message
        .is_some()));
    let checks = checkup(false);
    let shown = checks[1].to_string();
    assert!(checks[1].is_problem(), "{shown}");
    assert!(shown.contains("last delivery failed"), "{shown}");
    assert!(shown.contains("Connection refused"), "{shown}");
    assert!(shown.contains("1 update(s) waiting"), "{shown}");
}
