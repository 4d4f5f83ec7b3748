//! What a fetch read, and a local file read as a fetch reads a URL.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Error, Result, file_error};

/// The Content-Encoding `headers` name, lower-cased, every header line of it joined as one
/// list (RFC 9110 §5.3: several lines mean what one comma-joined line means); `None` for
/// none or `identity`.
pub(super) fn content_encoding(headers: &ureq::http::HeaderMap) -> Option<String> {
    let codings: Vec<String> = headers
        .get_all("content-encoding")
        .iter()
        .flat_map(|line| line.to_str().unwrap_or("?").split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    (!codings.is_empty()).then(|| codings.join(", "))
}

/// What a fetch read: at most its limit and one byte more.
pub(super) struct Body {
    /// The bytes read.
    pub(super) bytes: Vec<u8>,
    /// Whether there was more than the limit.
    pub(super) over: bool,
    /// The Content-Encoding the server named for bytes taken as they came (a package's).
    pub(super) encoding: Option<String>,
    /// Whether the bytes are what a gzip-encoded answer decompressed to.
    pub(super) decompressed: bool,
}

impl Body {
    /// `bytes`, read with limit `max`.
    pub(super) fn new(bytes: Vec<u8>, max: u64) -> Self {
        let over = bytes.len() as u64 > max;
        Body {
            bytes,
            over,
            encoding: None,
            decompressed: false,
        }
    }
}

/// Reads the local file `path` as [`Client::fetch`] reads a URL: at most `max` bytes and
/// one more.
pub(super) fn read_local(path: &Path, max: u64) -> Result<Body> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Opened without waiting, so that a FIFO put where a file was expected cannot hang
    // the client; only a regular file is read. (The error names the path once, below.)
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| match published_beside(path) {
            Some(public) => Error::File {
                path: path.to_owned(),
                message: format!(
                    "no such file; `repo build` publishes it in `{}`: make the source that directory",
                    public.display()
                ),
            },
            None => file_error(path)(e),
        })?;
    let is_file = file.metadata().map_err(file_error(path))?.is_file();
    if !is_file {
        return Err(Error::File {
            path: path.to_owned(),
            message: "not a regular file".into(),
        });
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(file_error(path))?;
    Ok(Body::new(bytes, max))
}

/// For a document missing from a directory `repo build` wrote into, the `public/` beside
/// it where it is published: the source names the build's output, not what it publishes.
fn published_beside(path: &Path) -> Option<PathBuf> {
    let (dir, name) = (path.parent()?, path.file_name()?);
    let public = dir.join("public");
    public.join(name).is_file().then_some(public)
}
