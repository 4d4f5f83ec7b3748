//! Where things live inside a modhost root.
//!
//! ```text
//! ROOT/modhost.toml                the administrator's configuration (optional)
//! ROOT/modhost.db                  state database (SQLite)
//! ROOT/modules/RAWNAME/VERSION/    an installed module's files
//! ROOT/data/RAWNAME/               the module's data directory (its /data)
//! ROOT/cache/                      compiled components
//! ROOT/staging/                    packages being unpacked; emptied as work ends
//! ```

use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl Layout {
    /// Creates the root and its directories if missing.
    pub(crate) fn create(root: &Path) -> Result<Self> {
        let layout = Layout {
            root: root.to_owned(),
        };
        for dir in [
            layout.root.clone(),
            layout.root.join("modules"),
            layout.root.join("data"),
            layout.cache(),
            layout.root.join("staging"),
        ] {
            fs_err::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(layout)
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.root.join("modhost.toml")
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.root.join("modhost.db")
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub(crate) fn module_root(&self, rawname: &str) -> PathBuf {
        self.root.join("modules").join(rawname)
    }

    pub(crate) fn module_dir(&self, rawname: &str, version: &str) -> PathBuf {
        self.module_root(rawname).join(version)
    }

    pub(crate) fn data_dir(&self, rawname: &str) -> PathBuf {
        self.root.join("data").join(rawname)
    }

    /// A fresh directory under `staging/`, removed when the guard drops.
    pub(crate) fn staging_dir(&self) -> Result<tempfile::TempDir> {
        let staging = self.root.join("staging");
        tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(&staging)
            .map_err(io(&staging))
    }

    /// Makes `dir` an empty directory, discarding anything left there.
    pub(crate) fn fresh_dir(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            self.remove_dir(dir)?;
        }
        fs_err::create_dir_all(dir).map_err(io(dir))
    }

    pub(crate) fn remove_dir(&self, dir: &Path) -> Result<()> {
        match fs_err::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(dir)(e)),
            _ => Ok(()),
        }
    }

    /// Renames `from` to `to` (both inside the root, so on one filesystem: atomic).
    pub(crate) fn move_into_place(&self, from: &Path, to: &Path) -> Result<()> {
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent).map_err(io(parent))?;
        }
        fs_err::rename(from, to).map_err(io(to))
    }
}
