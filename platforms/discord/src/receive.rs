//! The gateway socket: how messages reach the bot.
//!
//! [`run`] is [`Platform::receive`](platform_api::Platform::receive): it connects to the
//! gateway's WebSocket (`?v=10&encoding=json`, awc's client), waits for Hello (op 10), then
//! heartbeats (op 1, with the last sequence number) every `heartbeat_interval`, the first after a
//! random fraction of it, and Identifies (op 2) with the bot's token and intents. READY names the
//! session, the URL to resume it on, and the bot's own user.
//!
//! Every connection ends in one of three ways:
//!
//! - **resume** (op 6 on `resume_gateway_url`, with the last sequence number, so that Discord
//!   replays what was missed): after a dropped socket, a heartbeat not acknowledged before the
//!   next is due (the socket is closed with code 4000 first), Reconnect (op 7), Invalid Session
//!   (op 9) with `d: true`, or any close code not listed below;
//! - **identify again**, a fresh session: Invalid Session with `d: false` (after waiting 1–5 s),
//!   close codes 4007 (invalid sequence) and 4009 (session timed out);
//! - **stop**: close codes Discord sends for what no reconnection can fix (4004 authentication
//!   failed, 4013/4014 invalid or disallowed intents, 4010–4012): [`run`] returns one line saying
//!   what to do, which the host logs while the other platforms keep running.
//!
//! Reconnections wait a second, doubling up to a minute while they keep failing; a connection
//! that reached READY or RESUMED resets that. A `MESSAGE_CREATE` for the agent
//! ([`crate::inbound`]) is handed to the host's sink before its sequence number is counted, so
//! that a message the sink could not store is replayed by the resume that follows.
use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::Item;
use actix_web::rt::time::{Instant, sleep, sleep_until, timeout};
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, CloseReason, Frame, Message as WsMessage};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use platform_api::InboundSink;
use platform_api::http::client;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::client::{CallError, Rest, Route};
use crate::inbound::{Skip, to_inbound};
use crate::types::{GatewayBot, Hello, INTENTS, Message, Payload, Ready, User, op};

/// Largest gateway message read (READY lists every guild the bot is in).
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// How long to wait for Hello after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
/// The first wait before reconnecting after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Close code the client sends when it means to resume (any code but 1000 and 1001 keeps the
/// session).
const RESUMABLE_CLOSE: u16 = 4000;
/// How long a closing client waits for Discord's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Connections to `resume_gateway_url` that may fail in a row before the session is given up
/// and a new one identified on the main gateway URL.
const RESUME_ATTEMPTS: u32 = 3;

/// What the receive loop needs: the REST client (for `GET /gateway/bot`), the token, a
/// configured gateway URL, and where to keep the bot's own user.
pub struct Gateway<'a> {
    /// The REST client.
    pub rest: &'a Rest,
    /// The bot token.
    pub token: &'a str,
    /// `DISCORD_GATEWAY_URL`, when set.
    pub url: Option<&'a str>,
    /// Filled with the bot's user on READY.
    pub bot: &'a std::sync::Mutex<Option<User>>,
    /// Where inbound messages go.
    pub sink: Arc<dyn InboundSink>,
}

/// The session being resumed across connections.
#[derive(Clone, Debug, Default)]
struct Session {
    /// `session_id` and `resume_gateway_url` from READY; `None` before READY.
    id: Option<(String, String)>,
    /// The last sequence number counted.
    seq: Option<u64>,
}

/// What follows the end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Next {
    /// Connect again and resume the session (identify if there is none).
    Resume,
    /// Connect again and identify a new session after `wait`.
    Identify { wait: Duration },
    /// Stop receiving, for this reason.
    Fatal(String),
}

/// How a connection ended.
struct Ended {
    next: Next,
    /// Why, for the log.
    reason: String,
    /// The connection reached READY or RESUMED.
    healthy: bool,
    /// Reconnect at once (Discord asked for it).
    at_once: bool,
}

impl Ended {
    fn new(next: Next, reason: impl Into<String>) -> Ended {
        Ended {
            next,
            reason: reason.into(),
            healthy: false,
            at_once: false,
        }
    }
}

