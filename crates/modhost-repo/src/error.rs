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
    /// Packages that are not the ones the last build published as their versions.
    #[error(
        "`{}`: {}: hosts that installed it never take another package of the same version, \
         and caches keep serving the one they have; give the changed package a new version \
         (or, if no host can have taken the published one, allow publishing it again)",
        .dir.display(),
        .changed.join("; ")
    )]
    Republished {
        /// The directory of packages.
        dir: PathBuf,
        /// Each package changed, and how.
        changed: Vec<String>,
    },
    /// The last build's serial is more than a day ahead of this machine's clock: a build
    /// made with a clock set ahead, which hosts refuse, and so every build after it.
    #[error(
        "`{}`: the last build's serial {last} is {} ahead of this machine's clock ({}): it was \
         built with a clock set ahead, and hosts refuse a release more than a day ahead of \
         theirs, so this build would be refused too; with the clock right, build into a new \
         output directory (a host that refused that serial never took it), or wait until {}",
        .out.display(),
        modhost_update::span(.last.saturating_sub(*.now)),
        modhost_update::utc(*.now),
        modhost_update::utc(.last.saturating_sub(modhost_update::MAX_CLOCK_SKEW))
    )]
    SerialAhead {
        /// The output directory.
        out: PathBuf,
        /// Its last build's serial.
        last: u64,
        /// This machine's time, in seconds since the epoch.
        now: u64,
    },
    /// Options no build can honour together or at all, whatever its packages: a
    /// validity past the longest, an empty platform, a next key without a signature.
    #[error("{0}")]
    Options(String),
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

/// The [`Error::File`] of an I/O failure on `path`, said in words: the path is named
/// once, by the error, not again by the failure.
pub(crate) fn file_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::File {
        path: path.to_owned(),
        message: io_words(&e),
    }
}

/// What an I/O failure on a path says of it: "does not exist", "is not a directory", or
/// the system's words for it without the path (fs_err's wrapping) or the error number.
pub(crate) fn io_words(error: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match error.kind() {
        K::NotFound => "does not exist".into(),
        K::NotADirectory => "is not a directory".into(),
        K::IsADirectory => "is a directory, not a file".into(),
        K::PermissionDenied => "cannot be reached: permission denied".into(),
        _ => {
            let mut innermost: &dyn std::error::Error = error;
            while let Some(source) = innermost.source() {
                innermost = source;
            }
            let text = innermost.to_string();
            match text.rsplit_once(" (os error ") {
                Some((words, _)) => words.to_owned(),
                None => text,
            }
        }
    }
}
