//! The conformance kit: checks any adapter's tests run against the contract of this crate.
//!
//! Enabled by the `testkit` feature, as a dev-dependency of the adapter:
//!
//! ```toml
//! [dev-dependencies]
//! platform-api = { workspace = true, features = ["testkit"] }
//! ```
//!
//! Each `check_*` function panics with every problem it found, so a test is one call:
//!
//! - [`check_registration`]: names, settings (unique, well-formed, secrets marked, defaults
//!   valid), the home-channel setting, and a constructor that needs exactly the required
//!   settings and names the one that is missing;
//! - [`check_format`]: over a [`corpus`] of realistic replies, no part over the limit, no
//!   empty part, nothing lost or added, no word, emoji or link URL cut in two;
//! - [`check_send_errors`]: 429 and 5xx are retried (honouring `Retry-After`), other 4xx are
//!   permanent, whatever the body;
//! - [`check_home_channel`]: the home channel follows its setting;
//! - [`check_stub`]: a stub refuses to send, permanently.
//!
//! Advice that is not a contract (a variable without the platform's prefix, say) is printed as
//! a `warning:` line on stderr, which the test runner shows for failing tests or with
//! `--nocapture`.
//!
//! ```
//! use platform_api::Part;
//! use platform_api::testkit::{Rendering, check_format};
//!
//! fn format(markdown: &str) -> Vec<Part> {
//!     platform_api::stub::format(markdown, 500)
//! }
//! check_format(format, 500, Rendering::Markdown);
//! ```
mod ci;
mod corpus;
mod format;
mod home;
mod registration;
mod send;

use std::fmt::Write as _;

pub use ci::in_ci;
pub use corpus::{Reply, corpus};
pub use format::{Rendering, check_format, check_format_of};
pub use home::check_home_channel;
pub use registration::{check_registration, sample_section, sample_value};
pub use send::{Answer, Expected, check_send_errors, check_stub};

/// Panics with a report of `problems` when there are any.
fn report(check: &str, subject: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let mut message = format!("{check}({subject}): {} problem(s)", problems.len());
    for problem in problems {
        let _ = write!(message, "\n  - {problem}");
    }
    panic!("{message}");
}

/// Prints advice that is not a contract.
fn warn(check: &str, subject: &str, warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {check}({subject}): {warning}");
    }
}

#[cfg(test)]
mod tests;
