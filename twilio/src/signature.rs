//! `X-Twilio-Signature`: an HMAC over the webhook URL and the sorted POST parameters: SHA-1
//! keyed with the auth token, or, for a request that says so in
//! `X-Twilio-Webhooks-Signature-Settings` (Twilio's Webhook Shared Keys), SHA-256 keyed with
//! the shared key (`TWILIO_WEBHOOK_SHARED_KEY`).
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// The header with which Twilio says how a request is signed, when not with the auth token.
pub const SIGNATURE_SETTINGS: &str = "X-Twilio-Webhooks-Signature-Settings";

/// The algorithm of Webhook Shared Keys, as the settings header names it.
pub const SHA256: &str = "HMAC_SHA256";

/// How a request is signed, and with what key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// HMAC-SHA1 with the auth token: a request without the settings header.
    AuthToken(&'a str),
    /// HMAC-SHA256 with the Webhook Shared Key.
    SharedKey(&'a str),
}

/// Why a request's signature settings cannot be honoured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemeError {
    /// Signed with a shared key, and none is configured.
    #[error(
        "signed with a Webhook Shared Key ({SHA256}) but TWILIO_WEBHOOK_SHARED_KEY is not set: set it to the key from the Twilio Console"
    )]
    NoSharedKey,
    /// An algorithm this gateway does not know.
    #[error(
        "{SIGNATURE_SETTINGS} names the algorithm {0:?}, which this gateway does not know ({SHA256} is checked with TWILIO_WEBHOOK_SHARED_KEY)"
    )]
    UnknownAlgorithm(String),
}

/// The scheme a request signed with `settings` (its `X-Twilio-Webhooks-Signature-Settings`,
/// if any) is checked with: the auth token without the header; the shared key for
/// `algorithm=HMAC_SHA256`.
pub fn scheme<'a>(
    settings: Option<&str>,
    auth_token: &'a str,
    shared_key: Option<&'a str>,
) -> Result<Scheme<'a>, SchemeError> {
    let Some(settings) = settings else {
        return Ok(Scheme::AuthToken(auth_token));
    };
    let algorithm = settings
        .split([',', ';'])
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("algorithm"))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    if !algorithm.eq_ignore_ascii_case(SHA256) {
        return Err(SchemeError::UnknownAlgorithm(algorithm));
    }
    match shared_key {
        Some(key) if !key.is_empty() => Ok(Scheme::SharedKey(key)),
        _ => Err(SchemeError::NoSharedKey),
    }
}

/// The string Twilio signs: the URL followed by every parameter, sorted by name (byte order),
/// each name followed by its value; repeated names keep the order they came in.
fn signed_payload(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let len = url.len() + sorted.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let mut payload = Vec::with_capacity(len);
    payload.extend_from_slice(url.as_bytes());
    for (name, value) in sorted {
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(value.as_bytes());
    }
    payload
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(&signed_payload(url, params));
    mac
}

/// Computes the signature Twilio sends for a request to `url` with `params`.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac256(shared_key: &str, url: &str, params: &[(String, String)]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(shared_key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(&signed_payload(url, params));
    mac
}

/// Computes the signature Twilio sends with a Webhook Shared Key (HMAC-SHA256 over the same
/// string as [`compute_signature`]).
pub fn compute_signature_sha256(
    shared_key: &str,
    url: &str,
    params: &[(String, String)],
) -> String {
    STANDARD.encode(mac256(shared_key, url, params).finalize().into_bytes())
}

/// The connection overrides (a URL fragment Twilio reads and never requests) that the gateway
/// offers for its webhook URL: up to three retries when Twilio cannot connect, times out
/// reading the answer, or gets a 5xx. Retrying after a read timeout is safe because a webhook
/// repeated with the same `MessageSid` is acknowledged and not processed again.
pub const CONNECTION_OVERRIDES: &str = "rc=3&rp=ct,rt,5xx";

/// `url` with the gateway's [`CONNECTION_OVERRIDES`], unless it has a fragment already.
pub fn with_connection_overrides(url: &str) -> String {
    if url.contains('#') {
        url.to_string()
    } else {
        format!("{url}#{CONNECTION_OVERRIDES}")
    }
}

/// The URLs a signature may have been computed over: the configured one and its default-port
/// variant (`https://h/…` ↔ `https://h:443/…`, `http://h/…` ↔ `http://h:80/…`), each with
/// and without its connection-override fragment (`#rc=…`).
///
/// A fragment never reaches the server, yet Twilio's SDK validators sign the URL as configured
/// in the Console, fragment included (`validateRequest` in twilio-node keeps the URL's hash;
/// twilio-python's `RequestValidator` keeps it too). So a Console URL that carries overrides
/// is checked with them: the configured URL without a fragment also accepts it with
/// [`CONNECTION_OVERRIDES`] (what `hermes gateway doctor --fix` sets), and one with a fragment
/// also accepts it without. Either way the key is the auth token; nothing else is accepted.
pub fn url_variants(configured: &str) -> Vec<String> {
    let (base, fragment) = match configured.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (configured, None),
    };
    let mut variants = Vec::with_capacity(4);
    for url in [
        configured.to_string(),
        match fragment {
            Some(_) => base.to_string(),
            None => format!("{base}#{CONNECTION_OVERRIDES}"),
        },
    ] {
        variants.extend(port_variants(&url));
    }
    variants
}

