//! `hermes gateway doctor` for SMS: are the credentials good, is the number ours and able to
//! receive SMS, and does Twilio post its messages to `SMS_WEBHOOK_URL` (and, with
//! `SMS_FALLBACK_URL`, to the pair of gateways as primary and fallback)? With `--fix` the
//! number's webhook (and fallback) is set through the API and checked again.
use hermes_twilio::client::{self, IncomingNumber};
use hermes_twilio::doctor::{api_problem, credentials, origin};
use hermes_twilio::signature::{url_variants, with_connection_overrides};
use platform_api::{Check, Checkup, ConfigSection, phone, redact_url};

use crate::settings::{FALLBACK_URL, PHONE_NUMBER, SmsSettings, WEBHOOK_URL};

const NUMBER: &str = "Twilio number";
const WEBHOOK: &str = "Messaging webhook";

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
    match credentials(&settings.account, section).await {
        Ok(check) => checks.push(check),
        Err(problem) => {
            checks.push(problem);
            checks.push(Check::skipped(NUMBER, "needs working credentials"));
            checks.push(Check::skipped(WEBHOOK, "needs working credentials"));
            return checks;
        }
    }
    let shown = phone::redact(&settings.phone_number);
    let number = match client::find_number(&settings.account, &settings.phone_number).await {
        Ok(Some(number)) => number,
        Ok(None) => {
            checks.push(Check::problem(
                NUMBER,
                format!("{shown} is not among the account's active numbers"),
                format!(
                    "check {}{}: it must be in E.164 form (+, country code, number) and belong to account {}, not to another account or subaccount",
                    PHONE_NUMBER.env,
                    origin(section, PHONE_NUMBER.env),
                    settings.account.account_sid
                ),
            ));
            checks.push(Check::skipped(WEBHOOK, "needs the number"));
            return checks;
        }
        Err(err) => {
            checks.push(api_problem(NUMBER, &err, &settings.account.api_base_url));
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

/// Which end of the number's (primary, fallback) pair this gateway is, when `SMS_FALLBACK_URL`
/// names the other gateway: both ends are a sound configuration of the same pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The number's webhook is `SMS_WEBHOOK_URL` (always so without `SMS_FALLBACK_URL`).
    Primary,
    /// The mirror configuration: the number's webhook is `SMS_FALLBACK_URL`, its fallback this
    /// gateway's `SMS_WEBHOOK_URL`.
    Fallback,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Fallback => "fallback",
        })
    }
}

/// Whether `actual`, as Twilio holds it, is `configured` or one of the variants a signature
/// check accepts for it (default port, connection overrides).
fn same_url(configured: &str, actual: &str) -> bool {
    url_variants(configured).iter().any(|v| v == actual)
}

/// The method of a webhook call when it is not POST, the only one the gateway accepts; Twilio's
/// default, when the number does not say, is POST.
fn not_post(method: Option<&str>) -> Option<&str> {
    let method = method.unwrap_or("POST").trim();
    (!method.eq_ignore_ascii_case("POST")).then_some(method)
}

/// This gateway's end of the number's Messaging webhook, or what is wrong with it. `fallback`
/// is `SMS_FALLBACK_URL`: with it the number's (primary, fallback) pair must be this gateway
/// and the other in either order; without it only the primary is checked and the number's
/// fallback, whatever it is, is not a problem.
fn webhook_mismatch(
    configured: Option<&str>,
    fallback: Option<&str>,
    number: &IncomingNumber,
) -> Result<Role, String> {
    if let Some(app) = number.application() {
        return Err(format!(
            "incoming messages go to TwiML App {app}, not to a webhook"
        ));
    }
    let Some(configured) = configured else {
        return Err(format!(
            "{} is not set (insecure mode), so the webhook cannot be checked and signatures are not verified",
            WEBHOOK_URL.env
        ));
    };
    let role = match (number.webhook_url(), fallback) {
        (None, _) => {
            return Err(format!(
                "no webhook is set, so Twilio has nowhere to deliver incoming texts (expected {})",
                redact_url(configured)
            ));
        }
        (Some(actual), None) if !same_url(configured, actual) => {
            return Err(format!(
                "is {}, but {} is {}",
                redact_url(actual),
                WEBHOOK_URL.env,
                redact_url(configured)
            ));
        }
        (Some(_), None) => Role::Primary,
        (Some(actual), Some(other)) => pair_role(configured, other, actual, number.fallback_url())?,
    };
    if let Some(method) = not_post(number.sms_method.as_deref()) {
        return Err(format!("uses HTTP {method}; the gateway accepts POST only"));
    }
    if let Some(method) = fallback.and_then(|_| not_post(number.sms_fallback_method.as_deref())) {
        return Err(format!(
            "the fallback uses HTTP {method}; the gateways accept POST only"
        ));
    }
    Ok(role)
}

