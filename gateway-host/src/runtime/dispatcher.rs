//! The conversation pipeline: inbound messages are stored (ingress), then a dispatcher runs
//! them, one queue per conversation: chat commands without the agent, everything else as agent
//! turns whose replies are formatted and queued in the outbox within the same transaction.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_api::{Control, Platform, Unauthorized};
use rand::Rng;
use tokio::sync::{Semaphore, watch};
use tracing::{Instrument, error, info, info_span, warn};

use crate::agent::{Agent, AgentRequest, ChatMessage};
use crate::chat::{self, ChatCommand};
use crate::chat_key::ChatKey;
use crate::repeated::Repeated;
use crate::runtime::ingress::Ingress;
use crate::services::Services;
use crate::store::{PairingRequest, StoreError, StoredInbound, TurnCommit};

/// The one message a user gets when the agent fails or times out.
pub const APOLOGY: &str = "Sorry, I couldn't answer that just now. Please try again in a moment, or send /reset to start over.";

/// Stored messages looked at in one dispatcher pass (oldest first).
const PASS_LIMIT: usize = 2000;

/// Waiting messages of one chat a turn takes at most, beyond those its pass saw.
const CHAT_LIMIT: usize = 500;

/// What a conversation's hold lasts beyond the longest turn (with a shared database).
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// How long a dispatcher pass under load waits for more messages to take at once.
const COALESCE: Duration = Duration::from_millis(2);

/// Turns of history sent to the agent as context.
const HISTORY_TURNS: usize = 40;

/// How long a pairing code is valid.
const PAIRING_VALID_MS: i64 = 3_600_000;
/// Codes a platform issues per hour at most, whoever asks.
const PAIRING_CODES_PER_HOUR: i64 = 20;
/// The rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// What a sender over the rate limit is told, once per window.
pub const RATE_NOTICE: &str =
    "You're sending messages faster than I can answer. Please wait a minute before sending more.";

/// A one-time code without look-alike characters (no 0/O, 1/I/L).
fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

struct Running {
    task: actix_rt::task::JoinHandle<()>,
    inbound_ids: Vec<i64>,
    started: Instant,
}

/// Bounds of the dispatcher.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest an agent turn may take.
    pub timeout: Duration,
    /// Agent turns running at once.
    pub max_turns: usize,
    /// Outbox parts waiting to be sent past which no new turn starts.
    pub max_outbox: usize,
}

/// Runs stored inbound messages: serial per conversation, parallel across conversations.
pub struct Dispatcher {
    services: Services,
    ingress: Arc<Ingress>,
    agent: Rc<dyn Agent>,
    timeout: Duration,
    running: RefCell<HashMap<ChatKey, Running>>,
    turns: Semaphore,
    accepting: Cell<bool>,
    max_outbox: usize,
    outbox_full: Cell<bool>,
    marks: RefCell<Vec<(i64, &'static str)>>,
}

impl Dispatcher {
    /// A dispatcher with the given agent, per-turn limit and parallelism bound.
    pub fn new(
        services: Services,
        ingress: Arc<Ingress>,
        agent: Rc<dyn Agent>,
        limits: Limits,
    ) -> Rc<Self> {
        let Limits {
            timeout,
            max_turns,
            max_outbox,
        } = limits;
        Rc::new(Dispatcher {
            services,
            ingress,
            agent,
            timeout,
            running: RefCell::new(HashMap::new()),
            turns: Semaphore::new(max_turns.max(1)),
            accepting: Cell::new(true),
            max_outbox,
            outbox_full: Cell::new(false),
            marks: RefCell::new(Vec::new()),
        })
    }

