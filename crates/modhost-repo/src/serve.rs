//! `repo serve`: an HTTPS server for a built repository — the static files of its public
//! part, and the packages of licence-gated groups from its private part after a licence
//! check (seed 003's jBackend behaviour).
//!
//! hyper serves HTTP/1.1 with keep-alive and HTTP/2 (agreed through ALPN) over
//! tokio-rustls; tower-http's static-file service answers GET and HEAD with Range, ETag,
//! Last-Modified and conditional requests (`304`), streaming each file from disk, and its
//! compression layer gzips documents. What they leave to the server is here:
//!
//! - `listener`: the accept loop, the bound on connections served at once (beyond it a
//!   `503` with `Retry-After`, never a dropped connection), each connection's protocol.
//! - `clients`: each client's share of those connections.
//! - `limits`: one deadline from accept over the TLS handshake and the request, however
//!   a client trickles it; a client that stops reading its answer is dropped.
//! - `tls`: the certificate chain, the key, ALPN.
//! - `route`: which file a path names, the licence check, caching headers, gzip for
//!   documents only (packages go out byte-exact).
//! - `ranges`: which Range requests are answered in part: one valid byte range, and
//!   with `If-Range` only when it names the file served (else the whole file, `200`).
//! - `access`: one log line per request at [`ACCESS_LOG`], without the query (it
//!   carries licence keys).

mod access;
mod clients;
mod limits;
mod listener;
mod ranges;
mod route;
mod tls;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Result};
use rustls::ServerConfig;
use socket2::{Domain, Protocol, Socket, Type};

use crate::PUBLIC;

pub use access::TARGET as ACCESS_LOG;

/// How many connections a server serves at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// What share of the connections served one client may hold unless told otherwise: a
/// half, so that one client reading slowly on many connections leaves room for others,
/// and a normal client behind the same address (a NAT, loopback) is still served beside
/// 64 slow ones.
pub const DEFAULT_CLIENT_SHARE: usize = 2;
/// How long a client may take to connect and send its request, or to go on reading its
/// answer, unless the server is told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest [`Server::timeout`] taken: an hour to send a request is already no
/// deadline, and a longer one would pass what a clock can add.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most of a request's head (line and headers) that is read: a longer one is refused
/// (`431`).
pub const MAX_HEAD: u64 = 16 * 1024;
/// The seconds a client refused for want of a free connection is told to wait.
const RETRY_AFTER_SECS: u16 = 1;
/// Connections the system holds for the server while it is busy: past them, clients'
/// connection attempts are not answered and retried.
const BACKLOG: i32 = 1024;
/// Threads reading files at once, whatever the number of connections.
const FILE_THREADS: usize = 64;

/// A bound HTTPS server over a repository directory.
pub struct Server {
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    root: PathBuf,
    max_connections: usize,
    /// `None`: half of `max_connections` ([`DEFAULT_CLIENT_SHARE`]).
    max_per_client: Option<usize>,
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
                message:
                    "not found: serve the directory a repository build wrote (it holds `public/`)"
                        .into(),
            });
        }
        let tls = tls::config(cert, key)?;
        let cannot_listen = |e: std::io::Error| Error::Listen {
            address: listen.to_owned(),
            message: listen_words(&e),
        };
        let mut last = None;
        for address in listen.to_socket_addrs().map_err(cannot_listen)? {
            match listen_on(address) {
                Ok(listener) => {
                    return Ok(Server {
                        listener,
                        tls,
                        root: root.to_owned(),
                        max_connections: DEFAULT_MAX_CONNECTIONS,
                        max_per_client: None,
                        timeout: DEFAULT_TIMEOUT,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(cannot_listen(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
        })))
    }

    /// Serves at most `max` connections at once: a client beyond them is answered `503`
    /// with `Retry-After`, so that clients holding connections open cannot exhaust the
    /// machine.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Lets one client (an address; an IPv6 one by its /64) hold at most `max` of the
    /// connections served at once, half of them unless told: past it, its next
    /// connection is answered `503` with `Retry-After`, as past the bound. A server
    /// behind a proxy, whose connections all come from the proxy, gives it them all.
    pub fn max_per_client(mut self, max: usize) -> Self {
        self.max_per_client = Some(max);
        self
    }

    /// Gives a client `timeout` from connecting to have sent its whole request, however
    /// it trickles (and as long again for each next request on the connection), and
    /// drops one whose answer does not move for as long. Longer than [`MAX_TIMEOUT`] is
    /// taken as that.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Listen {
            address: "listener".into(),
            message: e.to_string(),
        })
    }

    /// Serves on a runtime of its own until the process is told to stop (`SIGTERM`, as
    /// service managers send, or `SIGINT`, Ctrl-C), then stops as [`Server::run_until`]
    /// does.
    pub fn run(self) -> Result<()> {
        self.run_until(stop_signal())
    }

    /// Serves on a runtime of its own until `stop` completes; then accepts no more
    /// connections, lets the requests under way finish (for at most the timeout, as a
    /// client gets to send one) and returns, so that every request served is logged.
    pub fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<()> {
        let address = self
            .listener
            .local_addr()
            .map_or_else(|_| "listener".to_owned(), |a| a.to_string());
        let cannot_serve = |e: std::io::Error| Error::Listen {
            address: address.clone(),
            message: format!("cannot serve: {e}"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("repo-serve")
            .max_blocking_threads(FILE_THREADS)
            .build()
            .map_err(cannot_serve)?;
        let Server {
            listener,
            tls,
            root,
            max_connections,
            max_per_client,
            timeout,
        } = self;
        let max_per_client =
            max_per_client.unwrap_or_else(|| max_connections.div_ceil(DEFAULT_CLIENT_SHARE));
        listener::raise_open_files(max_connections);
        listener.set_nonblocking(true).map_err(cannot_serve)?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(cannot_serve)?;
            let settings = listener::Settings {
                tls: tls.into(),
                files: route::files(root),
                max_connections,
                max_per_client,
                timeout,
            };
            listener::serve(listener, settings, stop).await;
            Ok(())
        })
    }
}

/// Completes when the process gets `SIGTERM` or `SIGINT`. A signal that cannot be
/// listened for is said, and the server then runs until the process is killed.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(
                "cannot listen for SIGTERM and SIGINT, so stopping loses the requests under way: {e}"
            );
            return std::future::pending().await;
        }
    };
    let (mut term, mut int) = (term, int);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// A listener on `address` with a backlog deep enough for bursts of clients.
/// Why the server cannot listen on an address, the usual causes in words with what to do.
fn listen_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => "cannot listen: another program listens on that port already; \
                                 stop it, or choose another port"
            .into(),
        ErrorKind::PermissionDenied => "cannot listen: a port under 1024 needs root (or \
                                        CAP_NET_BIND_SERVICE); choose a port of 1024 or more"
            .into(),
        ErrorKind::AddrNotAvailable => {
            "cannot listen: no network interface of this machine has that address".into()
        }
        ErrorKind::InvalidInput => "cannot listen: it is not an address and port; give \
                                    ADDRESS:PORT, such as 0.0.0.0:8443 or [::]:8443"
            .into(),
        _ => format!("cannot listen: {e}"),
    }
}

fn listen_on(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // As the standard library's listeners do: a restarted server gets its port back.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
