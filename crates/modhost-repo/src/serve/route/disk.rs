//! How a file is read from disk. tower-http's own backend hands every `stat`, open and
//! read to tokio's blocking threads: for a document of a few KB that is four or five
//! trips between threads, each a wake-up and a context switch costing far more than the
//! system call it carries — most of the CPU time a small answer took. Here the file is
//! opened once, on the connection's own thread as nginx does it, and looked at with
//! `fstat`; a small file is read whole there and then. A repository's files are few and
//! in the page cache, where these calls take microseconds.
//!
//! A larger file (a package) is read a chunk at a time, each on the connection's thread
//! when its pages are in the page cache (`preadv2` with `RWF_NOWAIT`, which says so
//! rather than wait for the disk), else on the blocking threads: a slow disk holds up no
//! connection but the one that waits for it.
//!
//! Opening the last name with `O_NOFOLLOW` is also what refuses a symbolic link there,
//! with no `lstat` before it: one walk of the path instead of three, and no moment in
//! which the name could be swapped for a link between the check and the open.

use std::future::{Future, Ready, ready};
use std::io::{self, Cursor, Read, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::task::JoinHandle;
use tower_http::services::fs::{Backend, File, Metadata};

/// The largest file read whole when opened: one chunk of the file service's body.
const SMALL: u64 = 64 * 1024;
/// The most a larger file's read asks for at once: the file service's chunk.
const CHUNK: usize = 64 * 1024;

/// A regular file found for a request, opened: what tower-http's file service answers
/// from, whatever path it asks for.
#[derive(Clone, Debug)]
pub(in crate::serve) struct Found {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    meta: Meta,
    /// A small file's bytes, read when it was found.
    bytes: Option<Bytes>,
}

impl Found {
    /// The regular file at `path`, or None when there is none or the last name is a
    /// symbolic link (or anything else than a regular file).
    pub(in crate::serve) fn open(path: PathBuf) -> io::Result<Option<Found>> {
        let Some((mut file, mut meta)) = open_plain(&path)? else {
            return Ok(None);
        };
        let bytes = if meta.len <= SMALL {
            // As many bytes as `fstat` said, with no read after them to see the end: the
            // length said is that of the bytes sent even if the file changed meanwhile
            // (builds write new files, so it should not).
            let mut bytes = vec![0; meta.len as usize];
            let mut filled = 0;
            while filled < bytes.len() {
                match file.read(&mut bytes[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            bytes.truncate(filled);
            meta.len = filled as u64;
            Some(Bytes::from(bytes))
        } else {
            None
        };
        Ok(Some(Found {
            inner: Arc::new(Inner { path, meta, bytes }),
        }))
    }

    /// Where it is.
    /// Whether the file holds no byte.
    pub(in crate::serve) fn is_empty(&self) -> bool {
        self.inner.meta.len == 0
    }

    pub(in crate::serve) fn path(&self) -> &Path {
        &self.inner.path
    }
}

/// The file at `path` opened for reading, unless the last name is a symbolic link or
/// anything else than a regular file. `O_NONBLOCK` keeps a FIFO from holding the open up;
/// it is cleared once the file is known to be regular, so that no file system that heeds
/// it on regular files makes a read fail rather than wait.
fn open_plain(path: &Path) -> io::Result<Option<(std::fs::File, Meta)>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => std::fs::File::from(fd),
        // A link as the last name (ELOOP), a name that is not there, a file in the way of
        // a directory, or one the server may not read: no such file (as tower-http has
        // it for the last two).
        Err(Errno::LOOP | Errno::NOENT | Errno::NOTDIR | Errno::ACCESS) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Ok(None);
    }
    rustix::fs::fcntl_setfl(&file, OFlags::empty())?;
    Ok(Some((file, Meta::from(&metadata))))
}

/// What the file service needs of a file's metadata.
#[derive(Clone, Copy, Debug)]
pub(in crate::serve) struct Meta {
    dir: bool,
    modified: Option<SystemTime>,
    len: u64,
}

impl From<&std::fs::Metadata> for Meta {
    fn from(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Meta {
            dir: metadata.is_dir(),
            modified: metadata.modified().ok().map(|time| {
                // When the file itself was last written or renamed: not settable by
                // touch, unlike its modification time, nor shared by a file that takes
                // its inode number over.
                let changed = (metadata.ctime() as u64)
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(metadata.ctime_nsec() as u64);
                with_identity(time, metadata.ino() ^ changed.rotate_left(21))
            }),
            len: metadata.len(),
        }
    }
}

/// `time` to the second, its fraction taken from `identity` (the file's inode number and
/// change time). tower-http makes the ETag of a file from its length and this time to the
/// nanosecond, while `Last-Modified` shows whole seconds. A build keeps each package's
/// own time (FreePBX's `packaged` says when it was made) and writes every file anew: two
/// builds of a package of the same length and second, but other bytes, are then told
/// apart by their files, so that a cache or a client resuming one never takes the other
/// for it.
fn with_identity(time: SystemTime, identity: u64) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => {
            let nanos = (identity % 1_000_000_000) as u32;
            SystemTime::UNIX_EPOCH + std::time::Duration::new(since.as_secs(), nanos)
        }
        Err(_) => time,
    }
}

