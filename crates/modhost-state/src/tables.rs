//! A module's own tables: which it owns (`modhost_tables`), creating and altering them
//! to match its `<database>` (the DDL is `schema/`'s), and the SQL it runs against them
//! (checked by `module_sql/`, whose authorizer confines it to them).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use modhost_manifest::Database;
use rusqlite::{Connection, OptionalExtension};

use crate::error::sqlite;
use crate::module_sql::Writes;
use crate::txn::Start;
use crate::{Error, Result, Rows, SqlValue, State, Stop, Txn, module_sql, rebuild, schema};

/// The tables `module` owns, by name.
pub(crate) fn owned_by(conn: &Connection, module: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM modhost_tables WHERE module = ?1 ORDER BY name")?;
    let rows = stmt.query_map([module], |row| row.get(0))?;
    rows.collect()
}

impl State {
    /// The tables `module` owns, by name.
    pub fn tables(&self, module: &str) -> Result<Vec<String>> {
        owned_by(&*self.connect()?, module).map_err(sqlite(self.path()))
    }

    /// The rows of a table, for inspection (`SELECT *`); the table must be owned by a module.
    pub fn table_rows(&self, module: &str, table: &str) -> Result<Rows> {
        let mut conn = self.connect()?;
        let owned: BTreeSet<String> = owned_by(&conn, module)
            .map_err(sqlite(self.path()))?
            .into_iter()
            .collect();
        // SQLite's names are case-insensitive; SQLite's own words would say "no such table".
        if !owned.iter().any(|t| t.eq_ignore_ascii_case(table)) {
            return Err(Error::NoTable {
                module: module.to_owned(),
                table: table.to_owned(),
                tables: owned.into_iter().collect(),
            });
        }
        let sql = format!("SELECT * FROM {}", schema::quote(table));
        let deadline = Instant::now() + Duration::from_secs(10);
        module_sql::query(&mut conn, owned, Writes::Any, &deadline.into(), &sql, &[]).map_err(
            |message| Error::Rows {
                module: module.to_owned(),
                table: table.to_owned(),
                message,
            },
        )
    }
}

impl Txn {
    /// Creates and alters `module`'s tables to match `database`, rebuilding (rows kept) a
    /// table whose change `ALTER TABLE` cannot make; never drops a table or a column. Refuses
    /// reserved names, tables another module owns, and foreign keys to tables `database`
    /// does not declare.
    /// All or nothing: a refusal leaves the tables as they were.
    pub fn apply_schema(&mut self, module: &str, database: &Database) -> Result<()> {
        // New tables and indexes are the module's too: its quota measures them again.
        self.recount();
        self.conn
            .execute_batch("SAVEPOINT modhost_schema")
            .map_err(self.err())?;
        let before = self.module_usage(module)?;
        match self
            .apply_schema_now(module, database)
            .and_then(|()| self.schema_within_quota(module, before))
        {
            Ok(()) => self.release("modhost_schema"),
            Err(e) => {
                // Should SQLite have ended the whole transaction, this fails, and the
                // transaction's end says so: the cause is `e`.
                let _ = self.rollback_to("modhost_schema");
                Err(e)
            }
        }
    }

    /// Refuses a schema whose new tables and indexes take `module` past its quota (from
    /// `before`): their pages are the module's to keep, and past the quota it could write
    /// nothing. A module already past a quota lowered since may still upgrade, if the new
    /// schema takes no more.
    fn schema_within_quota(&self, module: &str, before: u64) -> Result<()> {
        let used = self.module_usage(module)?;
        let quota = self.quotas.of(module);
        if used > quota && used > before {
            return Err(Error::OverQuota {
                module: module.to_owned(),
                used,
                quota,
            });
        }
        Ok(())
    }

