//! One access-log line per request, written when its answer ends: the method, the path —
//! never the query, which carries licence keys and e-mail addresses —, the status, the
//! bytes of body handed to the connection, how long the answer took, the client's address
//! and the protocol.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use super::limits::Activity;

/// The `tracing` target of the access log, at level info: a subscriber shows or keeps the
/// access log by enabling it.
pub const TARGET: &str = "modhost_repo::access";

/// The errors an answer's body may end with.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An answer's body, whatever produced it.
pub(super) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// One request, from its arrival until its answer ends: logged then.
pub(super) struct Exchange {
    activity: Arc<Activity>,
    method: Method,
    path: String,
    version: Version,
    peer: SocketAddr,
    started: Instant,
    /// None until an answer is ready: a request whose connection ended first is logged
    /// with status 0.
    status: Option<StatusCode>,
    bytes: u64,
    /// The length of the answer's body, when its head says it: the body ends once that
    /// much is handed on.
    length: Option<u64>,
}

/// `path` as the log keeps it: cut where a client may have put a key in it anyway — a
/// `?` or `;` it percent-encoded, a `key=`, `email=` or `@` however encoded, or a run of
/// hex digits as long as a licence key — so that a mistyped URL never writes a licence
/// key or an e-mail address to the log.
fn logged_path(path: &str) -> String {
    const MARKERS: [&str; 8] = ["?", ";", "&", "key=", "email=", "e-mail", "@", "%40"];
    // Where each character of the path, decoded (twice: `%2540` is `@` encoded twice),
    // came from in the path as sent.
    let mut decoded: Vec<(char, usize)> = path.char_indices().map(|(i, c)| (c, i)).collect();
    for _ in 0..2 {
        let mut next = Vec::with_capacity(decoded.len());
        let mut i = 0;
        while i < decoded.len() {
            let hex = decoded.get(i + 1..i + 3).and_then(|pair| {
                let text: String = pair.iter().map(|(c, _)| *c).collect();
                u8::from_str_radix(&text, 16).ok()
            });
            match (decoded[i].0, hex) {
                ('%', Some(byte)) => {
                    next.push((char::from(byte).to_ascii_lowercase(), decoded[i].1));
                    i += 3;
                }
                (c, _) => {
                    next.push((c.to_ascii_lowercase(), decoded[i].1));
                    i += 1;
                }
            }
        }
        decoded = next;
    }
    let text: String = decoded.iter().map(|(c, _)| *c).collect();
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let at = |byte: usize| starts.binary_search(&byte).ok().map(|n| decoded[n].1);
    let marked = MARKERS
        .iter()
        .filter_map(|marker| text.find(marker))
        .filter_map(at);
    // A licence key is 64 hex digits; no package or document name holds 32 in a row.
    let hex_run = text
        .char_indices()
        .scan(0, |run, (i, c)| {
            *run = if c.is_ascii_hexdigit() { *run + 1 } else { 0 };
            Some((i, *run))
        })
        .find(|(_, run)| *run == 32)
        .and_then(|(i, _)| at(i + 1 - 32));
    match marked.chain(hex_run).min() {
        Some(cut) => format!("{}…", &path[..cut]),
        None => path.to_owned(),
    }
}

impl Exchange {
    /// `request`, from `peer`, on the connection `activity` follows, has arrived.
    pub(super) fn begin<B>(
        request: &Request<B>,
        peer: SocketAddr,
        activity: Arc<Activity>,
    ) -> Self {
        activity.started();
        Exchange {
            activity,
            method: request.method().clone(),
            path: logged_path(request.uri().path()),
            version: request.version(),
            peer,
            started: Instant::now(),
            status: None,
            bytes: 0,
            length: None,
        }
    }

    /// Its answer is `response`: the body counts what it hands the connection, and ends
    /// the exchange when dropped.
    pub(super) fn answered(mut self, response: Response<Body>) -> Response<Logged> {
        self.status = Some(response.status());
        // A HEAD's answer says the length of the GET's body and has none.
        if self.method != Method::HEAD {
            self.length = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
        }
        response.map(|inner| Logged {
            inner,
            exchange: self,
        })
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.activity.ended();
        tracing::info!(
            target: TARGET,
            method = %self.method,
            path = %self.path,
            status = self.status.map_or(0, |s| s.as_u16()),
            bytes = self.bytes,
            duration_ms = %format_args!("{:.3}", self.started.elapsed().as_secs_f64() * 1000.0),
            peer = %self.peer,
            version = ?self.version,
            "request"
        );
    }
}

/// Logs an answer hyper gave on its own, to a request it could not read (a head too
/// long): its method, path and version are unknown, so they are logged as `-`.
pub(super) fn refused_by_hyper(peer: SocketAddr, status: StatusCode) {
    tracing::info!(
        target: TARGET,
        method = %"-",
        path = %"-",
        status = status.as_u16(),
        bytes = 0,
        peer = %peer,
        version = %"-",
        "request"
    );
}

/// An answer's body, counted as it goes.
pub(super) struct Logged {
    inner: Body,
    exchange: Exchange,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.exchange.bytes += data.len() as u64;
            this.exchange.activity.moved(data.len() as u64);
        }
        polled
    }

    /// Also true once as much as the head said is handed on: the file service's body only
    /// knows it has ended when polled again, and HTTP/2 would then send the end of the
    /// stream as a frame (and a TLS record and a write) of its own.
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
            || self
                .exchange
                .length
                .is_some_and(|length| self.exchange.bytes >= length)
    }

    fn size_hint(&self) -> SizeHint {
        match self.exchange.length {
            Some(length) => SizeHint::with_exact(length.saturating_sub(self.exchange.bytes)),
            None => self.inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn a_path_is_logged_up_to_where_a_key_or_an_address_could_start() {
        let key = "6ae3".repeat(16);
        for (path, logged) in [
            ("/packages/core-16.0.40.tgz", "/packages/core-16.0.40.tgz"),
            ("/freepbx/core.json", "/freepbx/core.json"),
            ("/packages/pb.tgz%3Fkey=1", "/packages/pb.tgz…"),
            ("/packages/pb.tgz%26%6B%65%79=1", "/packages/pb.tgz…"),
            ("/packages/pb.tgz%26%4B%45%59%3D1", "/packages/pb.tgz…"),
            ("/packages/pb.tgz%26k%65y=1", "/packages/pb.tgz…"),
            ("/e-mail/a%2540b.org", "/…"),
            ("/x/A@B.ORG", "/x/A…"),
            ("/packages/pb.tgz;key=1", "/packages/pb.tgz…"),
        ] {
            assert_eq!(logged_path(path), logged, "{path}");
        }
        assert_eq!(logged_path(&format!("/packages/{key}")), "/packages/…");
    }
}
