//! A cross-process signal that the generation may have moved, cheap enough to read on
//! every hook dispatch.
//!
//! Reading the generation from SQLite costs a read transaction — file locks, a stat and
//! a statement — which was most of a one-module dispatch. Instead every commit that moves
//! the generation also moves a counter in a small file beside the database, and readers
//! trust the generation they last read for as long as the counter stays put.
//!
//! The counter works like a seqlock across processes. A committer takes the file's
//! lock, makes the counter odd, commits, and makes it even again; so the values only
//! grow, and an odd value means "a commit may be under way or died half-way". Readers
//! never trust an odd value: they go to SQLite every time until a later commit, or the
//! next [`Signal::open`] that finds the lock free, makes it even again. A kill -9 at any
//! point therefore costs speed, never correctness.
//!
//! The counter is read with one `pread` of 8 bytes, not through a shared mapping of the
//! file: a mapped page that an administrator or a restore from backup truncates away
//! faults with SIGBUS, which would kill every host that has it mapped, and checking the
//! length first (an `fstat`, as dear as the `pread`) would still leave the moment
//! between check and load. A `pread` of a short or emptied file just comes back short,
//! which is never trusted. Since a `pread` is not atomic against a `pwrite`, the counter
//! is stored Gray-coded: consecutive values differ in one bit, so a read overlapping a
//! write sees the value before or after it, never a mixture of the two.
//!
//! A file deleted or replaced by a rename under a running host would leave it reading a
//! counter nobody writes: readers check, at most once a second, that the file they have
//! open is still the one at its path, and follow the new one; committers check every time.
//!
//! A short file (truncated, or new) starts again at a random even value, not at 0: a
//! reader may still trust a counter value it saw before the truncation, and counting up
//! from 0 could reach that very value with another generation behind it.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions, Permissions, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::OFlags;

use crate::{Error, Result};

/// The counter file's length: one u64, Gray-coded, little-endian.
const COUNTER: usize = 8;

/// Above every counter value modhost writes: [`fresh`] stays below half of it, and
/// counting up from there would take 2^61 commits to reach it, so `+ 1` never overflows.
const LIMIT: u64 = 1 << 63;

/// The counter file's mode: it is modhost's alone, like the database beside it.
const MODE: u32 = 0o600;

/// How often a reader checks that its counter file is still the one at its path: one
/// deleted or replaced (by an administrator, a restore from backup) is followed within
/// this long, instead of the host trusting a file nobody writes any more.
const RECHECK: Duration = Duration::from_secs(1);

/// The counter file of one state database and the generation last read under it.
#[derive(Debug)]
pub(crate) struct Signal {
    /// The open counter file; replaced when the one at `path` is another.
    file: RwLock<File>,
    path: PathBuf,
    /// When `file` was last checked against `path`, as milliseconds since `opened`.
    checked: AtomicU64,
    opened: Instant,
    /// The counter value and the generation read while it held; trusted while the
    /// counter still has that value.
    seen: Mutex<Option<(u64, i64)>>,
    /// Serialises this process's committers: the file lock is per open file, which all
    /// clones of a [`crate::State`] share.
    committing: Mutex<()>,
}

/// `n` Gray-coded: `n` and `n + 1` differ in exactly one bit.
pub(crate) fn gray(n: u64) -> u64 {
    n ^ (n >> 1)
}

/// The number that [`gray`] coded as `code`.
pub(crate) fn ungray(code: u64) -> u64 {
    let mut n = code;
    let mut shift = 1;
    while shift < u64::BITS {
        n ^= n >> shift;
        shift <<= 1;
    }
    n
}

/// A random even counter value with room to grow: where a short file starts again.
fn fresh() -> u64 {
    // SipHash under the process's random keys, over the time: no other reader can have
    // seen this value before.
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    // Below LIMIT / 2, and even.
    (hasher.finish() >> 2) & !1
}

