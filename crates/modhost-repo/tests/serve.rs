//! `repo serve` on loopback with certificates made here: what HTTP gives its clients
//! (HEAD, Range, conditional requests, keep-alive, HTTP/2, gzip for documents), the
//! licence check and its access log, and misbehaving clients (over-long heads, trickling
//! requests, answers left unread, crowds beyond the bound on connections).

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use modhost_repo::licence_key;
use modhost_repo::serve::{MAX_HEAD, Server};
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
        .timeout(timeout);
        let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || server.run());
        addr
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
        let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        let connection =
            ClientConnection::new(self.client_config(&[]), name).unwrap_or_else(|e| panic!("{e}"));
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
fn access_log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&sink)))
            .finish();
        assert!(tracing::subscriber::set_global_default(subscriber).is_ok());
        log
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log so far as text.
fn logged() -> String {
    let log = access_log().lock().map(|l| l.clone()).unwrap_or_default();
    String::from_utf8_lossy(&log).into_owned()
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

#[test]
fn range_requests_get_the_bytes_asked_for_or_416() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let package = pattern(100_000);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        &package,
    );
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let url = format!("https://{addr}/packages/core-1.0.0.tgz");
    let agent = tls.agent();

    let mut response = agent
        .get(&url)
        .header("Range", "bytes=1000-1999")
        // A package is never gzipped, asked for in ranges or not.
        .header("Accept-Encoding", "gzip")
        .call()?;
    assert_eq!(response.status(), 206);
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some("bytes 1000-1999/100000")
    );
    assert_eq!(header(&response, "content-encoding"), None);
    assert_eq!(response.body_mut().read_to_vec()?, &package[1000..2000]);

    let mut response = agent.get(&url).header("Range", "bytes=99990-").call()?;
    assert_eq!(response.status(), 206);
    assert_eq!(response.body_mut().read_to_vec()?, &package[99_990..]);

    let response = agent.get(&url).header("Range", "bytes=100000-").call()?;
    assert_eq!(response.status(), 416);
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some("bytes */100000")
    );
    Ok(())
}

#[test]
fn conditional_gets_are_answered_304_with_the_validators() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        b"bytes",
    );
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let agent = tls.agent();
    for (path, cache) in [
        ("/index.json", "no-cache"),
        ("/packages/core-1.0.0.tgz", "public, max-age=3600"),
    ] {
        let url = format!("https://{addr}{path}");
        let first = agent.get(&url).call()?;
        assert_eq!(first.status(), 200);
        let value = |name: &str| {
            first
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let (etag, modified) = (value("etag"), value("last-modified"));
        assert!(etag.starts_with('"'), "{path}: strong ETag, got {etag:?}");
        assert!(!modified.is_empty(), "{path}: no Last-Modified");
        assert_eq!(value("cache-control"), cache, "{path}");

        let mut again = agent.get(&url).header("If-None-Match", &etag).call()?;
        assert_eq!(again.status(), 304, "{path}: If-None-Match");
        assert!(again.body_mut().read_to_vec()?.is_empty());
        let again = agent
            .get(&url)
            .header("If-Modified-Since", &modified)
            .call()?;
        assert_eq!(again.status(), 304, "{path}: If-Modified-Since");
        let changed = agent
            .get(&url)
            .header("If-None-Match", "\"another\"")
            .call()?;
        assert_eq!(changed.status(), 200, "{path}: another ETag");
    }
    Ok(())
}

#[test]
fn head_answers_the_headers_of_get_without_a_body_and_other_methods_get_405() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let package = pattern(70_000);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        &package,
    );
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let agent = tls.agent();
    let url = format!("https://{addr}/packages/core-1.0.0.tgz");

    let mut head = agent.head(&url).call()?;
    assert_eq!(head.status(), 200);
    let header = |name: &str| {
        head.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-length").as_deref(), Some("70000"));
    assert_eq!(header("content-type").as_deref(), Some("application/gzip"));
    assert_eq!(header("accept-ranges").as_deref(), Some("bytes"));
    assert!(head.body_mut().read_to_vec()?.is_empty());

    let mut post = agent.post(&url).send(&b"x"[..])?;
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    assert!(
        post.body_mut()
            .read_to_string()?
            .contains("\"status\":\"ko\"")
    );
    Ok(())
}

