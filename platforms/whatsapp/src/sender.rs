//! Send: one part to one WhatsApp chat through Twilio's Messages API (the Twilio crate's
//! client, with `whatsapp:` addresses); outside the chat's 24-hour window, the approved
//! template `WHATSAPP_TEMPLATE_SID` with the text as its variable `{{1}}`, or a refusal.
use hermes_twilio::messages as sender;
use platform_api::{Part, Receipt, SendError};

use crate::error::{OUTSIDE_WINDOW, WINDOW_CLOSED};
use crate::settings::WhatsAppSettings;

/// Sends a free-form part (text, a file, or both) to a chat inside its window.
pub async fn send(
    settings: &WhatsAppSettings,
    chat: &str,
    part: &Part,
) -> Result<Receipt, SendError> {
    sender::send_message(&settings.line(), chat, part).await
}

/// Why a part cannot go to a chat whose window has closed: no template is set, or it carries
/// files (a template carries text only); `None` when it can go as the template.
pub fn outside_window_refusal(settings: &WhatsAppSettings, part: &Part) -> Option<String> {
    if settings.template_sid.is_none() {
        Some(OUTSIDE_WINDOW.to_string())
    } else if !part.media.is_empty() {
        Some(
            "outside WhatsApp's 24-hour window: a file cannot go in the template (WHATSAPP_TEMPLATE_SID), only text"
                .to_string(),
        )
    } else {
        None
    }
}

/// Sends a part to a chat whose window has closed: as the template, its text the template's
/// `{{1}}` (`ContentVariables` `{"1": text}`, no `Body`). A part that cannot go so
/// ([`outside_window_refusal`]) fails at once with the reason and is never retried.
pub async fn send_outside_window(
    settings: &WhatsAppSettings,
    chat: &str,
    part: &Part,
) -> Result<Receipt, SendError> {
    match (
        &settings.template_sid,
        outside_window_refusal(settings, part),
    ) {
        (Some(template), None) => {
            sender::send_template(&settings.line(), chat, template, &variables(&part.body)).await
        }
        (_, refusal) => Err(SendError::Permanent {
            code: Some(WINDOW_CLOSED),
            message: refusal.unwrap_or_else(|| OUTSIDE_WINDOW.to_string()),
        }),
    }
}

/// The template's variables: the part's text as `{{1}}`.
pub fn variables(text: &str) -> String {
    serde_json::json!({ "1": text }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_templates_first_variable() {
        assert_eq!(variables("Hi \"you\"\n"), r#"{"1":"Hi \"you\"\n"}"#);
    }
}
