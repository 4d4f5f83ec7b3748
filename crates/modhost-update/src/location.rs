//! Where a source, a document or a package lives: an HTTPS URL or a local path.

use std::fmt;
use std::path::{Component, PathBuf};

use crate::signature::SIGNATURE_SUFFIX;
use crate::{Error, Result};

/// An HTTPS URL or a local path. A reference found in a remote document always resolves to
/// a URL: a server can never point modhost at a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `https://…`.
    Url(String),
    /// An absolute path on this machine, as an administrator configured it.
    Path(PathBuf),
}

impl Location {
    /// Parses an administrator's `https://` URL or absolute path; anything else (plain
    /// HTTP, other schemes, relative paths) is refused. A trailing `/` is left out.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        too_long(text)?;
        if text.to_ascii_lowercase().starts_with("https://") {
            // A fragment is never sent: left out, so that what it holds (a key pasted
            // after `#`) is neither kept nor shown, even in a refusal.
            let text = text.split_once('#').map_or(text, |(sent, _)| sent);
            if has_credentials(text) {
                return Err(Error::Location {
                    location: without_credentials(text),
                    why: "credentials in a URL (`user:password@`) would be shown wherever the \
                          source is and sent with every request: give the source a download \
                          key instead"
                        .to_owned(),
                });
            }
            if let Some(name) = secret_parameter(text) {
                return Err(Error::Secret {
                    location: shown_url(text),
                    name,
                });
            }
            // Parsed as every request's URL will be, so that one that can never be
            // requested (a bad port, no host) is refused now, and a host in Unicode or a
            // space in the path is written as it is sent (punycode, `%20`).
            let url = valid(text).map_err(|why| Error::Location {
                location: text.to_owned(),
                why,
            })?;
            return Ok(Location::Url(url.trim_end_matches('/').to_owned()));
        }
        if text.to_ascii_lowercase().starts_with("http://") {
            return Err(Error::PlainHttp(without_credentials(text)));
        }
        if text.contains("://") {
            return Err(Error::Location {
                location: without_credentials(text),
                why: "only https:// URLs and absolute paths are sources".to_owned(),
            });
        }
        let path = PathBuf::from(text);
        if path.is_absolute() {
            Ok(Location::Path(path))
        } else {
            Err(Error::File {
                path,
                message: "a local source must be an absolute path".into(),
            })
        }
    }

    /// The origin of a URL — scheme, host (in lower case) and port, the default one
    /// filled in — as browsers compare them; `None` for a local path or a URL that does not
    /// parse.
    pub fn origin(&self) -> Option<(String, String, u16)> {
        let Location::Url(url) = self else {
            return None;
        };
        let uri = url.parse::<ureq::http::Uri>().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri.port_u16().or(match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })?;
        Some((scheme, host, port))
    }

    /// `name` inside this location taken as a directory. A URL's query stays the
    /// query (`…/repo?channel=stable` joins as `…/repo/name?channel=stable`); its fragment, which is
    /// never sent, goes.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Url(url) => {
                let url = url.split_once('#').map_or(url.as_str(), |(url, _)| url);
                let (path, query) = match url.split_once('?') {
                    Some((path, query)) => (path, format!("?{query}")),
                    None => (url, String::new()),
                };
                Location::Url(format!("{}/{name}{query}", path.trim_end_matches('/')))
            }
            Location::Path(path) => Location::Path(path.join(name)),
        }
    }

    /// Resolves `reference`, as found in the document at this location: an absolute
    /// `https://` URL, or a path relative to the document's directory (`..` allowed, never
    /// above the URL's host). A plain-HTTP reference is refused; a remote document cannot
    /// name a local file.
    pub fn resolve(&self, reference: &str) -> Result<Location> {
        let reference = reference.trim();
        too_long(reference)?;
        let refused = |why: &str| Error::Location {
            location: without_credentials(reference),
            why: why.to_owned(),
        };
        if reference.to_ascii_lowercase().starts_with("https://") {
            if has_credentials(reference) {
                return Err(refused(
                    "a location with credentials (`user:password@`) is not followed: they \
                     would be sent to the server and shown",
                ));
            }
            return valid(reference)
                .map(Location::Url)
                .map_err(|why| refused(&why));
        }
        if reference.to_ascii_lowercase().starts_with("http://") {
            return Err(Error::PlainHttp(without_credentials(reference)));
        }
        if reference.contains("://") {
            return Err(refused("only https:// locations are fetched"));
        }
        if reference.is_empty() {
            return Err(refused("the location is empty"));
        }
        // Locations are full https:// URLs or relative to their document; one that names
        // neither its scheme nor its document's directory is not guessed at.
        if reference.starts_with("//") {
            return Err(refused(
                "a location without its scheme: write it in full, with https://",
            ));
        }
        if reference.starts_with('/') {
            return Err(refused(
                "a path from the server's root: write the full https:// URL, or a path \
                 relative to the document",
            ));
        }
        match self {
            Location::Url(url) => {
                // The document's query and fragment are not part of its directory; the
                // reference's own query stays with it (its fragment is never sent).
                let url = url.split(['?', '#']).next().unwrap_or_default();
                let reference = reference.split('#').next().unwrap_or_default();
                let (reference, query) = match reference.split_once('?') {
                    Some((path, query)) => (path, format!("?{query}")),
                    None => (reference, String::new()),
                };
                let scheme_end = url.find("://").map_or(0, |i| i + 3);
                let path_start = url[scheme_end..]
                    .find('/')
                    .map_or(url.len(), |i| scheme_end + i);
                let (origin, path) = url.split_at(path_start);
                let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
                segments.pop();
                for part in reference.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => {
                            segments.pop();
                        }
                        part => segments.push(part),
                    }
                }
                valid(&format!("{origin}/{}{query}", segments.join("/")))
                    .map(Location::Url)
                    .map_err(|why| refused(&why))
            }
            Location::Path(path) => {
                let mut resolved = path.parent().map(PathBuf::from).unwrap_or_default();
                for part in std::path::Path::new(reference).components() {
                    match part {
                        Component::ParentDir => {
                            resolved.pop();
                        }
                        Component::Normal(part) => resolved.push(part),
                        _ => {}
                    }
                }
                Ok(Location::Path(resolved))
            }
        }
    }

    /// Where the signature of the document at this location is: `.minisig` added to its
    /// path, before any query (a PHP endpoint's `…/update.php?channel=stable` is signed at
    /// `…/update.php.minisig?channel=stable`); a fragment is never sent, so it is dropped.
    pub fn signature(&self) -> Location {
        match self {
            Location::Url(url) => {
                let url = url.split_once('#').map_or(url.as_str(), |(sent, _)| sent);
                Location::Url(match url.split_once('?') {
                    Some((path, query)) => format!("{path}{SIGNATURE_SUFFIX}?{query}"),
                    None => format!("{url}{SIGNATURE_SUFFIX}"),
                })
            }
            Location::Path(path) => {
                let mut sig = path.clone().into_os_string();
                sig.push(SIGNATURE_SUFFIX);
                Location::Path(sig.into())
            }
        }
    }

    /// The file name at the end of the location.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Url(url) => url
                .split(['?', '#'])
                .next()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_owned),
            Location::Path(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
        }
    }
}