    /// Processes stored messages until `shutdown` turns true, then lets running turns finish
    /// for up to `grace`; turns still running then are abandoned and answered after a restart.
    pub async fn run(self: Rc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut failing = Repeated::new("dispatcher");
        loop {
            let started = Instant::now();
            let seen = match self.dispatch() {
                Ok(seen) => {
                    failing.ok();
                    seen
                }
                Err(e) => {
                    failing.failed(&e);
                    0
                }
            };
            let took = started.elapsed();
            tokio::select! {
                _ = self.services.inbound.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break,
            }
            // A pass costs a few queries and a commit however many messages it takes: under
            // load (the last pass had several waiting), the next one waits a moment to take
            // more, at least as long as the last pass took (a database across the network
            // makes passes slower: they would otherwise take its time from the webhooks').
            if seen > 1 {
                tokio::time::sleep(COALESCE.max(took)).await;
            }
        }
        self.accepting.set(false);
        let deadline = Instant::now() + grace;
        while !self.running.borrow().is_empty() && Instant::now() < deadline {
            tokio::select! {
                _ = self.services.inbound.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        for (_, running) in self.running.borrow_mut().drain() {
            running.task.abort();
        }
    }

    /// One pass over the waiting messages; returns how many were waiting.
    fn dispatch(self: &Rc<Self>) -> anyhow::Result<usize> {
        let pending = self.services.store.pending_inbound(PASS_LIMIT)?;
        let seen = pending.len();
        let waiting = if pending.len() < PASS_LIMIT {
            pending.len()
        } else {
            self.services.store.pending_inbound_count()?
        };
        self.ingress.set_pending(waiting);
        // With the outbox backlog at its limit no new turn starts: messages wait in the store
        // (still acknowledged: a backlog never refuses one) instead of replies piling up.
        let backlog = self.services.store.outbox_depth()?;
        let outbox_full = backlog >= self.max_outbox;
        if outbox_full && !self.outbox_full.replace(true) {
            warn!(
                "outbox backlog at {backlog} parts (HERMES_MAX_OUTBOX): no new turns until it drains"
            );
        } else if !outbox_full {
            self.outbox_full.set(false);
        }
        let mut order: Vec<ChatKey> = Vec::new();
        let mut groups: HashMap<ChatKey, Vec<StoredInbound>> = HashMap::new();
        for msg in pending {
            let key = ChatKey::new(&msg.platform, &msg.chat);
            groups
                .entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push(msg);
        }
        let store = &self.services.store;
        let shared = store.is_shared();
        // Conversations this pass held (with a shared database), given back at its end unless
        // a turn runs in them.
        let mut held: Vec<ChatKey> = Vec::new();
        let mut result = Ok(());
        for key in order {
            let mut msgs = groups.remove(&key).unwrap_or_default();
            let Some(platform) = self.services.platform(&key.platform).cloned() else {
                continue;
            };
            let local = self.running.borrow().contains_key(&key);
            if shared && !local {
                // Another gateway may hold the conversation, or may have answered what this
                // pass read before it got hold of it: read its messages again once held.
                match store.claim_conversation(&key.platform, &key.chat, self.lease()) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        result = Err(e.into());
                        break;
                    }
                }
                held.push(key.clone());
                match store.pending_inbound_of(&key.platform, &key.chat, 0, CHAT_LIMIT) {
                    Ok(fresh) => msgs = fresh,
                    Err(e) => {
                        result = Err(e.into());
                        break;
                    }
                }
            } else if seen == PASS_LIMIT && !local {
                // A pass sees the oldest waiting messages only: after a flood that is a few
                // per chat. A turn about to start takes the rest of its chat's backlog too, so
                // that recovery costs one turn per chat rather than one per pass.
                let after = msgs.last().map_or(0, |m| m.id);
                msgs.extend(store.pending_inbound_of(
                    &key.platform,
                    &key.chat,
                    after,
                    CHAT_LIMIT,
                )?);
            } else if shared {
                held.push(key.clone());
            }
            result = self.dispatch_conversation(&key, &platform, msgs);
            if result.is_err() {
                break;
            }
        }
        // Messages handled without a turn are recorded together, in one transaction.
        let marks = self.marks.take();
        store.mark_inbound_states(&marks)?;
        for key in held {
            if !self.running.borrow().contains_key(&key) {
                store.release_conversation(&key.platform, &key.chat)?;
            }
        }
        result.map(|()| seen)
    }

    /// How long a conversation taken now is held: a whole turn and a margin (the holder
    /// extends it when its turn starts; a gateway that dies holding one lets go when it ends).
    fn lease(&self) -> Duration {
        self.timeout + LEASE_MARGIN
    }