/// What a close code from Discord means.
fn after_close(code: u16) -> Next {
    match code {
        4004 => Next::Fatal(
            "Discord rejected DISCORD_BOT_TOKEN (close 4004, authentication failed): copy a new token from the Developer Portal → your app → Bot → Reset Token into DISCORD_BOT_TOKEN".to_string(),
        ),
        4010 => Next::Fatal("Discord refused the shard sent in Identify (close 4010)".to_string()),
        4011 => Next::Fatal(
            "Discord requires sharding for this bot (close 4011): it is in too many servers for one connection, which this gateway does not support".to_string(),
        ),
        4012 => Next::Fatal(
            "Discord refused gateway API version 10 (close 4012): check DISCORD_GATEWAY_URL".to_string(),
        ),
        4013 => Next::Fatal(
            "Discord refused the requested gateway intents as invalid (close 4013)".to_string(),
        ),
        4014 => Next::Fatal(
            "Discord refused the MESSAGE_CONTENT privileged intent (close 4014): enable Message Content Intent in the Developer Portal → your app → Bot → Privileged Gateway Intents".to_string(),
        ),
        4007 | 4009 => Next::Identify {
            wait: Duration::ZERO,
        },
        _ => Next::Resume,
    }
}

/// The URL to connect to: `url` with a path and `?v=10&encoding=json`.
pub fn connect_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    let slash = if after_scheme.contains('/') { "" } else { "/" };
    let mut params: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty() && !p.starts_with("v=") && !p.starts_with("encoding="))
        .collect();
    params.extend(["v=10", "encoding=json"]);
    format!("{base}{slash}?{}", params.join("&"))
}

/// The wait before reconnection number `failures` (from 1): doubling from a second to a
/// minute, give or take a quarter.
fn backoff(failures: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(MAX_BACKOFF);
    base.mul_f64(0.75 + rand::random::<f64>() * 0.5)
}

/// The gateway URL to identify on: `DISCORD_GATEWAY_URL`, or what `GET /gateway/bot` names.
/// `Err(Ok(reason))` is worth retrying; `Err(Err(reason))` is fatal.
async fn gateway_url(gateway: &Gateway<'_>) -> Result<String, Result<String, String>> {
    if let Some(url) = gateway.url {
        return Ok(url.to_string());
    }
    let answer = match gateway
        .rest
        .get(&Route::gateway_bot(), Duration::from_secs(15))
        .await
    {
        Ok(answer) => answer,
        Err(CallError::Limited { after }) => {
            return Err(Ok(format!(
                "GET /gateway/bot is rate limited for {:.1}s",
                after.as_secs_f64()
            )));
        }
        Err(CallError::Transport(err)) => {
            return Err(Ok(format!("GET /gateway/bot failed: {err}")));
        }
    };
    match answer.status {
        200..=299 => serde_json::from_slice::<GatewayBot>(&answer.body)
            .map(|bot| bot.url)
            .map_err(|err| Ok(format!("GET /gateway/bot answered an unexpected body: {err}"))),
        401 => Err(Err(
            "Discord rejected DISCORD_BOT_TOKEN (HTTP 401 on GET /gateway/bot): copy a new token from the Developer Portal → your app → Bot → Reset Token into DISCORD_BOT_TOKEN".to_string(),
        )),
        status => Err(Ok(format!("GET /gateway/bot answered HTTP {status}"))),
    }
}

/// Receives until a fatal close; see the module documentation.
pub async fn run(gateway: Gateway<'_>) -> Result<(), String> {
    let mut session = Session::default();
    let mut main_url: Option<String> = None;
    let mut failures = 0u32;
    let mut resume_failures = 0u32;
    loop {
        let url = match &session.id {
            Some((_, resume_url)) => resume_url.clone(),
            None => match &main_url {
                Some(url) => url.clone(),
                None => match gateway_url(&gateway).await {
                    Ok(url) => {
                        main_url = Some(url.clone());
                        url
                    }
                    Err(Err(fatal)) => return Err(fatal),
                    Err(Ok(reason)) => {
                        failures += 1;
                        let wait = backoff(failures);
                        warn!(
                            "[discord] {reason}; trying again in {:.1}s",
                            wait.as_secs_f64()
                        );
                        sleep(wait).await;
                        continue;
                    }
                },
            },
        };
        let resuming = session.id.is_some();
        let ended = connection(&gateway, &url, &mut session).await;
        if ended.healthy {
            failures = 0;
            resume_failures = 0;
        } else {
            failures += 1;
        }
        let wait = match ended.next {
            Next::Fatal(reason) => return Err(reason),
            Next::Identify { wait } => {
                session = Session::default();
                wait
            }
            Next::Resume => {
                if resuming && !ended.healthy {
                    resume_failures += 1;
                    if resume_failures >= RESUME_ATTEMPTS {
                        warn!("[discord] the session could not be resumed; identifying anew");
                        session = Session::default();
                        resume_failures = 0;
                    }
                }
                Duration::ZERO
            }
        };
        let wait = if ended.at_once {
            wait
        } else {
            wait.max(backoff(failures.max(1)))
        };
        let then = if session.id.is_some() {
            "resuming"
        } else {
            "identifying"
        };
        if ended.healthy {
            info!(
                "[discord] gateway connection ended ({}); {then} in {:.1}s",
                ended.reason,
                wait.as_secs_f64()
            );
        } else {
            warn!(
                "[discord] gateway connection failed ({}); {then} in {:.1}s",
                ended.reason,
                wait.as_secs_f64()
            );
        }
        sleep(wait).await;
    }
}

