//! `repo serve` on loopback with certificates made here: what HTTP gives its clients
//! (HEAD, Range, conditional requests, keep-alive, HTTP/2, gzip for documents), the
//! licence check and its access log, and misbehaving clients (over-long heads, trickling
//! requests, answers left unread, crowds beyond the bound on connections), and stopping.

mod control;
mod licence;
mod links;
mod load;
mod protocol;
mod stop;

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use modhost_repo::licence_key;
use modhost_repo::serve::{MAX_HEAD, Server};
use modhost_test_support::log::Sink;
use modhost_update::index::FORMAT;
use modhost_update::{Entry, Index};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;

type TestResult = Result<(), Box<dyn Error>>;

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
        self.serve_until(out, max, timeout, std::future::pending())
            .0
    }

    /// [`Tls::serve`] until `stop` completes; its address, and its thread, which returns
    /// once the server has stopped. Every test's client is 127.0.0.1: it may hold every
    /// connection.
    fn serve_until(
        &self,
        out: &Path,
        max: usize,
        timeout: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> (
        SocketAddr,
        std::thread::JoinHandle<modhost_repo::Result<()>>,
    ) {
        self.serve_shared(out, max, max, timeout, stop)
    }

    /// [`Tls::serve_until`], one client holding at most `per_client` of the `max`
    /// connections.
    fn serve_shared(
        &self,
        out: &Path,
        max: usize,
        per_client: usize,
        timeout: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> (
        SocketAddr,
        std::thread::JoinHandle<modhost_repo::Result<()>>,
    ) {
        // Every test's server logs where the access-log tests read.
        access_log();
        let server = Server::bind(
            out,
            "127.0.0.1:0",
            &self.file("server.pem"),
            &self.file("server.key"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .max_connections(max)
        .max_per_client(per_client)
        .timeout(timeout);
        let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        (addr, std::thread::spawn(move || server.run_until(stop)))
    }

    /// A client configuration trusting the test CA and offering `alpn`.
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(self.file("ca.pem"));
        assert!(ca.is_ok_and(|ca| roots.add(ca).is_ok()));
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|e| panic!("{e}"));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS connection to `addr`, for requests no HTTP client would send.
    fn connect(&self, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
        self.connect_from(addr, None)
    }

    /// [`Tls::connect`] from the address `source` (another of loopback's, 127.0.0.2, is
    /// another client), or the system's choice.
    fn connect_from(
        &self,
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
    ) -> StreamOwned<ClientConnection, TcpStream> {
        let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        let connection =
            ClientConnection::new(self.client_config(&[]), name).unwrap_or_else(|e| panic!("{e}"));
        let socket = match source {
            None => TcpStream::connect(addr),
            Some(source) => {
                use socket2::{Domain, Socket, Type};
                Socket::new(Domain::for_address(addr), Type::STREAM, None).and_then(|socket| {
                    socket.bind(&SocketAddr::new(source, 0).into())?;
                    socket.connect(&addr.into())?;
                    Ok(TcpStream::from(socket))
                })
            }
        };
        let socket = socket.unwrap_or_else(|e| panic!("{e}"));
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

    /// An HTTP/1.1 client (ureq) trusting the test CA, which reads error statuses as
    /// answers.
    fn agent(&self) -> ureq::Agent {
        let pem = std::fs::read(self.file("ca.pem")).unwrap_or_default();
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(tls)
            .build();
        ureq::Agent::new_with_config(config)
    }
}

/// A built repository holding only an index listing `modules`; the files are added by the
/// test.
fn repository(modules: Vec<Entry>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let index = Index {
        format: FORMAT.into(),
        modules,
        malformed: Vec::new(),
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

/// An index entry for the public package `rawname-1.0.0.tgz`.
fn entry(rawname: &str) -> Entry {
    Entry {
        rawname: rawname.into(),
        name: rawname.into(),
        version: "1.0.0".into(),
        file: format!("{rawname}-1.0.0.tgz"),
        size: 5,
        sha256: "0".repeat(64),
        group: None,
    }
}

fn write(path: &Path, bytes: &[u8]) {
    let written = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(path, bytes));
    assert!(written.is_ok(), "{written:?}");
}

/// Bytes that differ at every offset of a range test: no two windows alike.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Everything logged in this test binary, from every thread: the servers' threads
/// included, so the subscriber is the global one.
fn access_log() -> &'static Sink {
    static LOG: OnceLock<Sink> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Sink::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        assert!(tracing::subscriber::set_global_default(subscriber).is_ok());
        log
    })
}

/// The log so far as text.
fn logged() -> String {
    access_log().text()
}

/// Waits for a log line holding every one of `parts`: the line is written when the answer
/// ends, which may be after the client has it.
fn wait_for_log_line(parts: &[&str]) -> Option<String> {
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(10) {
        let log = logged();
        if let Some(line) = log
            .lines()
            .find(|line| parts.iter().all(|part| line.contains(part)))
        {
            return Some(line.to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

const GET_INDEX: &[u8] =
    b"GET /index.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

// What HTTP gives a client.

/// Takes the one slot of the server at `addr`, serving the repository at `repo`: a
/// download of a package larger than the socket buffers of both ends hold, its status
/// read and the rest left unread, so that the server waits to write.
fn stalled_download(
    tls: &Tls,
    addr: SocketAddr,
    repo: &Path,
) -> StreamOwned<ClientConnection, TcpStream> {
    write(&repo.join("public/packages/big.tgz"), &vec![0; 32 << 20]);
    let mut stalled = tls.connect(addr);
    let mut status = [0; 15];
    let started = stalled
        .write_all(b"GET /packages/big.tgz HTTP/1.1\r\n\r\n")
        .and_then(|()| stalled.flush())
        .and_then(|()| stalled.read_exact(&mut status));
    assert!(started.is_ok(), "{started:?}");
    assert_eq!(&status, b"HTTP/1.1 200 OK");
    stalled
}

/// Asks for the index until it is served, for at most `limit`; `why` says what it means
/// if it never is.
fn served_again_within(tls: &Tls, addr: SocketAddr, limit: Duration, why: &str) {
    let waiting = Instant::now();
    while !tls.exchange(addr, GET_INDEX).starts_with("HTTP/1.1 200 OK") {
        assert!(waiting.elapsed() < limit, "{why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
