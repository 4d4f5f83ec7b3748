//! A cross-process signal that the generation may have moved, cheap enough to read on
//! every hook dispatch.
//!
//! Reading the generation from SQLite costs a read transaction — file locks, a stat and
//! a statement — which was most of a one-module dispatch. Instead every commit that moves
//! the generation also moves a counter in a small file beside the database, and readers
//! trust the generation they last read for as long as the counter stays put. Every
//! process maps the file's page shared and reads the counter with one atomic load: a
//! `pread` per dispatch was a tenth of a one-module dispatch.
//!
//! The counter works like a seqlock across processes. A committer takes the file's
//! lock, makes the counter odd, commits, and makes it even again; so the values only
//! grow, and an odd value means "a commit may be under way or died half-way". Readers
//! never trust an odd value: they go to SQLite every time until a later commit, or the
//! next [`Signal::open`] that finds the lock free, makes it even again. A kill -9 at any
//! point therefore costs speed, never correctness.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::{Error, Result};

/// The counter file's length: one u64.
const COUNTER: u64 = 8;

/// The counter file of one state database and the generation last read under it.
#[derive(Debug)]
pub(crate) struct Signal {
    file: File,
    /// The file's first 8 bytes, mapped shared: the counter, little-endian.
    map: MmapRaw,
    path: PathBuf,
    /// The counter value and the generation read while it held; trusted while the
    /// counter still has that value.
    seen: Mutex<Option<(u64, i64)>>,
    /// Serialises this process's committers: the file lock is per open file, which all
    /// clones of a [`crate::State`] share.
    committing: Mutex<()>,
}

impl Signal {
    /// Opens (creating) the counter file beside the database at `db`, and repairs an
    /// odd counter that no committer holds — one left by a process that died committing.
    pub(crate) fn open(db: &Path) -> Result<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push("-generation");
        let path = PathBuf::from(name);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        // Grown, never shortened: every process keeps the first 8 bytes mapped.
        if file.metadata().map_err(io)?.len() < COUNTER {
            file.set_len(COUNTER).map_err(io)?;
        }
        let map = MmapOptions::new()
            .len(COUNTER as usize)
            .map_raw(&file)
            .map_err(io)?;
        let signal = Signal {
            file,
            map,
            path,
            seen: Mutex::new(None),
            committing: Mutex::new(()),
        };
        match signal.file.try_lock() {
            Ok(()) => {
                let counter = signal.read();
                if !counter.is_multiple_of(2) {
                    signal.write(counter + 1);
                }
                signal.file.unlock().map_err(|e| signal.io(e))?;
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(signal.io(e)),
        }
        Ok(signal)
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The counter, shared by every process that has the file mapped.
    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the mapping is COUNTER bytes long and page-aligned, so it holds one
        // aligned u64, and it lives as long as `self`. The file was grown to COUNTER bytes
        // before mapping and nothing shortens it (modhost never truncates it), so the page
        // stays backed. Every process touches the counter only through atomics.
        #[allow(unsafe_code)]
        unsafe {
            &*self.map.as_ptr().cast::<AtomicU64>()
        }
    }

    /// The counter; a new file reads as 0.
    fn read(&self) -> u64 {
        u64::from_le(self.counter().load(Ordering::SeqCst))
    }

    fn write(&self, counter: u64) {
        self.counter().store(counter.to_le(), Ordering::SeqCst);
    }

    /// The generation, from memory while the counter has not moved since it was read,
    /// else from `query` (and remembered when no commit overlapped the query).
    pub(crate) fn generation(&self, query: impl FnOnce() -> Result<i64>) -> Result<i64> {
        let before = self.read();
        {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((counter, generation)) = *seen
                && counter == before
            {
                return Ok(generation);
            }
        }
        let generation = query()?;
        if before.is_multiple_of(2) && self.read() == before {
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((before, generation));
        }
        Ok(generation)
    }

    /// Runs `commit`, which moves the generation, with the counter odd around it, so that
    /// no reader trusts what it read before the commit became visible.
    pub(crate) fn publish(&self, commit: impl FnOnce() -> Result<()>) -> Result<()> {
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        self.file.lock().map_err(|e| self.io(e))?;
        let odd = self.read() | 1;
        self.write(odd);
        let result = commit();
        self.write(odd + 1);
        let unlocked = self.file.unlock().map_err(|e| self.io(e));
        result.and(unlocked)
    }
}
