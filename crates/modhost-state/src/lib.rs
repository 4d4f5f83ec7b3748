//! The state database of a modhost root: which modules are installed, in which state, and
//! each module's key-value store.
//!
//! The database is SQLite in WAL mode. Every change happens inside a [`Txn`], an owned
//! `BEGIN IMMEDIATE` transaction that rolls back unless committed, so that a lifecycle
//! call's key-value writes and the module's record commit or vanish together.
//!
//! ```
//! use modhost_state::{ModuleRecord, State, Status};
//!
//! let dir = tempfile::tempdir()?;
//! let state = State::open(&dir.path().join("modhost.db"))?;
//! let mut txn = state.begin()?;
//! txn.kv_set("core", "extension/100", "Reception")?;
//! txn.commit()?;
//! assert_eq!(state.kv_entries("core")?, vec![("extension/100".into(), "Reception".into())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE modules (
        rawname          TEXT PRIMARY KEY NOT NULL,
        name             TEXT NOT NULL,
        version          TEXT NOT NULL,
        status           TEXT NOT NULL,
        reason           TEXT,
        component_sha256 TEXT NOT NULL,
        manifest         TEXT NOT NULL,
        installed_at     INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE kv (
        module TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (module, key)
    ) STRICT, WITHOUT ROWID;
"];

/// A state-database failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite reported an error.
    #[error("state database `{path}`: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored value is not one modhost writes; the database was changed by hand.
    #[error("state database `{path}`: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The state of an installed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Installed and taking part in hook points.
    Enabled,
    /// Installed but switched off by an administrator.
    Disabled,
    /// Its files are newer than the installed version.
    NeedsUpgrade,
    /// Recorded, but its files are missing or cannot be loaded.
    Broken,
}

impl Status {
    /// The stored, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
            Status::NeedsUpgrade => "needs-upgrade",
            Status::Broken => "broken",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enabled" => Ok(Status::Enabled),
            "disabled" => Ok(Status::Disabled),
            "needs-upgrade" => Ok(Status::NeedsUpgrade),
            "broken" => Ok(Status::Broken),
            other => Err(format!("unknown module status `{other}`")),
        }
    }
}

/// What the state database records about an installed module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleRecord {
    /// The module's unique id.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The installed version, as module.xml writes it.
    pub version: String,
    /// Its state.
    pub status: Status,
    /// Why it is in that state, when that needs saying.
    pub reason: Option<String>,
    /// SHA-256 of the component, hex: the key of its compiled artifact.
    pub component_sha256: String,
    /// The installed module.xml, verbatim.
    #[serde(skip)]
    pub manifest: String,
    /// When it was installed, in seconds since the Unix epoch.
    pub installed_at: i64,
}

/// A modhost root's state database.
#[derive(Debug, Clone)]
pub struct State {
    path: PathBuf,
}

impl State {
    /// Opens the database at `path`, creating it and bringing its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let state = State {
            path: path.to_owned(),
        };
        let mut conn = state.connect()?;
        let applied: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| state.err(e))?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied < MIGRATIONS.len() {
            let tx = conn.transaction().map_err(|e| state.err(e))?;
            for migration in &MIGRATIONS[applied..] {
                tx.execute_batch(migration).map_err(|e| state.err(e))?;
            }
            tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
                .map_err(|e| state.err(e))?;
            tx.commit().map_err(|e| state.err(e))?;
        }
        Ok(state)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path).map_err(|e| self.err(e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.err(e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        Ok(conn)
    }

    /// Starts a write transaction; it takes the write lock at once.
    pub fn begin(&self) -> Result<Txn> {
        let conn = self.connect()?;
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        Ok(Txn {
            conn,
            path: self.path.clone(),
            open: true,
        })
    }

    /// Every installed module, by rawname.
    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        let conn = self.connect()?;
        queries::modules(&conn, &self.path)
    }

    /// The record of `rawname`, if installed.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        let conn = self.connect()?;
        queries::module(&conn, &self.path, rawname)
    }

    /// Every entry of `module`'s key-value store, by key.
    pub fn kv_entries(&self, module: &str) -> Result<Vec<(String, String)>> {
        let conn = self.connect()?;
        queries::kv_entries(&conn, module).map_err(|e| self.err(e))
    }
}

/// An open write transaction. Dropping it without [`Txn::commit`] rolls everything back.
pub struct Txn {
    conn: Connection,
    path: PathBuf,
    open: bool,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn").field("path", &self.path).finish()
    }
}

