//! The crate's error type: every failure names the database file, or the module, it
//! concerns.

use std::path::{Path, PathBuf};

/// A state-database failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file system holding the database has no room left: nothing can be written
    /// (and SQLite cannot even map its shared memory to read) until space is freed.
    #[error(
        "state database `{}`: the disk holding it is full; free some space on it (nothing \
         was changed)",
        .path.display()
    )]
    DiskFull {
        /// The database file.
        path: PathBuf,
    },
    /// The database file is damaged, or is not a database at all.
    #[error(
        "state database `{path}` is damaged ({source}): restore it from a backup, or save \
         what it still holds with `sqlite3 {path} .recover | sqlite3 recovered.db` and put \
         that in its place, with no modhost process running"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Reading or writing the database's files failed below SQLite: the disk, or its
    /// files changed under modhost (its `-wal` removed, a file system gone read-only).
    #[error(
        "state database `{path}`: its files could not be read or written ({source}): the \
         disk failed, a disk quota or file size limit was reached, or the database's \
         files (its -wal, -shm) were changed or \
         removed while modhost had them open; nothing of what failed was kept — check the \
         disk and the root, then try again"
    )]
    DiskFailure {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// SQLite reported an error.
    #[error("state database `{path}`: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database reached its size cap: modules can write no more until something is
    /// removed or the cap raised. Names the module whose write was refused, when known.
    #[error(
        "{}state database `{path}` is full: it reached its size cap of {} MiB ([state] max_size_mb in modhost.toml){}",
        .module.as_ref().map(|m| format!("module `{m}`: ")).unwrap_or_default(),
        *.max_size as f64 / (1024.0 * 1024.0),
        .keeps_most.as_ref().map(|(m, bytes)| format!(
            "; `{m}` keeps the most, {:.1} MiB", *bytes as f64 / (1024.0 * 1024.0)
        )).unwrap_or_default()
    )]
    Full {
        /// The database file.
        path: PathBuf,
        /// The cap, in bytes.
        max_size: u64,
        /// The module whose write was refused; `None` for modhost's own writes, or when
        /// the caller did not say.
        module: Option<String>,
        /// The module that keeps the most in the state, and its bytes: whose data filled
        /// it, which the refused module's name alone does not say.
        keeps_most: Option<(String, u64)>,
    },
    /// A module's write would take it past its own quota in the state; the other modules
    /// keep writing.
    #[error(
        "module `{module}` would go past its quota in the state: it keeps {:.1} MiB of {:.1} MiB \
         in its key-value store and tables ([state.quotas] {module} in modhost.toml raises it)",
        *.used as f64 / (1024.0 * 1024.0),
        *.quota as f64 / (1024.0 * 1024.0)
    )]
    OverQuota {
        /// The module.
        module: String,
        /// What it keeps, in bytes.
        used: u64,
        /// Its quota, in bytes.
        quota: u64,
    },
    /// An installed module's recorded module.xml no longer parses.
    #[error("installed module `{rawname}`: {source}")]
    Manifest {
        /// The module.
        rawname: String,
        /// The manifest's problems.
        source: modhost_manifest::Error,
    },
    /// The database file could not be created.
    #[error("state database `{path}`: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored value is not one modhost writes; the database was changed by hand.
    #[error("state database `{path}`: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The write lock stayed taken by other writers for as long as a change waits.
    #[error(
        "state database `{path}` stayed locked by {} for the {} s a change waits for it; try \
         again",
        match process {
            Some(process) => format!("{process}, writing to it,"),
            None => "other writers (a module's long hook call, or another process's change)"
                .to_owned(),
        },
        waited_secs
    )]
    Contended {
        /// The database file.
        path: PathBuf,
        /// How long the change waited.
        waited_secs: u64,
        /// The other process that held it, as `process PID (COMMAND)`, when the system
        /// says.
        process: Option<String>,
    },
    /// The write lock stayed taken by other writers until the call's deadline.
    #[error(
        "state database `{path}` stayed locked by {} until the call's deadline",
        match (held_by, process) {
            (Some(module), _) => format!("module `{module}`'s call"),
            (None, Some(process)) => format!("{process}, writing to it"),
            (None, None) => "other writers".to_owned(),
        }
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// The module whose call held the lock, when it was one of this process's.
        held_by: Option<String>,
        /// The other process that held it, as `process PID (COMMAND)`, when the system
        /// says.
        process: Option<String>,
    },
    /// The state was opened by another process, which forked this one: SQLite's
    /// connections are not to be used across a fork.
    #[error(
        "state database `{path}` was opened by process {opened_by}, which forked this one; \
         a connection is not to be used across a fork: open modhost only in processes not \
         forked from one that used it"
    )]
    Forked {
        /// The database file.
        path: PathBuf,
        /// The process that opened it.
        opened_by: u32,
    },
    /// The call was cancelled (the application's caller hung up) while it waited for the
    /// database.
    #[error("the call was cancelled while it waited for the state database")]
    Cancelled,
    /// SQLite rolled back the call's whole transaction: a write statement was interrupted
    /// at the call's deadline, or could not grow the database past its size cap. Nothing
    /// more is written in the call.
    #[error("{}", rolled_back(.by.as_deref(), .cause.as_deref()))]
    RolledBack {
        /// The module whose statement it was, when known: a hook fired from the call may
        /// have run it.
        by: Option<String>,
        /// Why the statement failed, when known.
        cause: Option<String>,
    },
    /// A dispatch's module was uninstalled, disabled or upgraded while its call ran, so
    /// the call's statements are refused rather than run against what the change left.
    #[error(
        "module `{module}` was {now} while this call ran; its statements are refused and what it did is set aside"
    )]
    ModuleChanged {
        /// The module.
        module: String,
        /// What happened to it: `uninstalled`, `disabled`, `replaced by another version`.
        now: &'static str,
    },
    /// A module's table was asked for that it does not have.
    #[error("module `{module}` has no table `{table}` ({})", match tables.as_slice() {
        [] => "it has no tables".to_owned(),
        tables => format!("its tables: {}", tables.join(", ")),
    })]
    NoTable {
        /// The module.
        module: String,
        /// The table asked for.
        table: String,
        /// The tables it has.
        tables: Vec<String>,
    },
    /// A module's listing of its keys would take more of the host's memory than a listing
    /// may.
    #[error(
        "module `{module}`: the keys starting with `{prefix}` take more than {limit} bytes \
         as a list; list them by narrower prefixes"
    )]
    TooManyKeys {
        /// The module.
        module: String,
        /// The prefix it listed.
        prefix: String,
        /// What a listing may take, in bytes.
        limit: usize,
    },
    /// A module's work in the state ran past its call's deadline, or the call was
    /// cancelled, while the host worked for it.
    #[error("module `{module}`: its call's deadline passed, or it was cancelled, while {doing}")]
    Stopped {
        /// The module.
        module: String,
        /// What the host was doing for it.
        doing: &'static str,
    },
    /// A module's table cannot be shown (for inspection, as `rows` shows it).
    #[error("module `{module}`: table `{table}`: {message}")]
    Rows {
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// What is wrong: too many rows to show, say.
        message: String,
    },
    /// A module's `<database>` cannot be applied.
    #[error("module `{module}`: database schema: {message}")]
    Schema {
        /// The module.
        module: String,
        /// What is wrong.
        message: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps SQLite's errors to [`Error::Sqlite`] naming the database at `path`.
pub(crate) fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| {
        let io = matches!(
            &source,
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(e.code, rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::DiskFull)
        );
        if io && disk_is_full(path) {
            return Error::DiskFull {
                path: path.to_owned(),
            };
        }
        // SQLITE_FULL is also the size cap reached (`max_page_count`): said as it is.
        let failed = matches!(
            &source,
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::SystemIoFailure
        );
        if failed {
            return Error::DiskFailure {
                path: path.to_owned(),
                source,
            };
        }
        if matches!(
            &source,
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        ) {
            return Error::Damaged {
                path: path.to_owned(),
                source,
            };
        }
        Error::Sqlite {
            path: path.to_owned(),
            source,
        }
    }
}

