//! What can be wrong with a gzip tar below its entries: a damaged or truncated gzip
//! stream, bytes after it, a stream that holds no tar, data after the tar's end. Readers
//! raise these as I/O errors; [`find`] gets them back out of whatever wrapped them.

use std::io;

/// A fault in a package's gzip stream or in the tar it holds.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    /// A member's CRC32 or length does not match its data.
    #[error("the gzip checksum does not match: the file is damaged; download or copy it again")]
    Checksum,
    /// The gzip stream stops before its end.
    #[error("the gzip stream ends early: the file is truncated; download or copy it again")]
    Truncated,
    /// The compressed data cannot be decompressed.
    #[error("the gzip data is corrupt: the file is damaged; download or copy it again")]
    Corrupt,
    /// Bytes that are not a gzip member follow the gzip stream.
    #[error(
        "the file goes on after the end of its gzip stream with bytes that are not gzip \
         data; a package must end where its gzip stream ends (repack it with `tar -czf`)"
    )]
    AfterGzip,
    /// The decompressed stream does not start with a tar header.
    #[error(
        "the gzip stream does not hold a tar archive{}; a package is a tar compressed \
         once with gzip (`tar -czf`) or a zip",
        found.map(|f| format!(" but {f}")).unwrap_or_default()
    )]
    NotTar {
        /// What it holds instead, when known.
        found: Option<&'static str>,
    },
    /// The tar stops in the middle of an entry (a header or its content) although the
    /// gzip stream around it is whole.
    #[error(
        "the archive ends in the middle of an entry: the file is truncated; download or copy \
         it again"
    )]
    TarTruncated,
    /// Data other than zero padding follows the tar's end inside the gzip stream.
    #[error(
        "the tar archive's end is followed by more data inside the gzip stream, which \
         other tools would ignore; repack the module with `tar -czf`"
    )]
    AfterTar,
}

impl Fault {
    /// This fault as an I/O error, for a reader to return.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// The `T` behind `error`, looked for through the errors that wrap it (the tar crate
/// wraps some I/O errors in its own).
pub(crate) fn find<T: std::error::Error + 'static>(error: &io::Error) -> Option<&T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = error.get_ref().map(|e| e as _);
    while let Some(inner) = current {
        if let Some(found) = inner.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            current = io.get_ref().map(|e| e as _);
            continue;
        }
        current = inner.source();
    }
    None
}
