//! What opening a root made where there was none, so that a change that failed can take
//! exactly that away again: only the names a root has at its top ([`TOP`]), never a
//! directory the administrator had, nor anything else in it.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::layout::{DATABASE, Layout, io};
use crate::{Error, Result};

/// The file that says a root was made by a change still to decide whether it keeps it
/// (see [`Made::record`]).
pub(crate) const MADE: &str = "made";

/// What a root holds at its top, all of it modhost's: the state database and its files,
/// the locks, the record of its making, and the directories of modules, their data,
/// compiled code, work in progress and generated configuration.
const TOP: [&str; 13] = [
    MADE,
    DATABASE,
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

/// What a root to be (its `modhost.toml` written) may hold before its first change.
const SEEDED: [&str; 2] = ["cache", "etc"];

/// How long a root another process is making is waited for: its database comes within
/// milliseconds of its directories.
const MAKING: Duration = Duration::from_secs(5);

/// What [`Made::look`] found.
enum Look {
    /// What opening would make (`None`: a root is there).
    Made(Option<Made>),
    /// A name a root has, in a directory that is no root.
    Holds(String),
}

/// How many times a directory that holds a root's names, with no one making it, is
/// looked at again before it is refused, and how long apart: another opener may have
/// made its `users` file and not yet locked it.
const SETTLING: (u32, Duration) = (10, Duration::from_millis(50));

/// Whether another host has `root` open while it is no root yet: it is making it. Only a
/// regular `users` file is opened: a FIFO there (someone's directory given as the root)
/// would wait for a writer.
fn being_made(root: &Path) -> bool {
    let users = Layout::users_of(root);
    if !std::fs::symlink_metadata(&users).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(users) = std::fs::File::open(users) else {
        return false;
    };
    matches!(users.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Whether the state database at `database` holds nothing yet: it is not there, or it is
/// empty, or holds no table (its header written, its tables not: a full disk), with
/// nothing written beside it. Once a first transaction made its tables, it holds them, or
/// its log holds at least a page.
pub(crate) fn holds_nothing(database: &Path) -> bool {
    let empty = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata.is_file() && metadata.len() == 0,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    let beside = |suffix: &str| {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        PathBuf::from(path)
    };
    empty(&beside("-wal")) && empty(&beside("-journal")) && (empty(database) || no_table(database))
}

/// Whether `database` is an SQLite file of one page listing no table: what setting it
/// up writes before its tables are made. Read from its bytes, not through SQLite, which
/// cannot open a WAL database on a full disk.
fn no_table(database: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 105];
    let read = std::fs::File::open(database)
        .and_then(|mut file| {
            let length = file.metadata()?.len();
            file.read_exact(&mut head)?;
            Ok(length)
        })
        .ok();
    let Some(length) = read else {
        return false;
    };
    // The page size, where 1 stands for 65536; page 1's b-tree header follows the
    // 100-byte file header: its type (a table leaf, 13) and its number of cells.
    let page = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    head.starts_with(b"SQLite format 3\0")
        && length <= page
        && head[100] == 13
        && u16::from_be_bytes([head[103], head[104]]) == 0
}

#[cfg(test)]
mod tests {
    use super::holds_nothing;

    #[test]
    fn a_database_with_its_header_and_no_table_holds_nothing_and_one_with_a_table_does() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let database = dir.path().join("modhost.db");
        assert!(holds_nothing(&database), "not there");
        assert!(std::fs::write(&database, b"").is_ok());
        assert!(holds_nothing(&database), "empty");
        // What a full disk leaves: the header page, written as the file was set up.
        let header = modhost_state::State::open(&database).map(drop);
        assert!(header.is_ok(), "{header:?}");
        assert!(!holds_nothing(&database), "its tables made");
        assert!(std::fs::remove_file(&database).is_ok());
        let conn = rusqlite::Connection::open(&database).and_then(|conn| {
            conn.execute_batch("PRAGMA user_version = 0; VACUUM;")
                .map(|()| conn)
        });
        assert!(conn.is_ok(), "{conn:?}");
        drop(conn);
        assert!(
            std::fs::metadata(&database).is_ok_and(|m| m.len() > 0),
            "a header was written"
        );
        assert!(holds_nothing(&database), "a header and no table");
    }
}

/// The first of `modules/` and `data/` in `root` that holds anything.
fn holding(root: &Path) -> Option<&'static str> {
    ["modules", "data"].into_iter().find(|name| {
        std::fs::read_dir(root.join(name)).is_ok_and(|mut entries| entries.next().is_some())
    })
}

/// Whether `path`, a name a root has, holds nothing a first opening would not have left
/// had it been killed half-way: an empty directory, or a small lock file (`users`,
/// `lock`, which may hold its holder's process id) or record of the making. Never a link.
fn left_by_making(path: &Path) -> bool {
    let lock_file = path
        .file_name()
        .is_some_and(|name| name == "users" || name == "lock" || name == MADE);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
        }
        Ok(meta) => lock_file && meta.is_file() && meta.len() <= 32,
        Err(_) => false,
    }
}

