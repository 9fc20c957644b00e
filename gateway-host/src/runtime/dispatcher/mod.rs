//! The conversation pipeline: inbound messages are stored (ingress), then a dispatcher runs
//! them, one queue per conversation: chat commands without the agent, everything else as agent
//! turns whose replies are formatted and queued in the outbox within the same transaction.
//!
//! This file is the pass loop: read the waiting messages, group them by conversation, hold a
//! conversation (with a shared database), and hand each message on. `access.rs` decides
//! whether a message is answered at all (carrier keywords, allowlist and pairing, opt-out,
//! rate limit); chat commands are [`crate::chat`]'s; `turn.rs` runs agent turns.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_api::Platform;
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use crate::agent::Agent;
use crate::chat::{self, ChatCommand};
use crate::chat_key::ChatKey;
use crate::repeated::Repeated;
use crate::runtime::ingress::Ingress;
use crate::services::Services;
use crate::store::{StoredInbound, TurnCommit};

mod access;
mod live;
mod turn;

pub use access::RATE_NOTICE;
pub use turn::APOLOGY;
use turn::Running;

/// Stored messages looked at in one dispatcher pass (oldest first).
const PASS_LIMIT: usize = 2000;

/// Waiting messages of one chat a turn takes at most, beyond those its pass saw.
const CHAT_LIMIT: usize = 500;

/// Text of waiting messages one turn takes at most (one message, however long, always goes):
/// a turn's memory, and what the agent is asked at once, stay bounded in bytes, not only in
/// messages, after an outage left a chat with a long backlog. What is left waits for the next
/// turn.
const TURN_TEXT_LIMIT: usize = 16 * 1024;

/// What a conversation's hold lasts beyond the longest turn (with a shared database).
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// How long a dispatcher pass under load waits for more messages to take at once.
const COALESCE: Duration = Duration::from_millis(2);

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
    /// The message a turn cancelled by a chat command was being shown in: that command's
    /// answer replaces it.
    stopped_in: RefCell<Option<String>>,
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
        // Shown from the start, not from the first turn.
        services.metrics.live_gauge("hermes_agent_turns_running");
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
            stopped_in: RefCell::new(None),
        })
    }

    /// Processes stored messages until `shutdown` turns true, then lets running turns finish
    /// for up to `grace`; turns still running then are abandoned and answered after a restart.
    pub async fn run(self: Rc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut failing = Repeated::new("dispatcher");
        loop {
            let started = Instant::now();
            let pass = self.services.metrics.begin_pass("dispatcher");
            let outcome = self.dispatch();
            let idle = matches!(outcome, Ok(0)) && self.running.borrow().is_empty();
            self.services.metrics.end_pass("dispatcher", pass, idle);
            let seen = match outcome {
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
        let mut batch: Vec<StoredInbound> = Vec::new();
        let mut batch_text = 0;
        // Senders looked up in the pairing table during this call.
        let mut approved: HashMap<String, bool> = HashMap::new();
        for msg in msgs {
            if !self.screen(key, platform, &msg, &mut approved)? {
                continue;
            }
            let running = self.running.borrow().contains_key(key);
            match chat::parse(&msg.text) {
                Some(command) if running || batch.is_empty() => {
                    self.command(key, platform, &msg, command)?;
                }
                // A command after queued text waits for the turn that answers the text.
                Some(_) => break,
                None if running => {}
                // The turn is full: the rest waits for the next one.
                None if !batch.is_empty() && batch_text + msg.text.len() > TURN_TEXT_LIMIT => {
                    break;
                }
                None => {
                    if self.admit(key, platform, &msg)? {
                        batch_text += msg.text.len();
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

    /// Queues a reply the host writes itself (a command's answer, a notice) for the chat; its
    /// first part replaces the message `replaces` names, if any ([`Part::edit`]).
    ///
    /// [`Part::edit`]: platform_api::Part::edit
    fn reply_now(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        inbound_ids: &[i64],
        text: &str,
        replaces: Option<String>,
    ) -> anyhow::Result<()> {
        let mut parts = platform.format(text);
        if let Some(first) = parts.first_mut() {
            first.edit = replaces;
        }
        self.services.store.commit_turn(&TurnCommit {
            platform: &key.platform,
            chat: &key.chat,
            inbound_ids,
            user: None,
            assistant: None,
            parts: &parts,
            origin: "command",
            refused: &[],
        })?;
        self.services.outbox.notify_one();
        Ok(())
    }

    /// Runs a chat command and queues its answer.
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
        let reply = command.apply(&cx);
        // A reply stopped while it was shown gives way to the command's answer.
        let replaces = self.stopped_in.take();
        let reply = reply?;
        info!(
            "[{}] command {:?} from {}",
            key.platform,
            command,
            platform.redact(&msg.sender)
        );
        self.reply_now(key, platform, &[msg.id], &reply, replaces)
    }
}
