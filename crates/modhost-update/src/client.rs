//! The client: fetching what a source offers and downloading verified packages, over
//! HTTPS or from a local directory.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use ureq::tls::TlsConfig;

use crate::checking::{Answer, Checking};
use crate::index::Index;
use crate::messages::{explain, refusal, through_proxy};
use crate::pace::Pace;
use crate::redirect::{self, MAX_REDIRECTS};
use crate::release::{Digests, Release, SetAside, Stability, Target};
use crate::source::{Kind, Source};
use crate::tls::roots;
use crate::{Error, Location, Result, a2, freepbx, joomla};

mod body;
mod busy;
mod download;
mod key;

use body::{Body, Sink, content_encoding, read_local, read_local_bytes};
use key::{with_query, without_key};

/// How long a server may stay silent (connecting, or between two reads) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a whole download may take, however steadily the server trickles.
pub const MAX_TRANSFER_TIME: Duration = Duration::from_secs(600);
/// The largest package downloaded unless the client is told otherwise, whatever size the
/// channel states.
pub const MAX_PACKAGE: u64 = 256 * 1024 * 1024;
/// The largest file of CA certificates read: the whole Mozilla set is about 250 KiB.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// How long the body of an answer other than 200 is read for a message it may hold.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);
/// How long [`Client::check`] waits before reading a source again whose documents looked
/// like two builds': a publish swaps its build in at once, so a short wait sees it done;
/// the longer ones outlast a publisher that rebuilds several times in a row. A source
/// really serving mixed documents is refused after about four seconds.
const REREAD_PAUSES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// An HTTPS client with bounded waits and sizes.
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
    /// The largest package downloaded, whatever size the channel states.
    max_package: u64,
    /// The proxy the environment names, which every request not excepted by `NO_PROXY`
    /// goes through: named in a failure, which may be the proxy's.
    proxy: Option<ureq::Proxy>,
    /// Asked between a transfer's steps: when it says stop, the transfer ends at once.
    stop: Option<Stop>,
}