/// What a host made when it opened a path that was not a root.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Made {
    /// The directory itself did not exist: it goes too, once empty, and so do the
    /// `parents` directories above it that did not exist either (a mistyped `a/b/root`).
    Directory {
        /// How many of its ancestors, nearest first, opening made.
        parents: usize,
    },
    /// The directory existed, holding none of a root's names but those [`SEEDED`] ones
    /// its `modhost.toml` allows, each marked when it was there before: it stays, with
    /// them and whatever else is in it.
    Within {
        /// Which of [`SEEDED`] were there before opening.
        seeded: [bool; 2],
    },
}

impl Made {
    /// What opening `root` is about to make: `None` when a root is already there (its
    /// state database is). A directory without one that holds a name a root has
    /// (`modules/`, `data/`) is refused: modhost would take what is in it for its own,
    /// and recovery removes what no record names. Only where the administrator's
    /// `modhost.toml` says a root is meant may `cache/` and `etc/` be there beforehand
    /// (compiled code seeded from another root, generated configuration). A root another
    /// process is making at the same moment is waited for.
    pub(crate) fn before_opening(root: &Path) -> Result<Option<Made>> {
        let started = Instant::now();
        let mut settling = 0;
        loop {
            match Made::look(root)? {
                Look::Made(made) => return Ok(made),
                Look::Holds(_) if being_made(root) && started.elapsed() < MAKING => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Look::Holds(_) if settling < SETTLING.0 => {
                    settling += 1;
                    std::thread::sleep(SETTLING.1);
                }
                Look::Holds(entry) => {
                    return Err(Error::NotARootButHolds {
                        path: root.to_owned(),
                        entry,
                    });
                }
            }
        }
    }

    /// The name of a root's (`modules/`, `data/`) that `root`, a directory that is no
    /// root, holds, if it holds one: what reading it finds, said as opening it would say
    /// it.
    pub(crate) fn held_name(root: &Path) -> Option<String> {
        match Made::look(root) {
            Ok(Look::Holds(entry)) => Some(entry),
            _ => None,
        }
    }