    fn apply_schema_now(&mut self, module: &str, database: &Database) -> Result<()> {
        let schema_err = |message: String| Error::Schema {
            module: module.to_owned(),
            message,
        };
        for table in &database.tables {
            if let Some(why) = modhost_manifest::reserved_table(&table.name) {
                return Err(schema_err(format!(
                    "table name `{}` is reserved: {why}",
                    table.name
                )));
            }
            if let Some(field) = table
                .fields
                .iter()
                .find(|f| modhost_manifest::reserved_column(&f.name).is_some())
            {
                return Err(schema_err(format!(
                    "column name `{}` of table `{}` is reserved",
                    field.name, table.name
                )));
            }
            let owner: Option<String> = self
                .conn
                .query_row(
                    "SELECT module FROM modhost_tables WHERE name = ?1 COLLATE NOCASE",
                    [&table.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.err())?;
            match owner {
                Some(owner) if owner != module => {
                    return Err(schema_err(format!(
                        "table `{}` belongs to module `{owner}`",
                        table.name
                    )));
                }
                None if schema::table_exists(&self.conn, &table.name).map_err(self.err())? => {
                    return Err(schema_err(format!(
                        "table `{}` already exists and is not the module's",
                        table.name
                    )));
                }
                _ => {}
            }
        }
        schema::check_foreign_targets(database).map_err(&schema_err)?;
        schema::rename_legacy_indexes(&self.conn).map_err(self.err())?;
        let rebuilding = schema::tables_to_rebuild(&self.conn, database).map_err(self.err())?;
        let statements =
            schema::migration(&self.conn, module, database, &rebuilding).map_err(&schema_err)?;
        for statement in statements {
            self.conn
                .execute_batch(&statement)
                .map_err(|e| schema_err(format!("{e} (in `{statement}`){}", unique_hint(&e))))?;
        }
        // Rebuilding copies tables and drops them again: modhost's write, as a backup is.
        self.host_ceiling()?;
        let rebuilt = self.deferring_foreign_keys(|txn| {
            rebuild::rebuild(&txn.conn, module, database, rebuilding).map_err(&schema_err)
        })?;
        self.freed |= !rebuilt.is_empty();
        schema::check_foreign_keys(&self.conn, database).map_err(&schema_err)?;
        for table in &database.tables {
            self.own_table(module, &table.name)?;
        }
        Ok(())
    }

    /// Records `table` as `module`'s. One record per table, named as now declared:
    /// SQLite's names ignore case, and a second record of another spelling would have a
    /// backup copy the table twice.
    pub(crate) fn own_table(&self, module: &str, table: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM modhost_tables
                 WHERE name = ?1 COLLATE NOCASE AND name <> ?1 AND module = ?2",
                [table, module],
            )
            .map_err(self.err())?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO modhost_tables (name, module) VALUES (?1, ?2)",
                [table, module],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Executes one statement of `module`'s against its own tables, stopped at `stop`.
    /// The error is for the module: it says what SQLite refused.
    pub fn module_execute(
        &mut self,
        module: &str,
        sql: &str,
        params: &[SqlValue],
        stop: impl Into<Stop>,
    ) -> Result<u64, String> {
        self.last_failure = None;
        let bytes = sql.len() + params.iter().map(SqlValue::size).sum::<usize>();
        let start = self
            .check_room_for_statement(module, bytes as u64)
            .map_err(|e| e.to_string())?;
        let owned = owned_by(&self.conn, module)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let stop = stop.into();
        let done = self.within_quota(module, start, |conn| {
            module_sql::execute(conn, owned, start.writes, &stop, sql, params)
        });
        self.count_statement(module, start.used);
        self.failed(done.map_err(|e| self.name_full(module, e)))
    }

    /// Runs `run`, a statement of `module`'s; for a module at its quota, inside a
    /// savepoint that undoes it when it grew what the module keeps, refusing it as over
    /// the quota: the module's earlier writes stay, and the refusal is one it can handle.
    /// With free pages about, which the page ceiling cannot keep a statement from
    /// filling, the same savepoint undoes one that grew what is used past its room
    /// ([`Start::room`]), refused as the ceiling would have refused it.
    fn within_quota<T>(
        &mut self,
        module: &str,
        start: Start,
        run: impl FnOnce(&mut Connection) -> Result<T, String>,
    ) -> Result<T, String> {
        if !start.at_quota && start.room.is_none() {
            return run(&mut self.conn);
        }
        const MARK: &str = "modhost_at_quota";
        let batch =
            |conn: &Connection, sql: &str| conn.execute_batch(sql).map_err(|e| e.to_string());
        batch(&self.conn, &format!("SAVEPOINT {MARK}"))?;
        let done = run(&mut self.conn);
        // SQLite may have rolled the whole transaction back, savepoint and all.
        if self.conn.is_autocommit() {
            return done;
        }
        let grew = self.used_bytes().saturating_sub(start.used);
        let at_quota = start.at_quota && grew > 0;
        let past_room = start.room.is_some_and(|room| grew > room);
        if done.is_err() || at_quota || past_room {
            batch(&self.conn, &format!("ROLLBACK TO {MARK}"))?;
        }
        batch(&self.conn, &format!("RELEASE {MARK}"))?;
        match done {
            Ok(_) if at_quota => Err(self
                .over_quota(module, u64::MAX)
                .map_or_else(|| module_sql::FULL.to_owned(), |e| e.to_string())),
            // Said as the page ceiling's refusal is: the caller names the limit.
            Ok(_) if past_room => Err(module_sql::FULL.to_owned()),
            done => done,
        }
    }

    /// A module statement's error, with SQLite's "full" (the statement reached the page
    /// ceiling) said as the limit that stopped it: the module's quota, or the cap, naming
    /// the module and the setting.
    fn name_full(&self, module: &str, error: String) -> String {
        if error != module_sql::FULL {
            return error;
        }
        match self.over_quota(module, self.cap_left()) {
            Some(over) => over.to_string(),
            None => self.full(Some(module)).to_string(),
        }
    }

    /// Runs one query of `module`'s against its own tables, stopped at `stop`.
    pub fn module_query(
        &mut self,
        module: &str,
        sql: &str,
        params: &[SqlValue],
        stop: impl Into<Stop>,
    ) -> Result<Rows, String> {
        self.last_failure = None;
        // `INSERT … RETURNING` writes through here too: it runs under the modules' ceiling
        // whatever call it is part of.
        let start = self.module_ceiling_for(module).map_err(|e| e.to_string())?;
        let owned = owned_by(&self.conn, module)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let stop = stop.into();
        let done = self.within_quota(module, start, |conn| {
            module_sql::query(conn, owned, start.writes, &stop, sql, params)
        });
        self.count_statement(module, start.used);
        self.failed(done.map_err(|e| self.name_full(module, e)))
    }

    /// `done`, its failure kept as the last statement's ([`Txn::last_failure`]); a
    /// statement that succeeded leaves none, so that an older failure is never blamed.
    fn failed<T>(&mut self, done: Result<T, String>) -> Result<T, String> {
        self.last_failure = done.as_ref().err().cloned();
        done
    }
}

/// What to do when a key or a field made unique meets rows that repeat: SQLite's words
/// name the columns, not the way out.
pub(crate) fn unique_hint(error: &dyn std::fmt::Display) -> &'static str {
    match error.to_string().contains("UNIQUE constraint failed") {
        true => {
            "; rows already repeat those values: remove the repeats in the version before, \
             or leave the key (or `unique`) out"
        }
        false => "",
    }
}