/// `url` and its default-port variant.
fn port_variants(configured: &str) -> Vec<String> {
    let mut variants = vec![configured.to_string()];
    let (scheme, default_port) = if configured.starts_with("https://") {
        ("https://", "443")
    } else if configured.starts_with("http://") {
        ("http://", "80")
    } else {
        return variants;
    };
    let rest = &configured[scheme.len()..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // Userinfo is never part of a Twilio webhook URL's host; keep it as written.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let host_end = if hostport.starts_with('[') {
        hostport.find(']').map(|i| i + 1).unwrap_or(hostport.len())
    } else {
        hostport.find(':').unwrap_or(hostport.len())
    };
    let (host, port) = hostport.split_at(host_end);
    let variant = match port.strip_prefix(':') {
        Some(p) if p == default_port => format!("{scheme}{userinfo}{host}{tail}"),
        Some(_) => return variants,
        None => format!("{scheme}{userinfo}{host}:{default_port}{tail}"),
    };
    variants.push(variant);
    variants
}

/// Checks `signature` against every variant of the configured URL, in constant time.
///
/// Returns the variant that matched.
pub fn verify_signature<'a>(
    auth_token: &str,
    variants: &'a [String],
    params: &[(String, String)],
    signature: &str,
) -> Option<&'a str> {
    verify(Scheme::AuthToken(auth_token), variants, params, signature)
}

