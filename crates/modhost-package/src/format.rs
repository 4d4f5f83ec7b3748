//! A package's archive format, told by its first bytes, never by its name.

use std::io::{Read, Seek};
use std::path::Path;

use crate::error::{Error, refused};

/// A package's archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A gzip-compressed tar.
    GzipTar,
    /// A zip archive.
    Zip,
}

impl Format {
    /// The file extension packages of this format carry, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::GzipTar => "tgz",
            Format::Zip => "zip",
        }
    }
}

/// The archive format of `package`, told by its first bytes; refused when it is neither.
pub fn format(package: &Path) -> Result<Format, Error> {
    open(package).map(|(_, format)| format)
}

/// Opens `package` and tells its format by its first bytes.
pub(crate) fn open(package: &Path) -> Result<(fs_err::File, Format), Error> {
    let io_err = |source| Error::Io {
        package: package.to_owned(),
        context: "cannot open".into(),
        source,
    };
    let mut file = fs_err::File::open(package).map_err(io_err)?;
    let mut magic = Vec::with_capacity(4);
    Read::by_ref(&mut file)
        .take(4)
        .read_to_end(&mut magic)
        .and_then(|_| file.rewind())
        .map_err(io_err)?;
    let format = if magic.starts_with(&[0x1f, 0x8b]) {
        Format::GzipTar
    } else if magic == b"PK\x03\x04" {
        Format::Zip
    } else {
        return Err(refused(
            package,
            "is neither a gzip tar nor a zip archive".into(),
        ));
    };
    Ok((file, format))
}