impl Signal {
    /// Opens (creating) the counter file beside the database at `db`, sets its mode, and
    /// repairs what no committer holds: an odd counter left by a process that died
    /// committing, or a file cut short.
    pub(crate) fn open(db: &Path) -> Result<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push("-generation");
        let path = PathBuf::from(name);
        let file = open_counter(&path)?;
        Ok(Signal {
            file: RwLock::new(file),
            path,
            checked: AtomicU64::new(0),
            opened: Instant::now(),
            seen: Mutex::new(None),
            committing: Mutex::new(()),
        })
    }

    /// Follows the counter file at the path when the open one is no longer there (deleted,
    /// or replaced by a rename): `always`, or at most once per [`RECHECK`]. The generation
    /// read under the old file is forgotten.
    fn follow(&self, always: bool) -> Result<()> {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.checked.load(Ordering::Relaxed);
        if !always && now.saturating_sub(last) < RECHECK.as_millis() as u64 {
            return Ok(());
        }
        self.checked.store(now, Ordering::Relaxed);
        let gone = {
            let file = self.file.read().unwrap_or_else(|e| e.into_inner());
            file.metadata().map_err(|e| self.io(e))?.nlink() == 0
        };
        if gone {
            let file = open_counter(&self.path)?;
            *self.file.write().unwrap_or_else(|e| e.into_inner()) = file;
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The counter; `None` when the file is short or unreadable, or holds a value no
    /// modhost writes, which no reader trusts and the next writer starts afresh.
    fn read(&self) -> Option<u64> {
        read_counter(&self.file.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The generation, from memory while the counter has not moved since it was read,
    /// else from `query` (and remembered when no commit overlapped the query).
    pub(crate) fn generation(&self, query: impl FnOnce() -> Result<i64>) -> Result<i64> {
        self.follow(false)?;
        let before = self.read();
        if let Some(before) = before {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((counter, generation)) = *seen
                && counter == before
            {
                return Ok(generation);
            }
        }
        let generation = query()?;
        if let Some(before) = before
            && before.is_multiple_of(2)
            && self.read() == Some(before)
        {
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((before, generation));
        }
        Ok(generation)
    }

    /// Runs `commit`, which moves the generation, with the counter odd around it, so that
    /// no reader trusts what it read before the commit became visible. Fails without
    /// running `commit` if the counter cannot be marked: other processes would not learn
    /// of the change.
    pub(crate) fn publish(&self, commit: impl FnOnce() -> Result<()>) -> Result<()> {
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        // Readers that opened the file at the path now must hear of this commit.
        self.follow(true)?;
        let file = self.file.read().unwrap_or_else(|e| e.into_inner());
        file.lock().map_err(|e| self.io(e))?;
        // The guard is held throughout, so the file is read and written through it, not
        // through `read` and `write`, which would lock again behind a waiting `follow`.
        let odd = read_counter(&file).unwrap_or_else(fresh) | 1;
        let result = write_counter(&file, odd)
            .map_err(|e| self.io(e))
            .and_then(|()| {
                let committed = commit();
                // Whether or not the commit stood, it is no longer under way. Should this
                // write fail, the counter stays odd, which readers never trust: slower
                // until the next commit or open makes it even, never wrong; and a commit
                // that stands must not be reported as failed.
                let _ = write_counter(&file, odd + 1);
                committed
            });
        let unlocked = file.unlock().map_err(|e| self.io(e));
        result.and(unlocked)
    }
}

/// Opens (creating) the counter file at `path`, sets its mode, and repairs what no
/// committer holds: an odd counter left by a process that died committing, or a file
/// cut short.
fn open_counter(path: &Path) -> Result<File> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    // A link put in its place is not followed (a chmod and a write through it would
    // change a file outside the root), nor is anything but a regular file taken.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(MODE)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                io(std::io::Error::other(
                    "it is a symbolic link, which modhost does not follow: remove it",
                ))
            }
            _ => io(e),
        })?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::other(
            "it is not a regular file: remove it",
        )));
    }
    // On every open, not only at creation: a file restored from a backup, or made by
    // hand, keeps whatever mode it came with.
    file.set_permissions(Permissions::from_mode(MODE))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            let repaired = match read_counter(&file) {
                Some(counter) if counter.is_multiple_of(2) => Ok(()),
                Some(counter) => write_counter(&file, counter + 1),
                None => write_counter(&file, fresh()),
            };
            let unlocked = file.unlock();
            repaired.and(unlocked).map_err(io)?;
        }
        // A committer holds it, and will leave it even and whole.
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    Ok(file)
}

/// The counter in `file`; `None` when it is short or unreadable, or holds a value no
/// modhost writes.
fn read_counter(file: &File) -> Option<u64> {
    let mut bytes = [0; COUNTER];
    match file.read_at(&mut bytes, 0) {
        Ok(COUNTER) => Some(ungray(u64::from_le_bytes(bytes))).filter(|&n| n < LIMIT),
        // A short read of a regular file is its end: the file was cut short.
        _ => None,
    }
}

/// Stores `counter` in `file`; grows a file cut short back to its length.
fn write_counter(file: &File, counter: u64) -> std::io::Result<()> {
    file.write_all_at(&gray(counter).to_le_bytes(), 0)
}