#[test]
fn two_requests_share_one_kept_alive_connection() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        b"bytes",
    );
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let mut connection = BufReader::new(tls.connect(addr));
    for (path, body) in [
        ("/index.json", index.as_slice()),
        ("/packages/core-1.0.0.tgz", b"bytes".as_slice()),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        connection.get_mut().write_all(request.as_bytes())?;
        connection.get_mut().flush()?;
        let (head, answer) = read_answer(&mut connection)?;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{path}: {head}");
        assert!(!head.to_ascii_lowercase().contains("connection: close"));
        assert_eq!(answer, body, "{path}");
    }
    Ok(())
}

/// Reads one HTTP/1.1 answer with a Content-Length from `connection`: its head and body.
fn read_answer(
    connection: &mut BufReader<StreamOwned<ClientConnection, TcpStream>>,
) -> Result<(String, Vec<u8>), Box<dyn Error>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if connection.read_line(&mut line)? == 0 {
            return Err("the connection ended before the answer".into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .ok_or("no content-length")?;
    let mut body = vec![0; length];
    connection.read_exact(&mut body)?;
    Ok((head, body))
}

#[test]
fn http2_is_negotiated_through_alpn() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let package = pattern(300_000);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        &package,
    );
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let connector = tokio_rustls::TlsConnector::from(tls.client_config(&[b"h2", b"http/1.1"]));
        let stream = connector
            .connect(ServerName::try_from("127.0.0.1")?, tcp)
            .await?;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await?;
        tokio::spawn(connection);
        // Both on the one connection at once, as HTTP/2 streams.
        let get = |path: &str| {
            let mut sender = sender.clone();
            let request =
                http::Request::get(format!("https://127.0.0.1{path}")).body(Empty::<Bytes>::new());
            tokio::spawn(async move {
                let response = sender
                    .send_request(request.map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| e.to_string())?;
                let (version, status) = (response.version(), response.status());
                let body = response.into_body().collect().await;
                Ok::<_, String>((version, status, body.map_err(|e| e.to_string())?.to_bytes()))
            })
        };
        let (document, package_answer) = (get("/index.json"), get("/packages/core-1.0.0.tgz"));
        let (document, package_answer) = (document.await??, package_answer.await??);
        for ((version, status, body), expected) in [
            (document, index.as_slice()),
            (package_answer, package.as_slice()),
        ] {
            assert_eq!(version, http::Version::HTTP_2);
            assert_eq!(status, 200);
            assert_eq!(body.as_ref(), expected);
        }
        Ok::<_, Box<dyn Error>>(())
    })?;
    Ok(())
}

#[test]
fn documents_are_gzipped_for_clients_that_accept_it_and_packages_never() -> TestResult {
    let tls = Tls::new();
    let repo = repository((0..20).map(|i| entry(&format!("module{i}"))).collect());
    let package = pattern(50_000);
    write(
        &repo.path().join("public/packages/module0-1.0.0.tgz"),
        &package,
    );
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let agent = tls.agent();

    let mut document = agent
        .get(format!("https://{addr}/index.json"))
        .header("Accept-Encoding", "gzip")
        .call()?;
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&document, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert!(header(&document, "vary").is_some_and(|v| v.eq_ignore_ascii_case("accept-encoding")));
    // The ETag names the plain bytes: the gzipped answer only matches it weakly.
    assert!(header(&document, "etag").is_some_and(|e| e.starts_with("W/\"")));
    let gzipped = document.body_mut().read_to_vec()?;
    assert!(gzipped.len() < index.len());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gzipped.as_slice()).read_to_end(&mut plain)?;
    assert_eq!(plain, index);

    let mut identity = agent.get(format!("https://{addr}/index.json")).call()?;
    assert_eq!(header(&identity, "content-encoding"), None);
    assert_eq!(identity.body_mut().read_to_vec()?, index);

    let mut package_answer = agent
        .get(format!("https://{addr}/packages/module0-1.0.0.tgz"))
        .header("Accept-Encoding", "gzip")
        .call()?;
    assert_eq!(header(&package_answer, "content-encoding"), None);
    assert_eq!(package_answer.body_mut().read_to_vec()?, package);
    Ok(())
}

