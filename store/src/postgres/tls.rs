//! TLS to PostgreSQL, with libpq's `sslmode` and `sslrootcert` read from the URL.
//!
//! tokio-postgres negotiates TLS as its own `sslmode` says (`disable`, `prefer`, `require`) and
//! tokio-postgres-rustls does the handshake with rustls, the TLS stack the gateway already uses
//! for the providers' APIs. What libpq adds and tokio-postgres does not parse is taken from the
//! URL here: `sslmode=verify-ca` and `verify-full`, and `sslrootcert` (a PEM file of trusted
//! certificates, or `system` for the public roots). The modes mean what they mean to `psql`:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | when the server offers TLS | only when `sslrootcert` is given |
//! | `require` | always | only when `sslrootcert` is given (its chain) |
//! | `verify-ca` | always | its chain, to `sslrootcert` (the public roots when unset) |
//! | `verify-full` | always | its chain, and that it names the host connected to |
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Result, StoreError};

/// How long connecting may take unless the URL says (`connect_timeout`): an unreachable
/// server is an error soon, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection is made: tokio-postgres's settings and the TLS it negotiates with.
pub(crate) struct Connection {
    /// Host, user, database, timeouts and tokio-postgres's own `sslmode`.
    pub config: tokio_postgres::Config,
    /// The TLS connector, checking the server's certificate as the URL asks.
    pub tls: MakeRustlsConnect,
    /// What is checked of the server's certificate, for the doctor.
    pub checks: Checks,
    /// Whether every host of the URL is this machine (loopback or a Unix socket).
    pub local: bool,
}

/// What is checked of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Nothing: the connection is encrypted, but the server is not authenticated.
    Nothing,
    /// That it chains to a trusted root (`verify-ca`).
    Chain,
    /// That it chains to a trusted root and names the host (`verify-full`).
    ChainAndName,
}

impl Checks {
    /// Said in the doctor's words.
    pub fn describe(self) -> &'static str {
        match self {
            Checks::Nothing => "server certificate not checked",
            Checks::Chain => "server certificate checked against the trusted roots",
            Checks::ChainAndName => {
                "server certificate checked against the trusted roots and the host name"
            }
        }
    }
}

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where trusted roots come from (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    /// The public certificate authorities (`sslrootcert=system`, or no `sslrootcert` with a
    /// `verify-` mode).
    System,
    /// A PEM file of one or more certificates.
    File(PathBuf),
}

/// The URL's TLS parameters, and the URL without those tokio-postgres does not know.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    url: String,
    mode: Mode,
    roots: Option<Roots>,
}

/// Reads `sslmode` and `sslrootcert` from a `postgres://` URL: `verify-ca` and `verify-full`
/// become tokio-postgres's `require`, `sslrootcert` is taken out, the rest is kept as written.
fn split(url: &str) -> Result<Split> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut mode = Mode::Prefer;
    let mut roots = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| StoreError::Config(format!("{key}: not UTF-8 once decoded")))?;
        match key {
            "sslmode" => {
                mode = match &*value {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(StoreError::Config(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        )));
                    }
                };
                let native = match mode {
                    Mode::VerifyCa | Mode::VerifyFull => "require",
                    _ => &value,
                };
                kept.push(format!("sslmode={native}"));
            }
            "sslrootcert" => {
                roots = Some(match &*value {
                    "system" => Roots::System,
                    "" => return Err(StoreError::Config("sslrootcert is empty".to_string())),
                    path => Roots::File(PathBuf::from(path)),
                });
            }
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Split { url, mode, roots })
}

/// How to connect to the database at `url`: its settings, with a connect timeout unless the URL
/// sets one, and TLS as its `sslmode` and `sslrootcert` say.
pub(crate) fn connection(url: &str) -> Result<Connection> {
    let split = split(url)?;
    let mut config = tokio_postgres::Config::from_str(&split.url)
        .map_err(|e| StoreError::Config(format!("not a PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let checks = match (split.mode, &split.roots) {
        (Mode::VerifyFull, _) => Checks::ChainAndName,
        (Mode::VerifyCa, _) | (_, Some(_)) => Checks::Chain,
        _ => Checks::Nothing,
    };
    let roots = match checks {
        Checks::Nothing => None,
        _ => Some(root_store(split.roots.as_ref().unwrap_or(&Roots::System))?),
    };
    let tls = MakeRustlsConnect::new(client_config(roots, checks)?);
    let local = config.get_hosts().iter().all(is_local);
    Ok(Connection {
        config,
        tls,
        checks,
        local,
    })
}

/// Whether a host is this machine: a Unix socket, `localhost` or a loopback address.
fn is_local(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Unix(_) => true,
        tokio_postgres::config::Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// The trusted roots.
fn root_store(roots: &Roots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::File(path) => {
            let shown = path.display();
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Config(format!("sslrootcert {shown}: {e}")))?;
            let (added, _ignored) = store.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(StoreError::Config(format!(
                    "sslrootcert {shown}: no certificate in it (a PEM file is expected)"
                )));
            }
        }
    }
    Ok(store)
}

