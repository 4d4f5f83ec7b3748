//! Opening a granted directory for a sandbox: through real directories only, never a link.
//!
//! A grant names a path the administrator approved. A module that may write a directory
//! above that path (a grant of its own or of another module, one inside the other) can
//! swap a directory on it for a link (`sub -> ../../etc`): opened by path, the grant would
//! then lead wherever the link points. So every component is opened relative to the one
//! before it with `O_NOFOLLOW`, and the sandbox is given that very directory (through
//! `/proc/self/fd`, which reopens the descriptor rather than resolving a path again).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, openat};
use rustix::io::Errno;

/// Why a granted directory cannot be opened.
#[derive(Debug)]
pub(crate) enum Unopened {
    /// A component of its path is a link (or not a directory): the path as far as that
    /// component.
    Link(PathBuf),
    /// The system refused it (missing, not permitted, ...).
    Io(std::io::Error),
}

/// Where on `path` a link (or something not a directory) stands, which a granted
/// directory is never reached through; `None` when every component is a real directory
/// (or cannot be opened: that is another problem, told as itself).
pub fn link_on_path(path: &Path) -> Option<PathBuf> {
    match Granted::open(path) {
        Err(Unopened::Link(link)) => Some(link),
        _ => None,
    }
}

/// A granted directory, opened.
pub(crate) struct Granted(OwnedFd);

impl Granted {
    /// Opens the absolute `path` one component at a time, following no link.
    pub(crate) fn open(path: &Path) -> Result<Self, Unopened> {
        // `O_PATH`: passing through a directory needs only its search permission, as
        // opening a path does, not the read permission a listing needs.
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = openat(rustix::fs::CWD, "/", flags, Mode::empty())
            .map_err(|e| Unopened::Io(e.into()))?;
        let mut walked = PathBuf::from("/");
        for component in path.components() {
            let name = match component {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(name) => name,
                // A grant is an absolute path without `..` (checked when granted): one
                // with it cannot say which directory was approved.
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Unopened::Link(walked.join(component)));
                }
            };
            walked.push(name);
            dir = match openat(&dir, name, flags, Mode::empty()) {
                Ok(next) => next,
                Err(Errno::LOOP | Errno::NOTDIR) => return Err(Unopened::Link(walked)),
                Err(e) => return Err(Unopened::Io(e.into())),
            };
        }
        Ok(Granted(dir))
    }

    /// A path that names this very directory, for an API that opens by path: its
    /// descriptor under `/proc/self/fd` where the system has one, else `fallback` (the
    /// path it was opened by, which then is checked only as of now).
    pub(crate) fn path_or(&self, fallback: &Path) -> PathBuf {
        let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd()));
        if by_descriptor.exists() {
            by_descriptor
        } else {
            fallback.to_owned()
        }
    }

    /// The directory's device and inode.
    pub(crate) fn id(&self) -> Option<(u64, u64)> {
        crate::disk::id(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_anywhere_on_the_path_is_named_and_not_followed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
        let real = root.join("real/sub");
        std::fs::create_dir_all(&real).unwrap_or_else(|e| panic!("{e}"));
        assert!(Granted::open(&real).is_ok());
        std::os::unix::fs::symlink(root.join("real"), root.join("link"))
            .unwrap_or_else(|e| panic!("{e}"));
        match Granted::open(&root.join("link/sub")) {
            Err(Unopened::Link(at)) => assert_eq!(at, root.join("link")),
            other => panic!("followed a link: {:?}", other.map(|g| g.id())),
        }
        match Granted::open(&root.join("real/../real/sub")) {
            Err(Unopened::Link(_)) => {}
            other => panic!("took `..`: {:?}", other.map(|g| g.id())),
        }
        assert!(matches!(
            Granted::open(&root.join("missing")),
            Err(Unopened::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
        // The path handed on names the directory opened, wherever it is moved to.
        let granted = Granted::open(&real).unwrap_or_else(|_| panic!("opens"));
        std::fs::rename(&real, root.join("moved")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(&real).unwrap_or_else(|e| panic!("{e}"));
        let reopened = std::fs::metadata(granted.path_or(&real)).unwrap_or_else(|e| panic!("{e}"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(Some((reopened.dev(), reopened.ino())), granted.id());
        let moved = std::fs::metadata(root.join("moved")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(moved.ino(), reopened.ino());
    }
}
