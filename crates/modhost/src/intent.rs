//! The intent log of a change in progress: the directories under `modules/` and `data/`
//! it is about to make, and those its commit will replace, written to
//! `staging/intent-ID` and flushed before any is made (or the commit happens), after a
//! first line naming the intent the database last noted. The change's transaction notes
//! ID; the intent goes once the change has cleaned up after itself.
//!
//! After a crash the database says how far the change went: noting ID, it committed, and
//! what it replaced and no record names is swept; still noting the intent the change
//! began after, it did not (unless the intent says it did: the database from just
//! before it was restored), and what it made is swept. Noting neither, it is a database
//! restored from another time, and nothing is swept: what it does not name is kept, and
//! said, as is every directory no change listed. An intent the change (or a recovery)
//! rewrote to list what it could not remove lists leftovers only, swept once no record
//! names them.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use modhost_state::State;
use rustix::fs::{CWD, Mode, OFlags, fstat, openat};

use crate::layout::{self, Layout};
use crate::{Error, Result};

/// How an intent's file name begins, in `staging/`.
pub(crate) const PREFIX: &str = "intent-";

/// The most of an intent read back: a change lists a few paths a module, so anything
/// longer was not written by one.
const MAX_LEN: u64 = 4 << 20;

/// The first line of an intent that lists leftovers only.
const LEFTOVERS: &str = "leftovers";
/// How the first line of a change's intent begins: `after ID` or `after none`.
const AFTER: &str = "after ";
/// The line that says the change committed.
const COMMITTED: &str = "committed";

/// What a change does to a directory it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Makes it: a leftover unless the change committed.
    Made,
    /// Replaces it: a leftover once the change committed.
    Replaced,
}

impl Role {
    /// The word that begins its lines.
    fn word(self) -> &'static str {
        match self {
            Role::Made => "made",
            Role::Replaced => "replaced",
        }
    }
}

/// One change's intent, its file made at the first line recorded.
pub(crate) struct Intent {
    /// The root the paths are relative to.
    root: PathBuf,
    /// Its number, which names its file and which the change notes in its transaction.
    id: i64,
    /// Where the file goes.
    path: PathBuf,
    /// The file, once made.
    file: Option<File>,
    /// Whether the change has committed.
    committed: bool,
}

impl Intent {
    /// An intent of a change to the root of `layout`, with nothing recorded yet (and no
    /// file: a change that makes no directory writes none).
    pub(crate) fn new(layout: &Layout) -> Self {
        // The time in nanoseconds: changes to a root follow one another under its lock,
        // so no two have the same.
        let id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Intent {
            root: layout.root.clone(),
            id,
            path: layout.staging().join(format!("{PREFIX}{id}")),
            file: None,
            committed: false,
        }
    }

    /// The number to note in the change's transaction, if the change listed anything.
    pub(crate) fn id(&self) -> Option<i64> {
        self.file.is_some().then_some(self.id)
    }

    /// Records that the change makes (before it does) or replaces (before it commits)
    /// `dirs`, flushed to disk. The first record reads from `state` the intent the
    /// database notes before the change.
    pub(crate) fn record(&mut self, role: Role, dirs: &[PathBuf], state: &State) -> Result<()> {
        if dirs.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        if self.file.is_none() {
            let noted = state.noted_intent()?;
            let after = noted.map_or_else(|| "none".to_owned(), |id| id.to_string());
            text.extend_from_slice(format!("{AFTER}{after}\n").as_bytes());
        }
        text.extend(lines(&self.root, role, dirs)?);
        self.append(&text)
    }

    /// Records that the change committed, once it has: even under the database from
    /// just before it, restored, what it made is then never swept.
    pub(crate) fn committed(&mut self) -> Result<()> {
        self.committed = true;
        if self.file.is_none() {
            return Ok(());
        }
        self.append(format!("{COMMITTED}\n").as_bytes())
    }

    /// Appends `text` to the file (made at the first call) and flushes it.
    fn append(&mut self, text: &[u8]) -> Result<()> {
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
        file.write_all(text)
            .and_then(|()| file.sync_data())
            .map_err(layout::io(path))?;
        if made {
            // The file's name must survive a power loss as its contents do.
            layout::sync_dir(&self.root.join("staging"))?;
        }
        Ok(())
    }

    /// Ends the intent of a change that committed or rolled back, with `left` the
    /// leftovers it could not remove (what it replaced, if it committed; what it made,
    /// if not): the intent goes when none is left, and lists only those otherwise (what
    /// else it listed must never be swept, even under a database restored later). Only
    /// the first call acts.
    pub(crate) fn finish(&mut self, left: &[PathBuf]) {
        if self.file.take().is_none() {
            return;
        }
        let role = if self.committed {
            Role::Replaced
        } else {
            Role::Made
        };
        if let Err(e) = keep_only(&self.path, &self.root, role, left) {
            tracing::warn!("{e}; recovery tries again");
        }
    }
}

/// Leaves the intent at `path` listing only the leftovers `left` (directories of the
/// root at `root`, which the change did `role` to), in one atomic step; removes it when
/// `left` is empty.
pub(crate) fn keep_only(path: &Path, root: &Path, role: Role, left: &[PathBuf]) -> Result<()> {
    if left.is_empty() {
        return layout::remove_dir(path);
    }
    let mut text = format!("{LEFTOVERS}\n").into_bytes();
    text.extend(lines(root, role, left)?);
    layout::write_atomically(path, &text)
}

