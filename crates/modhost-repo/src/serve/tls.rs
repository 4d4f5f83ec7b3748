//! The server's TLS: its certificate chain and key, and the protocols it offers through
//! ALPN.

use std::path::Path;
use std::sync::Arc;

use crate::{Error, Result};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// HTTP/2 first: a client that speaks it gets it; every other gets HTTP/1.1, or HTTP/1.0
/// when that is all it offers (`curl --http1.0`; nginx serves it too), which the HTTP/1
/// server answers as such.
pub(super) const ALPN: [&[u8]; 3] = [b"h2", b"http/1.1", b"http/1.0"];

/// The TLS configuration for the PEM certificate chain `cert` and private key `key`.
pub(super) fn config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| Error::File {
            path: cert.to_owned(),
            message: e.to_string(),
        })?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::File {
        path: key.to_owned(),
        message: e.to_string(),
    })?;
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
