//! The emulator's gateway WebSocket (actix-ws): Hello, heartbeats, Identify, Resume, and the
//! server's side of every way a connection ends.
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::{Connection, Out, SessionLog, Shared, session_id};
use crate::types::{Payload, intents, op};

/// What the server answers a client payload with, on the same connection.
enum Reply {
    /// Nothing (or what was queued for the connection).
    Nothing,
    /// A payload.
    Text(String),
    /// A close frame with this code and reason.
    Close(u16, &'static str),
}

/// `GET /gateway` and `GET /gateway-resume`: upgrades to a WebSocket and serves it.
pub(super) async fn connect(
    req: HttpRequest,
    body: web::Payload,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let query: Vec<(&str, &str)> = req
        .query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let value = |name: &str| query.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let refused = if value("v") != Some("10") {
        Some((4012, "Invalid API version."))
    } else if value("encoding") != Some("json") {
        Some((4002, "Error while decoding payload."))
    } else {
        None
    };
    let (tx, rx) = unbounded_channel();
    let id = {
        let mut state = shared.lock();
        state.counters.connections += 1;
        if req.path() == "/gateway-resume" {
            state.counters.resume_url_connections += 1;
        }
        let id = state.next_connection;
        state.next_connection += 1;
        state
            .connections
            .insert(id, Connection { tx, session: None });
        id
    };
    actix_web::rt::spawn(serve(shared.into_inner(), id, session, stream, rx, refused));
    Ok(response)
}

async fn close(session: Session, code: u16, reason: &'static str) {
    let _ = session
        .close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(reason.to_string()),
        }))
        .await;
}

/// Serves one connection until either side ends it.
async fn serve(
    shared: Arc<Shared>,
    id: u64,
    mut session: Session,
    mut stream: MessageStream,
    mut rx: UnboundedReceiver<Out>,
    refused: Option<(u16, &'static str)>,
) {
    if let Some((code, reason)) = refused {
        close(session, code, reason).await;
        finish(&shared, id, None);
        return;
    }
    let hello = json!({
        "op": op::HELLO,
        "d": {"heartbeat_interval": shared.config.heartbeat_interval.as_millis() as u64},
        "s": null,
        "t": null,
    });
    if session.text(hello.to_string()).await.is_err() {
        finish(&shared, id, None);
        return;
    }
    let mut acking = true;
    let mut client_code = None;
    loop {
        tokio::select! {
            message = stream.recv() => match message {
                None | Some(Err(_)) => break,
                Some(Ok(Message::Text(text))) => match handle(&shared, id, &text, acking) {
                    Reply::Nothing => {}
                    Reply::Text(text) => {
                        if session.text(text).await.is_err() {
                            break;
                        }
                    }
                    Reply::Close(code, reason) => {
                        close(session, code, reason).await;
                        finish(&shared, id, None);
                        return;
                    }
                },
                Some(Ok(Message::Binary(_))) => {
                    close(session, 4002, "Error while decoding payload.").await;
                    finish(&shared, id, None);
                    return;
                }
                Some(Ok(Message::Ping(bytes))) => {
                    let _ = session.pong(&bytes).await;
                }
                Some(Ok(Message::Close(reason))) => {
                    client_code = Some(reason.map_or(1005, |r| u16::from(r.code)));
                    let _ = session.close(None).await;
                    finish(&shared, id, client_code);
                    return;
                }
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if session.text(text).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    close(session, code, reason).await;
                    finish(&shared, id, None);
                    return;
                }
                Some(Out::StopAcking) => acking = false,
                // Dropping the session ends the response: the socket closes without a close
                // frame, as when the network fails.
                Some(Out::Drop) | None => break,
            },
        }
    }
    finish(&shared, id, client_code);
}

/// Detaches a connection that ended; a client that closed with 1000 or 1001 ends its session.
fn finish(shared: &Shared, id: u64, client_code: Option<u16>) {
    let mut state = shared.lock();
    if let Some(code) = client_code {
        state.counters.client_close_codes.push(code);
    }
    let Some(connection) = state.connections.remove(&id) else {
        return;
    };
    let Some(session_id) = connection.session else {
        return;
    };
    let attached = state
        .sessions
        .get_mut(&session_id)
        .filter(|session| session.connection == Some(id));
    if let Some(session) = attached {
        session.connection = None;
    }
    if matches!(client_code, Some(1000 | 1001)) {
        state.sessions.remove(&session_id);
        if state.current.as_deref() == Some(session_id.as_str()) {
            state.current = None;
        }
    }
}

