//! Where things live inside a modhost root.
//!
//! ```text
//! ROOT/modhost.toml                the administrator's configuration (optional)
//! ROOT/modhost.db                  state database (SQLite): the single source of truth
//! ROOT/modhost.db-generation       moves with every module change (see modhost-state)
//! ROOT/lock                        held by the process changing the root
//! ROOT/modules/RAWNAME/DIR/        a version's files; the record names DIR
//! ROOT/data/RAWNAME/DIR/           a module's /data; the record names DIR
//! ROOT/cache/                      compiled components
//! ROOT/staging/                    work in progress, and the intents of changes in
//!                                  progress (`intent-…`); emptied by recovery
//! ```
//!
//! Directories are never changed in place: a change writes new ones beside the old and
//! the state database's commit switches to them. What a change makes or replaces is
//! listed in its intent first (see `crate::intent`); whatever an interrupted change listed
//! and no record names is a leftover, and whatever no change listed is kept.
//!
//! Modes are explicit, never left to the umask (which may be 000): what others may read
//! is 0755/0644; `data/` and `staging/` are 0700, so files a module creates in its
//! `/data` (WASI creates them 0666 less the umask) are out of everyone else's reach.
//!
//! What is under `modules/` and `data/` is a module's: WASI lets it plant links (to a
//! FIFO, to a device, out of the root) in its `/data`. Host code that walks those trees
//! (flushing, copying for a change, removing) never follows a link and never opens
//! anything but a regular file or a directory, so a planted link cannot make a change
//! block while it holds the root's lock, nor make the host open a device as its user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{CWD, Mode, OFlags, fsync, openat};
use rustix::io::Errno;

use crate::{Error, Result};

mod tree;
pub(crate) use tree::{copy_tree, sync_tree};

/// The state database's name, whose presence makes a directory a root.
pub(crate) const DATABASE: &str = "modhost.db";

/// The paths of one root.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The root directory.
    pub(crate) root: PathBuf,
}

/// Turns an I/O error about `path` into the crate's, naming the path (which, under
/// `modules/` or `data/`, names the module).
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| {
        // The system's words ("No space left on device") read as a fault of the file
        // named, a module's data or a package: said to be the disk's.
        let source = match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                std::io::Error::new(
                    source.kind(),
                    format!("the disk holding it is full ({source}); free some space on it"),
                )
            }
            _ => source,
        };
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl Layout {
    /// Creates the root directory alone, if missing.
    pub(crate) fn create_root(root: &Path) -> Result<()> {
        create_dirs(root, PUBLIC_DIR)
    }

    /// Creates the root and its directories if missing.
    pub(crate) fn create(root: &Path) -> Result<Self> {
        let layout = Layout {
            root: root.to_owned(),
        };
        create_dirs(&layout.root, PUBLIC_DIR)?;
        for (dir, mode) in [
            (layout.modules(), PUBLIC_DIR),
            (layout.data(), PRIVATE_DIR),
            (layout.cache(), PUBLIC_DIR),
            (layout.staging(), PRIVATE_DIR),
        ] {
            not_a_link(&dir)?;
            create_dirs(&dir, mode)?;
        }
        Ok(layout)
    }

    /// Whether a root is at `root`: its state database is there, or an administrator's
    /// `modhost.toml` is, ready for the first change.
    pub(crate) fn exists(root: &Path) -> bool {
        [DATABASE, "modhost.toml"]
            .iter()
            .any(|file| std::fs::symlink_metadata(root.join(file)).is_ok_and(|m| m.is_file()))
    }

    /// The administrator's configuration.
    pub(crate) fn config(&self) -> PathBuf {
        self.root.join("modhost.toml")
    }

    /// The state database.
    pub(crate) fn database(&self) -> PathBuf {
        Layout::database_of(&self.root)
    }

    /// [`Layout::database`] of the root at `root`, before it is opened.
    pub(crate) fn database_of(root: &Path) -> PathBuf {
        root.join(DATABASE)
    }

    /// The file every host holding the root at `root` open has a shared lock on (taken
    /// before the root is opened).
    pub(crate) fn users_of(root: &Path) -> PathBuf {
        root.join("users")
    }

    /// The lock held by the process changing the root.
    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Compiled components.
    pub(crate) fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Every module's version directories.
    pub(crate) fn modules(&self) -> PathBuf {
        self.root.join("modules")
    }

    /// Every module's data directories.
    pub(crate) fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Work in progress, emptied by recovery.
    pub(crate) fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// The files of one version of `rawname`, named `dir` by its record.
    pub(crate) fn module_dir(&self, rawname: &str, dir: &str) -> PathBuf {
        self.modules().join(rawname).join(dir)
    }

    /// Refuses a change to `rawname` while its `modules/` or `data/` directory is a link:
    /// the change would make, copy and remove its files through it, in a directory that
    /// is not the root's.
    pub(crate) fn owned(&self, rawname: &str) -> Result<()> {
        not_a_link(&self.modules().join(rawname))?;
        not_a_link(&self.data().join(rawname))
    }

    /// A `/data` of `rawname`, named `dir` by its record.
    pub(crate) fn data_dir(&self, rawname: &str, dir: &str) -> PathBuf {
        self.data().join(rawname).join(dir)
    }

    /// A fresh directory under `staging/`, removed when the guard drops.
    pub(crate) fn staging_dir(&self) -> Result<tempfile::TempDir> {
        let staging = self.staging();
        tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(&staging)
            .map_err(io(&staging))
    }
}

