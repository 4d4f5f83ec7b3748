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
//! ROOT/staging/                    work in progress; emptied by recovery
//! ```
//!
//! Directories are never changed in place: a change writes new ones beside the old and
//! the state database's commit switches to them. Whatever no record names is a leftover.
//!
//! Modes are explicit, never left to the umask (which may be 000): what others may read
//! is 0755/0644; `data/` and `staging/` are 0700, so files a module creates in its
//! `/data` (WASI creates them 0666 less the umask) are out of everyone else's reach.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
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
        create_dirs(&layout.root, PUBLIC_DIR)?;
        for (dir, mode) in [
            (layout.modules(), PUBLIC_DIR),
            (layout.data(), PRIVATE_DIR),
            (layout.cache(), PUBLIC_DIR),
            (layout.staging(), PRIVATE_DIR),
        ] {
            create_dirs(&dir, mode)?;
        }
        Ok(layout)
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.root.join("modhost.toml")
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.root.join("modhost.db")
    }

    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub(crate) fn modules(&self) -> PathBuf {
        self.root.join("modules")
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub(crate) fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    pub(crate) fn module_dir(&self, rawname: &str, dir: &str) -> PathBuf {
        self.modules().join(rawname).join(dir)
    }

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
        .map_err(io(dir))
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

/// Removes `dir` and everything in it; a missing directory is fine.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    match fs_err::remove_dir_all(dir) {
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
        sync(parent)?;
    }
    Ok(())
}

/// Copies the directory tree `from` into the new directory `to` (regular files and
/// directories only: a module's data directory holds nothing else), with fixed modes
/// rather than whatever the module's files were created with.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    create_dirs(to, PUBLIC_DIR)?;
    if !from.is_dir() {
        return Ok(());
    }
    for entry in fs_err::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs_err::copy(entry.path(), &target).map_err(io(&target))?;
            set_mode(&target, PUBLIC_FILE)?;
        }
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
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    set_mode(tmp.path(), PUBLIC_FILE)?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    sync(dir)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

fn sync(path: &Path) -> Result<()> {
    fs_err::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Flushes every file and directory under `dir` to disk, so a power loss after the
/// state database commits cannot leave the files it points at incomplete.
pub(crate) fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs_err::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if entry.file_type().map_err(io(&path))?.is_dir() {
            sync_tree(&path)?;
        } else {
            sync(&path)?;
        }
    }
    sync(dir)
}