    /// Records, at the end of this pass, how a message was handled without a turn.
    fn defer_mark(&self, id: i64, state: &'static str) {
        self.marks.borrow_mut().push((id, state));
    }

    fn dispatch_conversation(
        self: &Rc<Self>,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msgs: Vec<StoredInbound>,
    ) -> anyhow::Result<()> {
        let store = &self.services.store;
        let mut batch: Vec<StoredInbound> = Vec::new();
        // Senders looked up in the pairing table during this call.
        let mut approved: HashMap<String, bool> = HashMap::new();
        for msg in msgs {
            let who = || platform.redact(&msg.sender);
            if let Some(control) = msg.control {
                self.control(platform, &msg, control)?;
                continue;
            }
            let allowed = platform.access().allows(&msg.sender)
                || match approved.get(&msg.sender) {
                    Some(&known) => known,
                    None => {
                        let known = store.is_approved(&msg.platform, &msg.sender)?;
                        approved.insert(msg.sender.clone(), known);
                        known
                    }
                };
            if !allowed {
                info!(
                    "[{}] message from {} not processed: sender is not allowed (deny by default)",
                    msg.platform,
                    who()
                );
                self.services.metrics.inc(
                    "hermes_inbound_rejected_total",
                    &[("platform", &msg.platform), ("reason", "unauthorized")],
                );
                if platform.access().unauthorized == Unauthorized::Pair {
                    self.offer_pairing(key, platform, &msg)?;
                }
                self.defer_mark(msg.id, "unauthorized");
                continue;
            }
            if store.is_suppressed(&msg.platform, &msg.chat)? {
                if !platform.writing_opts_back_in() {
                    info!(
                        "[{}] message from {} not processed: the chat has opted out (send START to opt back in)",
                        msg.platform,
                        who()
                    );
                    self.services.metrics.inc(
                        "hermes_inbound_rejected_total",
                        &[("platform", &msg.platform), ("reason", "opted-out")],
                    );
                    self.defer_mark(msg.id, "suppressed");
                    continue;
                }
                store.unsuppress(&msg.platform, &msg.chat)?;
                info!(
                    "[{}] {} writes again after refusing messages: messages to this chat resume",
                    msg.platform,
                    who()
                );
            }
            let running = self.running.borrow().contains_key(key);
            match chat::parse(&msg.text) {
                Some(command) if running || batch.is_empty() => {
                    self.command(key, platform, &msg, command)?;
                }
                // A command after queued text waits for the turn that answers the text.
                Some(_) => break,
                None if running => {}
                None => {
                    if self.admit(key, platform, &msg)? {
                        batch.push(msg);
                    }
                }
            }
        }
        if !batch.is_empty()
            && !self.running.borrow().contains_key(key)
            && self.accepting.get()
            && !self.outbox_full.get()
        {
            self.start_turn(key.clone(), platform.clone(), batch);
        }
        Ok(())
    }

    /// Gives an unknown sender a one-time pairing code for the owner to approve.
    fn offer_pairing(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
    ) -> anyhow::Result<()> {
        let code = pairing_code();
        let outcome = self.services.store.request_pairing(
            &msg.platform,
            &msg.sender,
            &code,
            self.services.store.now(),
            PAIRING_VALID_MS,
            PAIRING_CODES_PER_HOUR,
        )?;
        let who = platform.redact(&msg.sender);
        match outcome {
            PairingRequest::Issued(code) => {
                info!(
                    "[{}] pairing code issued to {who}; approve with `hermes pairing approve {} CODE`",
                    msg.platform, msg.platform
                );
                let text = format!(
                    "This number is not set up to chat yet. Ask the owner to run: hermes pairing approve {} {code} (valid for 1 hour).",
                    msg.platform
                );
                self.reply_now(key, platform, &[], &text)
            }
            PairingRequest::AlreadyIssued => Ok(()),
            PairingRequest::Limited => {
                warn!(
                    "[{}] pairing code for {who} not issued: too many codes in the last hour",
                    msg.platform
                );
                Ok(())
            }
        }
    }

