//! Scheduled jobs (SPEC section 7): a job has a [`schedule::Schedule`] and either a prompt for
//! the agent or a shell command; its output is delivered through [`crate::outbox::deliver`].
//!
//! [`jobs`] holds the operations shared by `hermes cron` (in the command line) and the `/cron`
//! chat command; the [`runner::Runner`] runs one job, on demand or, inside `hermes gateway`,
//! when the gateway's scheduler finds it due. Jobs and their runs are stored by
//! [`crate::store::Store`].
pub mod jobs;
pub mod runner;
pub mod schedule;