/// `url` as a URL a request can be made for, with what a request cannot carry (a space)
/// percent-encoded; why not, when it is none (no host, a malformed address or port).
fn valid(url: &str) -> std::result::Result<String, String> {
    url::Url::parse(url)
        .map(String::from)
        .map_err(|e| format!("it is not a valid URL ({e})"))
}

/// The longest location taken: longer than what servers and CDNs accept in a request
/// (8 KiB is nginx's and most CDNs' limit), so nothing is lost by refusing it.
pub(crate) const MAX_LOCATION: usize = 8 * 1024;

/// Refuses a location longer than [`MAX_LOCATION`], quoting only its start.
fn too_long(text: &str) -> Result<()> {
    if text.len() <= MAX_LOCATION {
        return Ok(());
    }
    Err(Error::Location {
        location: crate::messages::clipped(&without_credentials(text)).into_owned(),
        why: format!(
            "it is {} bytes long, more than the {MAX_LOCATION} any server takes",
            text.len()
        ),
    })
}

/// The authority of `url`: what follows the scheme, up to the path, query or fragment.
fn authority(url: &str) -> (usize, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    (
        start,
        rest.split(['/', '?', '#']).next().unwrap_or_default(),
    )
}

/// Whether `url` carries credentials before its host (`https://user:password@host/`).
fn has_credentials(url: &str) -> bool {
    authority(url).1.contains('@')
}

