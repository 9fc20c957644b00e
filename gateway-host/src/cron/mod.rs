//! Scheduled jobs (SPEC section 7): a job has a [`schedule::Schedule`] and either a prompt for
//! the agent or a shell command; its output is delivered through [`crate::runtime::deliver`].
//!
//! [`jobs`] holds the operations shared by `hermes cron` (in the command line) and [`chat`]
//! (`/cron`); [`crate::runtime::scheduler`] runs one job on demand and due jobs inside
//! `hermes gateway`. Jobs and their runs are stored by [`crate::store::Store`].
pub mod chat;
pub mod jobs;
pub mod schedule;