/// rustls set up to check what `checks` says against `roots`.
fn client_config(roots: Option<RootCertStore>, checks: Checks) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let chain = match roots {
        None => None,
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| StoreError::Config(format!("trusted roots: {e}")))?,
        ),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (chain, checks) {
        (Some(chain), Checks::ChainAndName) => chain,
        (chain, _) => Arc::new(Lenient { chain, algorithms }),
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// What libpq checks and rustls's own verifier (chain and name) does not offer: nothing of the
/// certificate (`prefer` and `require` without roots; the handshake is still checked, so the
/// server holds the key of the certificate it shows), or its chain but not the name it carries
/// (`verify-ca`).
#[derive(Debug)]
struct Lenient {
    /// The chain's verifier; `None`: the certificate is not checked.
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_become_what_tokio_postgres_parses() {
        let s =
            split("postgres://u:p@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(s.url, "postgres://u:p@db/x?sslmode=require");
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(s.roots, Some(Roots::File(PathBuf::from("/etc/ca.pem"))));

        let s = split("postgres://db/x?application_name=a&sslmode=verify-ca&sslrootcert=system")
            .unwrap();
        assert_eq!(s.url, "postgres://db/x?application_name=a&sslmode=require");
        assert_eq!(s.mode, Mode::VerifyCa);
        assert_eq!(s.roots, Some(Roots::System));

        let s = split("postgres://db/x").unwrap();
        assert_eq!(
            s,
            Split {
                url: "postgres://db/x".to_string(),
                mode: Mode::Prefer,
                roots: None
            }
        );
        assert_eq!(
            split("postgres://db/x?sslmode=disable").unwrap().mode,
            Mode::Disable
        );
    }

    #[test]
    fn what_is_checked_follows_libpq() {
        let checks = |url: &str| connection(url).map(|c| c.checks).map_err(|e| e.to_string());
        assert_eq!(checks("postgres://db/x"), Ok(Checks::Nothing));
        assert_eq!(
            checks("postgres://db/x?sslmode=require"),
            Ok(Checks::Nothing)
        );
        assert_eq!(
            checks("postgres://db/x?sslmode=verify-ca"),
            Ok(Checks::Chain)
        );
        assert_eq!(
            checks("postgres://db/x?sslmode=verify-full"),
            Ok(Checks::ChainAndName)
        );
        assert_eq!(
            checks("postgres://db/x?sslmode=require&sslrootcert=system"),
            Ok(Checks::Chain)
        );
    }

    #[test]
    fn loopback_and_sockets_are_local() {
        let local = |url: &str| connection(url).unwrap().local;
        assert!(local("postgres://u@localhost/x"));
        assert!(local("postgres://u@127.0.0.1:5432/x"));
        assert!(local("postgres://u@[::1]:5432/x"));
        assert!(local("postgres://u@%2Fvar%2Frun%2Fpostgresql/x"));
        assert!(!local("postgres://u@db.example.com/x"));
        assert!(!local("postgres://u@10.0.0.5/x"));
        assert!(!local("postgres://u@localhost,db.example.com/x"));
    }

    #[test]
    fn bad_tls_settings_are_named() {
        let error = |url: &str| {
            connection(url)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(error("postgres://db/x?sslmode=allow").contains("sslmode=allow is not one of"));
        assert!(error("postgres://db/x?sslrootcert=").contains("sslrootcert is empty"));
        let missing = error("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        assert!(
            missing.contains("sslrootcert /nonexistent/ca.pem"),
            "{missing}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let url = format!(
            "postgres://db/x?sslmode=verify-ca&sslrootcert={}",
            empty.display()
        );
        assert!(
            error(&url).contains("no certificate in it"),
            "{}",
            error(&url)
        );
    }
}
