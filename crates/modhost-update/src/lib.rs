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
//! ```
//! use modhost_update::{Client, Kind, Location, Seen, Source, Stability, Target};
//!
//! // An a2-style source in a local directory: `modsource.json` names the current version.
//! let dir = tempfile::tempdir()?;
//! let sha256 = "ab".repeat(32);
//! std::fs::write(
//!     dir.path().join("modsource.json"),
//!     format!(r#"{{"rawname":"phonebook","version":"2.1.0","sha256":"{sha256}"}}"#),
//! )?;
//! let source = Source {
//!     name: "phonebook".into(),
//!     kind: Kind::A2,
//!     location: Location::parse(&dir.path().display().to_string())?,
//!     public_keys: Vec::new(),
//!     seen: Seen::default(),
//!     extra_query: None,
//! };
//! let target = Target {
//!     platform: "modhost".into(),
//!     version: String::new(),
//!     stability: Stability::Stable,
//!     php: None,
//! };
//! let client = Client::new(None, modhost_update::DEFAULT_TIMEOUT)?;
//! let releases = client.releases(&source, None, &target)?;
//! assert_eq!(releases[0].version, "2.1.0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
mod error;
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
pub use error::{Error, Result, file_error};
pub use index::{Entry, Index};
pub use key_arg::{KeyArgError, public_key_text};
pub use location::{Location, shown_url};
pub use messages::{PRIVATE_CA, certificate as certificate_problem, plain_io};
pub use release::{Digests, Release, SetAside, Stability, Target};
pub use release_document::{MAX_VALIDITY, RELEASE_DOCUMENT, ReleaseDocument};
pub use signature::{Claims, PublicKey, SIGNATURE_SUFFIX};
pub use source::{Kind, Source, require_https, validate_query};
pub use trust::{MAX_CLOCK_SKEW, Refusal, Seen, Trust, span, utc};

/// The host application's name when its root declares none: what Joomla update servers
/// match `<targetplatform name>` against, and what `repo build` targets by default.
pub const DEFAULT_PLATFORM: &str = "modhost";
