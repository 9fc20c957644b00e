//! [`ChatKey`]: which chat of which platform, the unit of ordering in the host.

/// One chat of one platform: a conversation's turns run one at a time per key, and the
/// outbox sends a key's parts in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatKey {
    /// Platform name.
    pub platform: String,
    /// The chat, in the platform's form.
    pub chat: String,
}

impl ChatKey {
    /// The key of `chat` on `platform`.
    pub fn new(platform: &str, chat: &str) -> Self {
        ChatKey {
            platform: platform.to_string(),
            chat: chat.to_string(),
        }
    }
}
