//! The root lock: one process changes a root at a time; and the root's users, so that a
//! root is never removed from under another host that has it open.

use std::fs::{File, TryLockError};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Opens (making it, private) the file at `path` whose lock is taken: never through a
/// link, and only a regular file, since a holder writes its name in it (a link planted
/// where a lock file goes would have the host write over what it points at).
fn open_lock_file(path: &Path) -> Result<File> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::options()
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| {
            // The system's words for a link (ELOOP) or a directory (EISDIR) in its place
            // say nothing of what to do.
            let what = match std::fs::symlink_metadata(path) {
                Ok(metadata) if metadata.is_symlink() => "a link",
                Ok(metadata) if metadata.is_dir() => "a directory",
                _ => return io(e),
            };
            io(std::io::Error::other(format!(
                "{what} stands where modhost keeps a lock file, which it never follows nor \
                 takes for one: remove it (modhost makes the file again)"
            )))
        })?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::other(
            "it is not a regular file, so it cannot be a lock: remove it (modhost makes \
             the file again)",
        )));
    }
    Ok(file)
}

/// Whether a lock's holder writes its process id in the lock file, for those who find
/// it held: the root's lock does; a download directory's, which only tells a sweep the
/// directory is in use, does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The holder's process id is written in the file while it holds it.
    Named,
    /// The file is only locked.
    Unnamed,
}

/// Holds the exclusive lock on a root's `lock` file (or a download directory's) until
/// dropped.
#[derive(Debug)]
pub(crate) struct RootLock {
    file: File,
    /// The process that took it.
    process: u32,
    /// Whether the holder's name is in the file.
    holder: Holder,
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
            if self.holder == Holder::Named {
                let _ = self.file.set_len(0);
            }
            let _ = self.file.unlock();
        }
    }
}

impl RootLock {
    /// Takes the lock. If another process holds it, waits when given `wait` (calling
    /// `waiting` with the holder's process id first, so the user knows why nothing
    /// happens) until it is taken or `wait` says to stop ([`Error::Interrupted`]), and
    /// fails otherwise.
    pub(crate) fn acquire(
        path: &Path,
        holder: Holder,
        wait: Option<&dyn Fn() -> bool>,
        waiting: impl FnOnce(Option<u32>),
    ) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut waiting = Some(waiting);
        let mut file = open_lock_file(path)?;
        for attempt in 0.. {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if let Some(stopped) = wait => {
                    if let Some(waiting) = waiting.take() {
                        waiting(written_holder(&mut file));
                    }
                    wait_for(&file, path, stopped)?;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        lock: path.to_owned(),
                        holder: written_holder(&mut file),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            // A lock file removed (or replaced) by hand while this process waited for it
            // locks nothing any more: another process may hold the file now at `path`.
            // The lock is taken again on that one.
            if is_at(&file, path).map_err(io)? {
                break;
            }
            // Replaced again and again, or a file system whose files do not keep their
            // identity (some network ones): a lock there guards nothing.
            if attempt == MAX_REOPENS {
                return Err(io(std::io::Error::other(
                    "the lock file was replaced each time it was locked, so it cannot lock \
                     the root; never remove it, and keep the root on a local file system",
                )));
            }
            file = open_lock_file(path)?;
        }
        let process = std::process::id();
        // Who holds it is written for those who find it held, as apt names the process
        // holding dpkg's lock; the lock itself is the flock, so a failed write only loses
        // that name.
        if holder == Holder::Named {
            let _ = file
                .set_len(0)
                .and_then(|()| file.write_all_at(format!("{process}\n").as_bytes(), 0));
        }
        Ok(RootLock {
            file,
            process,
            holder,
        })
    }

