//! Why an update step failed, each error naming the source, URL or file involved.

use std::path::PathBuf;

use crate::{Refusal, plain_io};

/// Why an update step failed. Every variant names the source, URL or file involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL is not HTTPS.
    #[error("`{0}`: plain HTTP is refused; update sources must use https://")]
    PlainHttp(String),
    /// A URL whose query holds a secret (a download key), which would be shown wherever
    /// the URL is kept and sent to every server a document names.
    #[error(
        "`{location}`: it holds `{name}=` (in its query, or its path's parameters), a secret that would be shown wherever the \
         source is and sent to every server a document names: give the source a download \
         key instead (stored, never shown, sent only to its own server)"
    )]
    Secret {
        /// The location, its query left out.
        location: String,
        /// The parameter that holds the secret.
        name: String,
    },
    /// A location that cannot be fetched, and why.
    #[error("`{location}`: {why}")]
    Location {
        /// The location as written.
        location: String,
        /// Why it is refused.
        why: String,
    },
    /// The request failed: connection, TLS, timeout or size limit.
    #[error("`{url}`: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused with its own message (a JSON `{"status":"ko", …}`).
    #[error("`{url}`: the server refused: {message}")]
    Server {
        /// The URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The index is malformed, or a signed source's document vouches for a package with
    /// a legacy checksum alone.
    #[error("source `{source_name}`: {message}")]
    Untrusted {
        /// The source.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A signed source's answer cannot be trusted: unsigned, signed by another key,
    /// changed, stale, replayed, expired or mixed from several releases.
    #[error("source `{source_name}`: {refusal}")]
    Refused {
        /// The source.
        source_name: String,
        /// Why.
        refusal: Refusal,
    },
    /// The server has no such document: a 404 or 410 answer.
    #[error("`{url}`: HTTP status {status}{}", redirected_to.as_ref().map(|at| format!(" at `{at}`, where the server redirected")).unwrap_or_default())]
    Missing {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// Where a redirect took the request, if one did (without its query).
        redirected_to: Option<String>,
    },
    /// The server refuses the request as not allowed (401 or 403): a download or licence
    /// key is missing or not one it accepts.
    #[error("`{url}`: HTTP status {status}{}", redirected_to.as_ref().map(|at| format!(" at `{at}`, where the server redirected")).unwrap_or_default())]
    Denied {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// Where a redirect took the request, if one did (without its query).
        redirected_to: Option<String>,
    },
    /// A source answered something that is not a valid document of its kind.
    #[error("`{url}`: {message}")]
    Invalid {
        /// The document's URL or path.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A downloaded package does not match the index.
    #[error("`{url}`: {message}; the package was discarded")]
    Mismatch {
        /// The URL.
        url: String,
        /// What differs.
        message: String,
    },
    /// The client's stop ([`Client::stopped_by`](crate::Client::stopped_by)) was asked
    /// for while the request was under way: what had arrived was dropped.
    #[error("`{url}`: stopped before the transfer ended")]
    Stopped {
        /// The URL.
        url: String,
    },
    /// A local file could not be read or written.
    #[error("`{path}`: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What the server said when it refused as for want of a key it accepts: its own
    /// words (jBackend's JSON), or its 401 or 403 status; `None` for any other error.
    pub fn key_refusal(&self) -> Option<String> {
        match self {
            Error::Server { message, .. } => Some(format!("\"{}\"", message.escape_debug())),
            Error::Denied { status, .. } => Some(format!("status {status}")),
            _ => None,
        }
    }

    /// What went wrong, without the source's name that the message opens with when it
    /// names one: for a report already shown under that name.
    pub fn reason(&self) -> String {
        match self {
            Error::Untrusted { message, .. } => message.clone(),
            Error::Refused { refusal, .. } => refusal.to_string(),
            other => other.to_string(),
        }
    }
}

/// Makes an I/O error on `path` an [`Error::File`], for `map_err`.
pub fn file_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::File {
        path: path.to_owned(),
        message: plain_io(&e),
    }
}