/// Directories others may read and traverse, files they may read.
pub(crate) const PUBLIC_DIR: u32 = 0o755;
pub(crate) const PUBLIC_FILE: u32 = 0o644;
/// Directories only modhost's own user may enter.
const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` and its missing parents with exactly `mode`, whatever the umask;
/// existing directories keep theirs, since an administrator may have chosen them. Each
/// is made relative to its parent's descriptor and its mode set through its own, opened
/// without following a link: a link swapped in meanwhile (in a root another user owns)
/// is refused, never given the mode.
pub(crate) fn create_dirs(dir: &Path, mode: u32) -> Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
        .collect();
    let Some(top) = missing.last() else {
        return match std::fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => Ok(()),
            _ => Err(not_a_directory(dir, Errno::NOTDIR)),
        };
    };
    // What exists above is the administrator's, links included.
    let parent = top
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd = openat(CWD, parent, directory, Mode::empty()).map_err(|errno| {
        // A link to nothing is there, and in the way.
        let dangling = errno == Errno::NOENT && std::fs::symlink_metadata(parent).is_ok();
        not_a_directory(parent, if dangling { Errno::NOTDIR } else { errno })
    })?;
    for made in missing.iter().rev() {
        let name = made.file_name().unwrap_or_default();
        let created = match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) => true,
            // Made meanwhile by another process: theirs, mode and all.
            Err(Errno::EXIST) => false,
            Err(errno) => return Err(not_a_directory(made, errno)),
        };
        let next = openat(&fd, name, directory | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|errno| not_a_directory(made, errno))?;
        if created {
            // The umask may have taken bits from the mode mkdir was given (a hardened
            // host's 027 would keep the PBX, running as another user, out of `etc/`).
            rustix::fs::fchmod(&next, Mode::from_raw_mode(mode)).map_err(os(made))?;
        }
        fd = next;
    }
    Ok(())
}

/// The error of making or opening directory `path`, which failed with `errno`: a file
/// (or a link) where a directory belongs is named as what is in the way.
fn not_a_directory(path: &Path, errno: Errno) -> Error {
    if !matches!(errno, Errno::EXIST | Errno::NOTDIR | Errno::LOOP) {
        return os(path)(errno);
    }
    // The system's "File exists" or "Not a directory" says nothing of which: the first
    // of `path` and its parents that is there and no directory is named.
    let file = path
        .ancestors()
        .find(|a| {
            std::fs::symlink_metadata(a).is_ok() && !std::fs::metadata(a).is_ok_and(|m| m.is_dir())
        })
        .unwrap_or(path);
    Error::Io {
        path: file.to_owned(),
        source: std::io::Error::other("a file is where modhost keeps a directory: move it away"),
    }
}

/// Refuses a link where the root keeps one of its own directories: recovery removes
/// what no record names in them, and the cache's files are loaded as native code, so
/// through a link modhost would empty, or trust, a directory that is not its own.
fn not_a_link(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(Error::Io {
            path: dir.to_owned(),
            source: std::io::Error::other(
                "a link stands where modhost keeps a directory of its own, which it never \
                 follows (it would sweep or trust what the link leads to): make it a \
                 directory (to keep it on another disk, mount that disk there)",
            ),
        }),
        _ => Ok(()),
    }
}

/// A directory name no other change in this root has used: `PREFIX-TIME-PID-N`.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos:x}-{:x}-{n}", std::process::id())
}

/// Removes `dir` and everything in it; a missing directory is fine. Links are removed,
/// never followed: `std::fs::remove_dir_all` opens each directory relative to its parent
/// with `O_NOFOLLOW | O_DIRECTORY` and unlinks whatever is not a directory (a link a
/// module planted, a FIFO, a device node) without opening it. A non-directory at `dir`
/// itself (a link, or a stray file in `staging/`) is removed as it is, so that recovery
/// can always sweep it.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    let removed = match std::fs::symlink_metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => std::fs::remove_file(dir),
        Ok(_) => std::fs::remove_dir_all(dir),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(dir)(e)),
        _ => Ok(()),
    }
}

/// Renames `from` to `to` (both inside the root: one filesystem, so atomic) and makes
/// the rename durable.
pub(crate) fn move_into_place(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        create_dirs(parent, PUBLIC_DIR)?;
    }
    fs_err::rename(from, to).map_err(io(to))?;
    make_durable(to)
}

/// Flushes the tree `dir` and its entry in its parent, so that a record committed after
/// this call never points at files a power loss could still take away.
pub(crate) fn make_durable(dir: &Path) -> Result<()> {
    sync_tree(dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes`, readable by all (generated configuration is read by the
/// PBX, which may run as another user), so that readers see the old file or the new
/// one, never a mixture.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dirs(dir, PUBLIC_DIR)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(modhost_runtime::PARTIAL)
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    set_mode(tmp.path(), PUBLIC_FILE)?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    sync_dir(dir)
}

