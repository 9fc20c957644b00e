//! `hermes gateway doctor` for SMS: are the credentials good, is the number ours and able to
//! receive SMS, and does Twilio post its messages to `SMS_WEBHOOK_URL`? With `--fix` the
//! number's webhook is set through the API and checked again.
use platform_api::{Check, Checkup, ConfigSection, phone};

use crate::account::{self, ApiError, IncomingNumber};
use crate::settings::{
    ACCOUNT_SID, API_BASE_URL, AUTH_TOKEN, PHONE_NUMBER, SmsSettings, WEBHOOK_URL,
};
use crate::signature::{url_variants, with_connection_overrides};

const CREDENTIALS: &str = "Twilio credentials";
const NUMBER: &str = "Twilio number";
const WEBHOOK: &str = "Messaging webhook";
/// Twilio's own API, the default of `TWILIO_API_BASE_URL`.
const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";

/// The SMS checkup, as the host runs it for a configuration that builds.
pub fn checkup(section: &ConfigSection, fix: bool) -> Checkup<'_> {
    Box::pin(async move {
        match SmsSettings::from_config(section) {
            Ok(settings) => checks(&settings, section, fix).await,
            Err(err) => vec![Check::skipped(
                "Twilio account",
                format!("needs valid settings first ({err})"),
            )],
        }
    })
}

/// Checks the account behind `settings`; `section` only says where the values came from.
pub async fn checks(settings: &SmsSettings, section: &ConfigSection, fix: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    match account::fetch_account(settings).await {
        Ok(account) => checks.push(account_check(&account)),
        Err(err) => {
            checks.push(credentials_problem(&err, settings, section));
            checks.push(Check::skipped(NUMBER, "needs working credentials"));
            checks.push(Check::skipped(WEBHOOK, "needs working credentials"));
            return checks;
        }
    }
    let shown = phone::redact(&settings.phone_number);
    let number = match account::find_number(settings).await {
        Ok(Some(number)) => number,
        Ok(None) => {
            checks.push(Check::problem(
                NUMBER,
                format!("{shown} is not among the account's active numbers"),
                format!(
                    "check {}{}: it must be in E.164 form (+, country code, number) and belong to account {}, not to another account or subaccount",
                    PHONE_NUMBER.env,
                    origin(section, PHONE_NUMBER.env),
                    settings.account_sid
                ),
            ));
            checks.push(Check::skipped(WEBHOOK, "needs the number"));
            return checks;
        }
        Err(err) => {
            checks.push(api_problem(NUMBER, &err, settings));
            checks.push(Check::skipped(WEBHOOK, "needs the number"));
            return checks;
        }
    };
    if number.capabilities.sms {
        checks.push(Check::ok(
            NUMBER,
            format!("{shown} belongs to the account and can receive SMS"),
        ));
    } else {
        checks.push(Check::problem(
            NUMBER,
            format!("{shown} belongs to the account but is not SMS-capable"),
            format!(
                "buy or port an SMS-capable number and set {} to it",
                PHONE_NUMBER.env
            ),
        ));
    }
    checks.push(webhook_check(settings, &number, fix).await);
    checks
}

fn account_check(account: &account::Account) -> Check {
    let name = account
        .friendly_name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    match account.status.as_deref() {
        Some("active") | None => Check::ok(
            CREDENTIALS,
            format!("accepted for account {}{name}", account.sid),
        ),
        Some(status) => Check::problem(
            CREDENTIALS,
            format!("accepted, but account {}{name} is {status}", account.sid),
            "reactivate the account in the Twilio Console (Account → Billing / Status); a suspended or closed account cannot send or receive",
        ),
    }
}

fn credentials_problem(err: &ApiError, settings: &SmsSettings, section: &ConfigSection) -> Check {
    if err.is_authentication() {
        return Check::problem(
            CREDENTIALS,
            format!("credentials rejected ({err})"),
            format!(
                "check {}{} / {}{}: copy both from the Twilio Console (Account Info); the auth token is the account's, not an API key secret or a test credential",
                ACCOUNT_SID.env,
                origin(section, ACCOUNT_SID.env),
                AUTH_TOKEN.env,
                origin(section, AUTH_TOKEN.env)
            ),
        );
    }
    api_problem(CREDENTIALS, err, settings)
}

/// A failed call other than rejected credentials.
fn api_problem(subject: &str, err: &ApiError, settings: &SmsSettings) -> Check {
    let fix = match err {
        ApiError::Unreachable { .. } if settings.api_base_url == DEFAULT_API_BASE_URL => {
            "check the network connection, DNS and proxies".to_string()
        }
        ApiError::Unreachable { .. } => format!(
            "check {} (now {}; Twilio's is {DEFAULT_API_BASE_URL}), the network connection and proxies",
            API_BASE_URL.env, settings.api_base_url
        ),
        ApiError::Refused {
            code: Some(code), ..
        } => format!(
            "see https://www.twilio.com/docs/errors/{code}; then run `hermes gateway doctor` again"
        ),
        _ => format!(
            "check that {} points at Twilio's REST API ({DEFAULT_API_BASE_URL}), then run `hermes gateway doctor` again",
            API_BASE_URL.env
        ),
    };
    Check::problem(subject, err.to_string(), fix)
}

