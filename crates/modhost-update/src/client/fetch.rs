//! Reading a location: a URL over HTTPS (redirects checked, sizes and times bounded, the
//! server's refusal in its own words) or a local file, into a sink; documents read whole.

use std::io::Read;
use std::time::{Duration, Instant};

use super::body::{self, Body, Sink, content_encoding, read_local};
use super::key::{with_query, without_key};
use super::{Client, ERROR_BODY_WAIT, MAX_TRANSFER_TIME, busy};
use crate::messages::{explain, refusal, through_proxy};
use crate::pace::Pace;
use crate::redirect::{self, MAX_REDIRECTS};
use crate::{Error, Location, Result};

impl Client {
    /// Reads `location` (with `query` appended to a URL, never shown in errors) into
    /// `sink`: at most `max` bytes and one more, so that [`Body::over`] tells a longer
    /// answer, telling
    /// `progress` how much has arrived. A non-200 answer, and a JSON refusal whatever the
    /// status, is an error carrying the server's message. What a longer answer means (a
    /// document over its limit, a package over its published size) is the caller's to say.
    pub(super) fn fetch(
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
}
