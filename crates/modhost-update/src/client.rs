//! The client: fetching what a source offers and downloading verified packages, over
//! HTTPS or from a local directory.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, parse_pem};

use crate::index::{Index, MAX_INDEX, PublicKey, SIGNATURE_SUFFIX};
use crate::release::{Digests, Release, Stability, Target};
use crate::{Error, Location, Result, a2, file_error, freepbx, joomla};

/// How long a server may stay silent (connecting, or between two reads) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a whole download may take, however steadily the server trickles.
pub const MAX_TRANSFER_TIME: Duration = Duration::from_secs(600);
/// The largest package downloaded when the channel does not state its size.
pub const MAX_PACKAGE: u64 = 256 * 1024 * 1024;
/// The largest signature file read: a minisign signature is a few hundred bytes.
const MAX_SIGNATURE: u64 = 4096;

/// The format a source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A modhost repository: `index.json` (+ `.minisig`) and `packages/`, as `repo build`
    /// writes it.
    Index,
    /// a2-style: `modsource.json` names the version; the package is `<version>.tgz`.
    A2,
    /// A FreePBX `updateurl` JSON document.
    Freepbx,
    /// A Joomla update server XML document.
    Joomla,
}

impl Kind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Index => "index",
            Kind::A2 => "a2",
            Kind::Freepbx => "freepbx",
            Kind::Joomla => "joomla",
        }
    }

    /// Parses [`Kind::as_str`]'s names.
    pub fn parse(text: &str) -> Option<Kind> {
        [Kind::Index, Kind::A2, Kind::Freepbx, Kind::Joomla]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// An update source: one an administrator configured, or a channel a module declares. Its
/// `Debug` leaves the download key out.
#[derive(Clone)]
pub struct Source {
    /// Its name, e.g. `main` or `phonebook/updateurl`.
    pub name: String,
    /// Its format.
    pub kind: Kind,
    /// The repository (index, a2) or document (freepbx, joomla).
    pub location: Location,
    /// The publisher's pinned key; with one, unsigned or badly signed documents are refused.
    pub public_key: Option<PublicKey>,
    /// A download key (`email=…&key=…`) appended to package URLs; never shown.
    pub extra_query: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("location", &self.location)
            .field("public_key", &self.public_key)
            .field(
                "extra_query",
                &self.extra_query.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Refuses anything but `https://` URLs.
pub fn require_https(url: &str) -> Result<()> {
    match Location::parse(url)? {
        Location::Url(_) => Ok(()),
        Location::Path(_) => Err(Error::PlainHttp(url.to_owned())),
    }
}

/// An HTTPS client with bounded waits and sizes.
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
    /// The largest package downloaded when the channel does not state its size.
    max_package: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    /// A client that trusts the public (Mozilla) roots, and also every certificate in
    /// the PEM file `ca_cert` when given — how private repositories and tests are trusted;
    /// verification is never turned off. A server silent for `timeout` is given up on.
    pub fn new(ca_cert: Option<&Path>, timeout: Duration) -> Result<Self> {
        let pem = match ca_cert {
            Some(path) => Some((path, fs_err::read(path).map_err(file_error(path))?)),
            None => None,
        };
        let roots = roots(pem.as_ref().map(|(path, pem)| (*path, pem.as_slice())))?;
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_global(Some(MAX_TRANSFER_TIME))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            timeout,
            max_package: MAX_PACKAGE,
        })
    }

    /// Sets the largest package downloaded when its channel does not state its size
    /// ([`MAX_PACKAGE`] unless changed).
    pub fn max_package(mut self, bytes: u64) -> Self {
        self.max_package = bytes;
        self
    }

    /// Reads `location` (with `query` appended to a URL, never shown in errors): at most
    /// `max` bytes and one more, so that [`Body::over`] tells a longer answer, telling
    /// `progress` how much has arrived. A non-200 answer, and a JSON refusal whatever the
    /// status, is an error carrying the server's message. What a longer answer means (a
    /// document over its limit, a package over its published size) is the caller's to say.
    fn fetch(
        &self,
        location: &Location,
        query: Option<&str>,
        max: u64,
        document: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Body> {
        let shown = location.to_string();
        let url = match location {
            Location::Path(path) => return read_local(path, max),
            Location::Url(url) => match query {
                Some(query) if url.contains('?') => format!("{url}&{query}"),
                Some(query) => format!("{url}?{query}"),
                None => url.clone(),
            },
        };
        // ureq's own messages may quote the URL, and so the download key with it.
        let fetch = |message: String| Error::Fetch {
            url: shown.clone(),
            message: match query {
                Some(query) if !query.is_empty() => message.replace(query, "<download key>"),
                _ => message,
            },
        };
        let mut request = self.agent.get(&url);
        if document {
            // Documents are small: the whole exchange gets the short timeout.
            request = request.config().timeout_global(Some(self.timeout)).build();
        }
        let response = request
            .call()
            .map_err(|e| fetch(self.explain(&e, document)))?;
        let status = response.status();
        // Cut off here rather than by ureq's limit, which fails the read: one byte past
        // `max` is then a body the caller can judge (a size mismatch is not a broken
        // connection), and nothing past it is ever read.
        let mut reader = response
            .into_body()
            .into_with_config()
            .reader()
            .take(max.saturating_add(1));
        let mut bytes = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| fetch(self.explain(&e, document)))?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            progress(bytes.len() as u64);
        }
        // jBackend refuses a download with its JSON error, and may do so with status 200:
        // its message is the answer, not a package or a document to check.
        if let Some(message) = refusal(&bytes) {
            return Err(Error::Server {
                url: shown,
                message,
            });
        }
        if status != 200 {
            return Err(fetch(format!("HTTP status {status}")));
        }
        Ok(Body::new(bytes, max))
    }

    /// Fetches a document of at most `max` bytes: a longer one is refused.
    fn fetch_document(&self, location: &Location, max: u64) -> Result<Vec<u8>> {
        let body = self.fetch(location, None, max, true, &mut |_| {})?;
        if body.over {
            let message = format!("larger than the {max}-byte limit");
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
        Ok(body.bytes)
    }

    /// A failed request's message, saying which setting to change when one would help:
    /// ureq's own words (`timeout: global`, `UnknownIssuer`) do not.
    fn explain(&self, error: &(dyn std::error::Error + 'static), document: bool) -> String {
        match problem(error) {
            // Only a download's whole exchange gets the long limit; see `new`.
            Some(Problem::Timeout(ureq::Timeout::Global)) if !document => format!(
                "timed out: the download did not finish within {} s",
                MAX_TRANSFER_TIME.as_secs()
            ),
            Some(Problem::Timeout(_)) => format!(
                "timed out: no complete answer within {} s ([updates] timeout_secs)",
                self.timeout.as_secs_f64()
            ),
            Some(Problem::PlainHttp(target)) => {
                // The query of where it points may hold the download key.
                let target = target.split(['?', '#']).next().unwrap_or_default();
                format!(
                    "the server redirected to `{target}`: plain HTTP is refused; update \
                     sources must use https://"
                )
            }
            Some(Problem::UnknownIssuer) => format!(
                "{error}; if the server uses a private CA, pass --ca-cert FILE or set ca_cert \
                 in modhost.toml"
            ),
            None => error.to_string(),
        }
    }

    /// Fetches a metadata document of `source`, checking its signature (`<document>.minisig`)
    /// when the source pins a key — and then the signature must be there.
    fn document(&self, source: &Source, location: &Location) -> Result<Vec<u8>> {
        let bytes = self.fetch_document(location, MAX_INDEX)?;
        if let Some(key) = &source.public_key {
            let sig = match location {
                Location::Url(url) => Location::Url(format!("{url}{SIGNATURE_SUFFIX}")),
                Location::Path(path) => {
                    let mut sig = path.clone().into_os_string();
                    sig.push(SIGNATURE_SUFFIX);
                    Location::Path(sig.into())
                }
            };
            let signature =
                self.fetch_document(&sig, MAX_SIGNATURE)
                    .map_err(|e| Error::Untrusted {
                        source_name: source.name.clone(),
                        message: format!(
                            "the source is signed but the signature of `{location}` cannot be fetched: {e}"
                        ),
                    })?;
            key.verify(&bytes, &signature, &source.name)?;
        }
        Ok(bytes)
    }

    /// What `source` offers: every release it lists (of `rawname` only, when given) that
    /// suits `target`. Documents are verified (signature, format, fields) first.
    pub fn releases(
        &self,
        source: &Source,
        rawname: Option<&str>,
        target: &Target,
    ) -> Result<Vec<Release>> {
        let invalid = |location: &Location| {
            let url = location.to_string();
            move |message: String| Error::Invalid { url, message }
        };
        let releases = match source.kind {
            Kind::Index => {
                let doc = source.location.join("index.json");
                let index = Index::parse(&self.document(source, &doc)?, &source.name)?;
                index
                    .modules
                    .into_iter()
                    .map(|entry| {
                        let mut digests = Digests::default();
                        digests
                            .set("sha256", &entry.sha256)
                            .map_err(invalid(&doc))?;
                        Ok(Release {
                            location: source.location.join("packages").join(&entry.file),
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
            Kind::A2 => {
                let doc = source.location.join(a2::INDEX);
                let bytes = self.document(source, &doc)?;
                vec![a2::parse(&bytes, &doc).map_err(invalid(&doc))?]
            }
            Kind::Freepbx => {
                let bytes = self.document(source, &source.location)?;
                vec![freepbx::parse(&bytes, &source.location).map_err(invalid(&source.location))?]
            }
            Kind::Joomla => {
                let bytes = self.document(source, &source.location)?;
                joomla::parse(&bytes, &source.location, rawname, target)
                    .map_err(invalid(&source.location))?
            }
        };
        // Joomla tags its updates; elsewhere the version's pre-release word says.
        let releases: Vec<Release> = releases
            .into_iter()
            .filter(|r| rawname.is_none_or(|name| r.rawname == name))
            .filter(|r| {
                source.kind == Kind::Joomla || Stability::of_version(&r.version) >= target.stability
            })
            .collect();
        // A signature vouches for the package only through the checksum it covers: with
        // MD5 or SHA-1 alone, a colliding package would pass under the publisher's name.
        if source.public_key.is_some()
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
        Ok(releases)
    }

    /// Downloads `release` to `path` (with the download key `extra_query` appended to its
    /// URL), refusing it unless its size and every published checksum match — and a
    /// release without any checksum is never downloaded. A package whose size is not
    /// published may be at most [`Client::max_package`] bytes.
    pub fn download(
        &self,
        release: &Release,
        extra_query: Option<&str>,
        path: &Path,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<()> {
        let shown = release.location.to_string();
        let mismatch = |message: String| Error::Mismatch {
            url: shown.clone(),
            message,
        };
        if release.digests.is_empty() {
            return Err(mismatch(
                "no checksum is published for it, so it cannot be verified".into(),
            ));
        }
        let max = release.size.unwrap_or(self.max_package);
        let body = self.fetch(&release.location, extra_query, max, false, &mut |n| {
            progress(n, release.size)
        })?;
        match release.size {
            Some(size) if body.over => {
                return Err(mismatch(format!(
                    "more than {size} bytes received, {size} published"
                )));
            }
            Some(size) if body.bytes.len() as u64 != size => {
                return Err(mismatch(format!(
                    "{} bytes received, {size} published",
                    body.bytes.len()
                )));
            }
            None if body.over => {
                return Err(mismatch(format!(
                    "larger than the {max}-byte limit for a package whose size is not published"
                )));
            }
            _ => {}
        }
        release.digests.verify(&body.bytes).map_err(mismatch)?;
        fs_err::write(path, &body.bytes).map_err(file_error(path))
    }
}

/// What a fetch read: at most its limit and one byte more.
struct Body {
    /// The bytes read.
    bytes: Vec<u8>,
    /// Whether there was more than the limit.
    over: bool,
}

impl Body {
    /// `bytes`, read with limit `max`.
    fn new(bytes: Vec<u8>, max: u64) -> Self {
        let over = bytes.len() as u64 > max;
        Body { bytes, over }
    }
}

/// Checks a download key (`email=…&key=…`) before it is stored: it is appended to package
/// URLs as it is, so anything a URL's query cannot hold as written (spaces, `#`, quotes,
/// non-ASCII, a stray `%`) would make every download URL invalid or cut it short.
pub fn validate_query(query: &str) -> std::result::Result<(), String> {
    if query.is_empty() {
        return Err("the download key is empty".into());
    }
    let bytes = query.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit));
                if !escaped {
                    return Err(format!(
                        "`%` at position {} of the download key is not followed by two hex \
                         digits; write a literal `%` as `%25`",
                        i + 1
                    ));
                }
                i += 3;
                continue;
            }
            // RFC 3986's query characters: unreserved, sub-delims, `:`, `@`, `/`, `?`.
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) => {}
            _ => {
                let shown = match char::from(b) {
                    ' ' => "a space".to_owned(),
                    c if b.is_ascii_graphic() => format!("`{c}`"),
                    _ => "a control or non-ASCII character".to_owned(),
                };
                return Err(format!(
                    "the download key holds {shown}, which a URL's query cannot hold as \
                     written; percent-encode it (a space is `%20`, `#` is `%23`)"
                ));
            }
        }
        i += 1;
    }
    Ok(())
}

/// A request failure the administrator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// A configured wait ran out.
    Timeout(ureq::Timeout),
    /// The server's certificate chains to no trusted root: typically a private CA.
    UnknownIssuer,
    /// A redirect to this plain-HTTP URL, which is never followed.
    PlainHttp(String),
}