/// What is wrong with the number's Messaging webhook, if anything.
fn webhook_mismatch(configured: Option<&str>, number: &IncomingNumber) -> Option<String> {
    if let Some(app) = number.application() {
        return Some(format!(
            "incoming messages go to TwiML App {app}, not to a webhook"
        ));
    }
    let Some(configured) = configured else {
        return Some(format!(
            "{} is not set (insecure mode), so the webhook cannot be checked and signatures are not verified",
            WEBHOOK_URL.env
        ));
    };
    let method = number.sms_method.as_deref().unwrap_or("POST").trim();
    match number.webhook_url() {
        None => Some(format!(
            "no webhook is set, so Twilio has nowhere to deliver incoming texts (expected {configured})"
        )),
        Some(actual) if !url_variants(configured).iter().any(|v| v == actual) => Some(format!(
            "is {actual}, but {} is {configured}",
            WEBHOOK_URL.env
        )),
        Some(_) if !method.eq_ignore_ascii_case("POST") => {
            Some(format!("uses HTTP {method}; the gateway accepts POST only"))
        }
        Some(_) => None,
    }
}

async fn webhook_check(settings: &SmsSettings, number: &IncomingNumber, fix: bool) -> Check {
    let configured = settings.webhook_url.as_deref();
    let Some(problem) = webhook_mismatch(configured, number) else {
        return Check::ok(
            WEBHOOK,
            format!("{} (POST)", configured.unwrap_or_default()),
        );
    };
    let console = console_steps(settings, configured);
    let Some(url) = configured else {
        return Check::problem(
            WEBHOOK,
            problem,
            format!(
                "set {} to the public URL of this gateway (`hermes gateway setup`), then run `hermes gateway doctor --fix`",
                WEBHOOK_URL.env
            ),
        );
    };
    if number.application().is_some() {
        return Check::problem(WEBHOOK, problem, console);
    }
    if !fix {
        return Check::problem(
            WEBHOOK,
            problem,
            format!("run `hermes gateway doctor --fix`, or {console}"),
        );
    }
    let before = number.webhook_url().unwrap_or("none").to_string();
    // With the connection overrides: Twilio retries a failed delivery up to three times.
    let url = &with_connection_overrides(url);
    if let Err(err) = account::update_webhook(settings, &number.sid, url).await {
        return Check::problem(
            WEBHOOK,
            format!("{problem}; --fix could not set it: {err}"),
            console,
        );
    }
    match account::find_number(settings).await {
        Ok(Some(now)) => match webhook_mismatch(configured, &now) {
            None => Check::fixed(WEBHOOK, format!("was {before}; now {url} (POST)")),
            Some(still) => Check::problem(
                WEBHOOK,
                format!("--fix sent {url} (POST), yet Twilio still reports: {still}"),
                console,
            ),
        },
        Ok(None) => Check::problem(
            WEBHOOK,
            "--fix sent the webhook, but the number is no longer listed".to_string(),
            console,
        ),
        Err(err) => Check::problem(
            WEBHOOK,
            format!("--fix sent the webhook, but checking it again failed: {err}"),
            console,
        ),
    }
}

/// The Console steps that set the webhook by hand.
fn console_steps(settings: &SmsSettings, url: Option<&str>) -> String {
    format!(
        "in the Twilio Console: Phone Numbers → Manage → Active numbers → {} → Messaging Configuration → \"A message comes in\" → Webhook, URL {}, HTTP POST → Save",
        phone::redact(&settings.phone_number),
        url.map(with_connection_overrides)
            .unwrap_or_else(|| "<SMS_WEBHOOK_URL>".to_string())
    )
}

/// ` (from …)`, where a variable's value came from.
fn origin(section: &ConfigSection, var: &str) -> String {
    section
        .get(var)
        .map(|v| format!(" (from {})", v.origin))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://bot.example.com/webhooks/twilio";

    fn number(url: Option<&str>, method: &str, app: Option<&str>) -> IncomingNumber {
        IncomingNumber {
            sid: "PN0123456789abcdef0123456789abcdef".into(),
            phone_number: "+15551234567".into(),
            sms_url: url.map(str::to_string),
            sms_method: Some(method.into()),
            sms_application_sid: app.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn webhook_matches_its_default_port_variant_and_post_only() {
        let cases = [
            (Some(URL), "POST", None, None),
            (
                Some("https://bot.example.com:443/webhooks/twilio"),
                "post",
                None,
                None,
            ),
            (Some(URL), "GET", None, Some("uses HTTP GET")),
            (Some(""), "POST", None, Some("no webhook is set")),
            (None, "POST", None, Some("no webhook is set")),
            (
                Some("https://old.example.com/sms"),
                "POST",
                None,
                Some("is https://old.example.com/sms, but SMS_WEBHOOK_URL"),
            ),
            (
                Some(URL),
                "POST",
                Some("AP0123456789abcdef0123456789abcdef"),
                Some("TwiML App"),
            ),
            (Some(URL), "POST", Some(""), None),
            (
                Some("https://bot.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx"),
                "POST",
                None,
                None,
            ),
            (
                Some("https://bot.example.com/webhooks/twilio#rc=1"),
                "POST",
                None,
                Some("but SMS_WEBHOOK_URL"),
            ),
        ];
        for (url, method, app, expected) in cases {
            let found = webhook_mismatch(Some(URL), &number(url, method, app));
            match (expected, &found) {
                (None, None) => {}
                (Some(part), Some(problem)) => assert!(problem.contains(part), "{problem}"),
                _ => panic!("{url:?} {method} {app:?}: {found:?}"),
            }
        }
        assert!(
            webhook_mismatch(None, &number(Some(URL), "POST", None))
                .is_some_and(|p| p.contains("insecure mode"))
        );
    }
}