/// Which end this gateway is when the number's `primary` and `fallback` URLs are
/// {`webhook` (`SMS_WEBHOOK_URL`), `other` (`SMS_FALLBACK_URL`)} in either order; otherwise
/// what is wrong with them.
fn pair_role(
    webhook: &str,
    other: &str,
    primary: &str,
    fallback: Option<&str>,
) -> Result<Role, String> {
    let found = fallback.map_or_else(|| "none".to_string(), redact_url);
    let (shown_webhook, shown_other) = (redact_url(webhook), redact_url(other));
    if same_url(webhook, primary) {
        return match fallback {
            Some(actual) if same_url(other, actual) => Ok(Role::Primary),
            _ => Err(format!(
                "the fallback is {found}, but {} is {shown_other}",
                FALLBACK_URL.env
            )),
        };
    }
    if same_url(other, primary) {
        return match fallback {
            Some(actual) if same_url(webhook, actual) => Ok(Role::Fallback),
            _ => Err(format!(
                "the primary is {} ({shown_other}), yet the fallback is {found}, not {} ({shown_webhook})",
                FALLBACK_URL.env, WEBHOOK_URL.env
            )),
        };
    }
    Err(format!(
        "is {}, but {} is {shown_webhook} and {} is {shown_other}",
        redact_url(primary),
        WEBHOOK_URL.env,
        FALLBACK_URL.env
    ))
}

/// The detail of a passing check: the webhook or, with `SMS_FALLBACK_URL`, the pair and which
/// end this gateway is.
fn webhook_ok(
    configured: &str,
    fallback: Option<&str>,
    role: Role,
    number: &IncomingNumber,
) -> String {
    let Some(other) = fallback else {
        let mut detail = format!("{} (POST)", redact_url(configured));
        if let Some(theirs) = number.fallback_url() {
            detail.push_str(&format!(
                "; the number's fallback is {}, not checked while {} is unset",
                redact_url(theirs),
                FALLBACK_URL.env
            ));
        }
        return detail;
    };
    let (primary, secondary) = match role {
        Role::Primary => (configured, other),
        Role::Fallback => (other, configured),
    };
    format!(
        "primary: {}; fallback: {}, both POST (this gateway is the {role})",
        redact_url(primary),
        redact_url(secondary)
    )
}

/// The number's webhook as the lines about a fix show it: the primary alone, or with
/// `SMS_FALLBACK_URL` the pair.
fn webhook_shown(primary: Option<&str>, fallback: Option<Option<&str>>) -> String {
    let shown = |url: Option<&str>| url.map_or_else(|| "none".to_string(), redact_url);
    match fallback {
        None => shown(primary),
        Some(fallback) => format!("primary {}, fallback {}", shown(primary), shown(fallback)),
    }
}

