//! Agent turns: one at a time per conversation, a bounded number at once; the reply and the
//! messages it answers are committed with its outbox parts in one transaction. Where the
//! agent streams and the chat can show it, the reply is shown while it is written
//! ([`super::live`]); the finished reply's first part then replaces the message that showed
//! it, if one was posted (also when the turn ends in an apology).
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use platform_api::{LiveView, Platform};
use tokio::sync::watch;
use tokio::time::error::Elapsed;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Dispatcher, live};
use crate::agent::{AgentRequest, ChatMessage, Session, chat_tag, name_line};
use crate::chat;
use crate::chat_key::ChatKey;
use crate::media;
use crate::store::{Conversation, StoreError, StoredInbound, TurnCommit};

/// The one message a user gets when the agent fails or times out.
pub const APOLOGY: &str = "Sorry, I couldn't answer that just now. Please try again in a moment, or send /reset to start over.";

/// Turns of history sent to the agent as context.
const HISTORY_TURNS: usize = 40;

/// Text of history sent to the agent at most, the newest kept: the context of a long
/// conversation stays within what a model takes, and a turn's memory within a bound.
const HISTORY_TEXT_LIMIT: usize = 64 * 1024;

/// A turn running in this gateway.
pub(super) struct Running {
    pub(super) task: actix_rt::task::JoinHandle<()>,
    inbound_ids: Vec<i64>,
    started: Instant,
    /// The message the reply is being shown in, once posted (Discord).
    shown_in: Option<String>,
}

impl Dispatcher {
    /// Starts a turn answering `batch`, which runs once one of the turn slots is free.
    pub(super) fn start_turn(
        self: &Rc<Self>,
        key: ChatKey,
        platform: Arc<dyn Platform>,
        batch: Vec<StoredInbound>,
    ) {
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        let shown_in = batch[0].live_message.clone();
        let this = Rc::clone(self);
        let span = info_span!("turn", platform = %key.platform, chat = %platform.redact(&key.chat), messages = ids.len());
        let task_key = key.clone();
        let under_way = self.services.metrics.hold("hermes_agent_turns_running");
        let task = actix_rt::spawn(
            async move {
                let _under_way = under_way;
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
                shown_in,
            },
        );
    }