    /// Applies the sender's rate limit; a message over it is recorded but gets no turn, and the
    /// sender one notice per window.
    fn admit(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
    ) -> anyhow::Result<bool> {
        let Some(limit) = platform.access().rate_limit_per_minute else {
            return Ok(true);
        };
        // The window is the store's: gateways sharing a database count a sender together.
        let window = format!("{}\u{1f}{}", msg.platform, msg.sender);
        let hit = self.services.store.rate_hit(
            &window,
            RATE_WINDOW.as_millis() as i64,
            limit,
            self.services.store.now(),
        )?;
        if hit.allowed {
            return Ok(true);
        }
        let notice = hit.notice;
        info!(
            "[{}] message from {} over the rate limit: recorded, not answered",
            msg.platform,
            platform.redact(&msg.sender)
        );
        self.services.metrics.inc(
            "hermes_inbound_rejected_total",
            &[("platform", &msg.platform), ("reason", "rate-limited")],
        );
        self.defer_mark(msg.id, "rate-limited");
        if notice {
            self.reply_now(key, platform, &[], RATE_NOTICE)?;
        }
        Ok(false)
    }

    fn control(
        &self,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
        control: Control,
    ) -> anyhow::Result<()> {
        let store = &self.services.store;
        let who = platform.redact(&msg.sender);
        match control {
            Control::OptOut => {
                store.suppress(&msg.platform, &msg.chat, "opt-out keyword")?;
                info!(
                    "[{}] {who} opted out: nothing more will be sent to this chat until it opts back in",
                    msg.platform
                );
            }
            Control::OptIn => {
                store.unsuppress(&msg.platform, &msg.chat)?;
                info!("[{}] {who} opted back in", msg.platform);
            }
            Control::Help => info!(
                "[{}] {who} asked for help (answered by the carrier)",
                msg.platform
            ),
        }
        self.defer_mark(msg.id, "control");
        Ok(())
    }

    fn reply_now(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        inbound_ids: &[i64],
        text: &str,
    ) -> anyhow::Result<()> {
        let parts = platform.format(text);
        self.services.store.commit_turn(&TurnCommit {
            platform: &key.platform,
            chat: &key.chat,
            inbound_ids,
            user: None,
            assistant: None,
            parts: &parts,
            origin: "command",
        })?;
        self.services.outbox.notify_one();
        Ok(())
    }

    fn command(
        self: &Rc<Self>,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
        command: ChatCommand,
    ) -> anyhow::Result<()> {
        let cx = chat::Context {
            services: &self.services,
            key,
            platform,
            turns: self.as_ref(),
            agent: &self.agent,
            timeout: self.timeout,
        };
        let reply = command.apply(&cx)?;
        info!(
            "[{}] command {:?} from {}",
            key.platform,
            command,
            platform.redact(&msg.sender)
        );
        self.reply_now(key, platform, &[msg.id], &reply)
    }

    fn start_turn(
        self: &Rc<Self>,
        key: ChatKey,
        platform: Arc<dyn Platform>,
        batch: Vec<StoredInbound>,
    ) {
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        let this = Rc::clone(self);
        let span = info_span!("turn", platform = %key.platform, chat = %platform.redact(&key.chat), messages = ids.len());
        let task_key = key.clone();
        let task = actix_rt::spawn(
            async move {
                let _permit = this.turns.acquire().await;
                // Waiting for a turn may outlast the hold: hold it again, or leave the
                // conversation to the gateway that took it meanwhile.
                let store = &this.services.store;
                if store.is_shared()
                    && !store
                        .claim_conversation(&task_key.platform, &task_key.chat, this.lease())
                        .unwrap_or(false)
                {
                    this.running.borrow_mut().remove(&task_key);
                    this.services.inbound.notify_one();
                    return;
                }
                this.turn(&task_key, &platform, batch).await;
                this.services.inbound.notify_one();
            }
            .instrument(span),
        );
        self.running.borrow_mut().insert(
            key,
            Running {
                task,
                inbound_ids: ids,
                started: Instant::now(),
            },
        );
    }

