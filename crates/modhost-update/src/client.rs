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
        })
    }

    /// Reads `location` (with `query` appended to a URL, never shown in errors), at most
    /// `limit` bytes, telling `progress` how much has arrived. A non-200 answer, and a JSON
    /// refusal whatever the status, is an error carrying the server's message.
    fn fetch(
        &self,
        location: &Location,
        query: Option<&str>,
        limit: u64,
        document: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>> {
        let shown = location.to_string();
        let url = match location {
            Location::Path(path) => return read_local(path, limit),
            Location::Url(url) => match query {
                Some(query) if url.contains('?') => format!("{url}&{query}"),
                Some(query) => format!("{url}?{query}"),
                None => url.clone(),
            },
        };
        let fetch = |message: String| Error::Fetch {
            url: shown.clone(),
            message,
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
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(limit)
            .reader();
        let mut body = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| fetch(self.explain(&e, document)))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
            progress(body.len() as u64);
        }
        // jBackend refuses a download with its JSON error, and may do so with status 200:
        // its message is the answer, not a package or a document to check.
        if let Some(message) = refusal(&body) {
            return Err(Error::Server {
                url: shown,
                message,
            });
        }
        if status == 200 {
            return Ok(body);
        }
        Err(fetch(format!("HTTP status {status}")))
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
        let bytes = self.fetch(location, None, MAX_INDEX, true, &mut |_| {})?;
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
                self.fetch(&sig, None, 4096, true, &mut |_| {})
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
        Ok(releases
            .into_iter()
            .filter(|r| rawname.is_none_or(|name| r.rawname == name))
            .filter(|r| {
                source.kind == Kind::Joomla || Stability::of_version(&r.version) >= target.stability
            })
            .collect())
    }

    /// Downloads `release` to `path` (with the download key `extra_query` appended to its
    /// URL), refusing it unless its size and every published checksum match — and a
    /// release without any checksum is never downloaded.
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
        let limit = release.size.map_or(MAX_PACKAGE, |s| s.saturating_add(1));
        let bytes = self.fetch(&release.location, extra_query, limit, false, &mut |n| {
            progress(n, release.size)
        })?;
        if let Some(size) = release.size.filter(|&s| s != bytes.len() as u64) {
            return Err(mismatch(format!(
                "{} bytes received, {size} published",
                bytes.len()
            )));
        }
        release.digests.verify(&bytes).map_err(mismatch)?;
        fs_err::write(path, &bytes).map_err(file_error(path))
    }
}

/// A request failure the administrator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// A configured wait ran out.
    Timeout(ureq::Timeout),
    /// The server's certificate chains to no trusted root: typically a private CA.
    UnknownIssuer,
}

/// The [`Problem`] behind `error`, looking through the `io::Error`s that ureq and rustls
/// wrap each other's errors in.
fn problem(error: &(dyn std::error::Error + 'static)) -> Option<Problem> {
    if let Some(error) = error.downcast_ref::<ureq::Error>() {
        return match error {
            ureq::Error::Timeout(timeout) => Some(Problem::Timeout(*timeout)),
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
    Some(match (code, value["error_description"].as_str()) {
        (Some(code), Some(text)) => format!("{text} (error {code})"),
        (_, Some(text)) => text.to_owned(),
        _ => value.to_string(),
    })
}

fn read_local(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = fs_err::File::open(path).map_err(file_error(path))?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(file_error(path))?;
    if bytes.len() as u64 >= limit {
        return Err(Error::File {
            path: path.to_owned(),
            message: format!("larger than the {limit}-byte limit"),
        });
    }
    Ok(bytes)
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
        match client.fetch(&Location::Url(url), None, 1024, true, &mut |_| {}) {
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
}
