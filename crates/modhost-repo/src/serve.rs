//! A small HTTPS server for a built repository, for tests and small sites: the static files
//! of its public part, plus the packages of gated groups from its private part after a
//! licence check (seed 003's jBackend behaviour).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use modhost_package::Format;
use modhost_update::{Error, Index, Result};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Groups, PRIVATE, PUBLIC, licence_key_matches};

/// How many connections a server serves at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request, or stall its answer by not reading it,
/// unless the server is told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound HTTPS server over a repository directory.
pub struct Server {
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    root: PathBuf,
    max_connections: usize,
    timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("root", &self.root).finish()
    }
}

impl Server {
    /// Binds `listen` (port 0 picks a free one) with the PEM certificate chain and key, to
    /// serve `root`, a directory [`crate::build()`] wrote.
    pub fn bind(root: &Path, listen: &str, cert: &Path, key: &Path) -> Result<Self> {
        let public = root.join(PUBLIC);
        if !public.is_dir() {
            return Err(Error::File {
                path: public,
                message: "not found: serve the --out directory of `repo build`".into(),
            });
        }
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
        let tls =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
                .map_err(|e| Error::File {
                    path: cert.to_owned(),
                    message: format!("unusable certificate or key: {e}"),
                })?;
        let listener = TcpListener::bind(listen).map_err(|e| Error::Fetch {
            url: listen.to_owned(),
            message: format!("cannot listen: {e}"),
        })?;
        Ok(Server {
            listener,
            tls: Arc::new(tls),
            root: root.to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Serves at most `max` connections at once: more are closed unanswered, so that
    /// clients holding connections open cannot exhaust the machine's threads.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Gives a client `timeout` to send its whole request, however it trickles, and drops
    /// one that stops reading its answer for as long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Fetch {
            url: "listener".into(),
            message: e.to_string(),
        })
    }

    /// Serves until the process ends, one thread per connection.
    pub fn run(self) -> Result<()> {
        let root = Arc::new(self.root);
        let open = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            let already = open.fetch_add(1, Ordering::SeqCst);
            let slot = Slot(Arc::clone(&open));
            if already >= self.max_connections {
                tracing::debug!("connection closed: {} already open", self.max_connections);
                continue;
            }
            let (tls, root, timeout) = (Arc::clone(&self.tls), Arc::clone(&root), self.timeout);
            // The slot is freed when the thread ends, or with the closure if it cannot start.
            let spawned = std::thread::Builder::new().spawn(move || {
                let _slot = slot;
                if let Err(e) = handle(stream, tls, &root, timeout) {
                    tracing::debug!("connection ended: {e}");
                }
            });
            if let Err(e) = spawned {
                tracing::warn!("connection closed: cannot start a thread: {e}");
            }
        }
        Ok(())
    }
}

/// One counted connection: the count goes down when it is dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The most of a request (line and headers) that is read: a longer one is refused.
pub const MAX_HEAD: u64 = 16 * 1024;

type Tls = StreamOwned<ServerConnection, TcpStream>;

fn handle(
    stream: TcpStream,
    tls: Arc<ServerConfig>,
    root: &Path,
    timeout: Duration,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(timeout))?;
    let connection = ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(connection, stream);
    let deadline = Instant::now() + timeout;
    let (status, content_type, body) = match read_head(&mut tls, deadline)? {
        Ok(request_line) => {
            let target = request_line.split_whitespace().nth(1).unwrap_or("/");
            respond(root, &request_line, target)
        }
        Err(refusal) => refusal,
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(&body)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// Reads a request's head, at most [`MAX_HEAD`] bytes of it, before `deadline`: its
/// request line, or the answer refusing a head that is too long.
fn read_head(tls: &mut Tls, deadline: Instant) -> std::io::Result<Result<String, Answer>> {
    let mut reader = BufReader::new(Deadline { tls, deadline }).take(MAX_HEAD);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // A line cut short by the limit is refused; one cut short by the client hanging up
    // ends the connection.
    let too_long = |reader: &std::io::Take<_>, (status, code, what)| {
        if reader.limit() == 0 {
            Ok(Err(ko(status, code, what)))
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
    };
    if !request_line.ends_with('\n') {
        return too_long(
            &reader,
            ("414 URI Too Long", 414, "the request line is too long"),
        );
    }
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line == "\n" {
            return Ok(Ok(request_line));
        }
        if !line.ends_with('\n') {
            return too_long(
                &reader,
                (
                    "431 Request Header Fields Too Large",
                    431,
                    "the request's headers are too long",
                ),
            );
        }
    }
}

/// Reads a TLS connection until `deadline`, however slowly the client trickles: each read
/// waits only for what is left of the time.
struct Deadline<'a> {
    tls: &'a mut Tls,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.tls.sock.set_read_timeout(Some(left))?;
        self.tls.read(buf)
    }
}