impl Metadata for Meta {
    fn is_dir(&self) -> bool {
        self.dir
    }

    fn modified(&self) -> io::Result<SystemTime> {
        self.modified
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no modification time"))
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl Backend for Found {
    type File = Opened;
    type Metadata = Meta;
    type OpenFuture = Ready<io::Result<Opened>>;
    type MetadataFuture = Ready<io::Result<Meta>>;

    fn open(&self, _: PathBuf) -> Self::OpenFuture {
        let inner = &self.inner;
        let opened = match &inner.bytes {
            Some(bytes) => Ok(Opened {
                meta: inner.meta,
                content: Content::Read(Cursor::new(bytes.clone())),
            }),
            // Opened again, each answer reading from its own offset; checked again too.
            None => match open_plain(&inner.path) {
                Ok(Some((file, meta))) => Ok(Opened {
                    meta,
                    content: Content::Streamed(Streamed {
                        file: Arc::new(file),
                        position: 0,
                        pending: None,
                        cached_reads: true,
                    }),
                }),
                Ok(None) => Err(io::ErrorKind::NotFound.into()),
                Err(e) => Err(e),
            },
        };
        ready(opened)
    }

    fn metadata(&self, _: PathBuf) -> Self::MetadataFuture {
        ready(Ok(self.inner.meta))
    }
}

/// A file opened for one answer: a small one's bytes, or a larger one read as it goes.
#[derive(Debug)]
pub(in crate::serve) struct Opened {
    meta: Meta,
    content: Content,
}

#[derive(Debug)]
enum Content {
    Read(Cursor<Bytes>),
    Streamed(Streamed),
}

/// A larger file, read at its own position: from the page cache on the calling thread,
/// else on the blocking threads.
#[derive(Debug)]
struct Streamed {
    file: Arc<std::fs::File>,
    position: u64,
    /// A read under way on the blocking threads.
    pending: Option<JoinHandle<io::Result<Vec<u8>>>>,
    /// Whether reads from the page cache alone are worth trying: not on a system or file
    /// system without `RWF_NOWAIT`.
    cached_reads: bool,
}

impl Streamed {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_none() {
            let want = buf.remaining().min(CHUNK);
            if want == 0 {
                return Poll::Ready(Ok(()));
            }
            if self.cached_reads {
                let dest = buf.initialize_unfilled_to(want);
                match read_cached(&self.file, dest, self.position) {
                    Cached::Read(n) => {
                        buf.advance(n);
                        self.position += n as u64;
                        return Poll::Ready(Ok(()));
                    }
                    Cached::OnDisk => {}
                    Cached::Unsupported => self.cached_reads = false,
                    Cached::Failed(e) => return Poll::Ready(Err(e)),
                }
            }
            let file = Arc::clone(&self.file);
            let position = self.position;
            self.pending = Some(tokio::task::spawn_blocking(move || {
                let mut bytes = vec![0; want];
                let n = loop {
                    match file.read_at(&mut bytes, position) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        read => break read?,
                    }
                };
                bytes.truncate(n);
                Ok(bytes)
            }));
        }
        let Some(pending) = &mut self.pending else {
            return Poll::Ready(Ok(()));
        };
        let read = std::task::ready!(Pin::new(pending).poll(cx));
        self.pending = None;
        let bytes = read.map_err(io::Error::other)??;
        // Asked for no more than there was room for then; the room is the same now.
        let n = bytes.len().min(buf.remaining());
        buf.put_slice(&bytes[..n]);
        self.position += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// What a read from the page cache alone found.
enum Cached {
    Read(usize),
    /// Some of the bytes are on disk only: the read would wait for it.
    OnDisk,
    Unsupported,
    Failed(io::Error),
}

/// Reads into `dest` at `position` what the page cache holds, waiting for no disk.
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, dest: &mut [u8], position: u64) -> Cached {
    use rustix::io::{Errno, IoSliceMut, ReadWriteFlags};
    loop {
        let read = rustix::io::preadv2(
            file,
            &mut [IoSliceMut::new(dest)],
            position,
            ReadWriteFlags::NOWAIT,
        );
        return match read {
            Ok(n) => Cached::Read(n),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => Cached::OnDisk,
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => Cached::Unsupported,
            Err(e) => Cached::Failed(e.into()),
        };
    }
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: &mut [u8], _: u64) -> Cached {
    Cached::Unsupported
}

impl File for Opened {
    type Metadata = Meta;
    type MetadataFuture<'a> = Ready<io::Result<Meta>>;

