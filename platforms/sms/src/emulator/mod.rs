//! The loopback Twilio emulator, which speaks SMS and WhatsApp: the Twilio crate's
//! ([`hermes_twilio::emulator`]), since both platforms talk to the same Twilio API.
pub use hermes_twilio::emulator::*;