/// The [`Problem`] behind `error`, looking through the `io::Error`s that ureq and rustls
/// wrap each other's errors in.
fn problem(error: &(dyn std::error::Error + 'static)) -> Option<Problem> {
    if let Some(error) = error.downcast_ref::<ureq::Error>() {
        return match error {
            ureq::Error::Timeout(timeout) => Some(Problem::Timeout(*timeout)),
            ureq::Error::RequireHttpsOnly(url) => Some(Problem::PlainHttp(url.clone())),
            ureq::Error::Io(error) => problem(error),
            ureq::Error::Rustls(error) => problem(error),
            _ => None,
        };
    }
    if let Some(error) = error.downcast_ref::<std::io::Error>() {
        return error.get_ref().and_then(|inner| problem(inner));
    }
    match error.downcast_ref::<rustls::Error>() {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
            Some(Problem::UnknownIssuer)
        }
        _ => None,
    }
}

/// The public roots, plus every certificate of the PEM file `(path, contents)` when given.
fn roots(ca_cert: Option<(&Path, &[u8])>) -> Result<RootCerts> {
    let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| Certificate::from_der(cert.as_ref()))
        .collect();
    if let Some((path, pem)) = ca_cert {
        let public = roots.len();
        for item in parse_pem(pem) {
            let item = item.map_err(|e| Error::File {
                path: path.to_owned(),
                message: format!("not a PEM file: {e}"),
            })?;
            if let PemItem::Certificate(cert) = item {
                roots.push(cert);
            }
        }
        if roots.len() == public {
            return Err(Error::File {
                path: path.to_owned(),
                message: "no PEM certificate in it".into(),
            });
        }
    }
    Ok(RootCerts::new_with_certs(&roots))
}

