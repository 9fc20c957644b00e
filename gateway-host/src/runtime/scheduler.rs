//! The [`Scheduler`] runs due jobs inside `hermes gateway`, each with the cron [`Runner`].
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::cron::jobs::from_ms;
use crate::cron::runner::Runner;
use crate::cron::schedule::{Schedule, local_time};
use crate::repeated::Repeated;
use crate::services::Services;

/// How often the scheduler looks for due jobs; jobs added by `hermes cron add` in another
/// process are noticed within this time.
const TICK: Duration = Duration::from_secs(1);
/// How often, with a shared database, runs left by gateways that stopped are looked for.
const SHARED_CHECK: Duration = Duration::from_secs(10);

/// Runs due jobs inside `hermes gateway`.
pub struct Scheduler {
    services: Services,
    runner: Rc<Runner>,
    running: RefCell<HashMap<i64, actix_rt::task::JoinHandle<()>>>,
}

impl Scheduler {
    /// A scheduler running jobs with `runner`.
    pub fn new(services: Services, runner: Rc<Runner>) -> Rc<Self> {
        Rc::new(Scheduler {
            services,
            runner,
            running: RefCell::default(),
        })
    }

    /// Runs due jobs until `shutdown` turns true, then lets running jobs finish for up to
    /// `grace`; runs still going then are recorded as interrupted at the next start.
    pub async fn run(self: Rc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        self.interrupt_unfinished();
        let mut checked = Instant::now();
        let mut failing = Repeated::new("[cron]");
        loop {
            // With a shared database another gateway may die mid-run at any time.
            if self.services.store.is_shared() && checked.elapsed() >= SHARED_CHECK {
                checked = Instant::now();
                self.interrupt_unfinished();
            }
            match self.tick() {
                Ok(()) => failing.ok(),
                Err(e) => {
                    failing.failed(&e);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => break,
            }
        }
        let deadline = Instant::now() + grace;
        while !self.running.borrow().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (_, task) in self.running.borrow_mut().drain() {
            task.abort();
        }
    }

    /// Records the runs that a gateway which stopped left unfinished as interrupted.
    fn interrupt_unfinished(&self) {
        match self.services.store.interrupt_unfinished_runs() {
            Ok(0) => {}
            Ok(n) => warn!("[cron] {n} job run(s) were cut off when a gateway stopped"),
            Err(e) => error!("[cron] {e}"),
        }
    }

    /// Starts every due job once; each due run is claimed in the store first, so that a
    /// job missed while the gateway was down runs once, not once per missed tick.
    fn tick(self: &Rc<Self>) -> anyhow::Result<()> {
        let pass = self.services.metrics.begin_pass("scheduler");
        let store = &self.services.store;
        let zone = self.services.timezone;
        // Due on the database's clock, which every gateway sharing it reads alike.
        let now_ms = store.now();
        for job in store.due_jobs(now_ms)? {
            let Some(due_ms) = job.next_run_at else {
                continue;
            };
            let now = from_ms(now_ms);
            let due = from_ms(due_ms);
            let next = match job.schedule.parse::<Schedule>() {
                Ok(schedule) => schedule.next_run(due, now, zone),
                Err(e) => {
                    error!(
                        "[cron] job {} has an unusable schedule and is stopped: {e}",
                        job.id
                    );
                    None
                }
            };
            let next_ms = next.map(|t| t.timestamp_millis());
            if !store.claim_job_run(job.id, due_ms, next_ms)? {
                continue;
            }
            if self.running.borrow().contains_key(&job.id) {
                warn!(
                    "[cron] job {} is still running from its previous run; this run is skipped",
                    job.id
                );
                continue;
            }
            if now - due > TimeDelta::minutes(1) {
                info!(
                    "[cron] job {} was due at {} ({zone}) while the gateway was not running: running it once now",
                    job.id,
                    local_time(due, zone)
                );
            }
            let this = Rc::clone(self);
            let id = job.id;
            let task = actix_rt::spawn(async move {
                if let Err(e) = this.runner.run(&job, "schedule").await {
                    error!("[cron] job {}: {e:#}", job.id);
                }
                this.running.borrow_mut().remove(&job.id);
            });
            self.running.borrow_mut().insert(id, task);
        }
        let idle = self.running.borrow().is_empty();
        self.services.metrics.end_pass("scheduler", pass, idle);
        Ok(())
    }
}