/// Gives `path` exactly `mode`, whatever the umask took away.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

/// Flushes the directory `path` itself: the entries it holds, not their content. `path`
/// is the host's (one of the root's directories, or where generated configuration goes,
/// which an administrator may have made a link), so a link to it is followed;
/// `O_DIRECTORY` makes anything but a directory fail to open rather than be opened.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = openat(CWD, path, flags, Mode::empty()).map_err(os(path))?;
    fsync(&fd).map_err(os(path))
}

/// Flushes the directories that held `removed`, so that their removal survives a power
/// loss before whatever says they went (an intent removed) does. Best effort: one that
/// cannot be flushed is logged.
pub(crate) fn sync_parents<'a>(removed: impl Iterator<Item = &'a PathBuf>) {
    let parents: std::collections::BTreeSet<&Path> =
        removed.filter_map(|dir| dir.parent()).collect();
    for parent in parents {
        match sync_dir(parent) {
            // Removed itself (a module's directory left empty): its own parent is flushed.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot flush `{}`: {e}", parent.display()),
            Ok(()) => {}
        }
    }
}

/// Turns a system call's error about `path` into the crate's.
pub(crate) fn os(path: &Path) -> impl FnOnce(Errno) -> Error + '_ {
    move |errno| io(path)(errno.into())
}

#[cfg(test)]
mod tests;
