//! The root lock: one process changes a root at a time.

use std::fs::{File, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{Error, Result};

/// Holds the exclusive lock on a root's `lock` file until dropped.
#[derive(Debug)]
pub(crate) struct RootLock {
    _file: File,
}

impl RootLock {
    /// Takes the lock. If another process holds it, waits when `wait` is true (calling
    /// `waiting` first, so the user knows why nothing happens) and fails otherwise.
    pub(crate) fn acquire(path: &Path, wait: bool, waiting: impl FnOnce()) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::options()
            .mode(0o600)
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if wait => {
                waiting();
                file.lock().map_err(io)?;
            }
            Err(TryLockError::WouldBlock) => return Err(Error::Locked(path.to_owned())),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        Ok(RootLock { _file: file })
    }

    /// Takes the lock only if it is free at once.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>> {
        match RootLock::acquire(path, false, || {}) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Locked(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
