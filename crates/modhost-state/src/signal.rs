//! A cross-process signal that the generation may have moved, cheap enough to read on
//! every hook dispatch.
//!
//! Reading the generation from SQLite costs a read transaction — file locks, a stat and
//! a statement — which was most of a one-module dispatch. Instead every commit that moves
//! the generation also moves a counter in a small file beside the database, and readers
//! trust the generation they last read for as long as the counter stays put: one `pread`.
//!
//! The counter works like a seqlock across processes. A committer takes the file's
//! lock, makes the counter odd, commits, and makes it even again; so the values only
//! grow, and an odd value means "a commit may be under way or died half-way". Readers
//! never trust an odd value: they go to SQLite every time until a later commit, or the
//! next [`Signal::open`] that finds the lock free, makes it even again. A kill -9 at any
//! point therefore costs speed, never correctness.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Result};

/// The counter file of one state database and the generation last read under it.
#[derive(Debug)]
pub(crate) struct Signal {
    file: File,
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        let signal = Signal {
            file,
            path,
            seen: Mutex::new(None),
            committing: Mutex::new(()),
        };
        match signal.file.try_lock() {
            Ok(()) => {
                let counter = signal.read();
                let repaired = match counter {
                    Ok(odd) if odd % 2 == 1 => signal.write(odd + 1),
                    other => other.map(drop),
                };
                let unlocked = signal.file.unlock().map_err(|e| signal.io(e));
                repaired.and(unlocked)?;
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

    /// The counter; a new (empty) file reads as 0.
    fn read(&self) -> Result<u64> {
        let mut bytes = [0u8; 8];
        let mut filled = 0;
        while filled < bytes.len() {
            match self.file.read_at(&mut bytes[filled..], filled as u64) {
                Ok(0) => return Ok(0),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(u64::from_le_bytes(bytes))
    }

    fn write(&self, counter: u64) -> Result<()> {
        self.file
            .write_all_at(&counter.to_le_bytes(), 0)
            .map_err(|e| self.io(e))
    }

    /// The generation, from memory while the counter has not moved since it was read,
    /// else from `query` (and remembered when no commit overlapped the query).
    pub(crate) fn generation(&self, query: impl FnOnce() -> Result<i64>) -> Result<i64> {
        let before = self.read()?;
        {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((counter, generation)) = *seen
                && counter == before
            {
                return Ok(generation);
            }
        }
        let generation = query()?;
        if before % 2 == 0 && self.read()? == before {
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((before, generation));
        }
        Ok(generation)
    }

    /// Runs `commit`, which moves the generation, with the counter odd around it, so that
    /// no reader trusts what it read before the commit became visible.
    pub(crate) fn publish(&self, commit: impl FnOnce() -> Result<()>) -> Result<()> {
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        self.file.lock().map_err(|e| self.io(e))?;
        let result = self.read().and_then(|counter| {
            let odd = counter | 1;
            self.write(odd)?;
            let committed = commit();
            self.write(odd + 1).and(committed)
        });
        let unlocked = self.file.unlock().map_err(|e| self.io(e));
        result.and(unlocked)
    }
}