async fn webhook_check(settings: &SmsSettings, number: &IncomingNumber, fix: bool) -> Check {
    let configured = settings.webhook_url.as_deref();
    let fallback = settings.fallback_url.as_deref();
    let problem = match webhook_mismatch(configured, fallback, number) {
        Ok(role) => {
            return Check::ok(
                WEBHOOK,
                webhook_ok(configured.unwrap_or_default(), fallback, role, number),
            );
        }
        Err(problem) => problem,
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
    let before = webhook_shown(
        number.webhook_url(),
        fallback.map(|_| number.fallback_url()),
    );
    // With the connection overrides: Twilio retries a failed delivery up to three times.
    let url = &with_connection_overrides(url);
    let other = fallback.map(with_connection_overrides);
    let sent = match &other {
        None => format!("{} (POST)", redact_url(url)),
        Some(_) => format!(
            "{} (both POST)",
            webhook_shown(Some(url), Some(other.as_deref()))
        ),
    };
    if let Err(err) =
        client::update_webhook(&settings.account, &number.sid, url, other.as_deref()).await
    {
        return Check::problem(
            WEBHOOK,
            format!("{problem}; --fix could not set it: {err}"),
            console,
        );
    }
    match client::find_number(&settings.account, &settings.phone_number).await {
        Ok(Some(now)) => match webhook_mismatch(configured, fallback, &now) {
            Ok(_) => Check::fixed(WEBHOOK, format!("was {before}; now {sent}")),
            Err(still) => Check::problem(
                WEBHOOK,
                format!("--fix sent {sent}, yet Twilio still reports: {still}"),
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

/// The Console steps that set the webhook (and, with `SMS_FALLBACK_URL`, the fallback) by hand.
fn console_steps(settings: &SmsSettings, url: Option<&str>) -> String {
    let fallback = settings
        .fallback_url
        .as_deref()
        .map(|other| {
            format!(
                ", \"Primary handler fails\" → Webhook, URL {}, HTTP POST",
                redact_url(&with_connection_overrides(other))
            )
        })
        .unwrap_or_default();
    format!(
        "in the Twilio Console: Phone Numbers → Manage → Active numbers → {} → Messaging Configuration → \"A message comes in\" → Webhook, URL {}, HTTP POST{fallback} → Save",
        phone::redact(&settings.phone_number),
        url.map(|url| redact_url(&with_connection_overrides(url)))
            .unwrap_or_else(|| "<SMS_WEBHOOK_URL>".to_string())
    )
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
            let found = webhook_mismatch(Some(URL), None, &number(url, method, app)).err();
            match (expected, &found) {
                (None, None) => {}
                (Some(part), Some(problem)) => assert!(problem.contains(part), "{problem}"),
                _ => panic!("{url:?} {method} {app:?}: {found:?}"),
            }
        }
        assert!(
            webhook_mismatch(None, None, &number(Some(URL), "POST", None))
                .is_err_and(|p| p.contains("insecure mode"))
        );
    }

    const OTHER: &str = "https://standby.example.com/webhooks/twilio";

    fn pair(primary: Option<&str>, fallback: Option<&str>, method: &str) -> IncomingNumber {
        IncomingNumber {
            sms_fallback_url: fallback.map(str::to_string),
            sms_fallback_method: Some(method.into()),
            ..number(primary, "POST", None)
        }
    }

    #[test]
    fn without_a_fallback_setting_the_numbers_fallback_is_mentioned_not_checked() {
        let theirs = pair(Some(URL), Some("https://elsewhere.example.com/sms"), "GET");
        assert_eq!(
            webhook_mismatch(Some(URL), None, &theirs),
            Ok(Role::Primary)
        );
        let line = webhook_ok(URL, None, Role::Primary, &theirs);
        assert!(line.starts_with(&format!("{URL} (POST); ")), "{line}");
        assert!(
            line.contains("fallback is https://elsewhere.example.com/sms, not checked while SMS_FALLBACK_URL is unset"),
            "{line}"
        );
        // A number without a fallback reads as it always did.
        let bare = number(Some(URL), "POST", None);
        assert_eq!(
            webhook_ok(URL, None, Role::Primary, &bare),
            format!("{URL} (POST)")
        );
    }

    #[test]
    fn the_pair_is_sound_in_either_order() {
        let with_overrides = with_connection_overrides;
        // This gateway is the primary, as `--fix` leaves it (fragments and default ports too).
        for (primary, fallback) in [
            (URL.to_string(), OTHER.to_string()),
            (with_overrides(URL), with_overrides(OTHER)),
            (
                "https://bot.example.com:443/webhooks/twilio".to_string(),
                "https://standby.example.com:443/webhooks/twilio#rc=3&rp=ct,rt,5xx".to_string(),
            ),
        ] {
            let number = pair(Some(&primary), Some(&fallback), "POST");
            assert_eq!(
                webhook_mismatch(Some(URL), Some(OTHER), &number),
                Ok(Role::Primary),
                "{primary} / {fallback}"
            );
        }
        // The mirror: the other gateway is the primary, this one its fallback.
        let mirror = pair(
            Some(&with_overrides(OTHER)),
            Some(&with_overrides(URL)),
            "post",
        );
        assert_eq!(
            webhook_mismatch(Some(URL), Some(OTHER), &mirror),
            Ok(Role::Fallback)
        );
        assert_eq!(
            webhook_ok(URL, Some(OTHER), Role::Fallback, &mirror),
            format!("primary: {OTHER}; fallback: {URL}, both POST (this gateway is the fallback)")
        );
        assert_eq!(
            webhook_ok(URL, Some(OTHER), Role::Primary, &mirror),
            format!("primary: {URL}; fallback: {OTHER}, both POST (this gateway is the primary)")
        );
    }

    #[test]
    fn a_pair_that_is_not_this_one_is_a_mismatch() {
        let elsewhere = "https://elsewhere.example.com/sms";
        let cases = [
            (
                pair(Some(URL), None, "POST"),
                "the fallback is none, but SMS_FALLBACK_URL is",
            ),
            (
                pair(Some(URL), Some(elsewhere), "POST"),
                "the fallback is https://elsewhere.example.com/sms, but SMS_FALLBACK_URL is https://standby",
            ),
            // Both ends the same gateway: Twilio would fall back to the one that failed.
            (
                pair(Some(URL), Some(URL), "POST"),
                "the fallback is https://bot.example.com",
            ),
            (
                pair(Some(OTHER), None, "POST"),
                "the primary is SMS_FALLBACK_URL (https://standby.example.com/webhooks/twilio), yet the fallback is none, not SMS_WEBHOOK_URL",
            ),
            (
                pair(Some(OTHER), Some(OTHER), "POST"),
                "yet the fallback is https://standby.example.com/webhooks/twilio, not SMS_WEBHOOK_URL",
            ),
            (
                pair(Some(elsewhere), Some(URL), "POST"),
                "is https://elsewhere.example.com/sms, but SMS_WEBHOOK_URL is https://bot.example.com/webhooks/twilio and SMS_FALLBACK_URL is https://standby",
            ),
            (pair(None, Some(OTHER), "POST"), "no webhook is set"),
            (
                pair(Some(URL), Some(OTHER), "GET"),
                "the fallback uses HTTP GET",
            ),
            (
                IncomingNumber {
                    sms_method: Some("GET".into()),
                    ..pair(Some(OTHER), Some(URL), "POST")
                },
                "uses HTTP GET; the gateway accepts POST only",
            ),
            (
                IncomingNumber {
                    sms_application_sid: Some("AP0123456789abcdef0123456789abcdef".into()),
                    ..pair(Some(URL), Some(OTHER), "POST")
                },
                "TwiML App",
            ),
        ];
        for (number, expected) in cases {
            let found = webhook_mismatch(Some(URL), Some(OTHER), &number);
            assert!(
                found.as_ref().is_err_and(|p| p.contains(expected)),
                "{number:?}: {found:?}, expected {expected:?}"
            );
        }
        // Without SMS_FALLBACK_URL the same numbers are judged by their primary alone.
        assert_eq!(
            webhook_mismatch(Some(URL), None, &pair(Some(URL), Some(elsewhere), "GET")),
            Ok(Role::Primary)
        );
    }

    #[test]
    fn fix_lines_show_the_pair_only_with_a_fallback_setting() {
        assert_eq!(webhook_shown(None, None), "none");
        assert_eq!(webhook_shown(Some(URL), None), URL);
        assert_eq!(
            webhook_shown(Some(URL), Some(None)),
            format!("primary {URL}, fallback none")
        );
        assert_eq!(
            webhook_shown(Some(URL), Some(Some(OTHER))),
            format!("primary {URL}, fallback {OTHER}")
        );
    }
}
