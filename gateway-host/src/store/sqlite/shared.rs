//! One gateway per SQLite database: what gateways would share lives in its memory.
use super::SqliteStore;
use crate::store::{Millis, RateHit, Result, SharedStore};

impl SharedStore for SqliteStore {
    fn reserve_pace(&self, key: &str, cost_us: i64, now_us: i64) -> Result<i64> {
        Ok(self.local().reserve_pace(key, cost_us, now_us))
    }

    fn rate_hit(&self, key: &str, window_ms: Millis, limit: u32, now: Millis) -> Result<RateHit> {
        Ok(self.local().rate_hit(key, window_ms, limit, now))
    }

    fn set_home_override(&self, platform: &str, chat: &str, name: &str) -> Result<()> {
        self.local().set_home_override(platform, chat, name);
        Ok(())
    }

    fn home_override(&self, platform: &str) -> Result<Option<(String, String)>> {
        Ok(self.local().home_override(platform))
    }
}
