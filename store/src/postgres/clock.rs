//! The database server's clock: what the gateways sharing a database measure heartbeats,
//! leases, claims and schedules on, so that one whose own clock is off takes nothing from the
//! others and loses nothing of its own.
//!
//! What decides who holds what (a gateway's staleness, a lease's end) is compared inside the
//! statements, on the server's `clock_timestamp()` ([`db_now!`]). Times a gateway computes
//! itself (when a retry is due, a rate window) are read on [`ServerClock`]: this machine's
//! clock corrected by its offset from the server's, measured at connect and at every
//! heartbeat.
use std::sync::atomic::{AtomicI64, Ordering};

/// SQL for the server's time now, in store time (milliseconds since the epoch). A macro, so
/// that statements stay string literals (`concat!`) and are prepared once.
macro_rules! db_now {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}
pub(crate) use db_now;

/// SQL for the server's time now in microseconds since the epoch: what this gateway's
/// reading of the server's clock is corrected by.
macro_rules! db_now_us {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT"
    };
}
pub(crate) use db_now_us;

/// A query of the server's time now in microseconds since the epoch.
pub(super) const DB_NOW_US: &str = concat!("SELECT ", db_now_us!());

/// This machine's offset from the server's clock.
#[derive(Default)]
pub(crate) struct ServerClock {
    offset_us: AtomicI64,
}

impl ServerClock {
    /// The server's time now, as this machine's clock corrected by the last offset measured.
    pub(crate) fn now_us(&self) -> i64 {
        crate::now_us() + self.offset_us.load(Ordering::Relaxed)
    }

    /// Records the server's time `server_us`, read by a query sent at `sent_us` and answered
    /// at `answered_us` (this machine's clock): the server read it about halfway between.
    pub(crate) fn observe(&self, server_us: i64, sent_us: i64, answered_us: i64) {
        let midpoint = sent_us + (answered_us - sent_us) / 2;
        self.offset_us
            .store(server_us - midpoint, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_taken_at_the_midpoint_of_the_round_trip() {
        let clock = ServerClock::default();
        // The server is 45 s behind; the query took 4 ms.
        clock.observe(
            1_000_000_000 - 45_000_000 + 2_000,
            1_000_000_000,
            1_000_004_000,
        );
        let local = crate::now_us();
        let read = clock.now_us();
        assert!(
            (read - (local - 45_000_000)).abs() < 1_000_000,
            "{read} vs {local}"
        );
    }
}