/// What tells a client's transfers to stop.
type Stop = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    /// A client that trusts the public (Mozilla) roots, and also every certificate in
    /// the PEM file `ca_cert` when given — how private repositories and tests are trusted;
    /// verification is never turned off. A server silent for `timeout` is given up on;
    /// longer than [`MAX_TRANSFER_TIME`], which bounds a whole transfer, is taken as that.
    pub fn new(ca_cert: Option<&Path>, timeout: Duration) -> Result<Self> {
        let timeout = timeout.min(MAX_TRANSFER_TIME);
        let pem = match ca_cert {
            Some(path) => {
                let (body, bytes) = read_local_bytes(path, MAX_CA_FILE)?;
                if body.over {
                    return Err(Error::File {
                        path: path.to_owned(),
                        message: format!(
                            "larger than {} KiB: not a PEM file of certificates",
                            MAX_CA_FILE / 1024
                        ),
                    });
                }
                Some((path, bytes))
            }
            None => None,
        };
        let roots = roots(pem.as_ref().map(|(path, pem)| (*path, pem.as_slice())))?;
        // As curl and apt read them: `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` (or in lower
        // case), and `NO_PROXY` for hosts reached directly.
        let proxy = ureq::Proxy::try_from_env();
        let config = ureq::Agent::config_builder()
            .proxy(proxy.clone())
            .https_only(true)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            // A head trickled a byte at a time is never silent for a read's timeout, and
            // the body's pace (see `Pace`) does not see it: each has a bound of its own.
            .timeout_send_request(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_global(Some(MAX_TRANSFER_TIME))
            // Named as itself, as apt and FreePBX's updater are: a publisher's logs tell
            // modhost's requests from a script's.
            .user_agent(concat!("modhost/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            timeout,
            max_package: MAX_PACKAGE,
            proxy,
            stop: None,
        })
    }

    /// Asks `stop` between the steps of every transfer (each chunk read, each redirect
    /// or wait for a busy server): once it says stop, the transfer ends with
    /// [`Error::Stopped`] rather than run on for as long as the server takes. An
    /// interrupted command then ends within a read's timeout, not a download's.
    pub fn stopped_by(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stop = Some(std::sync::Arc::new(stop));
        self
    }

    /// [`Error::Stopped`] for `url` if the client's stop says so.
    fn check_stop(&self, url: &str) -> Result<()> {
        match &self.stop {
            Some(stop) if stop() => Err(Error::Stopped {
                url: url.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Sets the largest package downloaded, whatever size its channel states
    /// ([`MAX_PACKAGE`] unless changed).
    pub fn max_package(mut self, bytes: u64) -> Self {
        self.max_package = bytes;
        self
    }

    /// Reads `location` (with `query` appended to a URL, never shown in errors) into
    /// `sink`: at most `max` bytes and one more, so that [`Body::over`] tells a longer
    /// answer, telling
    /// `progress` how much has arrived. A non-200 answer, and a JSON refusal whatever the
    /// status, is an error carrying the server's message. What a longer answer means (a
    /// document over its limit, a package over its published size) is the caller's to say.
    fn fetch(
        &self,
        location: &Location,
        query: Option<&str>,
        max: u64,
        document: bool,
        sink: &mut dyn Sink,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Body> {
        let shown = location.to_string();
        let url = match location {
            Location::Path(path) => return read_local(path, max, sink),
            Location::Url(url) => with_query(url, query),
        };
        // ureq's own messages may quote the URL, and so the download key with it.
        let fetch = |message: String| Error::Fetch {
            url: shown.clone(),
            message: without_key(message, query),
        };
        // Redirects are followed here, one checked hop at a time (see `redirect`), within
        // the limit of the whole exchange: the short timeout for a document, which is small,
        // the transfer limit for a package.
        let limit = if document {
            self.timeout
        } else {
            MAX_TRANSFER_TIME
        };
        // Whether a download key goes with the request: where it is redirected, only the
        // origin is named then.
        let keyed = query.is_some_and(|q| !q.is_empty());
        let started = Instant::now();
        let mut at = url.clone();
        let mut hops = 0;
        let mut waits = 0;
        let response = loop {
            self.check_stop(&shown)?;
            let left = limit
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1));
            let mut request = self.agent.get(&at);
            if document {
                // Servers and CDNs often store documents compressed; packages are asked for
                // (and taken) exactly as their checksums describe them.
                request = request.header("Accept-Encoding", "gzip");
            }
            let response = request
                .config()
                .timeout_global(Some(left))
                .build()
                .call()
                .map_err(|e| {
                    fetch(through_proxy(
                        self.proxy.as_ref(),
                        &at,
                        &e,
                        explain(&e, document, self.timeout),
                    ))
                })?;
            // A server too busy for now (`repo serve` past its connections, a CDN's rate
            // limit) that says to come back within a few seconds is asked again, a few
            // times, within the exchange's limit: a fleet of PBXs checking at the same
            // minute would otherwise fail all but the first ones.
            if let Some(wait) = busy::busy_for(&response)
                .filter(|wait| waits < busy::MAX_BUSY_WAITS && started.elapsed() + *wait < limit)
            {
                waits += 1;
                drop(response);
                std::thread::sleep(wait);
                continue;
            }
            match redirect::target(&at, &response, keyed).map_err(&fetch)? {
                None => break response,
                Some(_) if hops == MAX_REDIRECTS => {
                    return Err(fetch(format!(
                        "the server redirected more than {MAX_REDIRECTS} times"
                    )));
                }
                Some(next) => {
                    hops += 1;
                    at = match query {
                        Some(key) => redirect::without_key(&url, next, key).map_err(&fetch)?,
                        None => next,
                    };
                }
            }
        };
        let status = response.status();
        // Where a redirect took the request, for a failure to name: the query left out, as
        // it may carry the download key.
        // With a download key sent, only the origin is named: the server may have put the
        // key in the path, in any encoding.
        let landed = (hops > 0).then(|| match url::Url::parse(&at) {
            Ok(at) if keyed => at.origin().ascii_serialization(),
            Ok(at) => redirect::shown(&at),
            Err(_) => String::new(),
        });
        let encoding = content_encoding(response.headers());
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        };
        // What the server announced, for a transfer it cuts short to be told by its bytes.
        let announced: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
        let retry = header("retry-after").map(|after| busy::retry_text(&after));
        // RFC 9110 §8.4.1.3: `x-gzip` is `gzip`, as some servers still name it.
        let gzip = document && matches!(encoding.as_deref(), Some("gzip" | "x-gzip"));
        // Only gzip is asked for: a document in another encoding would otherwise be read as
        // garbage and blamed on its signature or its syntax.
        if let Some(other) = encoding.as_ref().filter(|_| document && !gzip) {
            return Err(fetch(format!(
                "the server sent the document with Content-Encoding `{}`, which was not \
                 asked for (only gzip is) and cannot be read; serve it plain or gzip-encoded",
                other.escape_debug()
            )));
        }
        // A body announced longer than may be taken is over the limit before a byte of it
        // is read: a server announcing gigabytes does not hold the client for the
        // timeout, nor is its trickle read to find out.
        if status == 200 && !gzip && announced.is_some_and(|total| total > max) {
            let mut body = Body::new(max.saturating_add(1), max);
            body.encoding = encoding;
            return Ok(body);
        }
        // Cut off here rather than by ureq's limit, which fails the read: one byte past
        // `max` is then a body the caller can judge (a size mismatch is not a broken
        // connection), and nothing past it is ever read.
        let raw = response.into_body().into_with_config().reader();
        // An answer other than 200 is read only for what it says (a server's message, a
        // refusal): never the megabytes a package may take.
        let limit = match status.as_u16() {
            200 => max.saturating_add(1),
            _ => max.saturating_add(1).min(body::HEAD as u64),
        };
        // A compressed document is bounded after decompression: a small bomb stays small.
        let mut reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(raw).take(limit))
        } else {
            Box::new(raw.take(limit))
        };
        let mut len: u64 = 0;
        let mut chunk = vec![0; 64 * 1024];
        let mut pace = Pace::new(self.timeout);
        // An answer other than 200 is read only for a message it may hold: what arrives
        // in a moment, never at the pace of a trickle, and a failure reading it leaves
        // the status to be said.
        let failed = status != 200;
        let reading = Instant::now();
        loop {
            if failed && reading.elapsed() > ERROR_BODY_WAIT {
                break;
            }
            let n = match reader.read(&mut chunk) {
                Ok(n) => n,
                Err(_) if failed => break,
                Err(e) => {
                    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
                    // The decoder's own failures, told from the connection's (which carry
                    // ureq's error inside).
                    let undecodable =
                        matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof)
                            && e.get_ref().is_none_or(|inner| !inner.is::<ureq::Error>());
                    let explained = explain(&e, document, self.timeout);
                    return Err(fetch(match announced {
                        _ if gzip && undecodable => {
                            format!("the gzip-encoded document ends early or is damaged ({e})")
                        }
                        Some(total) if !gzip && len < total => format!(
                            "the transfer ended after {len} of the {total} bytes the server \
                             announced ({explained})"
                        ),
                        _ => explained,
                    }));
                }
            };
            if n == 0 {
                break;
            }
            self.check_stop(&shown)?;
            sink.put(&chunk[..n])?;
            len += n as u64;
            progress(len);
            if !failed {
                pace.received(n).map_err(fetch)?;
            }
        }
        // jBackend refuses a download with its JSON error, and may do so with status 200:
        // its message is the answer, not a package or a document to check.
        if let Some(message) = sink.whole(len).and_then(refusal) {
            // A server may quote the key it refused.
            return Err(Error::Server {
                url: shown,
                message: without_key(message, query),
            });
        }
        if status == 404 || status == 410 {
            return Err(Error::Missing {
                url: shown,
                status: status.as_u16(),
                redirected_to: landed,
            });
        }
        if status == 401 || status == 403 {
            return Err(Error::Denied {
                url: shown,
                status: status.as_u16(),
                redirected_to: landed,
            });
        }
        if status != 200 {
            let retry = retry.unwrap_or_default();
            return Err(fetch(match landed {
                Some(at) => {
                    format!("HTTP status {status} at `{at}`, where the server redirected{retry}")
                }
                None => format!("HTTP status {status}{retry}"),
            }));
        }
        let mut body = Body::new(len, max);
        body.encoding = encoding.filter(|_| !gzip);
        body.decompressed = gzip;
        // A document's (fetched without a download key, so none is in it).
        body.redirected_to = (hops > 0 && query.is_none()).then_some(at);
        Ok(body)
    }

    /// Fetches a document of at most `max` bytes: a longer one is refused.
    pub(crate) fn fetch_document(&self, location: &Location, max: u64) -> Result<Vec<u8>> {
        self.fetch_document_at(location, max)
            .map(|(bytes, _)| bytes)
    }

    /// Fetches a document as [`Client::fetch_document`] does; with it, where it was found
    /// (where the server redirected the request, or `location`): what its relative
    /// references are resolved against.
    pub(crate) fn fetch_document_at(
        &self,
        location: &Location,
        max: u64,
    ) -> Result<(Vec<u8>, Location)> {
        let mut bytes = Vec::new();
        let body = self.fetch(location, None, max, true, &mut bytes, &mut |_| {})?;
        if body.over {
            let message = match body.decompressed {
                true => format!(
                    "larger than the {max}-byte limit once decompressed (it came gzip-encoded)"
                ),
                false => format!("larger than the {max}-byte limit"),
            };
            return Err(match location {
                Location::Url(_) => Error::Fetch {
                    url: location.to_string(),
                    message,
                },
                Location::Path(path) => Error::File {
                    path: path.clone(),
                    message,
                },
            });
        }
        let found = body
            .redirected_to
            .map_or_else(|| location.clone(), Location::Url);
        Ok((bytes, found))
    }

    /// Fetches the document at `location`, or `None` when there is none: a 404 or 410
    /// answer, or no such local file.
    pub(crate) fn fetch_optional(&self, location: &Location, max: u64) -> Result<Option<Vec<u8>>> {
        if let Location::Path(path) = location
            && !path.exists()
        {
            return Ok(None);
        }
        match self.fetch_document(location, max) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What `source` offers: every release it lists (of `rawname` only, when given) that
    /// suits `target`. Documents are verified (signature, freshness, format, fields)
    /// first.
    pub fn releases(
        &self,
        source: &Source,
        rawname: Option<&str>,
        target: &Target,
    ) -> Result<Vec<Release>> {
        self.check(source, rawname, target)
            .map(|answer| answer.releases)
    }

    /// What `source` offers, as [`Client::releases`], with what vouches for it. A signed
    /// modhost repository's release document is read first: an older serial than
    /// `source.seen`'s is a rollback, a release past its validity end a freeze, and its
    /// index must be the one the release names. A single-document channel's signature
    /// must name its path, and a signing time older than `source.seen`'s is a rollback.
    ///
    /// A client reading while the publisher swaps in a new build may read a document and
    /// its signature, or the release and the index, from two builds: what that looks like
    /// ([`Refusal::torn`]) is read again, after a pause, before it is refused — a publish
    /// is over by then, and a document really mixed or changed stays so — while the
    /// readings so far took less than the timeout.
    pub fn check(&self, source: &Source, rawname: Option<&str>, target: &Target) -> Result<Answer> {
        let mut pauses = REREAD_PAUSES.iter();
        let started = std::time::Instant::now();
        loop {
            match self.check_once(source, rawname, target) {
                Err(Error::Refused { refusal, .. }) if refusal.torn() => {
                    // Only while reading is quick, as a publish race is: a server that
                    // answers slowly and mixed would have every reading take its time.
                    let quick = started.elapsed() < self.timeout;
                    if let Some(pause) = pauses.next().filter(|_| quick) {
                        tracing::debug!(source = %source.name, "read again: {refusal}");
                        std::thread::sleep(*pause);
                        continue;
                    }
                    return Err(Error::Refused {
                        source_name: source.name.clone(),
                        refusal,
                    });
                }
                answer => return answer,
            }
        }
    }

    /// One reading of `source`, as [`Client::check`] describes it.
    fn check_once(
        &self,
        source: &Source,
        rawname: Option<&str>,
        target: &Target,
    ) -> Result<Answer> {
        let invalid = |location: &Location| {
            let url = location.to_string();
            move |message: String| Error::Invalid { url, message }
        };
        let mut checking = Checking::new(self, source);
        let mut set_aside = Vec::new();
        let releases = match source.kind {
            Kind::Index => {
                checking.release_document()?;
                let doc = source.location.join(crate::index::FILE);
                let (bytes, _) = checking.document(&doc, Some(crate::index::FILE))?;
                let index = Index::parse(&bytes).map_err(invalid(&doc))?;
                set_aside.extend(index.malformed);
                index
                    .modules
                    .into_iter()
                    .map(|entry| {
                        let mut digests = Digests::default();
                        if !entry.sha256.is_empty() {
                            digests
                                .set("sha256", &entry.sha256)
                                .map_err(invalid(&doc))?;
                        }
                        Ok(Release {
                            location: source.location.join("packages").join(&entry.file),
                            document: Some(doc.clone()),
                            rawname: entry.rawname,
                            name: entry.name,
                            version: entry.version,
                            size: Some(entry.size),
                            digests,
                            gated: entry.group.is_some(),
                            supported: None,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            // A document's relative references are resolved against where it was found.
            Kind::A2 => {
                // a2 itself names the document `a2modsource.json`: read where there is no
                // `modsource.json`.
                let ours = source.location.join(a2::INDEX);
                let theirs = source.location.join(a2::A2_INDEX);
                let only_theirs = matches!((&ours, &theirs),
                    (Location::Path(ours), Location::Path(theirs))
                        if !ours.exists() && theirs.exists());
                let (doc, fetched) = match only_theirs {
                    true => (theirs.clone(), checking.document(&theirs, None)),
                    false => match checking.document(&ours, None) {
                        Err(missing @ Error::Missing { .. }) => {
                            match checking.document(&theirs, None) {
                                Err(Error::Missing { .. }) => (ours, Err(missing)),
                                fetched => (theirs, fetched),
                            }
                        }
                        fetched => (ours, fetched),
                    },
                };
                let (bytes, found) = fetched?;
                vec![a2::parse(&bytes, &found).map_err(invalid(&doc))?]
            }
            Kind::Freepbx => {
                let (bytes, found) = checking.document(&source.location, None)?;
                vec![freepbx::parse(&bytes, &found).map_err(invalid(&source.location))?]
            }
            Kind::Joomla => {
                let (bytes, found) = checking.document(&source.location, None)?;
                let (releases, aside) = joomla::parse(&bytes, &found, rawname, target)
                    .map_err(invalid(&source.location))?;
                set_aside = aside;
                releases
            }
        };
        // A module's own channel offers that module only. An index or a Joomla feed lists
        // many; a document of one release (a2, FreePBX) naming another module is a
        // mistake or a trick, and is said.
        let (releases, others): (Vec<Release>, Vec<Release>) = releases
            .into_iter()
            .partition(|r| rawname.is_none_or(|name| r.rawname == name));
        if let Some(own) = rawname.filter(|_| source.kind.one_module()) {
            set_aside.extend(others.into_iter().map(|r| SetAside {
                reason: format!(
                    "it is in a channel of module `{own}`, which offers that module's \
                     updates only"
                ),
                rawname: r.rawname,
                version: r.version,
            }));
        }
        // Joomla tags its updates; elsewhere the version's pre-release word says.
        let (releases, unstable): (Vec<Release>, Vec<Release>) =
            releases.into_iter().partition(|r| {
                source.kind == Kind::Joomla || Stability::of_version(&r.version) >= target.stability
            });
        set_aside.extend(unstable.into_iter().map(|r| SetAside {
            reason: format!(
                "its version makes it a {} release, less stable than the {} releases this \
                 host takes",
                Stability::of_version(&r.version).tag(),
                target.stability.tag()
            ),
            rawname: r.rawname,
            version: r.version,
        }));
        // A signature vouches for the package only through the checksum it covers: with
        // MD5 or SHA-1 alone, a colliding package would pass under the publisher's name.
        if source.signed()
            && let Some(weak) = releases.iter().find(|r| !r.digests.has_sha2())
        {
            return Err(Error::Untrusted {
                source_name: source.name.clone(),
                message: format!(
                    "the source is signed, but its document gives no sha256 for `{}` {}: a \
                     signature vouches for a package only through a SHA-2 checksum",
                    weak.rawname, weak.version
                ),
            });
        }
        Ok(checking.answer(releases, set_aside))
    }
}

#[cfg(test)]
mod tests;