    async fn turn(&self, key: &ChatKey, platform: &Arc<dyn Platform>, batch: Vec<StoredInbound>) {
        let user_text = batch
            .iter()
            .map(render_inbound)
            .collect::<Vec<_>>()
            .join("\n");
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        let history = match self
            .services
            .store
            .history(&key.platform, &key.chat, HISTORY_TURNS)
        {
            Ok(h) => h,
            Err(e) => {
                error!("reading history: {e}");
                Vec::new()
            }
        };
        let mut messages: Vec<ChatMessage> = history
            .into_iter()
            .map(|(role, content)| ChatMessage { role, content })
            .collect();
        messages.push(ChatMessage {
            role: "user".into(),
            content: user_text.clone(),
        });
        let label = self
            .services
            .platforms
            .get(&key.platform)
            .map(|l| l.registration.label)
            .unwrap_or("a messaging app");
        let request = AgentRequest {
            platform: key.platform.clone(),
            platform_label: label.to_string(),
            chat: key.chat.clone(),
            messages,
        };
        let started = Instant::now();
        let reply = tokio::time::timeout(self.timeout, self.agent.reply(&request));
        let outcome = tokio::select! {
            outcome = reply => outcome,
            never = keep_typing(platform.as_ref(), &key.chat) => match never {},
        };
        self.services.metrics.observe_agent(started.elapsed());
        let (assistant, reply, result) = match outcome {
            Ok(Ok(text)) if !text.trim().is_empty() => (Some(text.clone()), text, "ok"),
            Ok(Ok(_)) => {
                warn!("agent returned an empty reply");
                (None, APOLOGY.to_string(), "empty")
            }
            Ok(Err(e)) => {
                warn!("agent failed: {e:#}");
                (None, APOLOGY.to_string(), "error")
            }
            Err(_) => {
                warn!("agent did not answer within {}s", self.timeout.as_secs());
                (None, APOLOGY.to_string(), "timeout")
            }
        };
        self.services.metrics.inc(
            "hermes_agent_turns_total",
            &[("platform", &key.platform), ("outcome", result)],
        );
        let parts = platform.format(&reply);
        let commit = TurnCommit {
            platform: &key.platform,
            chat: &key.chat,
            inbound_ids: &ids,
            user: Some(&user_text),
            assistant: assistant.as_deref(),
            parts: &parts,
            origin: "reply",
        };
        // Committing and leaving the running set happen without an await in between, so a
        // `/stop` either cancels the turn before it commits or finds it finished.
        match self.services.store.commit_turn(&commit) {
            Ok(_) => info!(
                "reply queued in {} part(s) after {:.1}s",
                parts.len(),
                started.elapsed().as_secs_f64()
            ),
            Err(StoreError::Conflict(why)) => {
                info!("reply dropped: its messages were answered meanwhile ({why})")
            }
            Err(e) => error!("could not record the turn (it will run again): {e}"),
        }
        self.running.borrow_mut().remove(key);
        if self.services.store.is_shared()
            && let Err(e) = self
                .services
                .store
                .release_conversation(&key.platform, &key.chat)
        {
            warn!("giving the conversation back (it lapses by itself): {e}");
        }
        self.services.outbox.notify_one();
    }
}

impl chat::Turns for Dispatcher {
    fn cancel(&self, key: &ChatKey) -> Option<Vec<i64>> {
        let running = self.running.borrow_mut().remove(key)?;
        running.task.abort();
        self.services
            .store
            .mark_inbound(&running.inbound_ids, "cancelled")
            .ok()?;
        Some(running.inbound_ids)
    }

    fn started(&self, key: &ChatKey) -> Option<Instant> {
        self.running.borrow().get(key).map(|r| r.started)
    }
}

/// Shows the chat that a reply is being written, for as long as it is awaited.
async fn keep_typing(platform: &dyn Platform, chat: &str) -> std::convert::Infallible {
    loop {
        platform.typing(chat).await;
        actix_rt::time::sleep(platform.typing_every()).await;
    }
}

/// The text the agent sees for one inbound message, attachments included.
fn render_inbound(msg: &StoredInbound) -> String {
    let mut text = msg.text.trim().to_string();
    for a in &msg.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "[attachment: {} {}]",
            a.content_type.as_deref().unwrap_or("file"),
            a.url
        ));
    }
    text
}
