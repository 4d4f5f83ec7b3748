//! `repo serve` against misbehaving clients, on loopback with certificates made here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modhost_repo::licence_key;
use modhost_repo::serve::{MAX_HEAD, Server};
use modhost_update::index::FORMAT;
use modhost_update::{Entry, Index};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;

/// A fresh CA and a certificate for 127.0.0.1 signed by it, as PEM files in a temporary
/// directory: `ca.pem` (what clients trust), `server.pem` and `server.key`.
struct Tls {
    dir: tempfile::TempDir,
}

impl Tls {
    fn new() -> Tls {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        modhost_test_support::tls::generate(dir.path());
        Tls { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `repo serve` over the built repository `out`, serving at most `max` connections and
    /// giving clients `timeout`; its address.
    fn serve(&self, out: &Path, max: usize, timeout: Duration) -> SocketAddr {
        let server = Server::bind(
            out,
            "127.0.0.1:0",
            &self.file("server.pem"),
            &self.file("server.key"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .max_connections(max)
        .timeout(timeout);
        let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || server.run());
        addr
    }

    /// A TLS connection to `addr`, for requests no HTTP client would send.
    fn connect(&self, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(self.file("ca.pem"));
        assert!(ca.is_ok_and(|ca| roots.add(ca).is_ok()));
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|e| panic!("{e}"));
        let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        let connection =
            ClientConnection::new(Arc::new(config), name).unwrap_or_else(|e| panic!("{e}"));
        let socket = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            socket
                .set_read_timeout(Some(Duration::from_secs(20)))
                .is_ok()
        );
        StreamOwned::new(connection, socket)
    }

    /// Sends `request` on a new connection: what came back, empty when the server hung up
    /// without answering.
    fn exchange(&self, addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = self.connect(addr);
        let _ = stream.write_all(request).and_then(|()| stream.flush());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }
}

/// A built repository holding only an index listing `modules`; the files are added by the
/// test.
fn repository(modules: Vec<Entry>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let index = Index {
        format: FORMAT.into(),
        modules,
    };
    let written = std::fs::create_dir_all(dir.path().join("public/packages")).and_then(|()| {
        std::fs::write(
            dir.path().join("public/index.json"),
            serde_json::to_vec(&index).unwrap_or_default(),
        )
    });
    assert!(written.is_ok(), "{written:?}");
    dir
}

fn write(path: &Path, bytes: &[u8]) {
    let written = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(path, bytes));
    assert!(written.is_ok(), "{written:?}");
}

const GET_INDEX: &[u8] = b"GET /index.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[test]
fn an_over_long_request_is_refused_and_the_server_keeps_serving() {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let addr = tls.serve(repo.path(), 4, Duration::from_secs(5));
    // Exactly the limit and no end of line: refused at once, not waited on.
    let line = format!("GET /{}", "a".repeat(MAX_HEAD as usize - 5));
    let answer = tls.exchange(addr, line.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 414 "), "{answer}");
    // Well past the limit: refused (or cut off), never read to its end and answered.
    let line = format!(
        "GET /{} HTTP/1.1\r\n\r\n",
        "a".repeat(4 * MAX_HEAD as usize)
    );
    let answer = tls.exchange(addr, line.as_bytes());
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 414 "),
        "{answer}"
    );
    let headers = format!(
        "GET /index.json HTTP/1.1\r\n{}",
        "X-Padding: aaaaaaaa\r\n".repeat(MAX_HEAD as usize / 20)
    );
    let answer = tls.exchange(addr, headers.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let answer = tls.exchange(addr, GET_INDEX);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[test]
fn connections_beyond_the_cap_are_closed_and_a_client_that_stops_reading_is_dropped() {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    // More than the socket buffers of both ends hold: the server blocks writing it.
    write(
        &repo.path().join("public/packages/big.tgz"),
        &vec![0; 32 << 20],
    );
    let addr = tls.serve(repo.path(), 1, Duration::from_secs(1));
    let mut stalled = tls.connect(addr);
    let mut status = [0; 15];
    let started = stalled
        .write_all(b"GET /packages/big.tgz HTTP/1.1\r\n\r\n")
        .and_then(|()| stalled.flush())
        .and_then(|()| stalled.read_exact(&mut status));
    assert!(started.is_ok(), "{started:?}");
    assert_eq!(&status, b"HTTP/1.1 200 OK");

    assert_eq!(
        tls.exchange(addr, GET_INDEX),
        "",
        "the only connection is taken"
    );
    let waiting = Instant::now();
    while !tls.exchange(addr, GET_INDEX).starts_with("HTTP/1.1 200 OK") {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "the client that stopped reading is never dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stalled);
}

#[test]
fn a_client_trickling_its_request_is_dropped_at_the_timeout() {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let addr = tls.serve(repo.path(), 4, Duration::from_secs(1));
    let mut slow = tls.connect(addr);
    let started = Instant::now();
    // Each byte well within the timeout, and a request that never ends.
    for byte in b"GET /index.json HTTP/1.1\r\nX-Slow: 1\r\n".iter().cycle() {
        if slow
            .write_all(&[*byte])
            .and_then(|()| slow.flush())
            .is_err()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the trickling client is never dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_gated_package_comes_from_the_private_part_with_a_valid_key_only() {
    let tls = Tls::new();
    let entry = Entry {
        rawname: "phonebook".into(),
        name: "Phonebook".into(),
        version: "1.0.0".into(),
        file: "phonebook-1.0.0.tgz".into(),
        size: 5,
        sha256: "0".repeat(64),
        group: Some("pro".into()),
    };
    let repo = repository(vec![entry]);
    let dir = repo.path();
    write(
        &dir.join("private/groups.toml"),
        b"[groups.pro]\nsecret = \"9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8\"\nmodules = [\"phonebook\"]\n",
    );
    write(&dir.join("private/packages/phonebook-1.0.0.tgz"), b"gated");
    write(&dir.join("private/a2/phonebook/1.0.0.tgz"), b"gated-a2");
    write(&dir.join("public/a2/phonebook/modsource.json"), b"{}");
    let addr = tls.serve(dir, 4, Duration::from_secs(5));
    let key = licence_key(
        "9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8",
        "a@example.org",
    );
    let get = |path: &str| {
        tls.exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
        )
    };
    for path in ["/packages/phonebook-1.0.0.tgz", "/a2/phonebook/1.0.0.tgz"] {
        let answer = get(path);
        assert!(
            answer.starts_with("HTTP/1.1 403 ") && answer.contains("\"status\":\"ko\""),
            "{answer}"
        );
        let answer = get(&format!("{path}?email=a%40example.org&key={}", &key[1..]));
        assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    }
    let licensed = format!("?email=a%40example.org&key={key}");
    let answer = get(&format!("/packages/phonebook-1.0.0.tgz{licensed}"));
    assert!(answer.ends_with("\r\n\r\ngated"), "{answer}");
    let answer = get(&format!("/a2/phonebook/1.0.0.tgz{licensed}"));
    assert!(answer.ends_with("\r\n\r\ngated-a2"), "{answer}");
    let answer = get("/a2/phonebook/modsource.json");
    assert!(answer.ends_with("\r\n\r\n{}"), "{answer}");
}