impl Txn {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The record of `rawname`, as this transaction sees it.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        queries::module(&self.conn, &self.path, rawname)
    }

    /// Inserts or replaces a module's record.
    pub fn put_module(&mut self, record: &ModuleRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modules
                 (rawname, name, version, status, reason, component_sha256, manifest, installed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    record.rawname,
                    record.name,
                    record.version,
                    record.status.as_str(),
                    record.reason,
                    record.component_sha256,
                    record.manifest,
                    record.installed_at,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a module's record and its whole key-value store.
    pub fn remove_module(&mut self, rawname: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM kv WHERE module = ?1", [rawname])
            .map_err(|e| self.err(e))?;
        self.conn
            .execute("DELETE FROM modules WHERE rawname = ?1", [rawname])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The value of `key` in `module`'s store.
    pub fn kv_get(&self, module: &str, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM kv WHERE module = ?1 AND key = ?2",
                [module, key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets `key` in `module`'s store.
    pub fn kv_set(&mut self, module: &str, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO kv (module, key, value) VALUES (?1, ?2, ?3)",
                [module, key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes `key` from `module`'s store; returns whether it was there.
    pub fn kv_delete(&mut self, module: &str, key: &str) -> Result<bool> {
        let removed = self
            .conn
            .execute(
                "DELETE FROM kv WHERE module = ?1 AND key = ?2",
                [module, key],
            )
            .map_err(|e| self.err(e))?;
        Ok(removed > 0)
    }

    /// The keys of `module`'s store that start with `prefix`, in byte order.
    pub fn kv_keys(&self, module: &str, prefix: &str) -> Result<Vec<String>> {
        let entries = queries::kv_entries(&self.conn, module).map_err(|e| self.err(e))?;
        Ok(entries
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(prefix))
            .collect())
    }

    /// Makes every change of the transaction durable.
    pub fn commit(mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the connection closes next, which also discards the
            // transaction, so a failed ROLLBACK loses nothing.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Queries shared by [`State`]'s read methods and [`Txn`].
mod queries {
    use super::*;

    const COLUMNS: &str =
        "rawname, name, version, status, reason, component_sha256, manifest, installed_at";

    fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ModuleRecord, String)> {
        let status: String = row.get(3)?;
        Ok((
            ModuleRecord {
                rawname: row.get(0)?,
                name: row.get(1)?,
                version: row.get(2)?,
                status: Status::Broken,
                reason: row.get(4)?,
                component_sha256: row.get(5)?,
                manifest: row.get(6)?,
                installed_at: row.get(7)?,
            },
            status,
        ))
    }

    fn with_status(
        path: &Path,
        (mut record, status): (ModuleRecord, String),
    ) -> Result<ModuleRecord> {
        record.status = status.parse().map_err(|message| Error::Corrupt {
            path: path.to_owned(),
            message,
        })?;
        Ok(record)
    }

    pub(super) fn modules(conn: &Connection, path: &Path) -> Result<Vec<ModuleRecord>> {
        let err = |source| Error::Sqlite {
            path: path.to_owned(),
            source,
        };
        let mut stmt = conn
            .prepare(&format!("SELECT {COLUMNS} FROM modules ORDER BY rawname"))
            .map_err(err)?;
        let rows = stmt.query_map([], record).map_err(err)?;
        rows.map(|row| with_status(path, row.map_err(err)?))
            .collect()
    }

    pub(super) fn module(
        conn: &Connection,
        path: &Path,
        rawname: &str,
    ) -> Result<Option<ModuleRecord>> {
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM modules WHERE rawname = ?1"),
                [rawname],
                record,
            )
            .optional()
            .map_err(|source| Error::Sqlite {
                path: path.to_owned(),
                source,
            })?;
        row.map(|row| with_status(path, row)).transpose()
    }

    pub(super) fn kv_entries(
        conn: &Connection,
        module: &str,
    ) -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare("SELECT key, value FROM kv WHERE module = ?1 ORDER BY key")?;
        let rows = stmt.query_map([module], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rawname: &str) -> ModuleRecord {
        ModuleRecord {
            rawname: rawname.into(),
            name: "Core".into(),
            version: "16.0.40".into(),
            status: Status::Enabled,
            reason: None,
            component_sha256: "00".into(),
            manifest: "<module/>".into(),
            installed_at: 1,
        }
    }

    fn open() -> (tempfile::TempDir, State) {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir")
        };
        let state = State::open(&dir.path().join("modhost.db"));
        let Ok(state) = state else {
            panic!("{state:?}")
        };
        (dir, state)
    }

    #[test]
    fn committed_changes_persist_and_reopen() -> Result<()> {
        let (dir, state) = open();
        let mut txn = state.begin()?;
        txn.put_module(&record("core"))?;
        txn.kv_set("core", "a", "1")?;
        txn.commit()?;
        let reopened = State::open(&dir.path().join("modhost.db"))?;
        assert_eq!(reopened.modules()?, vec![record("core")]);
        assert_eq!(reopened.kv_entries("core")?, vec![("a".into(), "1".into())]);
        Ok(())
    }

    #[test]
    fn dropped_transaction_rolls_back() -> Result<()> {
        let (_dir, state) = open();
        {
            let mut txn = state.begin()?;
            txn.put_module(&record("core"))?;
            txn.kv_set("core", "a", "1")?;
        }
        assert!(state.modules()?.is_empty());
        assert!(state.kv_entries("core")?.is_empty());
        Ok(())
    }

    #[test]
    fn kv_is_per_module_and_removed_with_the_module() -> Result<()> {
        let (_dir, state) = open();
        let mut txn = state.begin()?;
        txn.put_module(&record("core"))?;
        txn.kv_set("core", "extension/100", "x")?;
        txn.kv_set("core", "other", "y")?;
        txn.kv_set("voicemail", "extension/100", "z")?;
        assert_eq!(
            txn.kv_keys("core", "extension/")?,
            vec!["extension/100".to_owned()]
        );
        assert_eq!(txn.kv_get("voicemail", "other")?, None);
        assert!(txn.kv_delete("core", "other")?);
        assert!(!txn.kv_delete("core", "other")?);
        txn.remove_module("core")?;
        txn.commit()?;
        assert!(state.kv_entries("core")?.is_empty());
        assert_eq!(state.kv_entries("voicemail")?.len(), 1);
        Ok(())
    }
}
