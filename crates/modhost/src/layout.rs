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

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{
    AtFlags, CWD, Dir, FileType, Mode, OFlags, fchmod, fstat, fsync, mkdirat, openat, readlinkat,
    statat, symlinkat,
};
use rustix::io::Errno;

use crate::{Error, Result};

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
const PUBLIC_FILE: u32 = 0o644;
/// Directories only modhost's own user may enter.
const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` and its missing parents with `mode`; existing directories keep theirs,
/// since an administrator may have chosen them.
pub(crate) fn create_dirs(dir: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| {
            // The system's "File exists" or "Not a directory" says nothing of which: the
            // first of `dir` and its parents that is there and no directory is named.
            let file = dir
                .ancestors()
                .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()));
            match (source.kind(), file) {
                (
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory,
                    Some(file),
                ) => Error::Io {
                    path: file.to_owned(),
                    source: std::io::Error::other(
                        "a file is where modhost keeps a directory: move it away",
                    ),
                },
                _ => io(dir)(source),
            }
        })
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

/// Copies the directory tree `from` (a module's data directory) into the new directory
/// `to`, with fixed modes rather than whatever the module's files were created with. A
/// missing `from` copies nothing.
///
/// The module may have planted anything in `from`, and may still be changing it (its
/// handlers run in other processes), so the walk never follows a link and never opens
/// anything but a regular file (see [`Walk`]):
/// - a link is copied as a link, with the same target text, which is never read through.
///   It is the module's data (a module may link within its `/data`, which the sandbox
///   resolves inside it), and a link that leads out stays as harmless as it was: the
///   sandbox refuses to follow it, and host code never does;
/// - a FIFO, socket or device node is skipped with a warning. No module can make one
///   (WASI has no `mknod`), so it came from outside; recreating a device node would hand
///   the module a device, and opening either could block the change or act on a device.
///
/// An entry that changes as it is read (gone, or something else in its place) makes the
/// copy start again, up to [`COPY_TRIES`] times in all; past that, it fails naming the
/// module `rawname`. A change that fails no call (a file renamed from a directory not
/// yet copied into one copied already) goes unseen: a module changing its data while a
/// change of it is made races itself, and the copy is of no one moment then.
pub(crate) fn copy_tree(rawname: &str, from: &Path, to: &Path) -> Result<()> {
    let mut tries = 1;
    loop {
        match copy_once(from, to) {
            Err(Copy::Changed(path)) if tries == COPY_TRIES => {
                return Err(Error::DataChanging {
                    rawname: rawname.to_owned(),
                    path,
                });
            }
            Err(Copy::Changed(path)) => {
                tracing::debug!(module = rawname, path = %path.display(), "changed as it was copied: copying again");
                remove_dir(to)?;
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(tries)));
            }
            Err(Copy::Failed(e)) => return Err(e),
            Ok(()) => return Ok(()),
        }
    }
}

/// How many times a copy of a module's data is tried while the module keeps changing it.
const COPY_TRIES: u32 = 3;

/// Why one try at copying a tree failed.
enum Copy {
    /// The entry at this path changed as it was read.
    Changed(PathBuf),
    /// Anything else.
    Failed(Error),
}

impl From<Error> for Copy {
    fn from(e: Error) -> Self {
        Copy::Failed(e)
    }
}

/// Whether opening a listed entry failed because the entry is no longer what was
/// listed: gone (`ENOENT`), or a link or other file in a directory's place (`ENOTDIR`,
/// `ELOOP`). Any other error is a real one.
fn changed(errno: Errno) -> bool {
    matches!(errno, Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
}

/// `errno`, from opening the listed entry at `path`: a change, or a failure.
fn on_entry(path: &Path) -> impl FnOnce(Errno) -> Copy + '_ {
    move |errno| match changed(errno) {
        true => Copy::Changed(path.to_owned()),
        false => Copy::Failed(os(path)(errno)),
    }
}

/// `errno`, from reading the listed link at `path`: a change also when it is no link any
/// more (`EINVAL`, which only `readlink` means so).
fn on_link(path: &Path) -> impl FnOnce(Errno) -> Copy + '_ {
    move |errno| match errno {
        Errno::INVAL => Copy::Changed(path.to_owned()),
        errno => on_entry(path)(errno),
    }
}

/// One try of [`copy_tree`].
fn copy_once(from: &Path, to: &Path) -> std::result::Result<(), Copy> {
    create_dirs(to, PUBLIC_DIR)?;
    let source = match open_dir(CWD, from) {
        Ok(fd) => fd,
        // No data directory (a broken module's may be gone): nothing to copy.
        Err(e) if e == Errno::NOENT => return Ok(()),
        // Something else in its place (Linux says ENOTDIR for a link too): a file is
        // nothing to copy, as it always was; a link is refused, since copying through it
        // would hand the module whatever it leads to.
        Err(e) if e == Errno::NOTDIR => {
            return match std::fs::symlink_metadata(from) {
                Ok(metadata) if metadata.is_symlink() => Err(io(from)(std::io::Error::other(
                    "a link stands where a directory should: not followed, so the module \
                     cannot be changed; put the directory back in its place (to keep it on \
                     another disk, mount that disk there)",
                ))
                .into()),
                _ => Ok(()),
            };
        }
        Err(e) => return Err(os(from)(e).into()),
    };
    let target = open_dir(CWD, to).map_err(os(to))?;
    let mut stack = vec![(Walk::new(source, from.to_owned())?, target, to.to_owned())];
    while let Some((walk, target, target_path)) = stack.last_mut() {
        let Some(entry) = walk.entries.next() else {
            stack.pop();
            continue;
        };
        let from = walk.path_of(&entry.name);
        let to = target_path.join(OsStr::from_bytes(entry.name.to_bytes()));
        match entry.kind {
            Kind::Dir => {
                mkdirat(&*target, &entry.name, Mode::from_raw_mode(PUBLIC_DIR)).map_err(os(&to))?;
                let made = open_dir(&*target, &entry.name).map_err(os(&to))?;
                // The umask may have taken bits from the mode mkdir was given.
                fchmod(&made, Mode::from_raw_mode(PUBLIC_DIR)).map_err(os(&to))?;
                let source = open_dir(&walk.fd, &entry.name).map_err(on_entry(&from))?;
                let next = Walk::new(source, from)?;
                stack.push((next, made, to));
            }
            Kind::File => copy_file(&walk.fd, target, &entry.name, &from, &to)?,
            Kind::Link => {
                let text = readlinkat(&walk.fd, &entry.name, Vec::new()).map_err(on_link(&from))?;
                symlinkat(text.as_c_str(), &*target, &entry.name).map_err(os(&to))?;
            }
            Kind::Special => not_copied(&from),
        }
    }
    Ok(())
}

/// Copies the regular file `name` of `from_dir` (at path `from`) to `to_dir` (at `to`),
/// readable by all. What replaced the file since it was listed is not followed (a link
/// fails to open) or not copied (anything else).
fn copy_file(
    from_dir: &OwnedFd,
    to_dir: &OwnedFd,
    name: &CStr,
    from: &Path,
    to: &Path,
) -> std::result::Result<(), Copy> {
    let source = open_file(from_dir, name).map_err(on_entry(from))?;
    let kind = fstat(&source)
        .map(|stat| FileType::from_raw_mode(stat.st_mode))
        .map_err(os(from))?;
    match kind {
        FileType::RegularFile => {}
        // Listed as a file: a directory in its place since is the module's own change.
        FileType::Directory => return Err(Copy::Changed(from.to_owned())),
        _ => {
            not_copied(from);
            return Ok(());
        }
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let target = openat(to_dir, name, flags, Mode::from_raw_mode(PUBLIC_FILE)).map_err(os(to))?;
    fchmod(&target, Mode::from_raw_mode(PUBLIC_FILE)).map_err(os(to))?;
    std::io::copy(&mut File::from(source), &mut File::from(target)).map_err(io(to))?;
    Ok(())
}

/// Says that the special file at `path` was left out of a copy.
fn not_copied(path: &Path) {
    tracing::warn!(
        "`{}` is not a regular file, directory or link (a FIFO, socket or device node): \
         not copied",
        path.display()
    );
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
fn set_mode(path: &Path, mode: u32) -> Result<()> {
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

/// Flushes every file and directory under `dir` to disk, so a power loss after the
/// state database commits cannot leave the files it points at incomplete.
///
/// `dir` is a module's data directory or a version's files, so what is in it is the
/// module's: the walk follows no link and opens no FIFO, socket or device node (see
/// [`Walk`]). A link needs no flush of its own (its entry is flushed with its
/// directory), and what it points at is not the module's to flush; special files hold no
/// data to flush.
pub(crate) fn sync_tree(dir: &Path) -> Result<()> {
    let top = open_dir(CWD, dir).map_err(os(dir))?;
    let mut stack = vec![Walk::new(top, dir.to_owned())?];
    while let Some(walk) = stack.last_mut() {
        let Some(entry) = walk.entries.next() else {
            // Every entry below is flushed: now the directory that names them.
            if let Some(done) = stack.pop() {
                fsync(&done.fd).map_err(os(&done.path))?;
            }
            continue;
        };
        let path = walk.path_of(&entry.name);
        match entry.kind {
            // An entry no longer what was listed (the module changing its files from
            // another process) needs no flush from this walk: it is not what is kept.
            Kind::Dir => match open_dir(&walk.fd, &entry.name) {
                Ok(fd) => stack.push(Walk::new(fd, path)?),
                Err(errno) if changed(errno) => {}
                Err(errno) => return Err(os(&path)(errno)),
            },
            Kind::File => {
                let fd = match open_file(&walk.fd, &entry.name) {
                    Ok(fd) => fd,
                    Err(errno) if changed(errno) => continue,
                    Err(errno) => return Err(os(&path)(errno)),
                };
                // Something else may have taken the file's place since it was listed.
                if is_regular(&fd).map_err(os(&path))? {
                    fsync(&fd).map_err(os(&path))?;
                }
            }
            Kind::Link | Kind::Special => {}
        }
    }
    Ok(())
}

/// What a directory entry is itself, as listed: never what a link points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Link,
    /// A FIFO, socket or device node: opening one may block, or act on a device.
    Special,
}

/// One entry of a directory being walked.
struct Entry {
    name: CString,
    kind: Kind,
}

/// One directory of a tree being walked, depth first with a stack of these rather than
/// recursion: a module decides how deep its tree goes, and a deep one ends in a clean
/// error (out of descriptors) rather than a stack overflow.
///
/// Every call is made relative to the directory's descriptor, never through a path, so
/// a directory swapped for a link after it was opened is not followed; each directory
/// is opened with `O_NOFOLLOW | O_DIRECTORY` (a link or anything else in its place fails
/// to open) and each regular file with `O_NOFOLLOW | O_NONBLOCK`, so that a FIFO or
/// device put in its place since it was listed opens without blocking, and is then left
/// alone. Special files are never opened at all.
struct Walk {
    fd: OwnedFd,
    /// For messages only.
    path: PathBuf,
    entries: std::vec::IntoIter<Entry>,
}

impl Walk {
    /// Lists the directory open as `fd`.
    fn new(fd: OwnedFd, path: PathBuf) -> Result<Self> {
        let mut entries = Vec::new();
        // `Dir` reads through a descriptor of its own, so `fd` stays usable.
        for entry in Dir::read_from(&fd).map_err(os(&path))? {
            let entry = entry.map_err(os(&path))?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let kind = match entry.file_type() {
                // Some file systems do not say in the listing: ask, not following a link.
                FileType::Unknown => match statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                    // Gone since it was listed: not there to walk.
                    Err(Errno::NOENT) => continue,
                    Err(errno) => {
                        return Err(os(&path.join(OsStr::from_bytes(name.to_bytes())))(errno));
                    }
                },
                known => known,
            };
            let kind = match kind {
                FileType::Directory => Kind::Dir,
                FileType::RegularFile => Kind::File,
                FileType::Symlink => Kind::Link,
                _ => Kind::Special,
            };
            entries.push(Entry {
                name: name.to_owned(),
                kind,
            });
        }
        Ok(Walk {
            fd,
            path,
            entries: entries.into_iter(),
        })
    }

    /// The path of entry `name`, for messages.
    fn path_of(&self, name: &CStr) -> PathBuf {
        self.path.join(OsStr::from_bytes(name.to_bytes()))
    }
}

/// Opens the directory `path` (relative to `at`) to list or flush it, refusing a link.
fn open_dir(at: impl AsFd, path: impl rustix::path::Arg) -> rustix::io::Result<OwnedFd> {
    let flags =
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty())
}

/// Opens the file `name` in `dir` to read or flush it: a link fails to open (`ELOOP`)
/// rather than being followed, a FIFO opens without waiting for a writer, and a terminal
/// does not become the process's. `O_NONBLOCK` changes nothing for a regular file.
fn open_file(dir: &OwnedFd, name: &CStr) -> rustix::io::Result<OwnedFd> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    openat(dir, name, flags, Mode::empty())
}

/// Whether the open `fd` is a regular file.
fn is_regular(fd: &OwnedFd) -> rustix::io::Result<bool> {
    fstat(fd).map(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile)
}

/// Turns a system call's error about `path` into the crate's.
pub(crate) fn os(path: &Path) -> impl FnOnce(Errno) -> Error + '_ {
    move |errno| io(path)(errno.into())
}

#[cfg(test)]
mod tests;
