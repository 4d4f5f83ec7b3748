//! Module records (`modhost_modules`): reading them, writing them, setting a module's
//! status, and removing a module with everything it owns.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::sqlite;
use crate::{Error, ModuleRecord, Result, State, Status, Txn, backups, schema, tables};

/// The columns of a module record, in the order [`record`] reads them.
const COLUMNS: &str = "rawname, name, version, status, reason, module_dir, data_dir, component_sha256, manifest, installed_at";

/// Reads a row whose columns are [`COLUMNS`], in order, leaving the status as text:
/// [`with_status`] parses it, so that a status modhost never writes is an
/// [`Error::Corrupt`] rather than an SQLite error.
pub(crate) fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ModuleRecord, String)> {
    Ok((
        ModuleRecord {
            rawname: row.get(0)?,
            name: row.get(1)?,
            version: row.get(2)?,
            status: Status::Broken,
            reason: row.get(4)?,
            module_dir: row.get(5)?,
            data_dir: row.get(6)?,
            component_sha256: row.get(7)?,
            manifest: row.get(8)?,
            installed_at: row.get(9)?,
        },
        row.get(3)?,
    ))
}

/// The record with its stored status parsed.
pub(crate) fn with_status(
    path: &Path,
    (mut record, status): (ModuleRecord, String),
) -> Result<ModuleRecord> {
    record.status = status.parse().map_err(|message| Error::Corrupt {
        path: path.to_owned(),
        message,
    })?;
    Ok(record)
}

/// Every module, by rawname.
fn all(conn: &Connection, path: &Path) -> Result<Vec<ModuleRecord>> {
    let err = sqlite(path);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM modhost_modules ORDER BY rawname"
        ))
        .map_err(&err)?;
    let rows = stmt.query_map([], record).map_err(&err)?;
    rows.map(|row| with_status(path, row.map_err(&err)?))
        .collect()
}

/// The record of `rawname`, if installed.
fn find(conn: &Connection, path: &Path, rawname: &str) -> Result<Option<ModuleRecord>> {
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM modhost_modules WHERE rawname = ?1"),
            [rawname],
            record,
        )
        .optional()
        .map_err(sqlite(path))?;
    row.map(|row| with_status(path, row)).transpose()
}

impl State {
    /// Every installed module, by rawname.
    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        all(&*self.connect()?, self.path())
    }

    /// The record of `rawname`, if installed.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        find(&*self.connect()?, self.path(), rawname)
    }

    /// Every directory a record points at, as `(rawname, "modules" | "data", dir)`;
    /// anything else under `modules/` and `data/` is a leftover.
    pub fn referenced_dirs(&self) -> Result<BTreeSet<(String, &'static str, String)>> {
        let conn = self.connect()?;
        let mut dirs = BTreeSet::new();
        for record in all(&conn, self.path())? {
            dirs.insert((record.rawname.clone(), "modules", record.module_dir.clone()));
            dirs.insert((record.rawname.clone(), "data", record.data_dir.clone()));
            if let Some(backup) = backups::find(&conn, self.path(), &record.rawname)? {
                dirs.insert((record.rawname.clone(), "modules", backup.record.module_dir));
                dirs.insert((record.rawname, "data", backup.record.data_dir));
            }
        }
        Ok(dirs)
    }
}

impl Txn {
    /// The record of `rawname`, as this transaction sees it.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        find(&self.conn, &self.path, rawname)
    }

    /// Every module, as this transaction sees them.
    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        all(&self.conn, &self.path)
    }

    /// Inserts or replaces a module's record.
    pub fn put_module(&mut self, r: &ModuleRecord) -> Result<()> {
        self.host_ceiling()?;
        self.changed_modules = true;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_modules
                 (rawname, name, version, status, reason, module_dir, data_dir, component_sha256, manifest, installed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.rawname,
                    r.name,
                    r.version,
                    r.status.as_str(),
                    r.reason,
                    r.module_dir,
                    r.data_dir,
                    r.component_sha256,
                    r.manifest,
                    r.installed_at
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Sets a module's status and its reason.
    pub fn set_status(
        &mut self,
        rawname: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<()> {
        self.host_ceiling()?;
        self.changed_modules = true;
        self.conn
            .execute(
                "UPDATE modhost_modules SET status = ?2, reason = ?3 WHERE rawname = ?1",
                params![rawname, status.as_str(), reason],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes a module entirely: its record, backup, key-value store and tables. The
    /// pages they held are free at once (free pages count for nothing against the cap),
    /// and go back to the disk when the transaction commits.
    pub fn remove_module(&mut self, rawname: &str) -> Result<()> {
        self.host_ceiling()?;
        self.recount();
        self.deferring_foreign_keys(|txn| txn.remove_module_now(rawname))
    }

    fn remove_module_now(&mut self, rawname: &str) -> Result<()> {
        self.changed_modules = true;
        self.freed = true;
        self.revoke(rawname)?;
        self.conn
            .execute(
                "DELETE FROM modhost_module_sources WHERE rawname = ?1",
                [rawname],
            )
            .map_err(self.err())?;
        self.drop_backup(rawname)?;
        for table in tables::owned_by(&self.conn, rawname).map_err(self.err())? {
            self.conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {}", schema::quote(&table)))
                .map_err(self.err())?;
        }
        for sql in [
            "DELETE FROM modhost_tables WHERE module = ?1",
            "DELETE FROM modhost_kv WHERE module = ?1",
            "DELETE FROM modhost_modules WHERE rawname = ?1",
        ] {
            self.conn.execute(sql, [rawname]).map_err(self.err())?;
        }
        Ok(())
    }
}