/// The lines saying the change does `role` to `dirs`, each checked to be a module's
/// directory of the root at `root`.
fn lines(root: &Path, role: Role, dirs: &[PathBuf]) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    for dir in dirs {
        let relative = dir
            .strip_prefix(root)
            .ok()
            .filter(|relative| Listed::parse(role, relative.as_os_str().as_bytes()).is_some())
            .ok_or_else(|| {
                layout::io(dir)(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a module's directory of the root, so no change may list it",
                ))
            })?;
        text.extend_from_slice(role.word().as_bytes());
        text.push(b' ');
        text.extend_from_slice(relative.as_os_str().as_bytes());
        text.push(b'\n');
    }
    Ok(text)
}

/// One directory an intent lists: a module's whole `modules/RAWNAME` or `data/RAWNAME`,
/// or one version's or `/data`'s directory in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// What the change does to it.
    pub(crate) role: Role,
    /// `modules` or `data`.
    pub(crate) kind: &'static str,
    /// The module.
    pub(crate) rawname: String,
    /// The directory in the module's, or `None` for the module's whole.
    pub(crate) dir: Option<String>,
}

impl Listed {
    /// The directory `path` names, if it is one a change may list with `role`:
    /// relative, two or three plain components, the first `modules` or `data`. Anything
    /// else (a path elsewhere) lists nothing.
    fn parse(role: Role, path: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(path).ok()?;
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
                role,
                kind,
                rawname: rawname.clone(),
                dir: None,
            }),
            [_, rawname, dir] => Some(Listed {
                role,
                kind,
                rawname: rawname.clone(),
                dir: Some(dir.clone()),
            }),
            _ => None,
        }
    }

    /// The directory a line lists, if it is one: `made PATH` or `replaced PATH`.
    fn of_line(line: &[u8]) -> Option<Self> {
        [Role::Made, Role::Replaced].into_iter().find_map(|role| {
            let path = line
                .strip_prefix(role.word().as_bytes())?
                .strip_prefix(b" ")?;
            Listed::parse(role, path)
        })
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

/// The number of the intent at `path`, from its name: what its change noted in its
/// transaction.
pub(crate) fn id_of(path: &Path) -> Option<i64> {
    path.file_name()?
        .to_str()?
        .strip_prefix(PREFIX)?
        .parse()
        .ok()
}

/// What an intent's first line says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A change's, begun when the database noted this intent (or none).
    After(Option<i64>),
    /// Leftovers only, what a change or a recovery could not remove.
    Leftovers,
}

/// What an intent file says: what it is (`None` for a first line that says neither),
/// and the directories it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Said {
    /// What it is.
    pub(crate) kind: Option<Kind>,
    /// The directories.
    pub(crate) listed: Vec<Listed>,
    /// Whether it says its change committed.
    pub(crate) committed: bool,
}

/// What the intent file at `path` says. Only lines ended by a newline count: a crash
/// cuts a line short only while it was being written, before its directory was made
/// (or its commit happened). The file is opened without following a link or blocking on
/// a FIFO, and read up to [`MAX_LEN`].
pub(crate) fn read(path: &Path) -> Result<Said> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = openat(CWD, path, flags, Mode::empty()).map_err(layout::os(path))?;
    let stat = fstat(&fd).map_err(layout::os(path))?;
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
    let kind = lines.first().and_then(|first| {
        let first = std::str::from_utf8(first).ok()?;
        if first == LEFTOVERS {
            return Some(Kind::Leftovers);
        }
        match first.strip_prefix(AFTER)? {
            "none" => Some(Kind::After(None)),
            id => id.parse().ok().map(|id| Kind::After(Some(id))),
        }
    });
    Ok(Said {
        kind,
        committed: lines.iter().any(|line| *line == COMMITTED.as_bytes()),
        listed: lines.into_iter().filter_map(Listed::of_line).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_module_s_directories_are_listed() {
        let listed = |line: &str| Listed::of_line(line.as_bytes());
        assert_eq!(
            listed("made data/core/data-1"),
            Some(Listed {
                role: Role::Made,
                kind: "data",
                rawname: "core".to_owned(),
                dir: Some("data-1".to_owned()),
            })
        );
        assert_eq!(
            listed("replaced modules/core").map(|l| (l.role, l.dir)),
            Some((Role::Replaced, None))
        );
        for refused in [
            "",
            "data/core/data-1",
            "moved data/core/data-1",
            "made modules",
            "made cache/x",
            "made /data/core/data-1",
            "made data/../etc",
            "made data/core/../../x",
            "made ./data/core",
            "made data/core/d/deeper",
            "replaced staging/work-1",
            "made  data/core/data-1",
        ] {
            assert_eq!(listed(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_line_cut_short_lists_nothing_and_the_first_line_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("intent-1");
        let read_back = |text: &str| {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            read(&path).unwrap_or_else(|e| panic!("{e}"))
        };
        let cut =
            read_back("after 7\nmade data/core/data-1\nmade modules/core/1.0-abc\nmade data/co");
        assert_eq!(cut.listed.len(), 2, "{cut:?}");
        assert_eq!(cut.listed[1].dir.as_deref(), Some("1.0-abc"));
        assert_eq!(cut.kind, Some(Kind::After(Some(7))));
        assert_eq!(read_back("after none\n").kind, Some(Kind::After(None)));
        assert_eq!(
            read_back("leftovers\nmade data/x/y\n").kind,
            Some(Kind::Leftovers)
        );
        for unsaid in [
            "after 7",
            "made data/core/data-1\n",
            "after x\n",
            "after  7\n",
        ] {
            assert_eq!(read_back(unsaid).kind, None, "{unsaid}");
        }
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
