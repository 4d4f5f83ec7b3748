//! What the tests of the client share: a CA and an HTTPS server on loopback made here,
//! and a publisher signing as minisign does.

#![allow(dead_code, reason = "each test file uses its own part of it")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blake2::{Blake2b512, Digest};
use ed25519_dalek::{Signer as _, SigningKey};
use modhost_update::{Client, Digests, Location, PublicKey, Release};
use rustls::ServerConfig;
use sha2::Sha256;

/// A fresh CA and a certificate for 127.0.0.1 signed by it, as PEM files in a temporary
/// directory: `ca.pem` (what clients trust), `server.pem` and `server.key`.
pub struct Tls {
    pub dir: tempfile::TempDir,
}

impl Tls {
    /// Certificates made now, in a directory of their own.
    pub fn new() -> Tls {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        modhost_test_support::tls::generate(dir.path());
        Tls { dir }
    }

    /// The file `name` of the directory: `ca.pem`, `server.pem`, `server.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client trusting this CA, patient for `timeout`.
    pub fn client(&self) -> Client {
        Client::new(Some(&self.file("ca.pem")), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        modhost_test_support::tls::TlsFiles {
            ca: self.file("ca.pem"),
            cert: self.file("server.pem"),
            key: self.file("server.key"),
        }
        .server_config()
    }

    /// An HTTPS server on loopback that answers each request, one connection at a time,
    /// with the raw bytes `answer` gives for its request line; its base URL.
    pub fn scripted(&self, answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> String {
        self.streaming(move |request, out| {
            // The client may hang up on an answer it refuses half-way.
            let _ = out.write_all(&answer(request));
        })
    }

    /// An HTTPS server on loopback that answers each request, one connection at a time,
    /// by writing to the connection what `answer` writes for its request line (for as
    /// long as it likes: an endless answer ends when the client hangs up); its base URL.
    pub fn streaming(&self, answer: impl Fn(&str, &mut dyn Write) + Send + 'static) -> String {
        serve(self.server_config(), answer)
    }

    /// An HTTPS server on loopback that answers each request, one connection at a time,
    /// with the raw bytes `answer` gives for its request line and header lines.
    pub fn with_heads(
        &self,
        answer: impl Fn(&str, &[String]) -> Vec<u8> + Send + 'static,
    ) -> String {
        serve_heads(self.server_config(), move |request, headers, out| {
            let _ = out.write_all(&answer(request, headers));
        })
    }
}

use modhost_test_support::tls::{serve, serve_heads};

/// An answer with status `status` and `body`.
pub fn answer(status: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Files served over HTTPS by path (`/index.json`), changed while it serves: what a
/// static web server or a CDN in front of a repository answers.
pub struct Site {
    /// The site's URL.
    pub url: String,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Site {
    /// A site with no files yet, served with `tls`'s certificate.
    pub fn new(tls: &Tls) -> Site {
        let files = Arc::new(Mutex::new(BTreeMap::<String, Vec<u8>>::new()));
        let served = Arc::clone(&files);
        let url = tls.scripted(move |request| {
            let path = request.split_whitespace().nth(1).unwrap_or_default();
            let path = path
                .split('?')
                .next()
                .unwrap_or_default()
                .trim_start_matches('/');
            match served
                .lock()
                .ok()
                .and_then(|files| files.get(path).cloned())
            {
                Some(body) => answer("200 OK", &body),
                None => answer("404 Not Found", b"no such file"),
            }
        });
        Site { url, files }
    }

    /// Serves `bytes` at `path`.
    pub fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        if let Ok(mut files) = self.files.lock() {
            files.insert(path.to_owned(), bytes.into());
        }
    }

    /// What is served at `path`.
    pub fn get(&self, path: &str) -> Vec<u8> {
        self.files
            .lock()
            .ok()
            .and_then(|files| files.get(path).cloned())
            .unwrap_or_default()
    }

    /// Serves nothing at `path` any more.
    pub fn remove(&self, path: &str) {
        if let Ok(mut files) = self.files.lock() {
            files.remove(path);
        }
    }
}

/// A publisher's key, signing as `minisign -S` does (and `-S -l`, for legacy signatures).
pub struct Signer {
    key: SigningKey,
    id: [u8; 8],
}

impl Signer {
    /// The key made from `seed`: the same seed, the same key.
    pub fn new(seed: u8) -> Signer {
        Signer {
            key: SigningKey::from_bytes(&[seed; 32]),
            id: [seed, 1, 2, 3, 4, 5, 6, 7],
        }
    }

    /// Its public key, as a source pins it.
    pub fn public(&self) -> PublicKey {
        let line = STANDARD.encode(
            [
                &b"Ed"[..],
                &self.id[..],
                &self.key.verifying_key().to_bytes()[..],
            ]
            .concat(),
        );
        PublicKey::parse(&line).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A prehashed signature of `data` with `comment` as its trusted comment.
    pub fn sign(&self, data: &[u8], comment: &str) -> String {
        self.signature(*b"ED", &Blake2b512::digest(data), comment)
    }

    /// A legacy signature of `data`, over the document itself (`minisign -S -l`).
    pub fn sign_legacy(&self, data: &[u8], comment: &str) -> String {
        self.signature(*b"Ed", data, comment)
    }

    fn signature(&self, algorithm: [u8; 2], signed: &[u8], comment: &str) -> String {
        let signature = self.key.sign(signed).to_bytes();
        let global = self
            .key
            .sign(&[&signature[..], comment.as_bytes()].concat())
            .to_bytes();
        format!(
            "untrusted comment: test signature\n{}\ntrusted comment: {comment}\n{}\n",
            STANDARD.encode([&algorithm[..], &self.id[..], &signature[..]].concat()),
            STANDARD.encode(global)
        )
    }
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A release at `url` whose package is `package`.
pub fn release(url: &str, package: &[u8]) -> Release {
    let mut digests = Digests::default();
    assert!(digests.set("sha256", &sha256_hex(package)).is_ok());
    Release {
        rawname: "phonebook".into(),
        name: "Phonebook".into(),
        version: "1.0.0".into(),
        location: Location::Url(url.to_owned()),
        document: None,
        size: Some(package.len() as u64),
        digests,
        gated: true,
        supported: None,
    }
}
