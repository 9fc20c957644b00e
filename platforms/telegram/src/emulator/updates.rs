//! `getUpdates`: a real long poll. `offset` confirms earlier updates, a newer `getUpdates` ends a
//! waiting one with 409, and none works while a webhook is set.
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};

use super::{Poll, Shared, State, error, int_param, ok};
use crate::types::Update;

/// Longest long poll honoured, in seconds.
const MAX_POLL_SECS: u64 = 50;

/// The updates a poll with `offset` gets now, up to `limit`.
fn ready(state: &State, offset: Option<i64>, limit: usize) -> Vec<Update> {
    state
        .updates
        .iter()
        .filter(|u| offset.is_none_or(|o| o < 0 || u.update_id >= o))
        .take(limit)
        .cloned()
        .collect()
}

/// Forgets the updates an offset confirms: those before it, or all but the last `-offset`.
fn confirm(state: &mut State, offset: Option<i64>) {
    match offset {
        None => {}
        Some(offset) if offset < 0 => {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while state.updates.len() > keep {
                state.updates.pop_front();
            }
        }
        Some(offset) => state.updates.retain(|u| u.update_id >= offset),
    }
}

pub(super) async fn get_updates(
    shared: &web::Data<Shared>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let offset = int_param(params, "offset");
    let timeout = u64::try_from(int_param(params, "timeout").unwrap_or(0))
        .unwrap_or(0)
        .min(MAX_POLL_SECS);
    let limit =
        usize::try_from(int_param(params, "limit").unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let started = shared.elapsed();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let generation = {
        let mut state = shared.lock();
        state.poll_generation += 1;
        state.poll_generation
    };
    // A poll that is waiting learns that this one supersedes it.
    shared.changed.notify_waiters();
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut state = shared.lock();
            let answer = if state.hook.is_some() {
                Some(Err(
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                ))
            } else if state.poll_generation != generation {
                Some(Err(
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                ))
            } else {
                confirm(&mut state, offset);
                let updates = ready(&state, offset, limit);
                (!updates.is_empty() || Instant::now() >= deadline).then_some(Ok(updates))
            };
            if let Some(answer) = answer {
                let (status, update_ids) = match &answer {
                    Ok(updates) => (200, updates.iter().map(|u| u.update_id).collect()),
                    Err(_) => (409, Vec::new()),
                };
                state.polls.push(Poll {
                    offset,
                    timeout,
                    status,
                    update_ids,
                    started,
                    answered: shared.elapsed(),
                });
                return match answer {
                    Ok(updates) => ok(updates),
                    Err(description) => error(409, description),
                };
            }
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        let _ = actix_web::rt::time::timeout(wait, notified).await;
    }
}
