//! Backups (`modhost_backups`): the previous version of a module that an upgrade keeps,
//! with copies of its key-value store and tables, so that it can be rolled back.

use std::collections::BTreeMap;
use std::path::Path;

use modhost_manifest::Database;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::sqlite;
use crate::modules::{record, with_status};
use crate::schema::ROWID;
use crate::{Backup, Error, ModuleRecord, Result, State, Txn, schema, tables};

/// The backup of `rawname`, if an upgrade kept one.
pub(crate) fn find(conn: &Connection, path: &Path, rawname: &str) -> Result<Option<Backup>> {
    let row = conn
        .query_row(
            "SELECT rawname, name, version, status, NULL, module_dir, data_dir, component_sha256, manifest,
                    installed_at, kv, tables
             FROM modhost_backups WHERE rawname = ?1",
            [rawname],
            |row| Ok((record(row)?, row.get::<_, String>(10)?, row.get::<_, String>(11)?)),
        )
        .optional()
        .map_err(sqlite(path))?;
    let Some((row, kv, tables)) = row else {
        return Ok(None);
    };
    let corrupt = |e: serde_json::Error| Error::Corrupt {
        path: path.to_owned(),
        message: format!("backup of `{rawname}`: {e}"),
    };
    Ok(Some(Backup {
        record: with_status(path, row)?,
        kv: serde_json::from_str(&kv).map_err(corrupt)?,
        tables: serde_json::from_str(&tables).map_err(corrupt)?,
    }))
}

/// Copies `rawname`'s key-value entries from table `from` to table `to` (the store and its
/// backup's copy) in SQL, never through memory.
fn copy_kv(conn: &Connection, from: &str, to: &str, rawname: &str) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "INSERT INTO {to} (module, key, value) SELECT module, key, value FROM {from}
             WHERE module = ?1"
        ),
        [rawname],
    )
}

