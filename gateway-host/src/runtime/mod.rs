//! What runs inside `hermes gateway`: build the enabled platforms, listen, dispatch, send,
//! until a signal.
//!
//! A platform's route ([`server`]) or receive loop ([`receivers`], for platforms that are
//! polled rather than posted to) hands a message to the [`ingress::Ingress`], which makes it
//! durable and stores it; the [`dispatcher::Dispatcher`] answers it and queues the reply in the
//! outbox, whose [`Sender`] delivers the parts ([`crate::outbox`]). The
//! [`scheduler::Scheduler`] runs due jobs with the cron [`Runner`], whose output takes the same
//! outbox path. With a shared database the [`heartbeat`] tells the other gateways this one is
//! alive. [`run_until`] wires these together and drains them in order on shutdown.
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use hermes_config::Config;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cron::runner::Runner;
use crate::outbox::sender::Sender;
use crate::services::{Services, build_platforms};
use crate::settings::{self, HOST};

pub mod dispatcher;
pub mod heartbeat;
pub mod ingress;
pub mod receivers;
pub mod scheduler;
pub mod server;

use dispatcher::{Dispatcher, Limits};
use ingress::Ingress;
use scheduler::Scheduler;

/// How long running turns may take to finish after a shutdown signal.
const TURN_GRACE: Duration = Duration::from_secs(10);
/// How long queued parts may take to go out after a shutdown signal.
const SEND_GRACE: Duration = Duration::from_secs(10);

async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received: shutting down"),
    }
}

/// Runs the gateway until SIGINT/SIGTERM; fails when no platform could start.
pub async fn run(config: Config) -> anyhow::Result<()> {
    run_until(config, signal()).await
}

/// Runs the gateway until `shutdown` completes, then drains and returns; fails when no
/// platform could start.
pub async fn run_until(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let host = config.section(HOST);
    let (agent, timeout) = crate::agent::from_config(&host)?;
    let max_turns = host
        .number(settings::MAX_CONCURRENT_TURNS.env)?
        .unwrap_or(8) as usize;
    let min_free_mb = host.number(settings::MIN_FREE_DISK_MB.env)?.unwrap_or(100);
    if std::env::var_os("HERMES_MAX_PENDING").is_some() {
        warn!(
            "HERMES_MAX_PENDING is no longer used: a backlog never refuses a message (it waits on disk); HERMES_MIN_FREE_DISK_MB is the only limit"
        );
    }

    let mut services = Services::from_config(&config, build_platforms(&config))?;
    // Alive before it holds anything: the other gateways take over from a silent one.
    let heartbeat = heartbeat::Heartbeat::start(&services.store);
    let ingress = Arc::new(Ingress::open(services.clone(), min_free_mb)?);
    let (listeners, failed) = server::bind_all(
        &services.platforms,
        ingress.clone(),
        services.metrics.clone(),
        crate::media::serve::MediaRoute::new(services.store.clone()),
    );
    for name in failed {
        services.platforms.remove(&name);
    }
    if services.platforms.is_empty() {
        bail!(
            "no platform is running: see the messages above, and `hermes platforms` for what is enabled"
        );
    }
    let receivers = receivers::start(&services.platforms, ingress.clone(), &services.store);
    let names: Vec<&str> = services.platforms.keys().map(String::as_str).collect();
    info!("gateway running: {}", names.join(", "));

    let (stop_turns, turns_rx) = watch::channel(false);
    let (stop_sends, sends_rx) = watch::channel(false);
    let limits = Limits {
        timeout,
        max_turns,
        max_outbox: host.number(settings::MAX_OUTBOX.env)?.unwrap_or(5_000) as usize,
    };
    let dispatcher = Dispatcher::new(services.clone(), ingress.clone(), agent, limits);
    let dispatching = actix_rt::spawn(dispatcher.run(turns_rx, TURN_GRACE));
    let sender = Sender::new(services.clone());
    let sending = actix_rt::spawn(sender.run(sends_rx, SEND_GRACE));
    let (stop_jobs, jobs_rx) = watch::channel(false);
    let runner = Runner::from_config(&config, services.clone())?;
    let scheduler = Scheduler::new(services.clone(), runner);
    let scheduling = actix_rt::spawn(scheduler.run(jobs_rx, TURN_GRACE));
    let tidying = actix_rt::spawn(crate::media::keep_tidy(services.clone()));

    shutdown.await;
    tidying.abort();
    for listener in &listeners {
        listener.stop().await;
    }
    for receiver in receivers {
        receiver.abort();
    }
    // Nothing is appended any more: what the journal holds goes into the database.
    ingress.stop();
    let _ = stop_jobs.send(true);
    let _ = stop_turns.send(true);
    let _ = scheduling.await;
    let _ = dispatching.await;
    let _ = stop_sends.send(true);
    let _ = sending.await;
    if let Some(heartbeat) = heartbeat {
        heartbeat.stop();
    }
    info!("gateway stopped");
    Ok(())
}
