//! What opening a root made where there was none, so that a change that failed can take
//! exactly that away again: never a directory the administrator had, nor anything in it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::Path;

use crate::layout::{Layout, io};
use crate::{Error, Result};

/// What a host made when it opened a path that was not a root.
#[derive(Debug)]
pub(crate) enum Made {
    /// The directory itself did not exist: all of it is the host's.
    Directory,
    /// The directory existed (empty, or with someone's files): only the entries it did
    /// not hold before are the host's.
    Within(BTreeSet<OsString>),
}

impl Made {
    /// What opening `root` is about to make: `None` when a root is already there.
    pub(crate) fn before_opening(root: &Path) -> Result<Option<Made>> {
        if Layout::exists(root) {
            return Ok(None);
        }
        match std::fs::read_dir(root) {
            Ok(entries) => {
                let names = entries
                    .map(|entry| entry.map(|entry| entry.file_name()))
                    .collect::<std::io::Result<_>>()
                    .map_err(io(root))?;
                Ok(Some(Made::Within(names)))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Some(Made::Directory)),
            Err(source) => Err(Error::Io {
                path: root.to_owned(),
                source,
            }),
        }
    }

    /// Removes what was made in (or as) `root`. Links are removed as links, never
    /// followed: `remove_dir_all` does not follow them either.
    pub(crate) fn remove(&self, root: &Path) -> Result<()> {
        let before = match self {
            Made::Directory => {
                return fs_err::remove_dir_all(root).map_err(io(root));
            }
            Made::Within(before) => before,
        };
        for entry in std::fs::read_dir(root).map_err(io(root))? {
            let entry = entry.map_err(io(root))?;
            if before.contains(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            let removed = match entry.file_type().map_err(io(&path))?.is_dir() {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
            removed.map_err(io(&path))?;
        }
        Ok(())
    }
}