/// The pages the backup of `rawname` holds: the copies of its tables (as SQLite's
/// `dbstat` counts them) and its record, whose copy of the module's key-value store may
/// be large. They do not count against the modules' cap (see `state.rs`).
pub(crate) fn measure(conn: &Connection, rawname: &str) -> rusqlite::Result<i64> {
    let (tables, bytes, page_size): (String, i64, i64) = conn.query_row(
        "SELECT tables,
                length(CAST(kv AS BLOB)) + length(CAST(tables AS BLOB))
                    + length(CAST(manifest AS BLOB)),
                (SELECT page_size FROM pragma_page_size())
         FROM modhost_backups WHERE rawname = ?1",
        [rawname],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    // An overflow page holds all but 4 bytes of a page.
    let kv_bytes = crate::quota::kv_cost(conn, "modhost_backup_kv", rawname)?;
    let mut pages = (bytes + kv_bytes) / (page_size - 4).max(1) + 1;
    let copies: BTreeMap<String, String> = serde_json::from_str(&tables).unwrap_or_default();
    let mut stmt = conn.prepare_cached("SELECT count(*) FROM dbstat WHERE name = ?1")?;
    for copy in copies.values() {
        pages += stmt.query_row([copy], |row| row.get::<_, i64>(0))?;
    }
    Ok(pages)
}

/// Measures every backup (see [`measure`]): those kept before the pages were recorded.
pub(crate) fn measure_all(conn: &Connection) -> rusqlite::Result<()> {
    let rawnames: Vec<String> = conn
        .prepare("SELECT rawname FROM modhost_backups")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for rawname in rawnames {
        let pages = measure(conn, &rawname)?;
        conn.execute(
            "UPDATE modhost_backups SET pages = ?2 WHERE rawname = ?1",
            params![rawname, pages],
        )?;
    }
    Ok(())
}

impl State {
    /// The backup of `rawname`, if an upgrade kept one.
    pub fn backup(&self, rawname: &str) -> Result<Option<Backup>> {
        find(&*self.connect()?, self.path(), rawname)
    }
}

impl Txn {
    /// The backup of `rawname`, as this transaction sees it.
    pub fn backup(&self, rawname: &str) -> Result<Option<Backup>> {
        find(&self.conn, &self.path, rawname)
    }

    /// Keeps `record` (the version about to be replaced) as `rawname`'s backup, with a copy
    /// of its key-value store and its tables (their rows' rowids kept, as a module may have
    /// kept them). Replaces any older backup. The copies are
    /// modhost's, beyond the modules' cap: an upgrade keeps its backup however full the
    /// modules are, and the backup never stops them writing.
    pub fn keep_backup(&mut self, record: &ModuleRecord) -> Result<()> {
        let rawname = &record.rawname;
        self.host_ceiling()?;
        self.drop_backup(rawname)?;
        copy_kv(&self.conn, "modhost_kv", "modhost_backup_kv", rawname).map_err(self.err())?;
        let mut tables = BTreeMap::new();
        for table in tables::owned_by(&self.conn, rawname).map_err(self.err())? {
            let copy = format!("modhost_bak__{table}");
            self.conn
                .execute_batch(&format!(
                    "CREATE TABLE {} AS SELECT rowid AS {ROWID}, * FROM {}",
                    schema::quote(&copy),
                    schema::quote(&table)
                ))
                .map_err(self.err())?;
            tables.insert(table, copy);
        }
        let json =
            |value: &BTreeMap<String, String>| serde_json::to_string(value).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO modhost_backups
                 (rawname, name, version, status, module_dir, data_dir, component_sha256, manifest, installed_at, kv, tables)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    rawname,
                    record.name,
                    record.version,
                    record.status.as_str(),
                    record.module_dir,
                    record.data_dir,
                    record.component_sha256,
                    record.manifest,
                    record.installed_at,
                    // The store's copy is in modhost_backup_kv.
                    "{}",
                    json(&tables)
                ],
            )
            .map_err(self.err())?;
        let pages = measure(&self.conn, rawname).map_err(self.err())?;
        self.conn
            .execute(
                "UPDATE modhost_backups SET pages = ?2 WHERE rawname = ?1",
                params![rawname, pages],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Discards `rawname`'s backup and the copies of its tables; returns what it was.
    pub fn drop_backup(&mut self, rawname: &str) -> Result<Option<Backup>> {
        let backup = find(&self.conn, &self.path, rawname)?;
        if let Some(backup) = &backup {
            self.host_ceiling()?;
            self.freed = true;
            for copy in backup.tables.values() {
                self.conn
                    .execute_batch(&format!("DROP TABLE IF EXISTS {}", schema::quote(copy)))
                    .map_err(self.err())?;
            }
            self.conn
                .execute("DELETE FROM modhost_backups WHERE rawname = ?1", [rawname])
                .map_err(self.err())?;
            self.conn
                .execute("DELETE FROM modhost_backup_kv WHERE module = ?1", [rawname])
                .map_err(self.err())?;
        }
        Ok(backup)
    }

    /// Makes the backup of `rawname` current again: its record, key-value store and table
    /// contents; tables created since are dropped. `old_schema` is the backup's
    /// `<database>`, used to recreate its tables. Returns the backup's record.
    pub fn restore_backup(
        &mut self,
        rawname: &str,
        old_schema: &Database,
    ) -> Result<Option<ModuleRecord>> {
        // modhost's write, not the module's: it puts back what the backup holds, beyond
        // the modules' cap, and then drops the backup. What the module's tables were
        // counted at for its quota is measured again.
        self.host_ceiling()?;
        self.recount();
        self.deferring_foreign_keys(|txn| txn.restore_backup_now(rawname, old_schema))
    }

    fn restore_backup_now(
        &mut self,
        rawname: &str,
        old_schema: &Database,
    ) -> Result<Option<ModuleRecord>> {
        let Some(backup) = find(&self.conn, &self.path, rawname)? else {
            return Ok(None);
        };
        self.freed = true;
        let owned = tables::owned_by(&self.conn, rawname).map_err(self.err())?;
        // What AUTOINCREMENT handed out, before and since the upgrade, stays handed out:
        // the rows put back would make each counter only as high as their largest id.
        let mut sequences = Vec::new();
        for table in &owned {
            if let Some(sequence) = schema::sequence_of(&self.conn, table).map_err(self.err())? {
                sequences.push((table.clone(), sequence));
            }
        }
        // A table the old version does not declare was kept by the upgrade as it was: its
        // definition now (constraints, keys, indexes) is the one to make it again with.
        let mut definitions = BTreeMap::new();
        for table in owned.iter().filter(|t| !declares(old_schema, t)) {
            let sql = schema::definition_of(&self.conn, table).map_err(self.err())?;
            let columns = schema::existing_columns(&self.conn, table).map_err(self.err())?;
            definitions.insert(table.to_ascii_lowercase(), (sql, columns));
        }
        let names: Vec<&str> = owned.iter().map(String::as_str).collect();
        let order = schema::children_first_of(&self.conn, &names).map_err(self.err())?;
        for n in order {
            self.conn
                .execute_batch(&format!(
                    "DROP TABLE IF EXISTS {}",
                    schema::quote(&owned[n])
                ))
                .map_err(self.err())?;
        }
        self.conn
            .execute("DELETE FROM modhost_tables WHERE module = ?1", [rawname])
            .map_err(self.err())?;
        self.apply_schema(rawname, old_schema)?;
        // What the old schema no longer declares and an upgrade kept (a table, a column)
        // comes back as the copy has it.
        let copies: Vec<(&String, &String)> = backup.tables.iter().collect();
        for (table, copy) in &copies {
            let definition = definitions.get(&table.to_ascii_lowercase());
            self.restore_kept(rawname, table, copy, definition)?;
        }
        let names: Vec<&str> = copies.iter().map(|(table, _)| table.as_str()).collect();
        let order = schema::children_first_of(&self.conn, &names).map_err(self.err())?;
        // Parents before their children: see `schema::children_first`.
        for n in order.into_iter().rev() {
            let (table, copy) = copies[n];
            let (mut into, mut from) = (Vec::new(), Vec::new());
            for column in schema::existing_columns(&self.conn, copy).map_err(self.err())? {
                if column.name == ROWID {
                    // A backup made before rowids were kept has no such column. Where an
                    // INTEGER PRIMARY KEY is the rowid, its column carries it already.
                    let now = schema::existing_columns(&self.conn, table).map_err(self.err())?;
                    if !schema::has_rowid_alias(&now) {
                        into.push("rowid".to_owned());
                        from.push(ROWID.to_owned());
                    }
                } else {
                    into.push(schema::quote(&column.name));
                    from.push(schema::quote(&column.name));
                }
            }
            self.conn
                .execute_batch(&format!(
                    "INSERT INTO {} ({}) SELECT {} FROM {}",
                    schema::quote(table),
                    into.join(", "),
                    from.join(", "),
                    schema::quote(copy)
                ))
                .map_err(self.err())?;
        }
        for (table, sequence) in &sequences {
            schema::keep_sequence(&self.conn, table, *sequence).map_err(self.err())?;
        }
        self.conn
            .execute("DELETE FROM modhost_kv WHERE module = ?1", [rawname])
            .map_err(self.err())?;
        copy_kv(&self.conn, "modhost_backup_kv", "modhost_kv", rawname).map_err(self.err())?;
        // A backup made before the store was copied row by row holds it as JSON.
        for (key, value) in &backup.kv {
            self.conn
                .execute(
                    "INSERT INTO modhost_kv (module, key, value) VALUES (?1, ?2, ?3)",
                    [rawname, key, value],
                )
                .map_err(self.err())?;
        }
        self.drop_backup(rawname)?;
        self.put_module(&backup.record)?;
        Ok(Some(backup.record))
    }

    /// Makes `table` (restored from `copy`) hold every column the copy has: a table the
    /// restored schema does not declare is made again by its `definition` before the
    /// rollback (the statements, and the columns they make) when that has the copy's
    /// columns, else as the copy is; it is owned by `rawname`. A column the restored
    /// schema does not declare is added.
    fn restore_kept(
        &mut self,
        rawname: &str,
        table: &str,
        copy: &str,
        definition: Option<&(Vec<String>, Vec<schema::Column>)>,
    ) -> Result<()> {
        let kept: Vec<_> = schema::existing_columns(&self.conn, copy)
            .map_err(self.err())?
            .into_iter()
            .filter(|c| c.name != ROWID)
            .collect();
        let exists = schema::table_exists(&self.conn, table).map_err(self.err())?;
        let same_columns = |columns: &[schema::Column]| {
            columns.len() == kept.len()
                && columns
                    .iter()
                    .zip(&kept)
                    .all(|(a, b)| a.name.eq_ignore_ascii_case(&b.name))
        };
        if let (false, Some((sql, columns))) = (exists, definition)
            && same_columns(columns)
        {
            for statement in sql {
                self.conn.execute_batch(statement).map_err(self.err())?;
            }
            return self.own_table(rawname, table);
        }
        if !exists {
            let list = kept
                .iter()
                .map(|c| schema::quote(&c.name))
                .collect::<Vec<_>>()
                .join(", ");
            self.conn
                .execute_batch(&format!(
                    "CREATE TABLE {} AS SELECT {list} FROM {} WHERE 0",
                    schema::quote(table),
                    schema::quote(copy)
                ))
                .map_err(self.err())?;
            return self.own_table(rawname, table);
        }
        let present = schema::existing_columns(&self.conn, table).map_err(self.err())?;
        for column in kept {
            if !present
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&column.name))
            {
                self.conn
                    .execute_batch(&format!(
                        "ALTER TABLE {} ADD COLUMN {}",
                        schema::quote(table),
                        column.definition()
                    ))
                    .map_err(self.err())?;
            }
        }
        Ok(())
    }
}

/// Whether `schema` declares `table` (names ignore case).
fn declares(schema: &Database, table: &str) -> bool {
    schema
        .tables
        .iter()
        .any(|t| t.name.eq_ignore_ascii_case(table))
}