/// One connection, from connecting to its end.
async fn connection(gateway: &Gateway<'_>, url: &str, session: &mut Session) -> Ended {
    let connecting = client()
        .ws(connect_url(url))
        .max_frame_size(MAX_FRAME)
        .connect()
        .await;
    let ws = match connecting {
        Ok((_, ws)) => ws,
        Err(err) => {
            return Ended::new(
                Next::Resume,
                format!("cannot connect to the Discord gateway: {err}"),
            );
        }
    };
    let mut link = Link {
        ws,
        gateway,
        acked: true,
        healthy: false,
        partial: None,
    };
    let ended = link.run(session).await;
    Ended {
        healthy: ended.healthy || link.healthy,
        ..ended
    }
}

/// An open gateway socket.
struct Link<'a, 'b, S> {
    ws: S,
    gateway: &'a Gateway<'b>,
    /// The last heartbeat was acknowledged.
    acked: bool,
    /// READY or RESUMED arrived.
    healthy: bool,
    /// A text message arriving in continuation frames.
    partial: Option<Vec<u8>>,
}

/// What the socket gave.
enum Read {
    /// A whole text message.
    Text(Vec<u8>),
    /// Nothing for the protocol (a ping answered, a pong, a binary frame).
    Nothing,
    /// The connection is over.
    End(Ended),
}

