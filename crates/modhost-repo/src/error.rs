//! What the publisher's side refuses or cannot do, in its own words.

use std::path::{Path, PathBuf};

/// Why a build, a key or the server failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of a build's input or output, a key file or a certificate
    /// cannot be read or written, or is not what it must be.
    #[error("`{}`: {message}", .path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// What a build is asked to make from the packages in `dir` cannot be made: packages
    /// that clash, options that contradict each other.
    #[error("`{}`: {message}", .dir.display())]
    Input {
        /// The directory of packages.
        dir: PathBuf,
        /// Why not.
        message: String,
    },
    /// A base URL clients could not fetch the repository from.
    #[error("`{url}`: the base URL {why}")]
    BaseUrl {
        /// The base URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The server cannot listen on, or serve from, an address.
    #[error("`{address}`: {message}")]
    Listen {
        /// The address.
        address: String,
        /// Why not.
        message: String,
    },
    /// A document a build reads back (the last release, the index) is refused by the
    /// client side that reads it.
    #[error(transparent)]
    Update(#[from] modhost_update::Error),
}

/// The result type of the publisher's side.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The [`Error::File`] of an I/O failure on `path`.
pub(crate) fn file_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}
