//! The database file as modhost keeps it: private to its owner, in WAL mode with full
//! synchronisation, bounded in what a statement may spill, and in incremental
//! auto-vacuum mode (converted once when opened, if small enough).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::sqlite;
use crate::state::{BUSY_TIMEOUT, CONVERT_AT_OPEN_MAX, JOURNAL_SIZE_LIMIT, not_begun};
use crate::{Error, Result};

/// Creates `path` empty with mode 0600 unless it exists (an empty file is an empty
/// SQLite database; SQLite itself would create it 0644 less the umask), and gives an
/// existing one, and its `-wal` and `-shm` files, mode 0600 too: they hold download keys,
/// and a file restored from a backup or made by hand keeps whatever mode it came with.
/// Only files this user owns are changed: a root shared through a group by its owner
/// stays as its owner set it.
pub(crate) fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        keep_private(Path::new(&file));
    }
    Ok(())
}

/// Takes group and others' access to `file` away, if it is a regular file this user owns.
///
/// By path, never through a descriptor: closing any descriptor of a file drops every
/// POSIX lock this process holds on it, and SQLite's locks on the database, its WAL and
/// its shared memory may be held here already by another connection.
fn keep_private(file: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::symlink_metadata(file) else {
        return;
    };
    let mode = meta.permissions().mode();
    if meta.is_file() && meta.uid() == rustix::process::geteuid().as_raw() && mode & 0o077 != 0 {
        // Refused, the file stays as it is: opening the database must not fail for it.
        let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700));
    }
}

/// Sets up a new connection: WAL with full synchronisation, foreign keys, and the bounds
/// on what a statement may spill (see the module documentation).
pub(crate) fn configure(conn: &Connection, path: &Path) -> Result<()> {
    let err = sqlite(path);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    use_wal(conn, path)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(&err)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(&err)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(&err)?;
    keep_wal_files(conn);
    Ok(())
}

/// Keeps the `-wal` and `-shm` files when the last connection closes (the WAL emptied,
/// as `journal_size_limit` asks): reading the database then needs no file created nor
/// grown, so that on a full disk the administrator still sees what is installed, and
/// hook points still run (what they would write is refused, and said).
#[allow(unsafe_code)]
fn keep_wal_files(conn: &Connection) {
    let mut persist: std::ffi::c_int = 1;
    // SAFETY: the handle is this open connection's; SQLITE_FCNTL_PERSIST_WAL reads and
    // writes one `int` through the pointer, which outlives the call. A VFS without the
    // setting answers an error, left unanswered: the files then go as they did.
    let _ = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut persist).cast(),
        )
    };
}

/// Puts the database in WAL mode, which it keeps once set. Switching a new database
/// needs it alone for a moment, and SQLite answers "locked" at once, without waiting,
/// when another process opening it at the same moment holds a read lock (its rule
/// against two waiting on each other): the switch is tried again, all tries within
/// `BUSY_TIMEOUT`.
fn use_wal(conn: &Connection, path: &Path) -> Result<()> {
    let started = Instant::now();
    let switched = loop {
        let left = BUSY_TIMEOUT.saturating_sub(started.elapsed());
        conn.busy_timeout(left.max(Duration::from_millis(1)))
            .map_err(sqlite(path))?;
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && !left.is_zero() =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            switched => break switched,
        }
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite(path))?;
    switched.map_err(|e| not_begun(path, e))
}

/// Converts a database made before incremental auto-vacuum, if it is at most
/// [`CONVERT_AT_OPEN_MAX`]: `VACUUM` rewrites it whole, and cannot run inside a
/// transaction, so this happens once, when it is opened. On a connection of its own,
/// whose temporary copy of the database goes to a file rather than to SQLite's bounded
/// heap. Best effort: a database it cannot convert now (another writer holds the lock,
/// the disk lacks the room) stays as it is, fully usable, and is tried again at the next
/// open.
pub(crate) fn convert_to_incremental(path: &Path) {
    let convert = || -> rusqlite::Result<()> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(1))?;
        let value =
            |pragma: &str| conn.pragma_query_value(None, pragma, |row| row.get::<_, i64>(0));
        if value("auto_vacuum")? != 0 {
            return Ok(());
        }
        let pages = value("page_count")?;
        let size = u64::try_from(pages.saturating_mul(value("page_size")?)).unwrap_or(u64::MAX);
        if pages == 0 || size > CONVERT_AT_OPEN_MAX {
            return Ok(());
        }
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch("VACUUM")
    };
    let _ = convert();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_wal_files_outlast_the_last_connection_emptied_so_reads_need_no_new_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("modhost.db");
        // Opening a new database writes its schema, through the WAL.
        let state = crate::State::open(&path).unwrap_or_else(|e| panic!("{e}"));
        drop(state);
        let len = |suffix: &str| {
            std::fs::metadata(dir.path().join(format!("modhost.db{suffix}"))).map(|m| m.len())
        };
        assert_eq!(len("-wal").ok(), Some(0), "the WAL is kept, checkpointed");
        assert!(
            len("-shm").is_ok_and(|n| n > 0),
            "the shared memory is kept"
        );
    }
}
