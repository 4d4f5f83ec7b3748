//! Keeping modules current from the servers their publishers run — safely.
//!
//! The client side ([`Client`]) reads four kinds of [`Source`] ([`Kind::ALL`]): modhost
//! repositories, a2-style `update_url`s, FreePBX `updateurl` JSON and Joomla update XML,
//! over HTTPS or from a local directory. Each boils down to [`Release`]s. The client trusts
//! an extra CA only when told to, bounds every size and wait, verifies the publisher keys
//! ([`PublicKey`]) a source pins (and then refuses anything unsigned, stale, replayed or
//! mixed from several releases: [`Refusal`]), and checks every package's size and
//! checksums before it is handed on for unpacking.
//!
//! A modhost *repository* is a directory of static files that any web server or CDN can
//! host: `release.json` ([`ReleaseDocument`]: a serial, a validity end, and every other
//! document with its size and SHA-256), `index.json` ([`Index`], every package with its
//! version, size and SHA-256), the packages under `packages/`, and for a2, FreePBX and
//! Joomla clients `a2/RAWNAME/modsource.json`, `freepbx/RAWNAME.json` and
//! `joomla/RAWNAME.xml`; signed, each document has a minisign signature beside it
//! (`.minisig`) whose trusted comment claims its path, serial, signing time and validity
//! end ([`Claims`]). This crate defines those formats and reads them; the publisher's
//! side — building a repository, signing it, licence-gated groups and the HTTPS server
//! for them — is the `modhost-repo` crate.
//!
//! - `source`: what a source is — its [`Kind`], [`Location`], pinned keys, download key,
//!   and what was last accepted from it ([`Seen`]).
//! - `client`: [`Client`], fetching documents and downloading verified packages;
//!   `checking` one check of a source and its [`Answer`]; `tls` the roots it trusts,
//!   `messages` what it says when a request or a server fails.
//! - [`signature`]: keys, claims, and verifying one document; [`release_document`]: the
//!   release; `trust`: what a check established ([`Trust`]) and why one is refused.
//! - [`index`], [`a2`], `freepbx`, `joomla`: each kind's documents, read into [`Release`]s.
//! - `key_arg`: a public key as an administrator gives it, or the `.pub` file holding it.
//! - [`release`]: a release and the [`Digests`] that verify its package.

pub mod a2;
mod checking;
mod client;
mod freepbx;
pub mod index;
mod joomla;
mod json;
mod key_arg;
mod location;
mod messages;
mod pace;
mod redirect;
pub mod release;
pub mod release_document;
pub mod signature;
mod source;
mod tls;
mod trust;

pub use checking::Answer;
pub use client::{Client, DEFAULT_TIMEOUT, MAX_PACKAGE, MAX_TRANSFER_TIME};
pub use index::{Entry, Index};
pub use key_arg::{KeyArgError, public_key_text};
pub use location::{Location, shown_url};
pub use messages::{PRIVATE_CA, certificate as certificate_problem, plain_io};
pub use release::{Digests, Release, SetAside, Stability, Target};
pub use release_document::{MAX_VALIDITY, RELEASE_DOCUMENT, ReleaseDocument};
pub use signature::{Claims, PublicKey, SIGNATURE_SUFFIX};
pub use source::{Kind, Source, require_https, validate_query};
pub use trust::{MAX_CLOCK_SKEW, Refusal, Seen, Trust, span, utc};

use std::path::PathBuf;

/// The host application's name when its root declares none: what Joomla update servers
/// match `<targetplatform name>` against, and what `repo build` targets by default.
pub const DEFAULT_PLATFORM: &str = "modhost";

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

/// Checks a release's rawname and version grammar: what keeps a server's answer from
/// naming files or versions modhost cannot handle.
pub(crate) fn valid_release(rawname: &str, version: &str) -> std::result::Result<(), String> {
    if !modhost_manifest::is_valid_rawname(rawname) {
        return Err(format!(
            "`{}` is not a valid module rawname",
            messages::clipped(rawname)
        ));
    }
    modhost_manifest::Version::parse(version)
        .map(|_| ())
        .map_err(|e| format!("`{rawname}`: {e}"))
}