    /// Asks the agent (typing meanwhile), then commits the reply, or an apology.
    async fn turn(&self, key: &ChatKey, platform: &Arc<dyn Platform>, batch: Vec<StoredInbound>) {
        let gathered = media::inbound::gather(
            &self.services,
            platform.as_ref(),
            &batch,
            self.agent.reads_files(),
        )
        .await;
        let render = |lines: &[Vec<String>]| {
            batch
                .iter()
                .zip(lines)
                .map(|(msg, lines)| render_inbound(msg, lines))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let user_text = render(&gathered.lines);
        let history_text = render(&gathered.history);
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
        let mut messages: Vec<ChatMessage> = newest_within(history, HISTORY_TEXT_LIMIT)
            .into_iter()
            .map(|(role, content)| ChatMessage { role, content })
            .collect();
        messages.push(ChatMessage::new("user", user_text.clone()));
        let label = self
            .services
            .platforms
            .get(&key.platform)
            .map(|l| l.registration.label)
            .unwrap_or("a messaging app");
        let prompt = self.services.persona.prompt(&key.platform, label);
        // The name the sender showed with the latest of the messages answered: no store call.
        let chat_name = batch.iter().rev().find_map(|m| m.sender_name.clone());
        let mut system = prompt.system;
        if let Some(name) = &chat_name {
            system.push_str("\n\n");
            system.push_str(&name_line(name));
        }
        let tag = chat_tag(&key.platform, &key.chat);
        let turn_id = format!("{tag}-{}-{}", ids[0], ids[ids.len() - 1]);
        let session_id = match self.services.store.conversation(&key.platform, &key.chat) {
            Ok(conversation) => session_id(&tag, conversation),
            Err(e) => {
                error!("reading the conversation (this turn gets a session of its own): {e}");
                format!("{turn_id}-alone")
            }
        };
        // A turn run again after a crash keeps to the message it was shown in.
        let view = LiveView {
            draft_id: live::draft_id(&turn_id),
            message: batch[0].live_message.clone(),
        };
        let request = AgentRequest {
            platform: key.platform.clone(),
            platform_label: label.to_string(),
            chat: key.chat.clone(),
            turn_id,
            system,
            hint: prompt.hint,
            chat_name,
            session: Session {
                id: session_id,
                key: format!("{}:{}", key.platform, key.chat),
            },
            messages,
            files: gathered.files,
        };
        let started = Instant::now();
        let (outcome, view) = self.ask(key, platform, request, view, ids[0]).await;
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
        let composed = media::outbound::compose(&self.services, platform.as_ref(), &reply).await;
        let mut parts = composed.parts;
        if let (Some(message), Some(first)) = (view.message, parts.first_mut()) {
            first.edit = Some(message);
        }
        let commit = TurnCommit {
            platform: &key.platform,
            chat: &key.chat,
            inbound_ids: &ids,
            user: Some(&history_text),
            assistant: assistant.as_deref(),
            parts: &parts,
            origin: "reply",
            refused: &composed.refused,
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

impl Dispatcher {
    /// Asks the agent for the reply to `request` within the turn's time limit, typing
    /// meanwhile; where the agent streams and the chat can show it, the reply is shown while it
    /// is written. Returns the agent's outcome and the view it was shown in (`view` as given
    /// otherwise). A message posted to show it is recorded on `first_inbound`.
    async fn ask(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        request: AgentRequest,
        view: LiveView,
        first_inbound: i64,
    ) -> (Result<anyhow::Result<String>, Elapsed>, LiveView) {
        let visible = Cell::new(false);
        let typing = keep_typing(platform.as_ref(), &key.chat, &visible);
        let Some(every) = platform.live(&key.chat).filter(|_| self.agent.streams()) else {
            let reply = tokio::time::timeout(self.timeout, self.agent.reply(&request, None));
            return tokio::select! {
                outcome = reply => (outcome, view),
                never = typing => match never {},
            };
        };
        let (live, text) = watch::channel(String::new());
        let reply = async move {
            let outcome =
                tokio::time::timeout(self.timeout, self.agent.reply(&request, Some(&live))).await;
            // The presenter stops once the reply is done.
            drop(live);
            outcome
        };
        let record = |message: &str| {
            if let Some(running) = self.running.borrow_mut().get_mut(key) {
                running.shown_in = Some(message.to_string());
            }
            match self.services.store.set_live_message(first_inbound, message) {
                Ok(()) => true,
                Err(e) => {
                    error!("recording the message that shows the reply: {e}");
                    false
                }
            }
        };
        let presented = live::present(
            platform.as_ref(),
            &key.chat,
            every,
            view,
            text,
            record,
            &visible,
        );
        tokio::select! {
            both = async { tokio::join!(reply, presented) } => both,
            never = typing => match never {},
        }
    }
}

impl chat::Turns for Dispatcher {
    /// Also keeps the message the stopped reply was being shown in, if any: the command's
    /// answer replaces it, so that no half reply is left standing.
    fn cancel(&self, key: &ChatKey) -> Option<Vec<i64>> {
        let running = self.running.borrow_mut().remove(key)?;
        running.task.abort();
        self.stopped_in.replace(running.shown_in);
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

/// The id of a conversation for an agent server that keeps the history itself: the chat's tag,
/// the conversation's row and when it started. A new one after `/new`; never one an older
/// conversation had, even in a home whose database was made anew (its ids start again, its
/// clock does not).
fn session_id(tag: &str, conversation: Conversation) -> String {
    format!("{tag}-{}-{}", conversation.id, conversation.started_at)
}

/// Shows the chat that a reply is being written, for as long as it is awaited and none of
/// it is `visible`.
async fn keep_typing(
    platform: &dyn Platform,
    chat: &str,
    visible: &Cell<bool>,
) -> std::convert::Infallible {
    loop {
        if !visible.get() {
            platform.typing(chat).await;
        }
        actix_rt::time::sleep(platform.typing_every()).await;
    }
}

/// The newest entries of `history` (oldest first) whose text fits in `limit` bytes.
fn newest_within(mut history: Vec<(String, String)>, limit: usize) -> Vec<(String, String)> {
    let mut total = 0;
    let keep = history
        .iter()
        .rev()
        .take_while(|(_, content)| {
            total += content.len();
            total <= limit
        })
        .count();
    history.drain(..history.len() - keep);
    history
}

/// The text the agent sees for one inbound message: its text, then a line for each file.
fn render_inbound(msg: &StoredInbound, lines: &[String]) -> String {
    let mut text = msg.text.trim().to_string();
    for line in lines {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    text
}

#[cfg(test)]
mod tests {
    use platform_api::Attachment;

    use super::*;

    #[test]
    fn history_keeps_the_newest_turns_that_fit() {
        let turn = |role: &str, n: usize| (role.to_string(), "x".repeat(n));
        let history = vec![turn("user", 40), turn("assistant", 30), turn("user", 20)];
        let kept = |limit| {
            newest_within(history.clone(), limit)
                .iter()
                .map(|(_, c)| c.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(1_000), [40, 30, 20]);
        assert_eq!(kept(90), [40, 30, 20]);
        assert_eq!(kept(89), [30, 20]);
        assert_eq!(kept(50), [30, 20]);
        assert_eq!(kept(49), [20]);
        assert_eq!(kept(19), Vec::<usize>::new());
        assert!(newest_within(Vec::new(), 10).is_empty());
    }

    #[test]
    fn a_session_names_the_chat_the_conversation_and_its_start() {
        let started = |id, started_at| Conversation { id, started_at };
        let first = session_id("sms-1a2b", started(1, 1_796_582_098_123));
        assert_eq!(first, "sms-1a2b-1-1796582098123");
        // The next conversation, and the first of a home made anew: neither is the first.
        assert_ne!(session_id("sms-1a2b", started(2, 1_796_582_098_999)), first);
        assert_ne!(session_id("sms-1a2b", started(1, 1_796_600_000_000)), first);
    }

    #[test]
    fn the_agent_sees_a_line_for_each_file_after_the_text() {
        let msg = |text: &str| StoredInbound {
            id: 1,
            platform: "sms".into(),
            chat: "+15550001111".into(),
            sender: "+15550001111".into(),
            text: text.into(),
            attachments: vec![Attachment::new("https://api.twilio.com/m/ME1", None)],
            control: None,
            live_message: None,
            sender_name: None,
        };
        let photo = "[attachment: image-1.jpg, image/jpeg, 340 KB]".to_string();
        let voice = "[voice note] call me".to_string();
        assert_eq!(render_inbound(&msg("  hello \n"), &[]), "hello");
        assert_eq!(
            render_inbound(&msg("look"), std::slice::from_ref(&photo)),
            format!("look\n{photo}")
        );
        assert_eq!(
            render_inbound(&msg(" "), &[photo.clone(), voice.clone()]),
            format!("{photo}\n{voice}")
        );
    }
}
