//! Scheduled jobs (SPEC section 7): a job has a [`schedule::Schedule`] and either a prompt for
//! the agent or a shell command; its output is delivered through [`crate::deliver`].
//!
//! [`jobs`] holds the operations shared by [`cli`] (`hermes cron`) and [`chat`] (`/cron`);
//! [`scheduler`] runs one job on demand and due jobs inside `hermes gateway`. Jobs and their
//! runs are stored by [`crate::store::Store`].
pub mod chat;
pub mod cli;
pub mod jobs;
pub mod schedule;
pub mod scheduler;
