//! The client against misbehaving HTTPS servers, on loopback with certificates made here.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use modhost_update::index::MAX_INDEX;
use modhost_update::{Client, Digests, Error, Kind, Location, Release, Source, Target};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// A fresh CA and a certificate for 127.0.0.1 signed by it, as PEM files in a temporary
/// directory: `ca.pem` (what clients trust), `server.pem` and `server.key`.
struct Tls {
    dir: tempfile::TempDir,
}

impl Tls {
    fn new() -> Tls {
        let fail = |e: rcgen::Error| -> ! { panic!("rcgen: {e}") };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let ca = CertifiedIssuer::self_signed(params, ca_key).unwrap_or_else(|e| fail(e));
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .and_then(|params| params.signed_by(&key, &ca))
            .unwrap_or_else(|e| fail(e));
        for (name, text) in [
            ("ca.pem", ca.pem()),
            ("server.pem", cert.pem()),
            ("server.key", key.serialize_pem()),
        ] {
            let path = dir.path().join(name);
            assert!(std::fs::write(&path, text).is_ok(), "write {path:?}");
        }
        Tls { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client trusting this CA, patient for `timeout`.
    fn client(&self) -> Client {
        Client::new(Some(&self.file("ca.pem")), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_file_iter(self.file("server.pem"))
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("{e}"));
        let key =
            PrivateKeyDer::from_pem_file(self.file("server.key")).unwrap_or_else(|e| panic!("{e}"));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
                .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(config)
    }

    /// An HTTPS server on loopback that answers each request, one connection at a time,
    /// with the raw bytes `answer` gives for its request line; its base URL.
    fn scripted(&self, answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "https://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let config = self.server_config();
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
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                // The client may hang up on an answer it refuses half-way.
                let _ = tls.write_all(&answer(&request_line));
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        url
    }
}

/// An answer with status `status` and `body`.
fn answer(status: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A release at `url` whose package is `package`.
fn release(url: &str, package: &[u8]) -> Release {
    let mut digests = Digests::default();
    let sha256: String = Sha256::digest(package)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(digests.set("sha256", &sha256).is_ok());
    Release {
        rawname: "phonebook".into(),
        name: "Phonebook".into(),
        version: "1.0.0".into(),
        location: Location::Url(url.to_owned()),
        size: Some(package.len() as u64),
        digests,
        gated: true,
    }
}

fn download(client: &Client, release: &Release, dir: &Path) -> Result<(), Error> {
    client.download(release, None, &dir.join("p.tgz"), &mut |_, _| {})
}

#[test]
fn a_refusal_answered_with_status_200_is_the_servers_message_not_a_mismatch() {
    let tls = Tls::new();
    let url = tls.scripted(|_| {
        answer(
            "200 OK",
            br#"{ "status": "ko", "error_code": "REL_ENS", "error_description": "Email not specified" }"#,
        )
    });
    let release = release(&format!("{url}/get/release/download/pb_100"), &[0x1f; 4000]);
    match download(&tls.client(), &release, tls.dir.path()) {
        Err(Error::Server { message, .. }) => {
            assert_eq!(message, "Email not specified (error REL_ENS)")
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn a_redirect_to_plain_http_is_refused_without_connecting() {
    let tls = Tls::new();
    let plain = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = plain.local_addr().map(|a| a.port()).unwrap_or(1);
    let url = tls.scripted(move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/pb.tgz\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let release = release(&format!("{url}/pb.tgz"), b"package");
    let result = download(&tls.client(), &release, tls.dir.path());
    assert!(matches!(result, Err(Error::Fetch { .. })), "{result:?}");
    assert!(plain.set_nonblocking(true).is_ok());
    assert!(
        plain.accept().is_err(),
        "the plain-HTTP address was never contacted"
    );
}

#[test]
fn an_index_over_the_limit_is_refused_even_without_a_content_length() {
    let tls = Tls::new();
    let url = tls.scripted(|_| {
        let chunk = vec![b' '; 64 * 1024];
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=(MAX_INDEX / chunk.len() as u64) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    });
    let source = Source {
        name: "big".into(),
        kind: Kind::Index,
        location: Location::Url(url),
        public_key: None,
        extra_query: None,
    };
    let target = Target {
        platform: "modhost".into(),
        version: String::new(),
        stability: Default::default(),
    };
    match tls.client().releases(&source, None, &target) {
        Err(Error::Fetch { message, .. }) => assert!(message.contains("limit"), "{message}"),
        other => panic!("expected the size limit, got {other:?}"),
    }
}
