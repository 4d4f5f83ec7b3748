//! The HTTPS client: fetching a source's index and downloading verified packages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::index::{Entry, Index, MAX_INDEX, PublicKey};
use crate::{Error, Result, file_error, hex};

/// An update source as an administrator configured it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name, e.g. `main`.
    pub name: String,
    /// The repository's base URL (`https://…`, no trailing slash needed).
    pub url: String,
    /// The publisher's pinned key; with one, unsigned or badly signed indexes are refused.
    pub public_key: Option<PublicKey>,
    /// A download key (`email=…&key=…`) appended to package URLs; never shown.
    pub extra_query: Option<String>,
}

/// Refuses anything but `https://` URLs.
pub fn require_https(url: &str) -> Result<()> {
    if url.to_ascii_lowercase().starts_with("https://") {
        Ok(())
    } else {
        Err(Error::PlainHttp(url.to_owned()))
    }
}

/// An HTTPS client with bounded waits and sizes.
pub struct Client {
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    /// A client that trusts the Mozilla roots, or only the CA in `ca_cert` (PEM) when given
    /// — how private repositories and tests are trusted; verification is never turned off.
    pub fn new(ca_cert: Option<&Path>, timeout: Duration) -> Result<Self> {
        let roots = match ca_cert {
            None => RootCerts::WebPki,
            Some(path) => {
                let pem = fs_err::read(path).map_err(file_error(path))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| Error::File {
                    path: path.to_owned(),
                    message: format!("not a PEM certificate: {e}"),
                })?;
                RootCerts::new_with_certs(&[cert])
            }
        };
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// GETs `url` (shown as `shown` in errors, so keys in the query never are), reading at
    /// most `limit` bytes. A non-200 answer is an error carrying the server's message.
    fn get(&self, url: &str, shown: &str, limit: u64) -> Result<Vec<u8>> {
        require_https(shown)?;
        let fetch = |message: String| Error::Fetch {
            url: shown.to_owned(),
            message,
        };
        let response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| fetch(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| fetch(e.to_string()))?;
        if status == 200 {
            return Ok(body);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .filter(|v| v["status"] == "ko")
            .map(
                |v| match (v["error_code"].as_i64(), v["error_description"].as_str()) {
                    (Some(code), Some(text)) => format!("{text} (error {code})"),
                    (_, Some(text)) => text.to_owned(),
                    _ => v.to_string(),
                },
            );
        match message {
            Some(message) => Err(Error::Server {
                url: shown.to_owned(),
                message,
            }),
            None => Err(fetch(format!("HTTP status {status}"))),
        }
    }

    /// Fetches and checks `source`'s index: its signature when a key is pinned (and then
    /// the signature must be there), its format and entries.
    pub fn fetch_index(&self, source: &Source) -> Result<Index> {
        let base = source.url.trim_end_matches('/');
        let url = format!("{base}/index.json");
        let bytes = self.get(&url, &url, MAX_INDEX)?;
        if let Some(key) = &source.public_key {
            let sig_url = format!("{url}.sig");
            let signature = self
                .get(&sig_url, &sig_url, 1024)
                .map_err(|e| Error::Untrusted {
                    source_name: source.name.clone(),
                    message: format!(
                        "the source is signed but its index signature cannot be fetched: {e}"
                    ),
                })?;
            key.verify(&bytes, &signature, &source.name)?;
        }
        Index::parse(&bytes, &source.name)
    }

    /// Downloads `entry` from `source` into `dir`, refusing it unless its size and SHA-256
    /// match the (verified) index. Returns the package file.
    pub fn download(&self, source: &Source, entry: &Entry, dir: &Path) -> Result<PathBuf> {
        let base = source.url.trim_end_matches('/');
        let shown = format!("{base}/packages/{}", entry.file);
        let url = match &source.extra_query {
            Some(query) => format!("{shown}?{query}"),
            None => shown.clone(),
        };
        let bytes = self.get(&url, &shown, entry.size.saturating_add(1))?;
        let mismatch = |message: String| Error::Mismatch {
            url: shown.clone(),
            message,
        };
        if bytes.len() as u64 != entry.size {
            return Err(mismatch(format!(
                "{} bytes received, the index says {}",
                bytes.len(),
                entry.size
            )));
        }
        let digest = hex(&Sha256::digest(&bytes));
        if digest != entry.sha256 {
            return Err(mismatch(format!(
                "SHA-256 {digest} does not match the index's {}",
                entry.sha256
            )));
        }
        let path = dir.join(&entry.file);
        fs_err::write(&path, &bytes).map_err(file_error(&path))?;
        Ok(path)
    }
}

/// How long a source may take to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
