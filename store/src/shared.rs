//! Limits and settings every gateway on a database must see alike: a sending number's pace,
//! each sender's rate-limit window and the home channels set by `/sethome`. One gateway alone
//! (SQLite) keeps them in its memory; gateways sharing PostgreSQL keep them there, so that a
//! number's budget is shared rather than multiplied by the number of gateways. The position of
//! a polled platform's receive loop is kept on disk by both.
use super::{Millis, Result};

/// What counting one message against a sender's rate window decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateHit {
    /// The message is within the limit.
    pub allowed: bool,
    /// It is the first over the limit in this window: the sender is told, once.
    pub notice: bool,
}

/// State shared by the gateways on a database.
pub trait SharedStore {
    /// Reserves `cost_us` microseconds of the sending budget named `key` (a platform's
    /// number) at `now_us`; returns how many microseconds to wait before using it.
    fn reserve_pace(&self, key: &str, cost_us: i64, now_us: i64) -> Result<i64>;

    /// Counts one message of `key` (a platform's sender) in its window of `window_ms`
    /// starting at its first message, against `limit` messages per window.
    fn rate_hit(&self, key: &str, window_ms: Millis, limit: u32, now: Millis) -> Result<RateHit>;

    /// Makes `chat` the home channel of `platform`, named `name`, for every gateway.
    fn set_home_override(&self, platform: &str, chat: &str, name: &str) -> Result<()>;

    /// The home channel set by `/sethome` for `platform`, as `(chat, name)`.
    fn home_override(&self, platform: &str) -> Result<Option<(String, String)>>;

    /// The saved position of `platform`'s receive loop (Telegram's update offset). Unlike the
    /// rest of this contract it outlives the process on SQLite too: a restart resumes there.
    fn receive_cursor(&self, platform: &str) -> Result<Option<String>>;

    /// Saves the position of `platform`'s receive loop.
    fn save_receive_cursor(&self, platform: &str, position: &str, now: Millis) -> Result<()>;
}

/// The shared state of a gateway alone on its database, in memory.
#[derive(Default)]
pub(crate) struct LocalShared {
    pace: std::collections::HashMap<String, i64>,
    windows: std::collections::HashMap<String, (Millis, u32, bool)>,
    homes: std::collections::HashMap<String, (String, String)>,
}

impl LocalShared {
    pub(crate) fn reserve_pace(&mut self, key: &str, cost_us: i64, now_us: i64) -> i64 {
        let slot = self.pace.entry(key.to_string()).or_insert(now_us);
        let start = (*slot).max(now_us);
        *slot = start + cost_us;
        start - now_us
    }

    pub(crate) fn rate_hit(
        &mut self,
        key: &str,
        window_ms: Millis,
        limit: u32,
        now: Millis,
    ) -> RateHit {
        if self.windows.len() > 10_000 {
            self.windows
                .retain(|_, (start, _, _)| *start > now - window_ms);
        }
        let window = self
            .windows
            .entry(key.to_string())
            .or_insert((now, 0, false));
        if window.0 <= now - window_ms {
            *window = (now, 0, false);
        }
        window.1 += 1;
        let allowed = window.1 <= limit;
        let notice = !allowed && !std::mem::replace(&mut window.2, true);
        RateHit { allowed, notice }
    }

    pub(crate) fn set_home_override(&mut self, platform: &str, chat: &str, name: &str) {
        self.homes
            .insert(platform.to_string(), (chat.to_string(), name.to_string()));
    }

    pub(crate) fn home_override(&self, platform: &str) -> Option<(String, String)> {
        self.homes.get(platform).cloned()
    }
}