/// Acts on one client payload.
fn handle(shared: &Shared, connection: u64, text: &str, acking: bool) -> Reply {
    let Ok(payload) = serde_json::from_str::<Payload>(text) else {
        return Reply::Close(4002, "Error while decoding payload.");
    };
    match payload.op {
        op::HEARTBEAT => {
            shared.lock().counters.heartbeats += 1;
            if acking {
                Reply::Text(json!({"op": op::HEARTBEAT_ACK, "d": null}).to_string())
            } else {
                Reply::Nothing
            }
        }
        op::IDENTIFY => identify(shared, connection, &payload.d),
        op::RESUME => resume(shared, connection, &payload.d),
        _ => Reply::Nothing,
    }
}

fn identify(shared: &Shared, connection: u64, data: &Value) -> Reply {
    if data["token"].as_str() != Some(shared.config.token.as_str()) {
        return Reply::Close(4004, "Authentication failed.");
    }
    let mut state = shared.lock();
    if state
        .connections
        .get(&connection)
        .is_some_and(|c| c.session.is_some())
    {
        return Reply::Close(4005, "Already authenticated.");
    }
    let Some(requested) = data["intents"].as_u64() else {
        return Reply::Close(4013, "Invalid intent(s).");
    };
    if requested & !intents::ALL != 0 {
        return Reply::Close(4013, "Invalid intent(s).");
    }
    if requested & intents::MESSAGE_CONTENT != 0 && !state.message_content_intent {
        return Reply::Close(4014, "Disallowed intent(s).");
    }
    let id = session_id();
    state.counters.identifies += 1;
    state.sessions.insert(
        id.clone(),
        SessionLog {
            seq: 0,
            events: Vec::new(),
            connection: Some(connection),
        },
    );
    if let Some(c) = state.connections.get_mut(&connection) {
        c.session = Some(id.clone());
    }
    state.current = Some(id.clone());
    let flags = shared.app_flags(&state);
    let ready = json!({
        "v": 10,
        "user": shared.bot_user(),
        "guilds": [{"id": super::GUILD_ID, "unavailable": true}],
        "session_id": id,
        "resume_gateway_url": format!("ws://{}/gateway-resume", shared.addr),
        "shard": [0, 1],
        "application": {"id": shared.config.bot_id, "flags": flags},
    });
    state.dispatch("READY", ready);
    let pending = std::mem::take(&mut state.pending);
    for (event, data) in pending {
        state.dispatch(&event, data);
    }
    Reply::Nothing
}

fn resume(shared: &Shared, connection: u64, data: &Value) -> Reply {
    if data["token"].as_str() != Some(shared.config.token.as_str()) {
        return Reply::Close(4004, "Authentication failed.");
    }
    let session_id = data["session_id"].as_str().unwrap_or_default().to_string();
    let after = data["seq"].as_u64().unwrap_or(0);
    let mut state = shared.lock();
    let Some(session) = state.sessions.get_mut(&session_id) else {
        state.counters.failed_resumes += 1;
        return Reply::Text(json!({"op": op::INVALID_SESSION, "d": false}).to_string());
    };
    let previous = session.connection.replace(connection);
    let missed: Vec<String> = session
        .events
        .iter()
        .filter(|(seq, _)| *seq > after)
        .map(|(_, text)| text.clone())
        .collect();
    if let Some(previous) = previous.filter(|p| *p != connection) {
        // A session has one connection: the one it had is dropped.
        state.send_to(previous, Out::Drop);
    }
    if let Some(c) = state.connections.get_mut(&connection) {
        c.session = Some(session_id.clone());
    }
    for text in missed {
        state.send_to(connection, Out::Text(text));
    }
    state.counters.resumes += 1;
    state.current = Some(session_id);
    state.dispatch("RESUMED", Value::Null);
    let pending = std::mem::take(&mut state.pending);
    for (event, data) in pending {
        state.dispatch(&event, data);
    }
    Reply::Nothing
}
