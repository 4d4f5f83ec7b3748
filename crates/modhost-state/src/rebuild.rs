//! An existing table whose declaration changed in a way `ALTER TABLE` cannot follow — a
//! column's type, NOT NULL or default, the primary key, the foreign keys, a NOT NULL
//! column without a default — made again as declared, its rows kept. This is SQLite's
//! own recipe (<https://sqlite.org/lang_altertable.html#otheralter>), run inside the
//! install's transaction: a failure anywhere rolls all of it back.
//!
//! SQLite's recipe turns foreign keys off, which a transaction cannot do. Instead every
//! table whose rows could be touched by dropping the changed ones — the tables that refer
//! to them, transitively, all the module's own (foreign keys never leave a module) — is
//! copied first and made again too: whatever a cascade deletes in them on the way is
//! refilled from its copy, and foreign keys are checked at the commit.

use modhost_manifest::{Database, Table};
use rusqlite::Connection;

use crate::schema::{self, Column, ROWID, quote};

/// A name for the copy of the `n`th table rebuilt; the prefix is reserved for modhost.
fn copy_name(n: usize) -> String {
    format!("modhost_rebuild_{n}")
}

/// One table of the rebuilt family, as it was.
struct Old {
    name: String,
    /// Its columns.
    columns: Vec<Column>,
    /// Its `CREATE TABLE` and `CREATE INDEX` statements, for a table no longer declared.
    sql: Vec<String>,
    /// What `AUTOINCREMENT` had handed out, kept so ids are not given twice.
    sequence: Option<i64>,
    /// The tables its foreign keys refer to, in lower case.
    targets: Vec<String>,
}

/// Rebuilds `changed`, tables of `module` that exist and that `database` declares in a
/// way `ALTER TABLE` cannot reach ([`schema::tables_to_rebuild`]), with the tables that
/// refer to them. Columns the declaration no longer has are kept, as an upgrade keeps
/// them. Returns the names of the tables rebuilt. Run it with foreign keys deferred, and
/// roll back what it did if it fails.
pub(crate) fn rebuild(
    conn: &Connection,
    module: &str,
    database: &Database,
    changed: Vec<String>,
) -> Result<Vec<String>, String> {
    let sql_err = |e: rusqlite::Error| e.to_string();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    // Which of the module's tables refer to which, read once.
    let links = crate::tables::owned_by(conn, module)
        .and_then(|owned| {
            owned
                .into_iter()
                .map(|table| {
                    let targets = schema::foreign_key_targets(conn, &table)?;
                    Ok((table.to_ascii_lowercase(), targets))
                })
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql_err)?;
    let mut family = changed;
    loop {
        let joining: Vec<String> = links
            .iter()
            .filter(|(table, targets)| {
                !family.contains(table) && targets.iter().any(|t| family.contains(t))
            })
            .map(|(table, _)| table.clone())
            .collect();
        if joining.is_empty() {
            break;
        }
        family.extend(joining);
    }

    let mut old = Vec::with_capacity(family.len());
    for (n, name) in family.iter().enumerate() {
        let targets = links
            .iter()
            .find(|(table, _)| table == name)
            .map(|(_, targets)| targets.clone())
            .unwrap_or_default();
        old.push(read_old(conn, name, targets).map_err(sql_err)?);
        conn.execute_batch(&format!(
            "CREATE TABLE {} AS SELECT rowid AS {ROWID}, * FROM {}",
            quote(&copy_name(n)),
            quote(name)
        ))
        .map_err(sql_err)?;
    }
    let declared = |name: &str| {
        database
            .tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    };
    for (n, was) in old.iter().enumerate() {
        if let Some(table) = declared(&was.name) {
            check_rows_fit(conn, &copy_name(n), table, &was.columns)?;
        }
    }
    // A table dropped only once no other table left refers to it, so that a parent's
    // implicit `DELETE` finds no child for a cascade to visit. (With foreign keys
    // deferred, `RESTRICT` waits for the commit as `NO ACTION` does.)
    let links: Vec<(&str, &[String])> = old
        .iter()
        .map(|was| (was.name.as_str(), was.targets.as_slice()))
        .collect();
    let order = schema::children_first(&links);
    for &n in &order {
        conn.execute_batch(&format!("DROP TABLE {}", quote(&old[n].name)))
            .map_err(|e| format!("rebuilding table `{}`: {e}", old[n].name))?;
    }
    for &n in order.iter().rev() {
        let was = &old[n];
        let statements = match declared(&was.name) {
            Some(table) => {
                let kept: Vec<&Column> = was
                    .columns
                    .iter()
                    .filter(|c| {
                        !table
                            .fields
                            .iter()
                            .any(|f| f.name.eq_ignore_ascii_case(&c.name))
                    })
                    .collect();
                let mut statements = vec![schema::create_table_keeping(table, &kept)];
                statements.extend(schema::create_indexes(module, table));
                statements
            }
            None => was.sql.clone(),
        };
        for statement in &statements {
            conn.execute_batch(statement)
                .map_err(|e| format!("rebuilding table `{}`: {e}", was.name))?;
        }
    }
    // Every table made before any is filled: a row's foreign key needs its target table.
    for &n in order.iter().rev() {
        refill(conn, &copy_name(n), &old[n], declared(&old[n].name))?;
    }
    for n in 0..old.len() {
        conn.execute_batch(&format!("DROP TABLE {}", quote(&copy_name(n))))
            .map_err(sql_err)?;
    }
    Ok(family)
}

/// What `rebuild` needs to know of `table` before dropping it.
fn read_old(conn: &Connection, table: &str, targets: Vec<String>) -> rusqlite::Result<Old> {
    let name: String = conn.query_row(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [table],
        |row| row.get(0),
    )?;
    let sql = schema::definition_of(conn, &name)?;
    let sequence = schema::sequence_of(conn, &name)?;
    Ok(Old {
        columns: schema::existing_columns(conn, &name)?,
        targets,
        name,
        sql,
        sequence,
    })
}

/// Refuses, before anything is dropped, a declaration the rows in `copy` cannot fill: a
/// NOT NULL column without a default that is new, or that holds NULL in some row. (A
/// column with a default takes it where a row holds NULL.)
fn check_rows_fit(
    conn: &Connection,
    copy: &str,
    table: &Table,
    columns: &[Column],
) -> Result<(), String> {
    for field in table.fields.iter().filter(|f| schema::not_null(table, f)) {
        if field.default.is_some() || schema::is_rowid(table, field) {
            continue;
        }
        let existing = columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&field.name));
        let filter = if existing {
            format!(" WHERE {} IS NULL", quote(&field.name))
        } else {
            String::new()
        };
        let rows: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {}{filter}", quote(copy)),
                [],
                |row| row.get(0),
            )
            .map_err(|e| e.to_string())?;
        if rows > 0 && existing {
            return Err(format!(
                "cannot make column `{}` of existing table `{}` NOT NULL without a default: \
                 {rows} row(s) hold NULL in it; give it a default (default=\"…\"), which \
                 those rows take, or leave it nullable (notnull=\"false\"): the schema \
                 changes before upgrade() runs, so the module cannot fill them first",
                field.name, table.name
            ));
        }
        if rows > 0 {
            return Err(format!(
                "cannot add NOT NULL column `{}` without a default to existing table `{}`, \
                 which has {rows} row(s); a field is NOT NULL unless it says \
                 notnull=\"false\": say so, or give it a default",
                field.name, table.name
            ));
        }
    }
    Ok(())
}

