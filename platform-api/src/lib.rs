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
//!
//! A platform may also submit an [`OperatorGuide`]: which optional settings `hermes gateway
//! setup` asks up front, the steps it prints at the end, and the account checks of
//! `hermes gateway doctor`.
//!
//! ```
//! use platform_api::{registrations, Setting, SettingKind};
//!
//! // Every linked adapter shows up here; the host never names one.
//! for registration in registrations() {
//!     assert!(!registration.name.is_empty());
//! }
//! const TOKEN: Setting = Setting::new("EXAMPLE_TOKEN", "token", "Bot token").secret().required();
//! assert!(TOKEN.secret && TOKEN.required && TOKEN.kind == SettingKind::Text);
//! ```
#![deny(missing_docs)]

mod config;
mod error;
mod message;
pub mod operator;
pub mod phone;
mod platform;
mod registration;
pub mod sandbox;
mod settings;
pub mod stub;
pub mod text;

pub use config::{ConfigSection, ConfigValue, Origin};
pub use error::{ConfigError, SendError};
pub use message::{Attachment, Control, HomeChannel, Inbound, Part, Receipt};
pub use operator::{Check, Checkup, OperatorGuide, Verdict, operator_guide};
pub use platform::{Accepted, AccessPolicy, InboundSink, Platform, SinkError, Unauthorized};
pub use registration::{Registration, registration, registrations};
pub use settings::{Setting, SettingKind};

pub use actix_web;
pub use async_trait::async_trait;
pub use inventory;