/// The largest answer taken for a server's JSON refusal: anything bigger is a package or
/// a document, and is not parsed twice.
const MAX_REFUSAL: usize = 64 * 1024;

/// The message of a jBackend-style refusal, `{"status":"ko","error_code":…,
/// "error_description":…}`, if `body` is one.
fn refusal(body: &[u8]) -> Option<String> {
    if body.len() > MAX_REFUSAL || body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let value = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    if value["status"] != "ko" {
        return None;
    }
    let code = match &value["error_code"] {
        serde_json::Value::String(code) => Some(code.clone()),
        serde_json::Value::Number(code) => Some(code.to_string()),
        _ => None,
    };
    let text = value["error_description"].as_str().map(printable);
    Some(match (code.map(|c| printable(&c)), text) {
        (Some(code), Some(text)) => format!("{text} (error {code})"),
        (_, Some(text)) => text,
        // JSON's escaping already keeps control characters out.
        _ => value.to_string(),
    })
}

/// The longest part of a server's message shown: it is the server's text, not ours.
const MAX_MESSAGE: usize = 500;

/// A server's `text` made safe to print on a terminal: escape sequences (which could
/// recolour, retitle or rewrite what the administrator sees) and other control and
/// bidirectional-formatting characters are removed, and the text is cut at
/// [`MAX_MESSAGE`] characters.
fn printable(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ … final byte (CSI); ESC ] … BEL or ESC \ (OSC); ESC and one more.
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            // The one-character CSI of C1, as ESC [.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    let out = out.trim();
    match out.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &out[..end]),
        None => out.to_owned(),
    }
}

