//! The outbox path, the one way anything is sent: text is formatted by its platform and
//! stored as parts in the outbox, then the [`sender::Sender`] delivers them in order per chat,
//! with retries and pacing; [`delivery_report`] records what the provider later says became of
//! each part.
//!
//! Replies are queued by the gateway's dispatcher with the turn that wrote them; cron output
//! and `hermes send` go through [`deliver`] (targets, queueing, waiting for the sends and
//! reporting them), inside the gateway or from the command line alike.
pub mod deliver;
pub mod delivery_report;
pub mod sender;
