//! Certificates for tests: a CA and a server certificate for 127.0.0.1 and localhost, and
//! a scripted HTTPS server on loopback that answers with them.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// The PEM files a test server and its clients need.
pub struct TlsFiles {
    /// The CA certificate clients trust (`--ca-cert`).
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Generates a fresh CA and a server certificate signed by it, into `dir`.
pub fn generate(dir: &Path) -> TlsFiles {
    let fail = |e: rcgen::Error| -> ! { panic!("rcgen: {e}") };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(|e| fail(e));
    let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .and_then(|params| params.signed_by(&key, &ca))
        .unwrap_or_else(|e| fail(e));
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    for (path, text) in [
        (&files.ca, ca.pem()),
        (&files.cert, cert.pem()),
        (&files.key, key.serialize_pem()),
    ] {
        assert!(std::fs::write(path, text).is_ok(), "write {path:?}");
    }
    files
}

/// A server configuration with the certificate `chain` and its `key`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(config)
}

impl TlsFiles {
    /// A server configuration with this certificate and key.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("{e}"));
        let key = PrivateKeyDer::from_pem_file(&self.key).unwrap_or_else(|e| panic!("{e}"));
        server_config(chain, key)
    }
}

/// An HTTPS server on loopback under `config` that answers each request, one connection
/// at a time, by writing to the connection what `answer` writes for its request line (for
/// as long as it likes: an endless answer ends when the client hangs up); its base URL.
pub fn serve(
    config: Arc<ServerConfig>,
    answer: impl Fn(&str, &mut dyn Write) + Send + 'static,
) -> String {
    serve_heads(config, move |request_line, _, out| {
        answer(request_line, out)
    })
}

/// As [`serve`], with the request's header lines (`Name: value`, without line ends) given
/// to `answer` beside its request line: for tests of what a client sends.
pub fn serve_heads(
    config: Arc<ServerConfig>,
    answer: impl Fn(&str, &[String], &mut dyn Write) + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "https://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(connection) = ServerConnection::new(Arc::clone(&config)) else {
                continue;
            };
            let mut tls = StreamOwned::new(connection, stream);
            let mut reader = BufReader::new(&mut tls);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                headers.push(line.trim_end().to_owned());
                line.clear();
            }
            answer(&request_line, &headers, &mut tls);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    url
}
