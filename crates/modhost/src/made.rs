//! What opening a root made where there was none, so that a change that failed can take
//! exactly that away again: only the names a root has at its top ([`TOP`]), never a
//! directory the administrator had, nor anything else in it.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::Path;

use crate::layout::{Layout, io};
use crate::{Error, Result};

/// What a root holds at its top, all of it modhost's: the state database and its files,
/// the locks, and the directories of modules, their data, compiled code, work in
/// progress and generated configuration.
const TOP: [&str; 12] = [
    "modhost.db",
    "modhost.db-wal",
    "modhost.db-shm",
    "modhost.db-journal",
    "modhost.db-generation",
    "users",
    "lock",
    "modules",
    "data",
    "cache",
    "staging",
    "etc",
];

/// What a host made when it opened a path that was not a root.
#[derive(Debug)]
pub(crate) enum Made {
    /// The directory itself did not exist: it goes too, once empty.
    Directory,
    /// The directory existed, holding none of a root's names: it stays, with whatever
    /// else is in it.
    Within,
}

impl Made {
    /// What opening `root` is about to make: `None` when a root is already there. A
    /// directory that is no root but holds a name a root has (`modules/`, `data/`) is
    /// refused: modhost would take what is in it for its own, and recovery removes what
    /// no record names.
    pub(crate) fn before_opening(root: &Path) -> Result<Option<Made>> {
        if Layout::exists(root) {
            return Ok(None);
        }
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Some(Made::Directory)),
            Err(source) => {
                return Err(Error::Io {
                    path: root.to_owned(),
                    source,
                });
            }
        };
        for entry in entries {
            let name = entry.map_err(io(root))?.file_name();
            if let Some(taken) = TOP.iter().find(|top| OsStr::new(top) == name) {
                return Err(Error::NotARootButHolds {
                    path: root.to_owned(),
                    entry: (*taken).to_owned(),
                });
            }
        }
        Ok(Some(Made::Within))
    }

    /// Removes what was made in (or as) `root`. Links are removed as links, never
    /// followed: `remove_dir_all` does not follow them either.
    pub(crate) fn remove(&self, root: &Path) -> Result<()> {
        for name in TOP {
            let path = root.join(name);
            let removed = match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => Err(e),
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
            };
            match removed {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(io(&path)(e)),
                _ => {}
            }
        }
        // Anything another process put there meanwhile is not modhost's to remove: the
        // directory then stays.
        if let Made::Directory = self {
            match std::fs::remove_dir(root) {
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {}
                removed => removed.map_err(io(root))?,
            }
        }
        Ok(())
    }
}