#[test]
fn every_file_of_the_public_part_is_served_and_nothing_beside_it() -> TestResult {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let dir = repo.path();
    write(&dir.join("public/release.json"), b"{\"serial\":1}");
    write(&dir.join("public/release.json.minisig"), b"signature");
    write(&dir.join("public/joomla/core.xml"), b"<updates/>");
    write(&dir.join("private/groups.toml"), b"[groups]");
    write(&dir.join("secret.txt"), b"secret");
    let addr = tls.serve(dir, 8, Duration::from_secs(5));
    let agent = tls.agent();
    for (path, content_type) in [
        ("/release.json", "application/json"),
        ("/release.json.minisig", "text/plain"),
        ("/joomla/core.xml", "application/xml"),
    ] {
        let answer = agent.get(format!("https://{addr}{path}")).call()?;
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type),
            "{path}"
        );
    }
    for path in [
        "/",
        "/packages",
        "/private/groups.toml",
        "/../private/groups.toml",
        "/%2e%2e/secret.txt",
        "/.hidden",
    ] {
        let mut answer = agent.get(format!("https://{addr}{path}")).call()?;
        assert_eq!(answer.status(), 404, "{path}");
        assert!(
            answer
                .body_mut()
                .read_to_string()?
                .contains("\"status\":\"ko\"")
        );
    }
    Ok(())
}

// The licence check, and what the access log keeps of it.

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
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
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
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("cache-control: private"),
        "{answer}"
    );
    let answer = get(&format!("/a2/phonebook/1.0.0.tgz{licensed}"));
    assert!(answer.ends_with("\r\n\r\ngated-a2"), "{answer}");
    let answer = get("/a2/phonebook/modsource.json");
    assert!(answer.ends_with("\r\n\r\n{}"), "{answer}");

    // One line per request, with the path but never the query that carries the key.
    let peer = "peer=127.0.0.1:";
    for (path, status, bytes) in [
        ("/packages/phonebook-1.0.0.tgz", "status=403", ""),
        ("/packages/phonebook-1.0.0.tgz", "status=200", "bytes=5 "),
        ("/a2/phonebook/1.0.0.tgz", "status=200", "bytes=8 "),
    ] {
        let line = wait_for_log_line(&[
            "modhost_repo::access",
            "method=GET",
            &format!("path={path} "),
            status,
            bytes,
            peer,
            "duration_ms=",
        ]);
        assert!(line.is_some(), "no access-log line for {path} {status}");
    }
    let log = logged();
    for secret in [key.as_str(), "a%40example.org", "a@example.org", "email="] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

// Misbehaving clients.

