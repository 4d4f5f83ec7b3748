//! The server's TLS: its certificate chain and key, and the protocols it offers through
//! ALPN.

use std::path::Path;
use std::sync::Arc;

use crate::{Error, Result};
use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// HTTP/2 first: a client that speaks it gets it; every other gets HTTP/1.1, or HTTP/1.0
/// when that is all it offers (`curl --http1.0`; nginx serves it too), which the HTTP/1
/// server answers as such.
pub(super) const ALPN: [&[u8]; 3] = [b"h2", b"http/1.1", b"http/1.0"];

/// What `--tls-cert` must hold.
const NO_CERTIFICATE: &str = "it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`): \
     give the server's certificate, followed by its CA's if any";
/// What `--tls-key` must hold.
const NO_KEY: &str = "it holds no PEM private key (`-----BEGIN PRIVATE KEY-----`): give the \
     key of the server's certificate";

/// A PEM file's problem in words: `missing` when it holds nothing of what was wanted.
fn pem_problem(path: &Path, error: &pem::Error, missing: &str) -> Error {
    let message = match error {
        pem::Error::Io(io) => modhost_update::plain_io(io),
        pem::Error::NoItemsFound => missing.to_owned(),
        other => format!("it is not a valid PEM file ({other})"),
    };
    Error::File {
        path: path.to_owned(),
        message,
    }
}

/// The TLS configuration for the PEM certificate chain `cert` and private key `key`.
pub(super) fn config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| pem_problem(cert, &e, NO_CERTIFICATE))?;
    if chain.is_empty() {
        return Err(Error::File {
            path: cert.to_owned(),
            message: NO_CERTIFICATE.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_problem(key, &e, NO_KEY))?;
    if let Some(problem) = refused_by_clients(&chain) {
        tracing::warn!(
            "`{}`: {problem}; every client will refuse it",
            cert.display()
        );
    }
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
            .map_err(|e| Error::File {
                path: cert.to_owned(),
                message: match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "the key in `{}` is not this certificate's: give the key made with it",
                        key.display()
                    ),
                    e => format!("unusable certificate or key: {e}"),
                },
            })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Why every client would refuse the certificate chain `chain` for itself, whatever name
/// it is reached by: expired, not valid yet, a CA certificate, not for servers. Checked as
/// a client checks it, trusting the chain's last certificate; a chain that does not end
/// at its CA (a leaf alone, from a CA given elsewhere) cannot be checked here, and is not.
fn refused_by_clients(chain: &[CertificateDer<'static>]) -> Option<String> {
    use rustls::CertificateError as E;
    use rustls::client::danger::ServerCertVerifier as _;
    let (leaf, anchor) = (chain.first()?, chain.last()?);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(anchor.clone()).ok()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .ok()?;
    let name = rustls_pki_types::ServerName::try_from("localhost").ok()?;
    let checked = verifier.verify_server_cert(
        leaf,
        &chain[1..],
        &name,
        &[],
        rustls_pki_types::UnixTime::now(),
    );
    // Only what is the certificate's own: the name is checked last, and only clients know
    // the one they use; the issuer, when the chain does not end at it, is not known here.
    let Err(rustls::Error::InvalidCertificate(problem)) = checked else {
        return None;
    };
    let own = match &problem {
        E::Expired | E::ExpiredContext { .. } | E::NotValidYet | E::NotValidYetContext { .. } => {
            true
        }
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => true,
        E::Other(other) => other.to_string() == "CaUsedAsEndEntity",
        _ => false,
    };
    own.then(|| modhost_update::certificate_problem(&problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `config` says of `cert` and `key`, its error's text.
    fn refusal(cert: &Path, key: &Path) -> String {
        config(cert, key)
            .map(|_| ())
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn a_missing_swapped_or_unreadable_certificate_or_key_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = modhost_test_support::tls::generate(dir.path());
        assert!(config(&files.cert, &files.key).is_ok());
        let missing = dir.path().join("nosuch.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "garbage").unwrap_or_else(|e| panic!("{e}"));
        for (cert, key, expected) in [
            (&files.cert, &missing, "nosuch.pem`: no such file"),
            (&missing, &files.key, "nosuch.pem`: no such file"),
            (&files.key, &files.cert, "it holds no PEM certificate"),
            (&files.cert, &files.cert, "it holds no PEM private key"),
            (&files.cert, &garbage, "it holds no PEM private key"),
            (
                &files.cert,
                &dir.path().to_owned(),
                "it is a directory, not a file",
            ),
        ] {
            let message = refusal(cert, key);
            assert!(
                message.contains(expected) && !message.contains("os error"),
                "{cert:?} {key:?}: {message}"
            );
        }
        // Another certificate's key: said as that, naming the key's file.
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let other = modhost_test_support::tls::generate(other.path());
        let message = refusal(&files.cert, &other.key);
        assert!(
            message.contains(&format!(
                "the key in `{}` is not this certificate's",
                other.key.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn a_certificate_every_client_refuses_is_said_and_one_they_take_is_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = modhost_test_support::tls::generate(dir.path());
        let chain = |paths: &[&Path]| -> Vec<CertificateDer<'static>> {
            paths
                .iter()
                .flat_map(|p| CertificateDer::pem_file_iter(p).into_iter().flatten())
                .flatten()
                .collect()
        };
        // A CA's own certificate served as the server's (`openssl req -x509`'s default).
        let refused = refused_by_clients(&chain(&[&files.ca]));
        assert!(
            refused
                .as_deref()
                .is_some_and(|r| r.contains("is a CA certificate")),
            "{refused:?}"
        );
        // The server's, with its CA, and the server's alone (its CA given elsewhere).
        assert_eq!(refused_by_clients(&chain(&[&files.cert, &files.ca])), None);
        assert_eq!(refused_by_clients(&chain(&[&files.cert])), None);
    }
}
