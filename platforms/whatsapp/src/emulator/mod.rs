//! The loopback Twilio emulator, which speaks SMS and WhatsApp: it is the Twilio crate's
//! ([`hermes_twilio::emulator`]), since both platforms talk to the same Twilio API. Start it,
//! then [`Emulator::enable_whatsapp`] names the WhatsApp sender and where its webhooks go;
//! [`Emulator::whatsapp_text`] writes as a WhatsApp user (opening their 24-hour window),
//! [`Emulator::expire_window`] closes it, [`Emulator::add_template`] approves a template.
pub use hermes_twilio::emulator::*;
