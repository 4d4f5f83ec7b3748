//! Downloading a package: streamed to a file of its own beside where it goes, checked
//! there against its published size and checksums, and only then put in its place.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Client;
use super::body::{Body, FileSink};
use crate::release::Release;
use crate::{Error, Location, Result, file_error};

impl Client {
    /// Downloads `release` to `path` (with the download key `extra_query` appended to its
    /// URL), refusing it unless its size and every published checksum match — and a
    /// release without any checksum is never downloaded. A package may be at most
    /// [`Client::max_package`] bytes: one published as larger is refused before it is
    /// fetched, and no more than its published size is ever read. It is streamed to a
    /// new file beside `path` and renamed to `path` once it passed: `path` is only ever
    /// written with a package that passed, and a failed download leaves no file.
    pub fn download(
        &self,
        release: &Release,
        extra_query: Option<&str>,
        path: &Path,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<()> {
        // `repo build` keeps a gated package out of the public directory: only `repo
        // serve` hands it out, to a request with a licence key.
        if let (true, Location::Path(path)) = (release.gated, &release.location)
            && !path.exists()
        {
            return Err(Error::File {
                path: path.clone(),
                message: format!(
                    "`{}` {} is licence-gated, and a repository's directory holds no gated \
                     package: its publisher's server (`repo serve`) hands it out to a request \
                     with a licence key, so make the source that server's address",
                    release.rawname, release.version
                ),
            });
        }
        if release.digests.is_empty() {
            return Err(Error::Mismatch {
                url: release.location.to_string(),
                message: "no checksum is published for it, so it cannot be verified".into(),
            });
        }
        // The published size bounds the download, and the cap bounds what may be
        // published: a document claiming more is refused before anything is fetched.
        let max = match release.size {
            Some(size) if size > self.max_package => {
                let document = release.document.as_ref().unwrap_or(&release.location);
                return Err(Error::Invalid {
                    url: document.to_string(),
                    message: format!(
                        "`{}` {} is published as {size} bytes, more than the {}-byte package \
                         limit: it is not downloaded",
                        release.rawname, release.version, self.max_package
                    ),
                });
            }
            Some(size) => size,
            None => self.max_package,
        };
        let (part, mut file) = part_file(path)?;
        let fetched = self
            .fetch(
                &release.location,
                extra_query,
                max,
                false,
                &mut FileSink::new(&part, &mut file),
                &mut |n| progress(n, release.size),
            )
            .and_then(|body| check(release, &part, &mut file, max, &body))
            .and_then(|()| std::fs::rename(&part, path).map_err(file_error(path)));
        if fetched.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        fetched
    }
}

/// A new file beside `path` for its download, of a name no other download uses: made,
/// never opened through a link or over another's file.
fn part_file(path: &Path) -> Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{}-{}.part",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let part = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&part)
        .map_err(file_error(&part))?;
    Ok((part, file))
}

/// Checks the package downloaded into `file` (at `path`) against `release`'s size and
/// checksums, reading it back through the same handle.
fn check(
    release: &Release,
    path: &Path,
    file: &mut std::fs::File,
    max: u64,
    body: &Body,
) -> Result<()> {
    let mismatch = |message: String| Error::Mismatch {
        url: release.location.to_string(),
        message,
    };
    // A server that compressed the package again (or sent a compressed copy stored
    // beside it) is named as the likely cause: the bytes are not the package's.
    let encoded = |problem: String| match &body.encoding {
        Some(encoding) => mismatch(format!(
            "{problem} (the server sent it with Content-Encoding `{}`: it compressed the \
             package again, or sent a compressed copy; packages must be served as they are)",
            encoding.escape_debug()
        )),
        None => mismatch(problem),
    };
    match release.size {
        Some(size) if body.over => {
            return Err(encoded(format!(
                "more than {size} bytes sent or announced, {size} published"
            )));
        }
        Some(size) if body.len != size => {
            return Err(encoded(format!(
                "{} bytes received, {size} published",
                body.len
            )));
        }
        None if body.over => {
            return Err(encoded(format!(
                "larger than the {max}-byte limit for a package whose size is not published"
            )));
        }
        _ => {}
    }
    file.seek(SeekFrom::Start(0)).map_err(file_error(path))?;
    release
        .digests
        .verify_reader(&*file)
        .map_err(file_error(path))?
        .map_err(encoded)
}