impl<S> Link<'_, '_, S>
where
    S: Stream<Item = Result<Frame, WsProtocolError>>
        + Sink<WsMessage, Error = WsProtocolError>
        + Unpin,
{
    async fn run(&mut self, session: &mut Session) -> Ended {
        let interval = match timeout(HELLO_TIMEOUT, self.hello()).await {
            Ok(Ok(interval)) => interval,
            Ok(Err(ended)) => return ended,
            Err(_) => {
                return Ended::new(
                    Next::Resume,
                    format!("no Hello within {}s", HELLO_TIMEOUT.as_secs()),
                );
            }
        };
        let opening = match &session.id {
            Some((id, _)) => json!({
                "op": op::RESUME,
                "d": {"token": self.gateway.token, "session_id": id, "seq": session.seq},
            }),
            None => json!({
                "op": op::IDENTIFY,
                "d": {
                    "token": self.gateway.token,
                    "intents": INTENTS,
                    "properties": {"os": std::env::consts::OS, "browser": "hermes", "device": "hermes"},
                },
            }),
        };
        if let Err(ended) = self.send(&opening).await {
            return ended;
        }
        let mut next_beat = Instant::now() + interval.mul_f64(rand::random::<f64>());
        loop {
            let frame = tokio::select! {
                frame = self.ws.next() => Some(frame),
                () = sleep_until(next_beat) => None,
            };
            match frame {
                None => {
                    if !self.acked {
                        return self
                            .close(
                                Next::Resume,
                                "no heartbeat acknowledgement before the next heartbeat",
                            )
                            .await;
                    }
                    if let Err(ended) = self.heartbeat(session).await {
                        return ended;
                    }
                    self.acked = false;
                    next_beat = Instant::now() + interval;
                }
                Some(frame) => match self.read(frame).await {
                    Read::Nothing => {}
                    Read::End(ended) => return ended,
                    Read::Text(text) => {
                        if let Some(ended) = self.payload(&text, session).await {
                            return ended;
                        }
                    }
                },
            }
        }
    }

    /// Waits for Hello and returns its heartbeat interval.
    async fn hello(&mut self) -> Result<Duration, Ended> {
        loop {
            let frame = self.ws.next().await;
            match self.read(frame).await {
                Read::Nothing => {}
                Read::End(ended) => return Err(ended),
                Read::Text(text) => {
                    let Ok(payload) = serde_json::from_slice::<Payload>(&text) else {
                        continue;
                    };
                    if payload.op != op::HELLO {
                        continue;
                    }
                    return match serde_json::from_value::<Hello>(payload.d) {
                        Ok(hello) if hello.heartbeat_interval > 0 => {
                            Ok(Duration::from_millis(hello.heartbeat_interval))
                        }
                        _ => Err(Ended::new(
                            Next::Resume,
                            "Hello without a heartbeat interval",
                        )),
                    };
                }
            }
        }
    }

    /// Makes sense of one item of the socket.
    async fn read(&mut self, frame: Option<Result<Frame, WsProtocolError>>) -> Read {
        let frame = match frame {
            None => {
                return Read::End(Ended::new(
                    Next::Resume,
                    "the gateway dropped the connection",
                ));
            }
            Some(Err(err)) => {
                return Read::End(Ended::new(Next::Resume, format!("socket error: {err}")));
            }
            Some(Ok(frame)) => frame,
        };
        match frame {
            Frame::Text(bytes) => Read::Text(bytes.to_vec()),
            Frame::Continuation(item) => match item {
                Item::FirstText(bytes) => {
                    self.partial = Some(bytes.to_vec());
                    Read::Nothing
                }
                Item::FirstBinary(_) => {
                    self.partial = None;
                    Read::Nothing
                }
                Item::Continue(bytes) => {
                    if let Some(partial) = &mut self.partial {
                        partial.extend_from_slice(&bytes);
                        if partial.len() > MAX_FRAME {
                            self.partial = None;
                        }
                    }
                    Read::Nothing
                }
                Item::Last(bytes) => match self.partial.take() {
                    Some(mut partial) => {
                        partial.extend_from_slice(&bytes);
                        Read::Text(partial)
                    }
                    None => Read::Nothing,
                },
            },
            Frame::Ping(bytes) => {
                let _ = self.ws.send(WsMessage::Pong(bytes)).await;
                Read::Nothing
            }
            Frame::Pong(_) | Frame::Binary(_) => Read::Nothing,
            Frame::Close(reason) => {
                let code = reason.as_ref().map_or(1005, |r| u16::from(r.code));
                let description = reason
                    .and_then(|r| r.description)
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default();
                Read::End(Ended::new(
                    after_close(code),
                    format!("closed by Discord with code {code}{description}"),
                ))
            }
        }
    }

    /// Acts on one gateway payload; `Some` when the connection is over.
    async fn payload(&mut self, text: &[u8], session: &mut Session) -> Option<Ended> {
        let payload: Payload = match serde_json::from_slice(text) {
            Ok(payload) => payload,
            Err(err) => {
                debug!("[discord] unreadable gateway payload: {err}");
                return None;
            }
        };
        match payload.op {
            op::DISPATCH => self.dispatch(payload, session).await,
            op::HEARTBEAT => self.heartbeat(session).await.err(),
            op::HEARTBEAT_ACK => {
                self.acked = true;
                None
            }
            op::RECONNECT => {
                let mut ended = self
                    .close(Next::Resume, "Discord asked to reconnect (op 7)")
                    .await;
                ended.at_once = true;
                Some(ended)
            }
            op::INVALID_SESSION => {
                if payload.d.as_bool() == Some(true) {
                    let mut ended = self
                        .close(Next::Resume, "invalid session (op 9), resumable")
                        .await;
                    ended.at_once = true;
                    Some(ended)
                } else {
                    let wait = Duration::from_millis(1000 + rand::random::<u64>() % 4000);
                    let mut ended = self
                        .close(Next::Identify { wait }, "invalid session (op 9)")
                        .await;
                    ended.at_once = true;
                    Some(ended)
                }
            }
            _ => None,
        }
    }

    async fn dispatch(&mut self, payload: Payload, session: &mut Session) -> Option<Ended> {
        match payload.t.as_deref() {
            Some("READY") => match serde_json::from_value::<Ready>(payload.d) {
                Ok(ready) => {
                    info!(
                        "[discord] connected to the gateway as {} ({})",
                        ready.user.username, ready.user.id
                    );
                    *self
                        .gateway
                        .bot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ready.user);
                    session.id = Some((ready.session_id, ready.resume_gateway_url));
                    self.healthy = true;
                }
                Err(err) => warn!("[discord] unreadable READY: {err}"),
            },
            Some("RESUMED") => {
                info!("[discord] gateway session resumed");
                self.healthy = true;
            }
            Some("MESSAGE_CREATE") => {
                if let Some(ended) = self.message(payload.d).await {
                    return Some(ended);
                }
            }
            _ => {}
        }
        if payload.s.is_some() {
            session.seq = payload.s;
        }
        None
    }

    /// Hands a new message to the host when it is for the agent; `Some` when it could not be
    /// stored (the resume that follows replays it).
    async fn message(&mut self, data: Value) -> Option<Ended> {
        let message: Message = match serde_json::from_value(data) {
            Ok(message) => message,
            Err(err) => {
                debug!("[discord] unreadable MESSAGE_CREATE: {err}");
                return None;
            }
        };
        let bot_id = self
            .gateway
            .bot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|user| user.id.clone())
            .unwrap_or_default();
        let inbound = match to_inbound(&message, &bot_id) {
            Ok(inbound) => inbound,
            Err(Skip::Own | Skip::NotAddressed) => return None,
            Err(skip) => {
                debug!("[discord] message {} skipped: {skip:?}", message.id);
                return None;
            }
        };
        match self.gateway.sink.accept(inbound).await {
            Ok(_) => None,
            Err(err) => Some(
                self.close(
                    Next::Resume,
                    format!("message {} could not be stored ({err})", message.id),
                )
                .await,
            ),
        }
    }

    async fn heartbeat(&mut self, session: &Session) -> Result<(), Ended> {
        self.send(&json!({"op": op::HEARTBEAT, "d": session.seq}))
            .await
    }

    async fn send(&mut self, payload: &Value) -> Result<(), Ended> {
        let text = payload.to_string();
        self.ws
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|err| Ended::new(Next::Resume, format!("sending failed: {err}")))
    }

    /// Closes the socket with a code that keeps the session, and ends with `next`: sends the
    /// close frame, then waits (briefly) for Discord's, as the closing handshake asks.
    async fn close(&mut self, next: Next, reason: impl Into<String>) -> Ended {
        let close = WsMessage::Close(Some(CloseReason {
            code: CloseCode::Other(RESUMABLE_CLOSE),
            description: None,
        }));
        let _ = timeout(CLOSE_WAIT, async {
            if self.ws.send(close).await.is_err() {
                return;
            }
            while let Some(Ok(frame)) = self.ws.next().await {
                if matches!(frame, Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
        Ended::new(next, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_url_asks_for_version_10_in_json() {
        assert_eq!(
            connect_url("wss://gateway.discord.gg"),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            connect_url("ws://127.0.0.1:5/gateway"),
            "ws://127.0.0.1:5/gateway?v=10&encoding=json"
        );
        assert_eq!(
            connect_url("wss://g.example/?v=9&compress=zlib-stream"),
            "wss://g.example/?compress=zlib-stream&v=10&encoding=json"
        );
    }

    #[test]
    fn close_codes_decide_what_follows() {
        for fatal in [4004, 4010, 4011, 4012, 4013, 4014] {
            assert!(matches!(after_close(fatal), Next::Fatal(_)), "{fatal}");
        }
        let Next::Fatal(line) = after_close(4014) else {
            unreachable!()
        };
        assert!(line.contains("Message Content Intent") && !line.contains('\n'));
        for fresh in [4007, 4009] {
            assert!(
                matches!(after_close(fresh), Next::Identify { .. }),
                "{fresh}"
            );
        }
        for resume in [1000, 1001, 1006, 4000, 4001, 4002, 4003, 4005, 4008] {
            assert_eq!(after_close(resume), Next::Resume, "{resume}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        for _ in 0..20 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(750) && first <= Duration::from_millis(1250));
            let third = backoff(3);
            assert!(third >= Duration::from_secs(3) && third <= Duration::from_secs(5));
            assert!(backoff(30) <= MAX_BACKOFF.mul_f64(1.25));
        }
    }
}
