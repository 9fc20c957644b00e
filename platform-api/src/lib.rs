//! The contract between the hermes gateway host and its platform adapters.
//!
//! A platform adapter is a crate that implements [`Platform`] and registers a [`Registration`]
//! with [`inventory::submit!`]. The host discovers every registration at start-up
//! ([`registrations`]), reads the settings each one declares from the unified configuration, and
//! calls its constructor. From then on the host only speaks through the trait:
//!
//! - **receive**: [`Platform::routes`] contributes actix-web routes on the address the platform
//!   asks for ([`Platform::listen_addr`]); handlers turn platform traffic into [`Inbound`] messages
//!   and hand them to the host's [`InboundSink`], which stores them before the platform answers.
//! - **format**: [`Platform::format`] turns agent Markdown into wire-ready [`Part`]s within the
//!   platform's limits ([`text`] has the shared Markdown and splitting helpers).
//! - **send**: [`Platform::send`] delivers one part to one chat; a [`SendError`] says whether a
//!   retry can help.
//! - **home_channel**: [`Platform::home_channel`] names where cron output goes.
//! - **live** (optional): [`Platform::live`] and [`Platform::show_live`] show a reply while the
//!   agent writes it, where the provider can (a draft, or a message edited as it grows).
//! - **prompt hint**: [`Registration::prompt_hint`] tells the agent how to write for the
//!   platform ([`prompt`]).
//!
//! A platform may also submit an [`OperatorGuide`]: which optional settings `hermes gateway
//! setup` asks up front, the steps it prints at the end, and the account checks of
//! `hermes gateway doctor`.
//!
//! A whole platform, registered and then used as the host uses it (`ADDING_A_PLATFORM.md` at
//! the repository root walks through a real one, `platforms/webhook`):
//!
//! ```
//! use std::sync::Arc;
//!
//! use platform_api::{
//!     AccessPolicy, ConfigError, ConfigSection, HomeChannel, Part, Platform, Receipt,
//!     Registration, SendError, Setting, async_trait, inventory, prompt_hint, registration, stub,
//!     text,
//! };
//!
//! const TOKEN: Setting = Setting::new("PAGER_TOKEN", "token", "API token").required().secret();
//! const HOME: Setting = Setting::new("PAGER_HOME_CHANNEL", "home_channel", "Pager for cron output");
//! const HINT: Setting = prompt_hint!("PAGER", "Pagers show 160 characters: one short line.");
//!
//! struct Pager {
//!     access: AccessPolicy,
//!     home: Option<String>,
//! }
//!
//! #[async_trait(?Send)]
//! impl Platform for Pager {
//!     fn name(&self) -> &'static str {
//!         "pager"
//!     }
//!     fn access(&self) -> &AccessPolicy {
//!         &self.access
//!     }
//!     fn format(&self, markdown: &str) -> Vec<Part> {
//!         format(markdown)
//!     }
//!     async fn send(&self, chat: &str, part: &Part) -> Result<Receipt, SendError> {
//!         // A real platform calls its provider here and says whether a failure is retryable.
//!         let provider_id = format!("{chat}-{}", part.body.len());
//!         Ok(Receipt { provider_id, segments: None })
//!     }
//!     fn home_channel(&self) -> Option<HomeChannel> {
//!         let chat = self.home.clone()?;
//!         Some(HomeChannel { chat, name: "Home".to_string() })
//!     }
//! }
//!
//! /// Pagers show 160 characters of plain text.
//! fn format(markdown: &str) -> Vec<Part> {
//!     let plain = text::markdown_to_plain(markdown);
//!     text::split_numbered(&plain, 160).into_iter().map(Part::plain).collect()
//! }
//!
//! fn enabled(section: &ConfigSection) -> Result<(), String> {
//!     section.text(TOKEN.env).map(|_| ()).ok_or_else(|| "PAGER_TOKEN not set".to_string())
//! }
//!
//! fn build(section: &ConfigSection) -> Result<Arc<dyn Platform>, ConfigError> {
//!     section.required(&TOKEN)?;
//!     let home = section.text(HOME.env).map(str::to_string);
//!     Ok(Arc::new(Pager { access: AccessPolicy::default(), home }))
//! }
//!
//! inventory::submit! {
//!     Registration {
//!         name: "pager",
//!         label: "Pager",
//!         stub: false,
//!         settings: &[TOKEN, HOME, HINT],
//!         home_channel_setting: Some(HOME.env),
//!         prompt_hint: Some(HINT),
//!         enabled,
//!         format,
//!         format_media: None,
//!         parse_chat: stub::parse_chat,
//!         build,
//!     }
//! }
//!
//! // The host finds the platform by name and builds it from the unified configuration.
//! let pager = registration("pager").expect("linked, so registered");
//! let section = ConfigSection::from_pairs([("PAGER_TOKEN", "t0k3n"), ("PAGER_HOME_CHANNEL", "ops")]);
//! assert_eq!((pager.enabled)(&section), Ok(()));
//! let platform = (pager.build)(&section).expect("valid settings");
//! assert_eq!(platform.home_channel().map(|home| home.chat).as_deref(), Some("ops"));
//! assert_eq!(platform.format("**Paged.**")[0].body, "Paged.");
//! // What the agent is told about writing for it, unless PAGER_PROMPT_HINT says otherwise.
//! assert_eq!(pager.hint(&section).as_deref(), HINT.default);
//! ```
#![deny(missing_docs)]

pub mod access;
pub mod body;
mod config;
mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod loopback;
pub mod media;
mod message;
pub mod operator;
mod origin;
pub mod phone;
mod platform;
pub mod prompt;
mod redact;
mod registration;
pub mod route;
pub mod sandbox;
mod settings;
pub mod stub;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;

pub use access::AccessSettings;
pub use config::{ConfigSection, ConfigValue};
pub use error::{ConfigError, SendError};
pub use media::{FetchError, Fetched, Formatted, PartMedia, Refused, SendAs};
pub use message::{
    Attachment, Control, DeliveryStatus, HomeChannel, Inbound, LiveView, Part, Receipt,
};
pub use operator::{Check, Checkup, OperatorGuide, Verdict, operator_guide};
pub use origin::Origin;
pub use platform::{
    Accepted, AccessPolicy, Advice, InboundSink, Lookup, Platform, SinkError, Unauthorized,
};
pub use redact::{redact_database_url, redact_url};
pub use registration::{Registration, registration, registrations};
pub use settings::{Setting, SettingKind};

pub use actix_web;
pub use async_trait::async_trait;
pub use inventory;
