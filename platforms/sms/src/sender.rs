//! Send: one part to one number through Twilio's Messages API (the Twilio crate's client,
//! [`hermes_twilio::messages`]), from our number or our Messaging Service; a part with files
//! is an MMS.
use hermes_twilio::messages::{self, Line};
use hermes_twilio::status::status_callback_url;
use platform_api::{Part, Receipt, SendError};

use crate::settings::SmsSettings;

impl SmsSettings {
    /// The SMS line: our number (or our Messaging Service), status callbacks to
    /// `SMS_WEBHOOK_URL` + `/status`, Twilio's errors as they are.
    pub fn line(&self) -> Line<'_> {
        Line {
            account: &self.account,
            from: &self.phone_number,
            messaging_service_sid: self.messaging_service_sid.as_deref(),
            prefix: crate::webhook::SMS.prefix,
            status_callback: self.webhook_url.as_deref().map(status_callback_url),
            templated: false,
            classify: crate::error::classify,
        }
    }
}

/// Sends one part to `to` (E.164).
pub async fn send(settings: &SmsSettings, to: &str, part: &Part) -> Result<Receipt, SendError> {
    messages::send_message(&settings.line(), to, part).await
}
