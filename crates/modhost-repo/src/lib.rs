//! The publisher's side of updates: the repository a publisher hosts, its signing key, its
//! licence-gated package groups, and a small HTTPS server for it.
//!
//! [`build()`] turns a directory of packages into a repository of static files in every
//! format of [`modhost_update::Kind::ALL`] — its [`PUBLIC`] part for any web server or CDN,
//! and a [`PRIVATE`] part with the secrets and packages of licence-gated [`Groups`] — each
//! document signed with a [`SecretKey`] when given one. [`serve::Server`] serves both over
//! HTTPS, the gated packages only with a valid [`licence_key`]. The formats, and the client
//! that reads them, are `modhost-update`'s: this crate depends on it, never the reverse, so
//! that a host that only installs updates carries none of this.
//!
//! - `build`: [`build()`] and [`build_with`] with its [`Options`] (`options`: what is
//!   refused), [`Built`]; `packages`: the input's packages, read and checked against
//!   each other before anything is written;
//!   `publish`: the output directory, each build in `builds/SERIAL` with [`CURRENT`]
//!   swapped to it in one rename.
//! - `error`: [`Error`], what is refused or fails, in this crate's words.
//! - `key`: [`SecretKey`], minisign-compatible signing.
//! - `licence`: [`Groups`] from `groups.toml` (each secret checked for strength),
//!   [`generate_secret`], [`licence_key`] and its check, and [`write_secret`] for files
//!   only their owner reads.
//! - [`serve`]: the HTTPS server.

mod advice;
mod build;
mod error;
mod key;
mod licence;
mod options;
mod packages;
mod publication;
mod publish;
pub mod serve;

pub use build::{Built, PRIVATE, PUBLIC, build, build_with};
pub use error::{Error, Result};
pub use key::SecretKey;
pub use licence::{
    Group, Groups, MIN_SECRET, generate_secret, licence_key, licence_key_matches, write_secret,
};
pub use options::{DEFAULT_VALID_FOR, MAX_VALID_FOR, Options};
pub use publish::{BUILDS, CURRENT};
