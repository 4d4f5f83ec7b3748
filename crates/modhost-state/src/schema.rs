//! A module's `<database>` as SQLite DDL: tables created on install, altered (never
//! dropped) on upgrade, dropped on uninstall.

use modhost_manifest::{Database, Field, Key, Table};
use rusqlite::Connection;

/// Table names modules may not declare: modhost's own tables and SQLite's.
pub const RESERVED_PREFIXES: &[&str] = &["modhost_", "sqlite_"];

/// `name` as an SQL identifier. Manifest validation already restricts names to
/// `[A-Za-z_][A-Za-z0-9_]*`; quoting keeps keywords such as `user` usable.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn sql_type(field: &Field) -> &'static str {
    match field.kind.as_str() {
        "integer" | "smallint" | "bigint" | "boolean" => "INTEGER",
        "decimal" => "NUMERIC",
        "float" => "REAL",
        "blob" | "binary" => "BLOB",
        _ => "TEXT",
    }
}

/// A column definition. `alone` is true for `ALTER TABLE … ADD COLUMN`, where SQLite
/// allows neither PRIMARY KEY nor UNIQUE.
fn column(field: &Field, single_primary: bool, alone: bool) -> String {
    let mut sql = format!("{} {}", quote(&field.name), sql_type(field));
    if single_primary && field.primarykey && !alone {
        sql.push_str(" PRIMARY KEY");
        if field.autoincrement {
            sql.push_str(" AUTOINCREMENT");
        }
    }
    if field.notnull && !(field.primarykey && field.autoincrement) {
        sql.push_str(" NOT NULL");
    }
    if let Some(default) = &field.default {
        sql.push_str(" DEFAULT ");
        sql.push_str(&literal(default));
    }
    if field.unique && !alone {
        sql.push_str(" UNIQUE");
    }
    sql
}

fn index_name(table: &Table, key: &Key) -> String {
    quote(&format!("{}_{}", table.name, key.name))
}

fn columns(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE TABLE` for `table`, with its primary and foreign keys.
pub(crate) fn create_table(table: &Table) -> String {
    let primary: Vec<String> = table
        .fields
        .iter()
        .filter(|f| f.primarykey)
        .map(|f| f.name.clone())
        .collect();
    let single = primary.len() == 1;
    let mut parts: Vec<String> = table
        .fields
        .iter()
        .map(|f| column(f, single, false))
        .collect();
    if primary.len() > 1 {
        parts.push(format!("PRIMARY KEY ({})", columns(&primary)));
    }
    for key in &table.keys {
        match key.kind.as_str() {
            "primary" if primary.is_empty() => {
                parts.push(format!("PRIMARY KEY ({})", columns(&key.columns)))
            }
            "foreign" => {
                if let Some(target) = key.attributes.get("foreigntable") {
                    let target_columns: Vec<String> = key
                        .attributes
                        .get("foreigncolumns")
                        .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect())
                        .unwrap_or_else(|| key.columns.clone());
                    parts.push(format!(
                        "FOREIGN KEY ({}) REFERENCES {} ({})",
                        columns(&key.columns),
                        quote(target),
                        columns(&target_columns)
                    ));
                }
            }
            _ => {}
        }
    }
    format!("CREATE TABLE {} ({})", quote(&table.name), parts.join(", "))
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS` for each index key of `table`.
pub(crate) fn create_indexes(table: &Table) -> Vec<String> {
    table
        .keys
        .iter()
        .filter(|k| k.kind == "index" || k.kind == "unique")
        .map(|key| {
            let unique = if key.kind == "unique" { "UNIQUE " } else { "" };
            format!(
                "CREATE {unique}INDEX IF NOT EXISTS {} ON {} ({})",
                index_name(table, key),
                quote(&table.name),
                columns(&key.columns)
            )
        })
        .collect()
}

/// Refuses a foreign key into any table `database` does not declare: one into the host's
/// or another module's tables would let this module's rows block their changes.
pub(crate) fn check_foreign_targets(database: &Database) -> Result<(), String> {
    for table in &database.tables {
        for key in table.keys.iter().filter(|k| k.kind == "foreign") {
            let Some(target) = key.attributes.get("foreigntable") else {
                continue;
            };
            if !database
                .tables
                .iter()
                .any(|t| t.name.eq_ignore_ascii_case(target))
            {
                return Err(format!(
                    "table `{}`: foreign key `{}` refers to `{target}`, which is not a table the module declares",
                    table.name, key.name
                ));
            }
        }
    }
    Ok(())
}

/// Fails if a foreign key of `database`'s tables does not fit its target (columns that
/// are not the target's primary key or a unique key): SQLite would report that only when
/// rows change, and then for every change, uninstalling included.
pub(crate) fn check_foreign_keys(conn: &Connection, database: &Database) -> Result<(), String> {
    for table in &database.tables {
        let violation = conn
            .prepare(&format!("PRAGMA foreign_key_check({})", quote(&table.name)))
            .and_then(|mut stmt| stmt.query([])?.next().map(|row| row.is_some()));
        match violation {
            Ok(false) => {}
            Ok(true) => {
                return Err(format!(
                    "table `{}` has rows its foreign keys refuse",
                    table.name
                ));
            }
            Err(e) => return Err(format!("table `{}`: {e}", table.name)),
        }
    }
    Ok(())
}

/// The columns of `table` as it exists now.
pub(crate) fn existing_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let names = stmt.query_map([], |row| row.get::<_, String>(1))?;
    names.collect()
}

/// Whether `table` exists.
pub(crate) fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The statements that bring the database to `database`: new tables are created, new
/// columns added, new indexes created; nothing is dropped. Fails for a column SQLite
/// cannot add to an existing table (NOT NULL without a default).
pub(crate) fn migration(conn: &Connection, database: &Database) -> Result<Vec<String>, String> {
    let mut statements = Vec::new();
    for table in &database.tables {
        let exists = table_exists(conn, &table.name).map_err(|e| e.to_string())?;
        if !exists {
            statements.push(create_table(table));
        } else {
            let present = existing_columns(conn, &table.name).map_err(|e| e.to_string())?;
            for field in table.fields.iter().filter(|f| !present.contains(&f.name)) {
                if field.notnull && field.default.is_none() {
                    return Err(format!(
                        "cannot add NOT NULL column `{}` without a default to existing table `{}`",
                        field.name, table.name
                    ));
                }
                if field.primarykey {
                    return Err(format!(
                        "cannot add primary-key column `{}` to existing table `{}`",
                        field.name, table.name
                    ));
                }
                statements.push(format!(
                    "ALTER TABLE {} ADD COLUMN {}",
                    quote(&table.name),
                    column(field, false, true)
                ));
            }
        }
        statements.extend(create_indexes(table));
    }
    Ok(statements)
}
