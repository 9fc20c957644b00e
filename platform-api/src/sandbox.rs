//! Local stand-ins for a platform's provider, for `hermes gateway --sandbox`: the whole loop on
//! one machine with no accounts, the terminal acting as the user's phone.
//!
//! A platform that can emulate its provider submits a [`SandboxProvider`] with
//! [`inventory::submit!`]. The host picks a port, starts the sandbox, overlays its settings on
//! the configuration, runs the gateway, turns typed lines into [`Sandbox::send_as_user`] and
//! prints every [`SandboxReply`].
use std::net::SocketAddr;

/// A message the platform delivered to the sandbox user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxReply {
    /// Who it went to.
    pub chat: String,
    /// Its text.
    pub body: String,
    /// Billing encoding, where that matters (`GSM-7`, `UCS-2`).
    pub encoding: Option<String>,
    /// Billed units (SMS segments).
    pub segments: u32,
    /// Files that came with it, as the provider received them.
    pub media: Vec<SandboxFile>,
}

/// A file that travelled through the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxFile {
    /// Its file name.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What became of a message the platform sent to the sandbox user, as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxStatus {
    /// The message as [`SandboxReply`] described it.
    pub reply: SandboxReply,
    /// The provider's status word (`sent`, `delivered`, `undelivered`, `failed`, …).
    pub status: String,
    /// The provider's error code, when it failed.
    pub error_code: Option<i64>,
}

/// A running stand-in for a provider.
pub trait Sandbox: Send + Sync {
    /// Settings (variable, value) that point the platform at the stand-in; they override the
    /// configuration.
    fn settings(&self) -> Vec<(String, String)>;
    /// The chat id of the sandbox user (for SMS, their phone number).
    fn user(&self) -> String;
    /// The platform's own address as the user sees it (for SMS, the number they text).
    fn address(&self) -> String;
    /// Delivers a message typed by the user to the gateway's listener at `gateway`, exactly as
    /// the provider would (signed, encoded); blocks until the gateway answered.
    fn send_as_user(&self, gateway: SocketAddr, text: &str) -> Result<(), String>;
    /// Delivers a file from the user (`/attach PATH` in the sandbox) with `caption` as its
    /// text, exactly as the provider would: the gateway then fetches it from the stand-in. A
    /// stand-in without files says so.
    fn send_file_as_user(
        &self,
        gateway: SocketAddr,
        file: &SandboxFile,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<(), String> {
        let _ = (gateway, file, bytes, caption);
        Err("this sandbox cannot send files".to_string())
    }
    /// Whether the gateway fetches from the stand-in (long polling, a WebSocket) rather than
    /// listening for it: the host then has no listener to wait for before the user types.
    fn polled(&self) -> bool {
        false
    }
    /// Calls `f` for every message the platform sends.
    fn on_reply(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>);
    /// Calls `f` each time the reply being written is shown again, grown (a Telegram draft
    /// updated, a Discord message edited); a stand-in whose provider shows only finished
    /// replies never calls it.
    fn on_update(&self, f: Box<dyn Fn(SandboxReply) + Send + Sync>) {
        drop(f);
    }
    /// Calls `f` each time the provider reports on a message it took; a stand-in without
    /// delivery reports never calls it.
    fn on_status(&self, f: Box<dyn Fn(SandboxStatus) + Send + Sync>) {
        drop(f);
    }
}

/// A platform's way to start its sandbox.
pub struct SandboxProvider {
    /// Name of the platform, as in its registration.
    pub platform: &'static str,
    /// Starts the stand-in; the gateway's listener for this platform will be on `port`.
    pub start: fn(port: u16) -> Result<Box<dyn Sandbox>, String>,
}

inventory::collect!(SandboxProvider);

/// Every platform that can run in a sandbox, sorted by name.
pub fn sandbox_providers() -> Vec<&'static SandboxProvider> {
    let mut all: Vec<_> = inventory::iter::<SandboxProvider>.into_iter().collect();
    all.sort_by_key(|p| p.platform);
    all
}