    /// What is at `root` now.
    fn look(root: &Path) -> Result<Look> {
        let database = Layout::database_of(root);
        if std::fs::symlink_metadata(&database).is_ok_and(|m| m.is_file()) {
            // Another program's database is refused before anything is made beside it.
            // One without a table beside installed modules was emptied (a failed copy, a
            // restore gone wrong, `> modhost.db`, its -wal left from a crash or not):
            // taken as a new root, it would list no module beside every module's files.
            // (A root being made has none yet.)
            let survey = modhost_state::State::survey(&database).map_err(Error::State)?;
            if survey == modhost_state::Survey::Empty
                && let Some(entry) = holding(root)
            {
                return Err(Error::EmptyDatabase {
                    path: database,
                    entry: entry.to_owned(),
                });
            }
            return Ok(Look::Made(None));
        }
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Counted on the path as written: through a `..` (`x/../y/root`) its text
                // names directories other than those made, so then none is counted.
                let plain = root
                    .components()
                    .all(|c| !matches!(c, std::path::Component::ParentDir));
                let parents = root
                    .ancestors()
                    .skip(1)
                    .take_while(|dir| {
                        plain
                            && !dir.as_os_str().is_empty()
                            && std::fs::symlink_metadata(dir)
                                .is_err_and(|e| e.kind() == ErrorKind::NotFound)
                    })
                    .count();
                return Ok(Look::Made(Some(Made::Directory { parents })));
            }
            Err(source) => {
                return Err(Error::Io {
                    path: root.to_owned(),
                    source,
                });
            }
        };
        let meant = Layout::exists(root);
        let mut seeded = [false; 2];
        for entry in entries {
            let name = entry.map_err(io(root))?.file_name();
            if let Some(at) = SEEDED.iter().position(|seed| OsStr::new(seed) == name)
                && meant
            {
                seeded[at] = true;
                continue;
            }
            if let Some(taken) = TOP.iter().find(|top| OsStr::new(top) == name) {
                // What a first opening killed half-way left (empty directories, its lock
                // files) is no one's: the root is made over it. One being made now is
                // waited for.
                if left_by_making(&root.join(taken)) && !being_made(root) {
                    continue;
                }
                return Ok(Look::Holds((*taken).to_owned()));
            }
        }
        Ok(Look::Made(Some(Made::Within { seeded })))
    }

    /// Writes down, in `root`, what opening it made, as soon as opening holds it, until a
    /// change keeps it ([`Made::kept`]) or it is taken away: a process killed before
    /// either (`kill -9` while it opens, or before its change commits; a second Ctrl-C)
    /// leaves it for the next opening to decide ([`Made::clear_abandoned`]), which takes
    /// the root away only if nothing was kept in it. Best effort: without it, such a root
    /// stays, empty.
    pub(crate) fn record(&self, root: &Path) {
        let text = match self {
            Made::Directory { parents } => format!("directory {parents}\n"),
            Made::Within { seeded } => {
                format!("within {} {}\n", u8::from(seeded[0]), u8::from(seeded[1]))
            }
        };
        if let Err(e) = std::fs::write(root.join(MADE), text) {
            tracing::debug!("cannot record what opening `{}` made: {e}", root.display());
        }
    }

    /// What [`Made::record`] wrote, read back; `None` for anything else.
    fn parse(text: &str) -> Option<Made> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["directory", parents] => Some(Made::Directory {
                parents: parents.parse().ok()?,
            }),
            ["within", cache, etc] => {
                let seeded = |w: &str| match w {
                    "0" => Some(false),
                    "1" => Some(true),
                    _ => None,
                };
                Some(Made::Within {
                    seeded: [seeded(cache)?, seeded(etc)?],
                })
            }
            _ => None,
        }
    }

    /// Says that `root`, which opening made, is kept: a change committed in it, or the
    /// code it compiled is kept for trying again.
    pub(crate) fn kept(root: &Path) {
        match std::fs::remove_file(root.join(MADE)) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                tracing::debug!(
                    "cannot remove `{}`'s record of its making: {e}",
                    root.display()
                );
            }
            _ => {}
        }
    }

    /// Takes away what a change that died before deciding made at `root` ([`Made::record`]),
    /// when nothing was kept there (no module, no source) and no one has the root open:
    /// the next command finds what was there before, not an empty root a mistyped
    /// `--root` and a `kill -9` left. A root where something was kept only loses the
    /// record.
    pub(crate) fn clear_abandoned(root: &Path) -> Result<()> {
        let record = root.join(MADE);
        let small_file =
            std::fs::symlink_metadata(&record).is_ok_and(|m| m.is_file() && m.len() <= 64);
        if !small_file || being_made(root) {
            return Ok(());
        }
        let Some(made) = std::fs::read_to_string(&record)
            .ok()
            .as_deref()
            .and_then(Made::parse)
        else {
            return Ok(());
        };
        let layout = Layout {
            root: root.to_owned(),
        };
        let Some(users) = crate::lock::RootUse::take(&Layout::users_of(root))? else {
            return Ok(());
        };
        if !users.sole() {
            return Ok(());
        }
        let Some(lock) =
            crate::lock::RootLock::try_acquire(&layout.lock(), crate::lock::Holder::Named)?
        else {
            return Ok(());
        };
        let database = Layout::database_of(root);
        if !holds_nothing(&database) {
            // A database that cannot be read is left for opening to say so.
            let Ok(state) = modhost_state::State::open(&database) else {
                return Ok(());
            };
            let empty = state.modules().is_ok_and(|m| m.is_empty())
                && state.sources().is_ok_and(|s| s.is_empty());
            if !empty {
                Made::kept(root);
                return Ok(());
            }
        }
        tracing::info!(
            "removing the root `{}`: a change that made it was stopped before it kept anything",
            root.display()
        );
        made.remove(root)?;
        drop((users, lock));
        Ok(())
    }

    /// Removes what was made in (or as) `root`. Links are removed as links, never
    /// followed: `remove_dir_all` does not follow them either.
    pub(crate) fn remove(&self, root: &Path) -> Result<()> {
        let kept = |name: &str| match self {
            Made::Within { seeded } => SEEDED
                .iter()
                .zip(seeded)
                .any(|(seed, was)| *was && *seed == name),
            Made::Directory { .. } => false,
        };
        for name in TOP.into_iter().filter(|name| !kept(name)) {
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
        if let Made::Directory { parents } = self {
            // A parent made meanwhile by another process and left empty goes too: it
            // holds nothing of anyone's.
            for dir in root.ancestors().take(parents + 1) {
                match std::fs::remove_dir(dir) {
                    Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => break,
                    // Not made after all (opening failed before it got there).
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    removed => removed.map_err(io(dir))?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod record_tests {
    use super::Made;

    #[test]
    fn what_opening_made_is_read_back_as_written_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for made in [
            Made::Directory { parents: 2 },
            Made::Within {
                seeded: [true, false],
            },
        ] {
            made.record(dir.path());
            let text = std::fs::read_to_string(dir.path().join(super::MADE)).unwrap_or_default();
            assert_eq!(
                Made::parse(&text).map(|m| format!("{m:?}")),
                Some(format!("{made:?}"))
            );
        }
        for other in [
            "",
            "directory",
            "directory -1",
            "within 1",
            "within 2 0",
            "root 0",
        ] {
            assert!(Made::parse(other).is_none(), "{other}");
        }
    }
}
