//! The root lock: one process changes a root at a time; and the root's users, so that a
//! root is never removed from under another host that has it open.

use std::fs::{File, TryLockError};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Opens (making it, private) the file at `path` whose lock is taken.
fn open_lock_file(path: &Path) -> Result<File> {
    File::options()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
}

/// Holds the exclusive lock on a root's `lock` file until dropped.
#[derive(Debug)]
pub(crate) struct RootLock {
    file: File,
    /// The process that took it.
    process: u32,
}

impl Drop for RootLock {
    /// Lets go of the lock explicitly rather than by closing the file: a process forked
    /// while the lock was held shares its open file, and closing this copy alone would
    /// leave the lock held for as long as that child lives. Only the process that took
    /// it lets go: a child dropping its copy (unwinding through the change it was forked
    /// in) must not end the parent's hold in the middle of its change.
    fn drop(&mut self) {
        if std::process::id() == self.process {
            // Its name goes first, so that no later reader takes it for the holder.
            let _ = self.file.set_len(0);
            let _ = self.file.unlock();
        }
    }
}

impl RootLock {
    /// Takes the lock. If another process holds it, waits when `wait` is true (calling
    /// `waiting` with the holder's process id first, so the user knows why nothing
    /// happens) and fails otherwise.
    pub(crate) fn acquire(
        path: &Path,
        wait: bool,
        waiting: impl FnOnce(Option<u32>),
    ) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if wait => {
                waiting(holder(&mut file));
                file.lock().map_err(io)?;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    lock: path.to_owned(),
                    holder: holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let process = std::process::id();
        // Who holds it is written for those who find it held, as apt names the process
        // holding dpkg's lock; the lock itself is the flock, so a failed write only loses
        // that name.
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all_at(format!("{process}\n").as_bytes(), 0));
        Ok(RootLock { file, process })
    }

    /// Takes the lock only if it is free at once.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>> {
        match RootLock::acquire(path, false, |_| {}) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Locked { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The process id the holder of a lock wrote in its file, if it is readable: the file is
/// the root's own, but a short or garbled one only loses the name.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Holds a shared lock on a root's `users` file while a host has the root open: a root
/// made for a change that failed is removed only when no other host, in this process or
/// another, has it open ([`RootUse::sole`]).
#[derive(Debug)]
pub(crate) struct RootUse {
    file: File,
}

impl RootUse {
    /// Takes a shared hold on the root whose `users` file is `path`. `None` when the root
    /// was removed while it was being taken (its file is no longer linked): the caller
    /// opens the root again.
    pub(crate) fn take(path: &Path) -> Result<Option<Self>> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = open_lock_file(path)?;
        file.lock_shared().map_err(io)?;
        use std::os::unix::fs::MetadataExt;
        let linked = file.metadata().map_err(io)?.nlink() > 0;
        Ok(linked.then_some(RootUse { file }))
    }

    /// Whether this is the root's only user: the hold becomes exclusive if no other is
    /// held, and stays so until dropped.
    pub(crate) fn sole(&self) -> bool {
        self.file.try_lock().is_ok()
    }
}