/// Unicode's bidirectional formatting characters, which can make text read otherwise
/// than it is.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Reads the local file `path` as [`Client::fetch`] reads a URL: at most `max` bytes and
/// one more.
fn read_local(path: &Path, max: u64) -> Result<Body> {
    let file = fs_err::File::open(path).map_err(file_error(path))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(file_error(path))?;
    Ok(Body::new(bytes, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rcgen::KeyPair::generate()
            .and_then(|key| params.self_signed(&key))
            .map(|cert| cert.pem())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn count(roots: &RootCerts) -> usize {
        match roots {
            RootCerts::Specific(certs) => certs.len(),
            other => panic!("expected a list of roots, got {other:?}"),
        }
    }

    /// The error of fetching a document from `url` with a client patient for 300 ms.
    fn fetch_error(url: String) -> String {
        let client =
            Client::new(None, Duration::from_millis(300)).unwrap_or_else(|e| panic!("{e}"));
        match client.fetch_document(&Location::Url(url), 1024) {
            Err(Error::Fetch { message, .. }) => message,
            other => panic!("expected a fetch error, got {other:?}"),
        }
    }

    fn listener() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(1);
        (listener, format!("https://127.0.0.1:{port}/index.json"))
    }

    #[test]
    fn a_timeout_names_the_wait_and_the_setting_that_sets_it() {
        let (listener, url) = listener();
        // Accepts and never answers.
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().collect();
            drop(held);
        });
        let message = fetch_error(url);
        assert_eq!(
            message,
            "timed out: no complete answer within 0.3 s ([updates] timeout_secs)"
        );
    }

    #[test]
    fn an_unknown_issuer_points_at_the_ca_settings() {
        let (listener, url) = listener();
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .and_then(|params| params.self_signed(&key))
            .unwrap_or_else(|e| panic!("{e}"));
        let private = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], private.into())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let config = std::sync::Arc::new(config);
        // Shows its self-signed certificate to the one client that connects.
        std::thread::spawn(move || {
            if let Some(Ok(mut stream)) = listener.incoming().next()
                && let Ok(mut tls) = rustls::ServerConnection::new(config)
            {
                let _ = tls.complete_io(&mut stream);
            }
        });
        let message = fetch_error(url);
        assert!(
            message.contains("UnknownIssuer")
                && message.ends_with(
                    "; if the server uses a private CA, pass --ca-cert FILE or set ca_cert in \
                     modhost.toml"
                ),
            "{message}"
        );
    }

    #[test]
    fn a_source_never_shows_its_download_key() {
        let source = Source {
            name: "main".into(),
            kind: Kind::Index,
            location: Location::Url("https://repo.example.org".into()),
            public_key: None,
            extra_query: Some("email=a%40example.org&key=s3cret".into()),
        };
        let shown = format!("{source:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("extra_query: Some(\"<redacted>\")"),
            "{shown}"
        );
    }

    #[test]
    fn a_ca_file_adds_every_certificate_in_it_to_the_public_roots() {
        let public = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert!(public > 100);
        let none = roots(None).map(|r| count(&r)).ok();
        assert_eq!(none, Some(public));
        let pem = format!("{}{}", ca_pem(), ca_pem());
        let path = Path::new("bundle.pem");
        let two = roots(Some((path, pem.as_bytes()))).map(|r| count(&r)).ok();
        assert_eq!(two, Some(public + 2));
        assert!(roots(Some((path, b"no certificate here"))).is_err());
    }

    #[test]
    fn a_servers_message_is_shown_without_its_escape_sequences() {
        let body = "{\"status\":\"ko\",\"error_code\":\"E\\u001b[2J1\",\
                    \"error_description\":\"\\u001b[31mKey\\u0000 expired\\u001b]0;pwned\\u0007\
                    \\u202e!\\r\\ncontact \\u009b1mus\\u001bc\"}";
        assert_eq!(
            refusal(body.as_bytes()).as_deref(),
            Some("Key expired! contact us (error E1)")
        );
        let long = format!(
            r#"{{"status":"ko","error_description":"{}"}}"#,
            "x".repeat(2 * MAX_MESSAGE)
        );
        let shown = refusal(long.as_bytes()).unwrap_or_default();
        assert_eq!(shown.chars().count(), MAX_MESSAGE + 1, "{shown}");
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn a_download_key_must_fit_a_urls_query_as_written() {
        for good in [
            "download_id=123456",
            "email=a%40example.org&key=0f1e",
            "email=a@example.org&key=x-y_z.~",
        ] {
            assert_eq!(validate_query(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("email=a b", "a space"),
            ("key=x#y", "`#`"),
            ("key=50%", "two hex digits"),
            ("key=%zz", "two hex digits"),
            ("key=\"x\"", "`\"`"),
            ("key=x\ny", "control"),
            ("key=é", "non-ASCII"),
        ] {
            let refused = validate_query(bad);
            assert!(
                refused.as_ref().is_err_and(|e| e.contains(why)),
                "{bad:?}: {refused:?}"
            );
        }
    }

    /// A local FreePBX document `json` signed by `key`, as a source pinned to `pinned`.
    fn signed_freepbx(
        dir: &Path,
        json: &str,
        key: &crate::SecretKey,
        pinned: &crate::SecretKey,
    ) -> Source {
        let doc = dir.join("phonebook.json");
        let sig = dir.join(format!("phonebook.json{SIGNATURE_SUFFIX}"));
        assert!(
            std::fs::write(&doc, json).is_ok()
                && std::fs::write(&sig, key.sign(json.as_bytes())).is_ok()
        );
        Source {
            name: "pb".into(),
            kind: Kind::Freepbx,
            location: Location::Path(doc),
            public_key: Some(pinned.public()),
            extra_query: None,
        }
    }

    #[test]
    fn a_signed_source_must_vouch_for_its_packages_with_sha2() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = crate::SecretKey::generate();
        let client = Client::new(None, DEFAULT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let md5_only = r#"{"rawname":"phonebook","version":"2.0.0","location":"pb.tgz",
            "md5sum":"55278ae5d4ab4aa7a7047076d07305b2"}"#;
        let source = signed_freepbx(dir.path(), md5_only, &key, &key);
        match client.releases(&source, Some("phonebook"), &Target::default()) {
            Err(Error::Untrusted { message, .. }) => assert!(
                message.contains(
                    "the source is signed, but its document gives no sha256 for `phonebook` 2.0.0"
                ),
                "{message}"
            ),
            other => panic!("expected the release refused, got {other:?}"),
        }
        let with_sha256 = md5_only.replace('}', &format!(r#","sha256":"{}"}}"#, "a".repeat(64)));
        let source = signed_freepbx(dir.path(), &with_sha256, &key, &key);
        let offered = client.releases(&source, Some("phonebook"), &Target::default());
        assert!(offered.is_ok_and(|r| r.len() == 1));
        // Unsigned, the MD5 alone is accepted (FreePBX servers publish nothing else).
        let unsigned = Source {
            public_key: None,
            ..signed_freepbx(dir.path(), md5_only, &key, &key)
        };
        let offered = client.releases(&unsigned, Some("phonebook"), &Target::default());
        assert!(
            offered.is_ok_and(|r| r.first().and_then(Release::weak_checksum_warning).is_some())
        );
        // Signed by another key than the pinned one: refused before anything is read.
        let other = crate::SecretKey::generate();
        let source = signed_freepbx(dir.path(), &with_sha256, &other, &key);
        let refused = client.releases(&source, Some("phonebook"), &Target::default());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("another key")),
            "{refused:?}"
        );
    }
}
