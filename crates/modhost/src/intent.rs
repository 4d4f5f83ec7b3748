//! The intent log of a change in progress: the directories under `modules/` and `data/`
//! it is about to create or replace, written to `staging/intent-…` and flushed before any
//! of them is made, removed once the change has cleaned up after itself.
//!
//! Recovery sweeps only what an intent lists and no record names, so a crash's leftovers
//! go while a directory no change of this root ever listed (one a modhost.db restored
//! from another time does not name) is kept and said, never taken for a leftover.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags, fstat, openat};

use crate::layout::{self, Layout};
use crate::{Error, Result};

/// How an intent's file name begins, in `staging/`.
pub(crate) const PREFIX: &str = "intent-";

/// The most of an intent read back: a change lists a few paths a module, so anything
/// longer was not written by one.
const MAX_LEN: u64 = 4 << 20;

/// One change's intent, its file made at the first path recorded.
pub(crate) struct Intent {
    /// The root the paths are relative to.
    root: PathBuf,
    /// Where the file goes.
    path: PathBuf,
    /// The file, once made.
    file: Option<File>,
}

impl Intent {
    /// An intent of a change to the root of `layout`, with nothing recorded yet (and no
    /// file: a change that makes no directory writes none).
    pub(crate) fn new(layout: &Layout) -> Self {
        Intent {
            root: layout.root.clone(),
            path: layout
                .staging()
                .join(layout::unique_name(PREFIX.trim_end_matches('-'))),
            file: None,
        }
    }

    /// Records `dirs` and flushes them to disk: called before any of them is created, or
    /// before the commit that makes them unnamed.
    pub(crate) fn record(&mut self, dirs: &[PathBuf]) -> Result<()> {
        if dirs.is_empty() {
            return Ok(());
        }
        let text = lines(&self.root, dirs)?;
        let path = &self.path;
        let made = self.file.is_none();
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                File::options()
                    .append(true)
                    .create_new(true)
                    .open(path)
                    .map_err(layout::io(path))?,
            ),
        };
        file.write_all(&text)
            .and_then(|()| file.sync_data())
            .map_err(layout::io(path))?;
        if made {
            // The file's name must survive a power loss as its contents do.
            layout::sync_dir(&self.root.join("staging"))?;
        }
        Ok(())
    }

    /// Ends the intent of a change that committed or rolled back, with `left` the
    /// directories it listed that no record names and that could not be removed: the
    /// intent goes when none is left, and lists only those otherwise (what else it listed
    /// is named now, and must never be swept, even under a database restored later). Only
    /// the first call acts.
    pub(crate) fn finish(&mut self, left: &[PathBuf]) {
        if self.file.take().is_none() {
            return;
        }
        if let Err(e) = keep_only(&self.path, &self.root, left) {
            tracing::warn!("{e}; recovery tries again");
        }
    }
}

/// Leaves the intent at `path` listing only `left` (directories of the root at `root`),
/// in one atomic step; removes it when `left` is empty.
pub(crate) fn keep_only(path: &Path, root: &Path, left: &[PathBuf]) -> Result<()> {
    if left.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(layout::io(path)(e)),
            _ => Ok(()),
        };
    }
    layout::write_atomically(path, &lines(root, left)?)
}

/// The lines listing `dirs`, each checked to be a module's directory of the root at
/// `root`.
fn lines(root: &Path, dirs: &[PathBuf]) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    for dir in dirs {
        let relative = dir
            .strip_prefix(root)
            .ok()
            .filter(|relative| Listed::parse(relative.as_os_str().as_bytes()).is_some())
            .ok_or_else(|| {
                layout::io(dir)(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a module's directory of the root, so no change may list it",
                ))
            })?;
        text.extend_from_slice(relative.as_os_str().as_bytes());
        text.push(b'\n');
    }
    Ok(text)
}

/// One directory an intent lists: a module's whole `modules/RAWNAME` or `data/RAWNAME`,
/// or one version's or `/data`'s directory in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// `modules` or `data`.
    pub(crate) kind: &'static str,
    /// The module.
    pub(crate) rawname: String,
    /// The directory in the module's, or `None` for the module's whole.
    pub(crate) dir: Option<String>,
}

impl Listed {
    /// The listed directory of a line, if it is one: relative, two or three plain
    /// components, the first `modules` or `data`. Anything else (a line cut short by a
    /// crash, a path elsewhere) lists nothing.
    fn parse(line: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(line).ok()?;
        let mut parts = Vec::new();
        for component in Path::new(text).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
                _ => return None,
            }
        }
        let kind = match parts.first()?.as_str() {
            "modules" => "modules",
            "data" => "data",
            _ => return None,
        };
        match parts.as_slice() {
            [_, rawname] => Some(Listed {
                kind,
                rawname: rawname.clone(),
                dir: None,
            }),
            [_, rawname, dir] => Some(Listed {
                kind,
                rawname: rawname.clone(),
                dir: Some(dir.clone()),
            }),
            _ => None,
        }
    }

    /// Where it is in the root of `layout`.
    pub(crate) fn path(&self, layout: &Layout) -> PathBuf {
        let module = layout.root.join(self.kind).join(&self.rawname);
        match &self.dir {
            Some(dir) => module.join(dir),
            None => module,
        }
    }
}

/// What the intent file at `path` lists. Only lines ended by a newline count: a crash
/// cuts a line short only while it was being written, before its directory was made.
/// The file is opened without following a link or blocking on a FIFO, and read up to
/// [`MAX_LEN`].
pub(crate) fn read(path: &Path) -> Result<Vec<Listed>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd =
        openat(CWD, path, flags, Mode::empty()).map_err(|errno| layout::io(path)(errno.into()))?;
    let stat = fstat(&fd).map_err(|errno| layout::io(path)(errno.into()))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a regular file, so not an intent modhost wrote",
            ),
        });
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(MAX_LEN)
        .read_to_end(&mut bytes)
        .map_err(layout::io(path))?;
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // What follows the last newline was cut short, or is empty.
    lines.pop();
    Ok(lines.into_iter().filter_map(Listed::parse).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_module_s_directories_are_listed() {
        let listed = |line: &str| Listed::parse(line.as_bytes());
        assert_eq!(
            listed("data/core/data-1"),
            Some(Listed {
                kind: "data",
                rawname: "core".to_owned(),
                dir: Some("data-1".to_owned()),
            })
        );
        assert_eq!(listed("modules/core").map(|l| l.dir), Some(None::<String>));
        for refused in [
            "",
            "modules",
            "cache/x",
            "/data/core/data-1",
            "data/../etc",
            "data/core/../../x",
            "./data/core",
            "data/core/d/deeper",
            "staging/work-1",
        ] {
            assert_eq!(listed(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_line_cut_short_lists_nothing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("intent-1");
        std::fs::write(&path, "data/core/data-1\nmodules/core/1.0-abc\ndata/co")
            .unwrap_or_else(|e| panic!("{e}"));
        let listed = read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[1].dir.as_deref(), Some("1.0-abc"));
    }

    #[test]
    fn a_link_or_a_fifo_is_not_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        let link = dir.path().join("intent-link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap_or_else(|e| panic!("{e}"));
        assert!(read(&fifo).is_err());
        assert!(read(&link).is_err());
    }
}
