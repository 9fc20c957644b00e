//! A platform that is registered and configurable but cannot deliver yet.
//!
//! Adapters in progress (Telegram, Discord) use it so that their settings, formatter limits and
//! home channel work everywhere in the host before their transport exists.
use std::collections::HashSet;

use async_trait::async_trait;

use crate::config::ConfigSection;
use crate::error::{ConfigError, SendError};
use crate::message::{HomeChannel, Part, Receipt};
use crate::platform::{AccessPolicy, Platform};
use crate::text;

/// Splits Markdown into numbered messages of at most `limit` characters, kept as Markdown.
pub fn format(markdown: &str, limit: usize) -> Vec<Part> {
    text::split_numbered(markdown.trim(), limit)
        .into_iter()
        .map(Part::plain)
        .collect()
}

/// A chat id as typed, trimmed; empty is an error.
pub fn parse_chat(chat: &str) -> Result<String, String> {
    let chat = chat.trim();
    if chat.is_empty() {
        Err("empty chat id".to_string())
    } else {
        Ok(chat.to_string())
    }
}

/// A stub platform: formats within its limit, knows its home channel, refuses to send.
pub struct Stub {
    name: &'static str,
    limit: usize,
    access: AccessPolicy,
    home: Option<HomeChannel>,
}

impl Stub {
    /// Builds a stub from its allowlist and home-channel variables.
    pub fn from_config(
        name: &'static str,
        limit: usize,
        section: &ConfigSection,
        allowed_users: &str,
        home_channel: &str,
        home_channel_name: &str,
    ) -> Result<Self, ConfigError> {
        let allowed: HashSet<String> = section.list(allowed_users).into_iter().collect();
        let home = section.text(home_channel).map(|chat| HomeChannel {
            chat: chat.to_string(),
            name: section
                .text(home_channel_name)
                .unwrap_or("Home")
                .to_string(),
        });
        Ok(Stub {
            name,
            limit,
            access: AccessPolicy {
                allowed,
                ..AccessPolicy::default()
            },
            home,
        })
    }
}

#[async_trait(?Send)]
impl Platform for Stub {
    fn name(&self) -> &'static str {
        self.name
    }

    fn access(&self) -> &AccessPolicy {
        &self.access
    }

    fn format(&self, markdown: &str) -> Vec<Part> {
        format(markdown, self.limit)
    }

    async fn send(&self, _chat: &str, _part: &Part) -> Result<Receipt, SendError> {
        Err(SendError::Permanent {
            code: None,
            message: format!(
                "the {} platform cannot send yet (not implemented yet)",
                self.name
            ),
        })
    }

    fn home_channel(&self) -> Option<HomeChannel> {
        self.home.clone()
    }
}