/// Puts the rows of `copy` back into `was`, made again (as `table` declares it, if it
/// does): the columns both have, a NULL taking the column's default where it is now NOT
/// NULL; then what `AUTOINCREMENT` had handed out.
fn refill(conn: &Connection, copy: &str, was: &Old, table: Option<&Table>) -> Result<(), String> {
    let now = schema::existing_columns(conn, &was.name).map_err(|e| e.to_string())?;
    let (mut into, mut from) = (Vec::new(), Vec::new());
    for column in now.iter().filter(|n| {
        was.columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&n.name))
    }) {
        into.push(quote(&column.name));
        let default = table
            .and_then(|t| {
                t.fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(&column.name))
                    .filter(|f| schema::not_null(t, f))
            })
            .and(column.default.as_deref());
        from.push(match default {
            Some(default) => format!("coalesce({}, {default})", quote(&column.name)),
            None => quote(&column.name),
        });
    }
    // Where an INTEGER PRIMARY KEY is the rowid, its column carries it already.
    if !schema::has_rowid_alias(&now) {
        into.push("rowid".to_owned());
        from.push(ROWID.to_owned());
    }
    conn.execute_batch(&format!(
        "INSERT INTO {} ({}) SELECT {} FROM {}",
        quote(&was.name),
        into.join(", "),
        from.join(", "),
        quote(copy)
    ))
    .map_err(|e| {
        format!(
            "cannot keep the rows of table `{}` as now declared: {e}{}",
            was.name,
            crate::tables::unique_hint(&e)
        )
    })?;
    if let Some(sequence) = was.sequence {
        schema::keep_sequence(conn, &was.name, sequence).map_err(|e| e.to_string())?;
    }
    Ok(())
}
