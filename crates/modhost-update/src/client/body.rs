//! What a fetch read, and a local file read as a fetch reads a URL.

use std::io::{Read, Write};
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

/// The most of a package kept in memory as it is downloaded: enough for a server's JSON
/// refusal sent in its place, which is read as a message.
pub(super) const HEAD: usize = 64 * 1024;

/// Where a fetch puts what it reads: memory, for a document (small, and bounded), or a
/// file, for a package, which may be hundreds of megabytes and is never held in memory.
pub(super) trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<()>;
    /// Everything put, when all of it is in memory: `len` bytes were put.
    fn whole(&self, len: u64) -> Option<&[u8]>;
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn whole(&self, _: u64) -> Option<&[u8]> {
        Some(self)
    }
}

/// A package's file, written in order, and its first [`HEAD`] bytes: enough for a
/// server's refusal sent in the package's place.
pub(super) struct FileSink<'a> {
    /// The file's path, for its errors.
    path: &'a Path,
    file: &'a mut std::fs::File,
    head: Vec<u8>,
}

impl<'a> FileSink<'a> {
    /// Writes into `file`, open at `path`.
    pub(super) fn new(path: &'a Path, file: &'a mut std::fs::File) -> Self {
        FileSink {
            path,
            file,
            head: Vec::new(),
        }
    }
}

impl Sink for FileSink<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let room = HEAD.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        self.file.write_all(bytes).map_err(file_error(self.path))
    }

    fn whole(&self, len: u64) -> Option<&[u8]> {
        (self.head.len() as u64 == len).then_some(self.head.as_slice())
    }
}

/// What a fetch read: at most its limit and one byte more.
pub(super) struct Body {
    /// How many bytes were read.
    pub(super) len: u64,
    /// Whether there was more than the limit.
    pub(super) over: bool,
    /// The Content-Encoding the server named for bytes taken as they came (a package's).
    pub(super) encoding: Option<String>,
    /// Whether the bytes are what a gzip-encoded answer decompressed to.
    pub(super) decompressed: bool,
    /// Where the server redirected the request, when it did: what a document's relative
    /// references are resolved against (RFC 3986 §5.1.3).
    pub(super) redirected_to: Option<String>,
}

impl Body {
    /// `len` bytes, read with limit `max`.
    pub(super) fn new(len: u64, max: u64) -> Self {
        Body {
            len,
            over: len > max,
            encoding: None,
            decompressed: false,
            redirected_to: None,
        }
    }
}

/// Reads the local file `path` into `sink` as [`Client::fetch`] reads a URL: at most `max`
/// bytes and one more.
pub(super) fn read_local(path: &Path, max: u64, sink: &mut dyn Sink) -> Result<Body> {
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
    let mut reader = file.take(max.saturating_add(1));
    let mut chunk = vec![0; 64 * 1024];
    let mut len = 0;
    loop {
        let n = reader.read(&mut chunk).map_err(file_error(path))?;
        if n == 0 {
            return Ok(Body::new(len, max));
        }
        sink.put(&chunk[..n])?;
        len += n as u64;
    }
}

/// Reads the local file `path` into memory as [`read_local`] does.
pub(super) fn read_local_bytes(path: &Path, max: u64) -> Result<(Body, Vec<u8>)> {
    let mut bytes = Vec::new();
    let body = read_local(path, max, &mut bytes)?;
    Ok((body, bytes))
}

/// For a document missing from a directory `repo build` wrote into, the `public/` beside
/// it where it is published: the source names the build's output, not what it publishes.
fn published_beside(path: &Path) -> Option<PathBuf> {
    let (dir, name) = (path.parent()?, path.file_name()?);
    let public = dir.join("public");
    public.join(name).is_file().then_some(public)
}
