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
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
            .map_err(|e| Error::File {
                path: cert.to_owned(),
                message: format!("unusable certificate or key: {e}"),
            })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
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
    }
}