/// An answer: status line, content type, body.
type Answer = (&'static str, &'static str, Vec<u8>);

fn ko(status: &'static str, code: u16, description: &str) -> Answer {
    let body =
        serde_json::json!({ "status": "ko", "error_code": code, "error_description": description });
    (status, "application/json", body.to_string().into_bytes())
}

fn respond(root: &Path, request_line: &str, target: &str) -> Answer {
    if !request_line.starts_with("GET ") {
        return ko("405 Method Not Allowed", 405, "only GET is served");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let safe = |name: &str| {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let document = |name: &str| {
        if name.ends_with(".tgz") {
            "application/gzip"
        } else if name.ends_with(".zip") {
            "application/zip"
        } else if name.ends_with(".minisig") {
            "text/plain"
        } else if name.ends_with(".xml") {
            "application/xml"
        } else {
            "application/json"
        }
    };
    let public = root.join(PUBLIC);
    let (file, content_type) = match parts.as_slice() {
        [name @ ("index.json" | "index.json.minisig")] => (public.join(name), document(name)),
        [dir @ ("freepbx" | "joomla"), name] if safe(name) => {
            (public.join(dir).join(name), document(name))
        }
        ["a2", rawname, name] if safe(rawname) && safe(name) => {
            // `VERSION.EXT` is the package the index lists as `RAWNAME-VERSION.EXT`.
            let part = match package_extension(name) {
                Some((version, extension)) => {
                    let file = format!("{rawname}-{version}.{extension}");
                    match package_part(root, &file, query) {
                        Ok(part) => part,
                        Err(refusal) => return refusal,
                    }
                }
                None => public,
            };
            (part.join("a2").join(rawname).join(name), document(name))
        }
        ["packages", name] if safe(name) => match package_part(root, name, query) {
            Ok(part) => (part.join("packages").join(name), document(name)),
            Err(refusal) => return refusal,
        },
        _ => return ko("404 Not Found", 404, "no such file"),
    };
    match std::fs::read(&file) {
        Ok(body) => ("200 OK", content_type, body),
        Err(_) => ko("404 Not Found", 404, "no such file"),
    }
}

/// `name` split into its stem and extension when it is named like a package, in any
/// format [`crate::build()`] publishes.
fn package_extension(name: &str) -> Option<(&str, &str)> {
    let formats = [Format::GzipTar, Format::Zip];
    name.rsplit_once('.')
        .filter(|(_, extension)| formats.iter().any(|f| f.extension() == *extension))
}

/// The part of the repository package `file` is served from: the public one, or for a
/// package of a licence-gated group the private one, once `query` carries a valid licence
/// key (`email` and `key`).
fn package_part(root: &Path, file: &str, query: &str) -> Result<PathBuf, Answer> {
    let index = std::fs::read(root.join(PUBLIC).join("index.json"))
        .ok()
        .and_then(|bytes| Index::parse(&bytes, "self").ok());
    let group = index
        .iter()
        .flat_map(|i| i.modules.iter())
        .find(|e| e.file == file)
        .and_then(|e| e.group.clone());
    let Some(group) = group else {
        return Ok(root.join(PUBLIC));
    };
    let private = root.join(PRIVATE);
    let groups = Groups::load(&private.join("groups.toml"))
        .map_err(|_| ko("500 Internal Server Error", 500, "bad groups"))?;
    let Some(secret) = groups.groups.get(&group).map(|g| g.secret.clone()) else {
        return Err(ko(
            "403 Forbidden",
            403,
            "this package's licence group is not configured",
        ));
    };
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    };
    match (param("email"), param("key")) {
        (Some(email), Some(key)) if licence_key_matches(&secret, &email, &key) => Ok(private),
        (Some(_), Some(_)) => Err(ko(
            "403 Forbidden",
            403,
            "the licence key is not valid for this e-mail address",
        )),
        _ => Err(ko(
            "403 Forbidden",
            403,
            &format!("a licence key for the `{group}` package group is required (email=…&key=…)"),
        )),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => match u8::from_str_radix(&String::from_utf8_lossy(hex), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
