//! An error a loop meets on every pass while something it needs is away (the database, most
//! often): logged when it starts and when it changes, then once a minute with how often it
//! came back, and its end, rather than once a second for as long as it lasts.
use std::time::{Duration, Instant};

use tracing::{error, info};

/// How often an error that keeps coming back is logged again.
const AGAIN_AFTER: Duration = Duration::from_secs(60);

/// One loop's repeated error.
pub struct Repeated {
    /// What fails, as the log line starts (`dispatcher`, `outbox`, `[cron]`).
    what: &'static str,
    /// The error going on: its text, when it was last logged, and how often it came back since.
    current: Option<(String, Instant, u32)>,
}

impl Repeated {
    /// Nothing failing yet.
    pub fn new(what: &'static str) -> Self {
        Repeated {
            what,
            current: None,
        }
    }

    /// A pass failed with `e`; returns whether it was logged.
    pub fn failed(&mut self, e: &anyhow::Error) -> bool {
        let text = format!("{e:#}");
        match &mut self.current {
            Some((same, logged, again)) if *same == text && logged.elapsed() < AGAIN_AFTER => {
                *again += 1;
                false
            }
            Some((same, logged, again)) if *same == text => {
                error!(
                    "{}: {text} (again {} time(s) in the last {}s)",
                    self.what,
                    *again + 1,
                    logged.elapsed().as_secs()
                );
                *logged = Instant::now();
                *again = 0;
                true
            }
            _ => {
                error!("{}: {text}", self.what);
                self.current = Some((text, Instant::now(), 0));
                true
            }
        }
    }

    /// A pass succeeded: an error going on has ended.
    pub fn ok(&mut self) {
        if self.current.take().is_some() {
            info!("{}: working again", self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_logged_when_it_starts_changes_and_ends_not_at_every_pass() {
        let mut repeated = Repeated::new("outbox");
        let away = anyhow::anyhow!("database: connection refused");
        assert!(repeated.failed(&away));
        assert!(!repeated.failed(&away));
        assert!(!repeated.failed(&away));
        assert!(repeated.failed(&anyhow::anyhow!("database: password authentication failed")));
        repeated.ok();
        assert!(repeated.current.is_none());
        assert!(repeated.failed(&away), "a new spell is logged again");
    }
}