/// Checks `signature` under `scheme` against every variant of the configured URL, in constant
/// time. Returns the variant that matched.
pub fn verify<'a>(
    scheme: Scheme<'_>,
    variants: &'a [String],
    params: &[(String, String)],
    signature: &str,
) -> Option<&'a str> {
    let expected = STANDARD.decode(signature.trim()).ok()?;
    variants
        .iter()
        .find(|url| match scheme {
            Scheme::AuthToken(token) => mac(token, url, params).verify_slice(&expected).is_ok(),
            Scheme::SharedKey(key) => mac256(key, url, params).verify_slice(&expected).is_ok(),
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/signature-vectors.json");
        let text = std::fs::read_to_string(path).expect("signature vectors present");
        serde_json::from_str(&text).expect("vectors are JSON")
    }

    fn params(value: &Value) -> Vec<(String, String)> {
        value
            .as_object()
            .expect("params object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
            .collect()
    }

    #[test]
    fn every_sdk_case_validates() {
        let v = vectors();
        let cases = v["cases"].as_array().expect("cases");
        assert!(cases.len() >= 10);
        for case in cases {
            let token = case["auth_token"].as_str().unwrap();
            let url = case["url"].as_str().unwrap();
            let params = params(&case["params"]);
            let sig = case["signature"].as_str().unwrap();
            assert_eq!(
                compute_signature(token, url, &params),
                sig,
                "{}",
                case["name"]
            );
            let variants = url_variants(url);
            assert!(verify_signature(token, &variants, &params, sig).is_some());
        }
    }

    #[test]
    fn port_variants_match_the_sdk() {
        let v = vectors();
        for case in v["port_variants"].as_array().expect("port_variants") {
            let token = case["auth_token"].as_str().unwrap();
            let configured = case["configured_url"].as_str().unwrap();
            let params = params(&case["params"]);
            let sig = case["signature"].as_str().unwrap();
            let variants = url_variants(configured);
            let ok = verify_signature(token, &variants, &params, sig).is_some();
            assert_eq!(
                ok,
                case["valid"].as_bool().unwrap(),
                "{configured} vs {}",
                case["signed_url"]
            );
        }
    }

    #[test]
    fn connection_overrides_are_signed_as_configured_and_nothing_else_passes() {
        let params = vec![
            ("From".to_string(), "+15550001111".to_string()),
            ("Body".to_string(), "hi".to_string()),
        ];
        let configured = "https://bot.example.com/webhooks/twilio";
        let console = with_connection_overrides(configured);
        assert_eq!(
            console,
            "https://bot.example.com/webhooks/twilio#rc=3&rp=ct,rt,5xx"
        );
        for signed_over in [configured, console.as_str()] {
            let sig = compute_signature("token", signed_over, &params);
            assert!(verify_signature("token", &url_variants(configured), &params, &sig).is_some());
            assert!(verify_signature("token", &url_variants(&console), &params, &sig).is_some());
            assert!(verify_signature("other", &url_variants(configured), &params, &sig).is_none());
        }
        let other_fragment = compute_signature("token", &format!("{configured}#rc=5"), &params);
        assert!(
            verify_signature("token", &url_variants(configured), &params, &other_fragment)
                .is_none()
        );
    }

    #[test]
    fn a_shared_key_signs_with_sha256_when_the_settings_header_says_so() {
        let variants = url_variants("https://bot.example.com/webhooks/twilio");
        let params = vec![
            ("Body".to_string(), "hi".to_string()),
            ("From".to_string(), "+15550001111".to_string()),
        ];
        let url = &variants[0];
        let sha256 = compute_signature_sha256("shared", url, &params);
        let sha1 = compute_signature("token", url, &params);
        let with_key = scheme(Some("algorithm=HMAC_SHA256"), "token", Some("shared")).unwrap();
        assert_eq!(with_key, Scheme::SharedKey("shared"));
        assert!(verify(with_key, &variants, &params, &sha256).is_some());
        assert!(verify(with_key, &variants, &params, &sha1).is_none());
        let wrong = scheme(Some("algorithm=HMAC_SHA256"), "token", Some("other")).unwrap();
        assert!(verify(wrong, &variants, &params, &sha256).is_none());
        // Without the header the auth token and SHA-1 apply, as before.
        let plain = scheme(None, "token", Some("shared")).unwrap();
        assert!(verify(plain, &variants, &params, &sha1).is_some());
        assert!(verify(plain, &variants, &params, &sha256).is_none());
        assert_eq!(
            scheme(Some(" Algorithm = hmac_sha256 ; x=1"), "token", Some("k")),
            Ok(Scheme::SharedKey("k"))
        );
        assert_eq!(
            scheme(Some("algorithm=HMAC_SHA256"), "token", None),
            Err(SchemeError::NoSharedKey)
        );
        assert_eq!(
            scheme(Some("algorithm=HMAC_SHA512"), "token", Some("k")),
            Err(SchemeError::UnknownAlgorithm("HMAC_SHA512".into()))
        );
        assert_eq!(
            scheme(Some("nonsense"), "token", Some("k")),
            Err(SchemeError::UnknownAlgorithm(String::new()))
        );
    }

    #[test]
    fn tampered_requests_are_rejected() {
        let v = vectors();
        let tampered = v["tampered"].as_array().expect("tampered");
        assert!(!tampered.is_empty());
        for case in tampered {
            let token = case["auth_token"].as_str().unwrap();
            let url = case["url"].as_str().unwrap();
            let params = params(&case["params"]);
            let sig = case["signature"].as_str().unwrap();
            let variants = url_variants(url);
            assert!(verify_signature(token, &variants, &params, sig).is_none());
        }
    }

    #[test]
    fn variants_toggle_the_default_port_only() {
        assert_eq!(
            port_variants("https://h.example/x?y=1"),
            ["https://h.example/x?y=1", "https://h.example:443/x?y=1"]
        );
        assert_eq!(
            port_variants("http://h:80/x"),
            ["http://h:80/x", "http://h/x"]
        );
        assert_eq!(port_variants("https://h:8443/x"), ["https://h:8443/x"]);
        assert_eq!(
            port_variants("https://[::1]/x"),
            ["https://[::1]/x", "https://[::1]:443/x"]
        );
        assert_eq!(
            url_variants("https://h/x?y=1"),
            [
                "https://h/x?y=1",
                "https://h:443/x?y=1",
                "https://h/x?y=1#rc=3&rp=ct,rt,5xx",
                "https://h:443/x?y=1#rc=3&rp=ct,rt,5xx"
            ]
        );
        assert_eq!(
            url_variants("https://h:8443/x#rc=2"),
            ["https://h:8443/x#rc=2", "https://h:8443/x"]
        );
        assert!(verify_signature("t", &url_variants("https://h/x"), &[], "not base64!").is_none());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;
        use crate::webhook::parse_form;

        fn encode(pairs: &[(String, String)]) -> String {
            serde_urlencoded::to_string(pairs).expect("encodable")
        }

        proptest! {
            #[test]
            fn signature_is_stable_under_parameter_order(
                mut pairs in proptest::collection::vec(("[A-Za-z][A-Za-z0-9]{0,12}", "\\PC{0,40}"), 0..20),
                rotate in 0usize..20,
            ) {
                // Twilio signs names in sorted order; the order on the wire must not matter.
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                pairs.dedup_by(|a, b| a.0 == b.0);
                let url = "https://example.com/webhooks/twilio";
                let parsed = parse_form(encode(&pairs).as_bytes()).expect("own encoding parses");
                prop_assert_eq!(&parsed, &pairs, "parsing keeps every name and value");
                let sig = compute_signature("token", url, &parsed);
                let mut shuffled = pairs.clone();
                if !shuffled.is_empty() {
                    let k = rotate % shuffled.len();
                    shuffled.rotate_left(k);
                    shuffled.reverse();
                }
                let reparsed = parse_form(encode(&shuffled).as_bytes()).expect("own encoding parses");
                prop_assert!(verify_signature("token", &url_variants(url), &reparsed, &sig).is_some());
            }

            #[test]
            fn parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_form(&body);
            }
        }
    }
}