/// Query parameters that carry a secret, by their whole name as [`normalized`]: download
/// keys (Joomla's `dlid`), passwords, signatures (Azure's `sig`), credentials.
const SECRET_PARAMETERS: &[&str] = &[
    "dlid",
    // Joomla's own name for its download key, which jBackend's documentation uses.
    "downloadid",
    "pass",
    "pwd",
    "passwd",
    "auth",
    "authorization",
    "sig",
    "credential",
    "credentials",
    "licence",
    "license",
];

/// Endings of parameter names that carry a secret, as [`normalized`]: FreePBX's and
/// jBackend's `key` and every `…key` (`apikey`, `licensekey`), `…token`, `…secret`,
/// `…password`, `…signature` (`X-Amz-Signature`), `…credential`.
const SECRET_ENDINGS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "signature",
    "credential",
];

/// `name` as the secret names are compared: lower case, without `-`, `_` and `.`
/// (`X-Amz-Signature`, `api_key` and `API.Key` read as one spelling each).
fn normalized(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a parameter named `name` carries a secret.
fn is_secret(name: &str) -> bool {
    let name = normalized(name);
    SECRET_PARAMETERS.contains(&name.as_str()) || SECRET_ENDINGS.iter().any(|e| name.ends_with(e))
}

/// The first parameter of `url`'s query, or of its path (`/pkg;key=…`, which some
/// servers read as parameters too), whose name, decoded as a server decodes it (`k%65y` is
/// `key`), says it carries a secret.
fn secret_parameter(url: &str) -> Option<String> {
    let url = url.split_once('#').map_or(url, |(url, _)| url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let (start, authority) = authority(path);
    let path_parameters = path[start + authority.len()..]
        .split('/')
        .flat_map(|segment| segment.split(';').skip(1));
    query
        .split(['&', ';'])
        .chain(path_parameters)
        .filter_map(|pair| url::form_urlencoded::parse(pair.as_bytes()).next())
        .map(|(name, _)| name.into_owned())
        .find(|name| is_secret(name))
}

/// `text`, a URL as a document or module.xml gives it, as it may be shown: without the
/// credentials before its host nor a fragment, and without its parameters (from the first `;` of its
/// path, or its query) when they hold a secret (a download key in a module's
/// `<updateurl>`).
pub fn shown_url(text: &str) -> String {
    // A fragment is never sent, and may hold a key pasted after `#`: never shown either.
    let text = text.split_once('#').map_or(text, |(sent, _)| sent);
    let text = without_credentials(text);
    if secret_parameter(&text).is_none() {
        return text;
    }
    let (start, authority) = authority(&text);
    let after = start + authority.len();
    let cut = text[after..]
        .find([';', '?'])
        .map_or(text.len(), |at| after + at);
    format!(
        "{}{}…",
        &text[..cut],
        &text[cut..].chars().next().unwrap_or('?')
    )
}

/// `url` with any credentials before its host left out, as a message may show it.
fn without_credentials(url: &str) -> String {
    let (start, authority) = authority(url);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!(
            "{}…@{host}{}",
            &url[..start],
            &url[start + authority.len()..]
        ),
        None => url.to_owned(),
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Url(url) => f.write_str(url),
            Location::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests;