#[test]
fn an_over_long_request_is_refused_and_the_server_keeps_serving() {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let addr = tls.serve(repo.path(), 4, Duration::from_secs(5));
    // Exactly the limit and no end of line: refused at once, not waited on. hyper refuses
    // any head past the limit, its request line included, as 431.
    let line = format!("GET /{}", "a".repeat(MAX_HEAD as usize - 5));
    let answer = tls.exchange(addr, line.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    // Well past the limit: refused (or cut off), never read to its end and answered.
    let line = format!(
        "GET /{} HTTP/1.1\r\n\r\n",
        "a".repeat(4 * MAX_HEAD as usize)
    );
    let answer = tls.exchange(addr, line.as_bytes());
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
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
fn connections_beyond_the_cap_are_answered_503_and_a_client_that_stops_reading_is_dropped() {
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

    let refused = tls.exchange(addr, GET_INDEX);
    assert!(
        refused.starts_with("HTTP/1.1 503 ")
            && refused
                .to_ascii_lowercase()
                .contains("\r\nretry-after: 1\r\n"),
        "the only connection is taken: {refused}"
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
fn a_client_trickling_its_tls_handshake_is_dropped_at_the_timeout() -> TestResult {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let addr = tls.serve(repo.path(), 4, Duration::from_secs(1));
    let mut slow = TcpStream::connect(addr)?;
    slow.set_read_timeout(Some(Duration::from_millis(100)))?;
    let started = Instant::now();
    // The start of a ClientHello record far longer than what is sent, a byte at a time.
    let record = [0x16, 0x03, 0x01, 0x3f, 0xff];
    for byte in record.iter().chain(std::iter::repeat(&0)) {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        let mut answer = [0; 1];
        match slow.read(&mut answer) {
            // Nothing yet: the server still waits for the rest.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            _ => break,
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the trickling handshake is never dropped"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    Ok(())
}

#[test]
fn sixty_four_trickling_clients_do_not_keep_a_normal_client_from_being_served() {
    const TRICKLING: usize = 64;
    let timeout = Duration::from_secs(3);
    let tls = Arc::new(Tls::new());
    let repo = repository(Vec::new());
    // As many slots as tricklers: they hold every one until the deadline cuts them.
    let addr = tls.serve(repo.path(), TRICKLING, timeout);
    let connected = Arc::new(Barrier::new(TRICKLING + 1));
    let tricklers: Vec<_> = (0..TRICKLING)
        .map(|_| {
            let (tls, connected) = (Arc::clone(&tls), Arc::clone(&connected));
            std::thread::spawn(move || {
                let mut slow = tls.connect(addr);
                let handshake = slow.conn.complete_io(&mut slow.sock);
                connected.wait();
                let started = Instant::now();
                if handshake.is_ok() {
                    for byte in b"GET /index.json HTTP/1.1\r\nX-Slow: 1\r\n".iter().cycle() {
                        let sent = slow.write_all(&[*byte]).and_then(|()| slow.flush());
                        if sent.is_err() || started.elapsed() > Duration::from_secs(30) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1500));
                    }
                }
                (handshake.is_ok(), started.elapsed())
            })
        })
        .collect();
    connected.wait();

    let agent = tls.agent();
    let started = Instant::now();
    let mut attempts = Vec::new();
    let served = loop {
        let answer = agent.get(format!("https://{addr}/index.json")).call();
        let Ok(mut answer) = answer else {
            panic!("the normal client was not answered: {answer:?}");
        };
        let status = answer.status().as_u16();
        attempts.push(status);
        if status == 200 {
            break answer.body_mut().read_to_vec().unwrap_or_default();
        }
        assert_eq!(status, 503, "{attempts:?}");
        let retry = answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        assert_eq!(retry, Some(1), "a 503 says when to retry");
        std::thread::sleep(Duration::from_secs(1));
    };
    let waited = started.elapsed();
    assert!(!served.is_empty());
    assert!(
        waited < timeout + Duration::from_secs(4),
        "served after {waited:?} ({attempts:?})"
    );
    for trickler in tricklers {
        let joined = trickler.join();
        let Ok((handshaken, lasted)) = joined else {
            panic!("a trickler panicked");
        };
        assert!(handshaken);
        // Cut at the deadline; the client notices at its next byte or the one after.
        assert!(
            lasted < timeout + Duration::from_secs(5),
            "a trickler lasted {lasted:?}"
        );
    }
}

#[test]
fn five_hundred_concurrent_clients_are_each_answered() {
    const CLIENTS: usize = 500;
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let addr = tls.serve(repo.path(), 64, Duration::from_secs(10));
    let agent = tls.agent();
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (agent, start) = (agent.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut answer = agent
                    .get(format!("https://{addr}/index.json"))
                    .call()
                    .map_err(|e| e.to_string())?;
                let retry = answer.headers().contains_key("retry-after");
                let body = answer.body_mut().read_to_vec().map_err(|e| e.to_string())?;
                Ok::<_, String>((answer.status().as_u16(), retry, body.len()))
            })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for client in clients {
        match client.join() {
            Ok(Ok((200, _, len))) if len > 0 => served += 1,
            Ok(Ok((503, true, _))) => refused += 1,
            other => panic!("a client was not answered as it should be: {other:?}"),
        }
    }
    assert_eq!(served + refused, CLIENTS);
    assert!(served >= 64, "{served} served, {refused} refused");
}
