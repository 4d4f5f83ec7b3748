//! How long a connection may take. One deadline from accept covers the TLS handshake and
//! the first request, however the client trickles it; each next request on a kept-alive
//! connection gets as long again from the end of the previous answer. While an answer is
//! under way, it must move at least once in [`STALL_FACTOR`] times as long (a minute at
//! the default ten seconds, as nginx's `send_timeout`): a client that stops reading it (or
//! grants an HTTP/2 stream no window) is dropped, one that reads slowly is not — nor one
//! that reads in bursts, as `curl --limit-rate` does, pausing for seconds between them.
//!
//! Only answers' bodies count as moving: what the connection writes of its own (HTTP/2
//! PING and SETTINGS acknowledgements, which a client can ask for at will) does not, so a
//! connection with no request under way is closed in time whatever control frames it
//! sends. A write counts while the connection has written fewer bytes than answers have
//! handed it, that is while some body is still on its way out.
//!
//! hyper's own header-read timeout does not cover the handshake, applies to HTTP/1 only
//! and restarts with each request, so the limits sit under hyper, on the decrypted stream,
//! where every protocol's reads and writes pass.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How many timeouts an answer under way may stand still: what the client does with an
/// answer (reads it in bursts, pauses to write it out) is its own affair for that long,
/// while a request must still arrive within one timeout.
pub(super) const STALL_FACTOR: u32 = 6;

/// What a connection's requests are doing, shared by its stream ([`Limited`]) and its
/// answers ([`super::access::Exchange`]).
pub(super) struct Activity {
    /// When the connection was accepted: the instants below count from it, in
    /// nanoseconds, so that they can be atomics.
    origin: Instant,
    timeout: Duration,
    /// Requests received whose answer has not ended.
    in_flight: AtomicUsize,
    /// Since when no request has been in flight.
    idle_since: AtomicU64,
    /// When an answer last handed the connection some of its body.
    moved: AtomicU64,
    /// How many bytes of body answers have handed the connection in all.
    handed: AtomicU64,
    /// Wakes the connection's reader when the last answer ends: its deadline, armed at
    /// the answer's longer stall, is then one timeout from now.
    reader: Mutex<Option<Waker>>,
}

impl Activity {
    /// The activity of a connection accepted at `accepted`, with `timeout` for each wait.
    pub(super) fn new(accepted: Instant, timeout: Duration) -> Arc<Self> {
        Arc::new(Activity {
            origin: accepted,
            timeout,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            reader: Mutex::new(None),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn at(&self, nanos: &AtomicU64) -> Instant {
        self.origin + Duration::from_nanos(nanos.load(Ordering::Acquire))
    }

    /// A request was received: its answer is under way.
    pub(super) fn started(&self) {
        self.moved.store(self.now(), Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// An answer handed the connection `bytes` more of its body.
    pub(super) fn moved(&self, bytes: u64) {
        self.handed.fetch_add(bytes, Ordering::AcqRel);
        self.moved.store(self.now(), Ordering::Release);
    }

    /// An answer ended (or was dropped unfinished).
    pub(super) fn ended(&self) {
        // Stored before the count goes down: a deadline read in between is then the new one.
        self.idle_since.store(self.now(), Ordering::Release);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let reader = self
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(reader) = reader {
                reader.wake();
            }
        }
    }

    /// When a connection that waits for the client to send something, and last wrote some
    /// answer's body at `wrote`, is cut: the whole next request is due a timeout after the
    /// connection went idle; while answers are under way, one of them must move within
    /// each [`Activity::stall`].
    fn read_due(&self, wrote: Instant) -> Instant {
        let since = if self.answering() {
            self.at(&self.moved)
        } else {
            self.at(&self.idle_since)
        };
        since.max(wrote) + self.stall()
    }

    /// Whether some request's answer is under way.
    fn answering(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// How long the connection may stand still: [`STALL_FACTOR`] timeouts while an answer
    /// is under way, else one.
    fn stall(&self) -> Duration {
        if self.answering() {
            self.timeout * STALL_FACTOR
        } else {
            self.timeout
        }
    }
}

/// A stream under the limits of its connection's [`Activity`]: its reads and writes fail
/// with [`io::ErrorKind::TimedOut`] once a limit passes, which ends the connection.
pub(super) struct Limited<T> {
    io: T,
    activity: Arc<Activity>,
    /// Wakes the connection at the nearest limit, so that one is enforced even when the
    /// client sends nothing more.
    timer: Pin<Box<Sleep>>,
    /// Whether the last read found nothing to read: the client is being waited for.
    reading: bool,
    /// Since when the client has not taken what the connection has to write.
    write_stalled_since: Option<Instant>,
    /// When the connection last wrote while some answer's body was still to be written
    /// (the TLS handshake and the protocol's own frames do not count).
    wrote: Instant,
    /// How many bytes the connection has written in all: while fewer than answers have
    /// handed it, a write carries some answer on.
    written: u64,
}

impl<T> Limited<T> {
    /// `io` under the limits of `activity`.
    pub(super) fn new(io: T, activity: Arc<Activity>) -> Self {
        let accepted = activity.origin;
        Limited {
            io,
            timer: Box::pin(tokio::time::sleep_until(accepted + activity.timeout)),
            activity,
            reading: false,
            write_stalled_since: None,
            wrote: accepted,
            written: 0,
        }
    }

    /// After a read or write that must wait: fails once the nearest limit of what is
    /// waited for has passed, else sets the timer to wake the connection at it.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let read = self.reading.then(|| self.activity.read_due(self.wrote));
        let write = self
            .write_stalled_since
            .map(|since| since + self.activity.stall());
        let Some(due) = read.into_iter().chain(write).min() else {
            return Ok(());
        };
        if Instant::now() < due {
            if self.timer.deadline() != due {
                self.timer.as_mut().reset(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
        }
        let what = if read != Some(due) {
            "the client stopped reading the answer"
        } else if self.activity.in_flight.load(Ordering::Acquire) == 0 {
            "the client did not send its request in time"
        } else {
            "the answer did not move in time"
        };
        Err(io::Error::new(io::ErrorKind::TimedOut, what))
    }

    /// Records how a write, flush or shutdown went: waiting starts (or goes on) a stall,
    /// anything else ends it.
    fn waited<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.write_stalled_since = None;
            return polled;
        }
        self.write_stalled_since.get_or_insert_with(Instant::now);
        match self.check(cx) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Records a write: only bytes written while some answer's body is still to be written
    /// count as the connection writing (a flush with nothing to flush, which hyper does on
    /// every turn, does not, nor do the acknowledgements of a client's PINGs once every
    /// answer is out).
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n @ 1..)) = polled {
            if self.written < self.activity.handed.load(Ordering::Acquire) {
                self.wrote = Instant::now();
            }
            self.written = self.written.saturating_add(n as u64);
        }
        self.waited(cx, polled)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {
                this.reading = true;
                *this
                    .activity
                    .reader
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
                match this.check(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
            ready => {
                this.reading = false;
                ready
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.written(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.waited(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.waited(cx, polled)
    }
}
