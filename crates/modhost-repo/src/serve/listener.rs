//! The accept loop and each connection's life: a slot among the bounded many (within its
//! client's share of them), or beyond them a prompt `503` with `Retry-After`; then TLS and HTTP/1.1 or HTTP/2 (as ALPN
//! agreed) under the limits of [`super::limits`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::MAX_HEAD;
use super::access::{Exchange, Logged};
use super::clients::Clients;
use super::limits::{Activity, Limited};
use super::route::{self, Files};

/// How many `503` answers are under way at once, beyond the connections served: past
/// them, a new connection within its client's share waits in the listen backlog (for a
/// refusal or a slot), and one past it waits on its own (see [`WAITING`]).
const REFUSING: usize = 64;
/// How many connections of clients past their share may wait for a refusal at once
/// (each holding its socket meanwhile): past them, such a connection is closed
/// unanswered. One client may fill them, which only those past their share meet: a
/// client within its share never waits for these (many clients behind one address, a
/// NAT's, are all answered).
const WAITING: usize = 1024;
/// The most of an answer the kernel holds unsent for a connection (`TCP_NOTSENT_LOWAT`):
/// enough to keep a fast link busy between two writes, little enough that a client
/// reading a few KiB a second lets the server write within the timeout.
const UNSENT: u32 = 32 * 1024;

/// How long the loop pauses when accepting fails (out of file descriptors, mostly):
/// the connection waits in the backlog meanwhile.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Streams one HTTP/2 connection may have open at once: each holds a file, its send
/// buffer and a chunk read ahead, about 192 KiB for a client that stops reading, so a
/// connection holds at most 1.5 MiB of them (32 streams let a few hundred connections
/// of such clients hold more than a GiB). Browsers and download tools open a few.
const H2_STREAMS: u32 = 8;
/// What an HTTP/2 stream buffers of its answer before waiting for the client: two of
/// the file service's 64 KiB chunks. 256 KiB was no faster (100 downloads of a 10 MiB
/// package at once over loopback) and, once files were read without a trip to another
/// thread for each chunk, held 20 MB more at the peak.
const H2_SEND_BUFFER: usize = 128 * 1024;

/// Raises this process's limit on open files to what the system allows, as nginx's
/// `worker_rlimit_nofile` does: each connection may have a socket and a file per HTTP/2
/// stream open, 2,304 for the default 256 connections, past the 1,024 most service
/// managers and shells give. Says so when even that is too few for `max_connections`.
pub(super) fn raise_open_files(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let needed = max_connections * (1 + H2_STREAMS as usize) + REFUSING + WAITING + 64;
    let mut limit = getrlimit(Resource::Nofile);
    // No hard limit (`None`, where a system allows it): as many as needed.
    let most = limit.maximum.unwrap_or(needed as u64);
    if limit.current.is_some_and(|current| current < most) {
        limit.current = Some(most);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!("cannot raise the limit on open files: {e}");
        }
    }
    let open = getrlimit(Resource::Nofile).current;
    if let Some(open) = open.filter(|&open| open < needed as u64) {
        tracing::warn!(
            "this process may open {open} files, and {max_connections} connections with \
             {H2_STREAMS} downloads each may need {needed}: past that, clients get `503` \
             (raise `ulimit -n`, or lower the connections)"
        );
    }
}

/// What every connection needs.
pub(super) struct Settings {
    pub(super) tls: TlsAcceptor,
    pub(super) files: Files,
    pub(super) max_connections: usize,
    /// The most of them one client may hold at once.
    pub(super) max_per_client: usize,
    pub(super) timeout: Duration,
}

/// Accepts connections on `listener` until `stop` completes; then lets the connections
/// served finish their requests under way, for at most the timeout.
pub(super) async fn serve(
    listener: TcpListener,
    settings: Settings,
    stop: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let clients = Clients::new(settings.max_per_client);
    let refusals = Arc::new(Semaphore::new(REFUSING));
    let waiting = Arc::new(Semaphore::new(WAITING));
    let graceful = GracefulShutdown::new();
    // Told to connections still shaking hands, which have asked nothing yet: they close at
    // once rather than keep the stop waiting.
    let (stopping, stopped) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let accepted = Instant::now();
        // A client past its share is refused as one past the bound is; a refused
        // connection takes nothing of its client's share.
        // The slot first, then the share: a connection's share is given back before its
        // slot (below), so a slot found free is never one whose client still counts it,
        // and a client whose share is every slot is never told it is past it.
        let slot = Arc::clone(&slots).try_acquire_owned().ok();
        let held = clients.take(peer.ip());
        let (permit, held, busy) = match (held, slot) {
            (Some(held), Some(permit)) => (permit, Some(held), false),
            // A client past its share while slots are free is refused; when no refusal is
            // free now, its connection waits for one on its own (within its timeout),
            // not in the accept loop: that would let a single client stop the server
            // accepting anyone else. The slot stays free for the others.
            (None, Some(_free)) => match Arc::clone(&refusals).try_acquire_owned() {
                Ok(permit) => (permit, None, true),
                Err(_) => {
                    let Ok(wait) = Arc::clone(&waiting).try_acquire_owned() else {
                        tracing::debug!(%peer, "closed: past its share, and too many wait for a refusal");
                        continue;
                    };
                    let (settings, refusals) = (Arc::clone(&settings), Arc::clone(&refusals));
                    let (watcher, mut stopped) = (graceful.watcher(), stopped.clone());
                    tokio::spawn(async move {
                        let refusal = tokio::select! {
                            refusal = tokio::time::timeout_at(
                                accepted + settings.timeout,
                                refusals.acquire_owned(),
                            ) => refusal,
                            _ = stopped.wait_for(|stopped| *stopped) => return,
                        };
                        drop(wait);
                        if let Ok(Ok(permit)) = refusal {
                            connection(tcp, peer, accepted, true, &settings, watcher, stopped)
                                .await;
                            drop(permit);
                        }
                    });
                    continue;
                }
            },
            // Every slot taken: a refusal, or for a client within its share the slot
            // that frees first. Both come back within the timeout (a refusal's
            // connection ends by then, whatever its client does); a stop meanwhile is
            // not kept waiting for them.
            (held, None) => {
                let taken = tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned(), if held.is_some() => {
                        slot.map(|permit| (permit, false))
                    }
                    refusal = Arc::clone(&refusals).acquire_owned() => {
                        refusal.map(|permit| (permit, true))
                    }
                    () = &mut stop => break,
                };
                match taken {
                    Ok((permit, false)) => (permit, held, false),
                    Ok((permit, true)) => (permit, None, true),
                    Err(closed) => {
                        tracing::warn!("connection closed: {closed}");
                        continue;
                    }
                }
            }
        };
        let settings = Arc::clone(&settings);
        let watcher = graceful.watcher();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            connection(tcp, peer, accepted, busy, &settings, watcher, stopped).await;
            drop(held);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    tracing::info!(
        target: super::ACCESS_LOG,
        "stopping: no new connections; finishing the requests under way"
    );
    // Idle keep-alive connections close at once; answers being sent go on to their end.
    if tokio::time::timeout(settings.timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "stopped with answers still being sent: those not done within the {:?} a stop \
             waits for were cut off",
            settings.timeout
        );
    }
}

