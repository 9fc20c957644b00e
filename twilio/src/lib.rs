//! Twilio for the hermes gateway: what its SMS and WhatsApp platforms share, since both talk to
//! the same account through the same Messages API, webhooks and signatures.
//!
//! - [`account`]: the account's settings (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, …), read
//!   once for both platforms;
//! - [`webhook`] and [`signature`]: the inbound route of a [`webhook::Channel`] (SMS, or
//!   WhatsApp's `whatsapp:` addresses), signed by Twilio with the auth token (HMAC-SHA1) or a
//!   Webhook Shared Key (HMAC-SHA256);
//! - [`status`]: the status-callback route, Twilio's signed delivery reports (`read` included);
//! - [`messages`] and [`error`]: the Messages API client on a [`messages::Line`] (sends,
//!   templates, and look-ups of sends whose outcome is unknown), and Twilio's errors as typed
//!   send errors with what each code means;
//! - [`segments`]: how Twilio counts and bills an SMS's segments (GSM-7 or UCS-2);
//! - [`client`] and [`doctor`]: the account's REST resources (the account, its numbers and their
//!   webhooks, inbound media) and the doctor's account checks;
//! - `emulator` (feature `emulator`): a loopback Twilio that speaks SMS and WhatsApp, for the
//!   sandboxes and the tests.
pub mod account;
pub mod client;
pub mod doctor;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod messages;
pub mod segments;
pub mod signature;
pub mod status;
pub mod webhook;
