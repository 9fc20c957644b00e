//! Access control, before a message is answered: carrier keywords (opt-out, opt-in, help),
//! the allowlist and pairing, opt-out suppression, and the per-sender rate limit.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use platform_api::{Control, Platform, Unauthorized};
use rand::Rng;
use tracing::{info, warn};

use super::Dispatcher;
use crate::chat_key::ChatKey;
use crate::store::{PairingRequest, StoredInbound};

/// How long a pairing code is valid.
const PAIRING_VALID_MS: i64 = 3_600_000;
/// Codes a platform issues per hour at most, whoever asks.
const PAIRING_CODES_PER_HOUR: i64 = 20;
/// The rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// What a sender over the rate limit is told, once per window.
pub const RATE_NOTICE: &str =
    "You're sending messages faster than I can answer. Please wait a minute before sending more.";

/// A one-time code without look-alike characters (no 0/O, 1/I/L).
fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Dispatcher {
    /// Whether a message goes on to be answered: a carrier keyword is acted on and recorded; a
    /// sender neither allowed nor paired is refused (and offered a pairing code where the
    /// platform pairs); a chat that opted out stays so unless writing opts it back in.
    /// `approved` keeps the pairing look-ups of one pass over a chat.
    pub(super) fn screen(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
        approved: &mut HashMap<String, bool>,
    ) -> anyhow::Result<bool> {
        let store = &self.services.store;
        let who = || platform.redact(&msg.sender);
        if let Some(control) = msg.control {
            self.control(platform, msg, control)?;
            return Ok(false);
        }
        let allowed = platform.access().allows(&msg.sender)
            || match approved.get(&msg.sender) {
                Some(&known) => known,
                None => {
                    let known = store.is_approved(&msg.platform, &msg.sender)?;
                    approved.insert(msg.sender.clone(), known);
                    known
                }
            };
        if !allowed {
            info!(
                "[{}] message from {} not processed: sender is not allowed (deny by default)",
                msg.platform,
                who()
            );
            self.services.metrics.inc(
                "hermes_inbound_rejected_total",
                &[("platform", &msg.platform), ("reason", "unauthorized")],
            );
            if platform.access().unauthorized == Unauthorized::Pair {
                self.offer_pairing(key, platform, msg)?;
            }
            self.defer_mark(msg.id, "unauthorized");
            return Ok(false);
        }
        if store.is_suppressed(&msg.platform, &msg.chat)? {
            if !platform.writing_opts_back_in() {
                info!(
                    "[{}] message from {} not processed: the chat has opted out (send START to opt back in)",
                    msg.platform,
                    who()
                );
                self.services.metrics.inc(
                    "hermes_inbound_rejected_total",
                    &[("platform", &msg.platform), ("reason", "opted-out")],
                );
                self.defer_mark(msg.id, "suppressed");
                return Ok(false);
            }
            store.unsuppress(&msg.platform, &msg.chat)?;
            info!(
                "[{}] {} writes again after refusing messages: messages to this chat resume",
                msg.platform,
                who()
            );
        }
        Ok(true)
    }

    /// Gives an unknown sender a one-time pairing code for the owner to approve.
    fn offer_pairing(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
    ) -> anyhow::Result<()> {
        let code = pairing_code();
        let outcome = self.services.store.request_pairing(
            &msg.platform,
            &msg.sender,
            &code,
            self.services.store.now(),
            PAIRING_VALID_MS,
            PAIRING_CODES_PER_HOUR,
        )?;
        let who = platform.redact(&msg.sender);
        match outcome {
            PairingRequest::Issued(code) => {
                info!(
                    "[{}] pairing code issued to {who}; approve with `hermes pairing approve {} CODE`",
                    msg.platform, msg.platform
                );
                let text = format!(
                    "This number is not set up to chat yet. Ask the owner to run: hermes pairing approve {} {code} (valid for 1 hour).",
                    msg.platform
                );
                self.reply_now(key, platform, &[], &text, None)
            }
            PairingRequest::AlreadyIssued => Ok(()),
            PairingRequest::Limited => {
                warn!(
                    "[{}] pairing code for {who} not issued: too many codes in the last hour",
                    msg.platform
                );
                Ok(())
            }
        }
    }

    /// Applies the sender's rate limit; a message over it is recorded but gets no turn, and the
    /// sender one notice per window.
    pub(super) fn admit(
        &self,
        key: &ChatKey,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
    ) -> anyhow::Result<bool> {
        let Some(limit) = platform.access().rate_limit_per_minute else {
            return Ok(true);
        };
        // The window is the store's: gateways sharing a database count a sender together.
        let window = format!("{}\u{1f}{}", msg.platform, msg.sender);
        let hit = self.services.store.rate_hit(
            &window,
            RATE_WINDOW.as_millis() as i64,
            limit,
            self.services.store.now(),
        )?;
        if hit.allowed {
            return Ok(true);
        }
        let notice = hit.notice;
        info!(
            "[{}] message from {} over the rate limit: recorded, not answered",
            msg.platform,
            platform.redact(&msg.sender)
        );
        self.services.metrics.inc(
            "hermes_inbound_rejected_total",
            &[("platform", &msg.platform), ("reason", "rate-limited")],
        );
        self.defer_mark(msg.id, "rate-limited");
        if notice {
            self.reply_now(key, platform, &[], RATE_NOTICE, None)?;
        }
        Ok(false)
    }

    /// Acts on a carrier keyword; the carrier itself answers the sender.
    fn control(
        &self,
        platform: &Arc<dyn Platform>,
        msg: &StoredInbound,
        control: Control,
    ) -> anyhow::Result<()> {
        let store = &self.services.store;
        let who = platform.redact(&msg.sender);
        match control {
            Control::OptOut => {
                store.suppress(&msg.platform, &msg.chat, "opt-out keyword")?;
                info!(
                    "[{}] {who} opted out: nothing more will be sent to this chat until it opts back in",
                    msg.platform
                );
            }
            Control::OptIn => {
                store.unsuppress(&msg.platform, &msg.chat)?;
                info!("[{}] {who} opted back in", msg.platform);
            }
            Control::Help => info!(
                "[{}] {who} asked for help (answered by the carrier)",
                msg.platform
            ),
        }
        self.defer_mark(msg.id, "control");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_codes_have_no_look_alike_characters() {
        for _ in 0..200 {
            let code = pairing_code();
            assert_eq!(code.len(), 8, "{code}");
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
                "{code}"
            );
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        }
    }
}
