//! Walking a module's trees (its `/data`, a version's files), which it may be changing
//! from another process and may have planted links, FIFOs and devices in: copying one
//! for a change, and flushing one to disk. Every call is relative to a directory's
//! descriptor; no link is followed and nothing but a regular file or a directory opened.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, CWD, Dir, FileType, Mode, OFlags, fchmod, fstat, fsync, mkdirat, openat, readlinkat,
    statat, symlinkat,
};
use rustix::io::Errno;

use super::{PUBLIC_DIR, PUBLIC_FILE, create_dirs, io, os, remove_dir};
use crate::{Error, Result};

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