/// Whether the file system holding `path` has no room left for anyone but root: what an
/// I/O error of SQLite's then means. (SQLite's own words are "disk I/O error".)
pub(crate) fn disk_is_full(path: &Path) -> bool {
    let dir = path.parent().unwrap_or(path);
    rustix::fs::statvfs(dir).is_ok_and(|fs| fs.f_bavail.saturating_mul(fs.f_frsize) < 64 * 1024)
}

/// [`Error::RolledBack`]'s message.
fn rolled_back(by: Option<&str>, cause: Option<&str>) -> String {
    let why = match cause {
        Some(cause) => format!("failed ({cause})"),
        None => "ran past its call's deadline or the state database's size cap".to_owned(),
    };
    match by {
        Some(module) => format!(
            "module `{module}`'s statement {why}, and SQLite undoes the whole transaction \
             such a statement is in: this call's writes, and those of the hooks it fired, \
             were undone; nothing more is written in this call"
        ),
        None => format!(
            "a statement {why}, so its transaction was rolled back; nothing more is written \
             in this call"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_on_a_full_disk_says_the_disk_is_full() {
        let io = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_SHMSIZE),
                None,
            )
        };
        // /proc has no room for anyone: as a full disk looks.
        let full = Path::new("/proc/self/modhost.db");
        assert_eq!(
            sqlite(full)(io()).to_string(),
            "state database `/proc/self/modhost.db`: the disk holding it is full; free some \
             space on it (nothing was changed)"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let roomy = dir.path().join("modhost.db");
        // Elsewhere, the disk failed or the files changed under modhost: said so, not as
        // SQLite's bare "disk I/O error".
        let failed = sqlite(&roomy)(io());
        assert!(matches!(failed, Error::DiskFailure { .. }), "{failed:?}");
        assert!(
            failed
                .to_string()
                .contains("the disk failed, a disk quota or file size limit"),
            "{failed}"
        );
    }
}