/// Serves one connection: all its requests, or when `busy` a `503` to each.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    busy: bool,
    settings: &Settings,
    watcher: Watcher,
    mut stopped: watch::Receiver<bool>,
) {
    // Small answers (headers, 304s, documents) go out at once rather than after a delay.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
    }
    // The kernel may queue megabytes of an answer and let the server write again only
    // once half of them drained: a client reading steadily but slowly would look, for
    // longer than the timeout, like one that stopped. With little left unsent, the
    // server writes again as soon as the client takes some, so moving is seen moving.
    if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(UNSENT) {
        tracing::debug!(%peer, "cannot set TCP_NOTSENT_LOWAT: {e}");
    }
    let handshake = settings.tls.accept(tcp);
    let handshake = async {
        tokio::select! {
            shaken = tokio::time::timeout_at(accepted + settings.timeout, handshake) => Some(shaken),
            _ = stopped.wait_for(|stopped| *stopped) => None,
        }
    };
    let Some(shaken) = handshake.await else {
        tracing::debug!(%peer, "closed while shaking hands: the server is stopping");
        return;
    };
    let tls = match shaken {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake not done in time");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let activity = Activity::new(accepted, settings.timeout);
    let io = TokioIo::new(Limited::new(tls, Arc::clone(&activity)));
    let answered = Arc::new(tokio::sync::Notify::new());
    let handler = Handler {
        files: settings.files.clone(),
        activity,
        peer,
        busy,
        answered: Arc::clone(&answered),
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // hyper answers a longer request head with 431 on its own.
        .max_buf_size(MAX_HEAD as usize)
        .keep_alive(!busy);
    builder
        .http2()
        .max_header_list_size(MAX_HEAD as u32)
        .max_concurrent_streams(H2_STREAMS)
        .max_send_buf_size(H2_SEND_BUFFER);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let served = if busy {
        refuse(
            builder.serve_connection(io, handler),
            &answered,
            accepted + settings.timeout,
        )
        .await
    } else {
        watcher.watch(builder.serve_connection(io, handler)).await
    };
    if let Err(e) = served {
        // hyper answered a request it could not read itself, calling no service (431 for
        // a head too long, 400 for one that is no HTTP, as a control byte in the request
        // line makes it): the access log still says so.
        match e.downcast_ref::<hyper::Error>() {
            Some(e) if e.is_parse_too_large() => {
                super::access::refused_by_hyper(peer, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            }
            Some(e) if e.is_parse() => {
                super::access::refused_by_hyper(peer, StatusCode::BAD_REQUEST);
            }
            _ => {}
        }
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// Serves a refused connection: once its first `503` is answered it is told to end (an
/// HTTP/2 `GOAWAY`, after which its client opens a new connection rather than ask again
/// on this one), and it ends at `deadline` whatever its client does, so that the
/// refusals the server has room for come back.
async fn refuse<C>(
    connection: auto::Connection<'_, C, Handler, TokioExecutor>,
    answered: &tokio::sync::Notify,
    deadline: Instant,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    C: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => return served,
        () = answered.notified() => connection.as_mut().graceful_shutdown(),
        () = tokio::time::sleep_until(deadline) => return Ok(()),
    }
    tokio::time::timeout_at(deadline, connection)
        .await
        .unwrap_or(Ok(()))
}

/// The hyper service of one connection.
#[derive(Clone)]
struct Handler {
    files: Files,
    activity: Arc<Activity>,
    peer: SocketAddr,
    busy: bool,
    /// Told when a refused connection's `503` is answered.
    answered: Arc<tokio::sync::Notify>,
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<Logged>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Logged>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let exchange = Exchange::begin(&request, self.peer, Arc::clone(&self.activity));
        if self.busy {
            self.answered.notify_one();
            return Box::pin(std::future::ready(Ok(exchange.answered(busy()))));
        }
        let files = self.files.clone();
        Box::pin(async move { Ok(exchange.answered(route::respond(files, request).await)) })
    }
}

/// The answer beyond the bound on connections.
fn busy() -> Response<super::access::Body> {
    route::ko(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is busy: retry later",
    )
}