    fn metadata(&self) -> Self::MetadataFuture<'_> {
        ready(Ok(self.meta))
    }
}

impl AsyncRead for Opened {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().content {
            Content::Read(bytes) => Pin::new(bytes).poll_read(cx, buf),
            Content::Streamed(file) => file.poll_read(cx, buf),
        }
    }
}

impl AsyncSeek for Opened {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let len = this.meta.len;
        match &mut this.content {
            Content::Read(bytes) => Pin::new(bytes).start_seek(position),
            Content::Streamed(file) => {
                let to = match position {
                    SeekFrom::Start(to) => Some(to),
                    SeekFrom::End(by) => len.checked_add_signed(by),
                    SeekFrom::Current(by) => file.position.checked_add_signed(by),
                };
                let to = to.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")
                })?;
                // A read under way was for the old position.
                file.pending = None;
                file.position = to;
                Ok(())
            }
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        match &mut self.get_mut().content {
            Content::Read(bytes) => Pin::new(bytes).poll_complete(cx),
            Content::Streamed(file) => Poll::Ready(Ok(file.position)),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    use super::*;

    /// A larger file reads whole and from a seeked position alike, from the page cache or
    /// on the blocking threads.
    #[test]
    fn a_larger_file_reads_the_same_from_the_cache_or_the_blocking_threads() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big.tgz");
        let content: Vec<u8> = (0..(3 * CHUNK + 1234)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for cached_reads in [true, false] {
            let found = Found::open(path.clone())?.ok_or(io::ErrorKind::NotFound)?;
            runtime.block_on(async {
                let mut opened = found.open(PathBuf::new()).await?;
                if let Content::Streamed(streamed) = &mut opened.content {
                    streamed.cached_reads = cached_reads;
                } else {
                    panic!("a file over {SMALL} bytes is streamed");
                }
                let mut all = Vec::new();
                opened.read_to_end(&mut all).await?;
                assert!(all == content, "whole file, cached reads {cached_reads}");
                let mut opened = found.open(PathBuf::new()).await?;
                opened.seek(SeekFrom::Start(CHUNK as u64 + 7)).await?;
                let mut tail = Vec::new();
                opened.read_to_end(&mut tail).await?;
                assert!(tail[..] == content[CHUNK + 7..], "from an offset");
                Ok::<_, io::Error>(())
            })?;
        }
        // A small file is read whole when found; a link as the last name is not opened.
        std::fs::write(dir.path().join("small.json"), b"{}")?;
        let small = Found::open(dir.path().join("small.json"))?;
        assert_eq!(
            small.map(|f| f.inner.bytes.clone()),
            Some(Some(Bytes::from("{}")))
        );
        std::os::unix::fs::symlink(&path, dir.path().join("link.tgz"))?;
        assert!(Found::open(dir.path().join("link.tgz"))?.is_none());
        Ok(())
    }
}