    /// Whether the lock still guards `path`: its file was neither removed nor replaced
    /// (by hand: modhost never removes a root's lock file) since it was taken. A change
    /// checks it before it commits, since another process may since have taken the new
    /// file at `path` and swept what this change made.
    pub(crate) fn still_guards(&self, path: &Path) -> Result<bool> {
        is_at(&self.file, path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Takes the lock only if it is free at once.
    pub(crate) fn try_acquire(path: &Path, holder: Holder) -> Result<Option<Self>> {
        match RootLock::acquire(path, holder, None, |_| {}) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Locked { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How many times a lock file found replaced once locked is opened again.
const MAX_REOPENS: u32 = 8;

/// How often a wait for the lock looks again: often enough that a change waiting behind
/// another starts at once to a person, and that Ctrl-C stops the wait at once. Waiters
/// poll, so none is first in a queue: a process that takes the lock again within a poll
/// of letting it go goes before them.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits until `file` (the lock file at `path`) is locked, or `stopped` says to stop
/// ([`Error::Interrupted`]).
fn wait_for(file: &File, path: &Path, stopped: &dyn Fn() -> bool) -> Result<()> {
    loop {
        if stopped() {
            return Err(Error::Interrupted);
        }
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => std::thread::sleep(LOCK_POLL),
            Err(TryLockError::Error(source)) => {
                return Err(Error::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Whether `file` is the file at `path`, that path not a link.
fn is_at(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    Ok(match std::fs::symlink_metadata(path) {
        Ok(there) => held.nlink() > 0 && there.dev() == held.dev() && there.ino() == held.ino(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

/// The process id the holder of a lock wrote in its file, if it is readable: the file is
/// the root's own, but a short or garbled one only loses the name.
fn written_holder(file: &mut File) -> Option<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_that_is_a_link_is_never_followed_nor_written() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let victim = dir.path().join("shadow");
        std::fs::write(&victim, "secret\n").unwrap_or_else(|e| panic!("{e}"));
        let lock = dir.path().join("lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap_or_else(|e| panic!("{e}"));
        for holder in [Holder::Named, Holder::Unnamed] {
            assert!(RootLock::acquire(&lock, holder, None, |_| {}).is_err());
            assert!(RootLock::try_acquire(&lock, holder).is_err());
        }
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("secret\n")
        );
        let refused = RootLock::try_acquire(&lock, Holder::Named).map(|_| ());
        assert!(
            refused.as_ref().is_err_and(|e| e
                .to_string()
                .contains("a link stands where modhost keeps a lock file")),
            "{refused:?}"
        );
        // Nor is a directory, a FIFO or anything but a regular file taken for one.
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let refused = RootLock::try_acquire(&fifo, Holder::Named).map(|_| ());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("not a regular file")),
            "{refused:?}"
        );
        let directory = dir.path().join("directory");
        std::fs::create_dir(&directory).unwrap_or_else(|e| panic!("{e}"));
        let refused = RootLock::try_acquire(&directory, Holder::Named).map(|_| ());
        assert!(
            refused.as_ref().is_err_and(|e| e
                .to_string()
                .contains("a directory stands where modhost keeps a lock file")),
            "{refused:?}"
        );
    }

    #[test]
    fn only_a_named_lock_holds_its_holders_process_id() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("lock");
        let named = RootLock::acquire(&path, Holder::Named, None, |_| {});
        assert_eq!(
            std::fs::read_to_string(&path).ok(),
            Some(format!("{}\n", std::process::id()))
        );
        drop(named);
        let unnamed = RootLock::acquire(&path, Holder::Unnamed, None, |_| {});
        assert!(unnamed.is_ok());
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some(""));
    }

    #[test]
    fn a_lock_file_removed_while_waited_for_is_not_taken_for_the_lock() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("lock");
        let first = RootLock::acquire(&path, Holder::Named, None, |_| {});
        let first = first.unwrap_or_else(|e| panic!("{e}"));
        let waited = path.clone();
        let (started, running) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let lock = RootLock::acquire(&waited, Holder::Named, Some(&|| false), |_| {
                let _ = started.send(());
            });
            lock.and_then(|lock| lock.still_guards(&waited))
        });
        running
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the waiter never waited: {e}"));
        // Removed by hand, and another process takes the new file at the path.
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!first.still_guards(&path).unwrap_or(true));
        let second = RootLock::acquire(&path, Holder::Named, None, |_| {});
        let second = second.unwrap_or_else(|e| panic!("{e}"));
        drop(first);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !waiter.is_finished(),
            "the waiter took the removed file's lock while another held the path's"
        );
        drop(second);
        let guards = waiter
            .join()
            .unwrap_or_else(|_| panic!("the waiter panicked"));
        assert!(guards.unwrap_or_else(|e| panic!("{e}")));
    }
}
