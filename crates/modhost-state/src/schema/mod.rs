//! A module's `<database>` as SQLite DDL: tables created on install, altered (never
//! dropped) on upgrade, dropped on uninstall.

use modhost_manifest::{Database, FOREIGN_KEY_ACTIONS, Field, Key, Table};
use rusqlite::{Connection, OptionalExtension as _};

pub use modhost_manifest::RESERVED_PREFIXES;

mod indexes;

pub(crate) use indexes::{create_indexes, rename_legacy_indexes};
use indexes::{index_changes, unique_exists, unique_index};

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
/// allows neither PRIMARY KEY nor UNIQUE: [`migration`] adds a unique index instead.
fn column(table: &Table, field: &Field, alone: bool) -> String {
    let mut sql = format!("{} {}", quote(&field.name), sql_type(field));
    if single_primary(table) && field.primarykey && !alone {
        sql.push_str(" PRIMARY KEY");
        if field.autoincrement {
            sql.push_str(" AUTOINCREMENT");
        }
    }
    if not_null(table, field) {
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

/// Whether `field` of `table` is declared NOT NULL: an autoincrement key SQLite fills (the
/// table's lone INTEGER primary key) never is. A field of a composite key declared
/// autoincrement is not filled, so it is NOT NULL as declared: SQLite would otherwise let
/// a key column hold NULL, and rows the key should tell apart repeat.
pub(crate) fn not_null(table: &Table, field: &Field) -> bool {
    field.notnull && !(field.autoincrement && is_rowid(table, field))
}

/// Whether `table`'s primary key is one field declared `primarykey`: then the column
/// itself says `PRIMARY KEY` (and may say `AUTOINCREMENT`).
fn single_primary(table: &Table) -> bool {
    table.fields.iter().any(|f| f.primarykey) && primary_columns(table).len() == 1
}

/// Whether `field` is `table`'s lone INTEGER primary key, which SQLite fills itself.
pub(crate) fn is_rowid(table: &Table, field: &Field) -> bool {
    field.primarykey && sql_type(field) == "INTEGER" && single_primary(table)
}

/// The primary-key columns of `table`: its primary-key fields, else its primary key.
fn primary_columns(table: &Table) -> Vec<String> {
    let fields: Vec<String> = table
        .fields
        .iter()
        .filter(|f| f.primarykey)
        .map(|f| f.name.clone())
        .collect();
    if !fields.is_empty() {
        return fields;
    }
    table
        .keys
        .iter()
        .filter(|k| k.kind == "primary")
        .flat_map(|k| k.columns.iter().cloned())
        .collect()
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
    create_table_keeping(table, &[])
}

/// [`create_table`], with `kept` (columns the table has and `table` no longer declares)
/// after the declared ones, as they are.
pub(crate) fn create_table_keeping(table: &Table, kept: &[&Column]) -> String {
    let primary = primary_columns(table);
    let single = single_primary(table);
    let mut parts: Vec<String> = table
        .fields
        .iter()
        .map(|f| column(table, f, false))
        .chain(kept.iter().map(|c| c.kept_definition()))
        .collect();
    if !primary.is_empty() && !single {
        parts.push(format!("PRIMARY KEY ({})", columns(&primary)));
    }
    for key in table.keys.iter().filter(|k| k.kind == "foreign") {
        if let Some(target) = key.attributes.get("foreigntable") {
            let target_columns = target_columns(key);
            // The manifest's parser let only SQL's own actions through, in capitals.
            let actions: String = [("ondelete", "ON DELETE"), ("onupdate", "ON UPDATE")]
                .iter()
                .filter_map(|(attribute, clause)| {
                    let action = key.attributes.get(*attribute)?;
                    FOREIGN_KEY_ACTIONS
                        .contains(&action.as_str())
                        .then(|| format!(" {clause} {action}"))
                })
                .collect();
            parts.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({}){actions}",
                columns(&key.columns),
                quote(target),
                columns(&target_columns)
            ));
        }
    }
    format!("CREATE TABLE {} ({})", quote(&table.name), parts.join(", "))
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
        // The first row refused: its rowid and the table it names no row of.
        let violation = conn
            .prepare(&format!("PRAGMA foreign_key_check({})", quote(&table.name)))
            .and_then(|mut stmt| {
                stmt.query_row([], |row| {
                    Ok((row.get::<_, Option<i64>>(1)?, row.get::<_, String>(2)?))
                })
                .optional()
            });
        match violation {
            Ok(None) => {}
            Ok(Some((rowid, parent))) => {
                let row = rowid.map_or_else(|| "a row".to_owned(), |id| format!("row {id}"));
                return Err(format!(
                    "table `{}` has rows its foreign keys refuse ({row} names no row of \
                     `{parent}`); remove or correct those rows in the version before, or \
                     leave the key out",
                    table.name
                ));
            }
            Err(e) => return Err(format!("table `{}`: {e}", table.name)),
        }
    }
    Ok(())
}

/// A column of a table as it exists, as `PRAGMA table_info` describes it.
#[derive(Clone)]
pub(crate) struct Column {
    /// Its name.
    pub(crate) name: String,
    /// Its declared type.
    kind: String,
    /// Whether it is declared NOT NULL.
    not_null: bool,
    /// Its default, as SQL.
    pub(crate) default: Option<String>,
    /// Whether it is part of the primary key.
    primary: bool,
}

impl Column {
    /// The column as a column definition, without its place in the primary key.
    pub(crate) fn definition(&self) -> String {
        let mut sql = quote(&self.name);
        if !self.kind.is_empty() {
            sql.push(' ');
            sql.push_str(&self.kind);
        }
        if self.not_null {
            sql.push_str(" NOT NULL");
        }
        if let Some(default) = &self.default {
            sql.push_str(" DEFAULT ");
            sql.push_str(default);
        }
        sql
    }

    /// The column as a column the declaration no longer has is kept: its rows' values
    /// stay, and it may be NULL, as the module that no longer names it cannot fill it.
    fn kept_definition(&self) -> String {
        Column {
            not_null: false,
            ..self.clone()
        }
        .definition()
    }

    /// Whether, kept undeclared, it would refuse the rows of a module that no longer
    /// names it: NOT NULL without a default.
    fn refuses_rows_kept(&self) -> bool {
        self.not_null && self.default.is_none() && !self.primary
    }
}

/// The columns of `table` as it exists now.
pub(crate) fn existing_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let columns = stmt.query_map([], |row| {
        Ok(Column {
            name: row.get(1)?,
            kind: row.get(2)?,
            not_null: row.get(3)?,
            default: row.get(4)?,
            primary: row.get::<_, i64>(5)? > 0,
        })
    })?;
    columns.collect()
}

/// Whether an existing column differs from its declaration in a way `ALTER TABLE`
/// cannot change: its type, NOT NULL or default.
fn column_differs(table: &Table, field: &Field, column: &Column) -> bool {
    !column.kind.eq_ignore_ascii_case(sql_type(field))
        || column.not_null != not_null(table, field)
        || column.default != field.default.as_deref().map(literal)
}

/// Whether the existing `table` differs from its declaration in a way `ALTER TABLE`
/// cannot follow, so that [`crate::rebuild`] makes it again: a column's type, NOT NULL or
/// default, the primary key or its AUTOINCREMENT, the foreign keys, or a new column that
/// is part of the primary key or NOT NULL without a default.
pub(crate) fn needs_rebuild(conn: &Connection, table: &Table) -> rusqlite::Result<bool> {
    let present = existing_columns(conn, &table.name)?;
    for field in &table.fields {
        let differs = match present
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&field.name))
        {
            Some(column) => column_differs(table, field, column),
            None => field.primarykey || (not_null(table, field) && field.default.is_none()),
        };
        if differs {
            return Ok(true);
        }
    }
    // A field that is no longer unique, made so by its column's own constraint: only a
    // table made again drops it.
    let unique = indexes::unique_constraints(conn, &table.name)?;
    if table
        .fields
        .iter()
        .any(|f| !f.unique && unique.contains(&f.name.to_ascii_lowercase()))
    {
        return Ok(true);
    }
    // A column the declaration dropped, kept NOT NULL without a default, would fail every
    // insert of the version that dropped it: made again, it is kept NULL-able.
    let declared = |column: &Column| {
        table
            .fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&column.name))
    };
    if present
        .iter()
        .any(|column| !declared(column) && column.refuses_rows_kept())
    {
        return Ok(true);
    }
    let lower = |names: Vec<String>| {
        let mut names: Vec<String> = names.iter().map(|c| c.to_ascii_lowercase()).collect();
        names.sort();
        names
    };
    let had = lower(
        present
            .iter()
            .filter(|c| c.primary)
            .map(|c| c.name.clone())
            .collect(),
    );
    if had != lower(primary_columns(table)) {
        return Ok(true);
    }
    let declared_autoincrement =
        single_primary(table) && table.fields.iter().any(|f| f.primarykey && f.autoincrement);
    let has_autoincrement: bool = conn.query_row(
        "SELECT ifnull(max(sql LIKE '%AUTOINCREMENT%'), 0) FROM sqlite_schema
         WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [&table.name],
        |row| row.get(0),
    )?;
    if declared_autoincrement != has_autoincrement {
        return Ok(true);
    }
    let mut existing = foreign_keys_of(conn, &table.name)?;
    let mut declared: Vec<ForeignKey> = table
        .keys
        .iter()
        .filter(|k| k.kind == "foreign")
        .filter_map(declared_foreign_key)
        .collect();
    existing.sort();
    declared.sort();
    Ok(existing != declared)
}

/// The tables of `database` that exist and need a rebuild (see [`needs_rebuild`]), by
/// name in lower case.
pub(crate) fn tables_to_rebuild(
    conn: &Connection,
    database: &Database,
) -> rusqlite::Result<Vec<String>> {
    let mut tables = Vec::new();
    for table in &database.tables {
        if table_exists(conn, &table.name)? && needs_rebuild(conn, table)? {
            tables.push(table.name.to_ascii_lowercase());
        }
    }
    Ok(tables)
}

/// The order to take `tables` in — each a name and the tables its foreign keys refer to,
/// in lower case — so that a table comes only once no other table left refers to it:
/// children before their parents (a cycle is broken anywhere). Dropped in this order, a
/// parent's implicit `DELETE` finds no child to look through; filled in its reverse, a
/// child's row finds its parent by the parent's key, never the reverse, which with no
/// index on the child's column would read the whole child table for each parent row.
pub(crate) fn children_first(tables: &[(&str, &[String])]) -> Vec<usize> {
    let mut left: Vec<usize> = (0..tables.len()).collect();
    let mut order = Vec::with_capacity(tables.len());
    while !left.is_empty() {
        let unreferenced = left.iter().position(|&n| {
            let name = tables[n].0.to_ascii_lowercase();
            !left.iter().any(|&m| m != n && tables[m].1.contains(&name))
        });
        order.push(left.remove(unreferenced.unwrap_or(0)));
    }
    order
}

/// [`children_first`] of `tables` as they exist now, their foreign keys read from them.
pub(crate) fn children_first_of(
    conn: &Connection,
    tables: &[&str],
) -> rusqlite::Result<Vec<usize>> {
    let mut targets = Vec::with_capacity(tables.len());
    for table in tables {
        targets.push(foreign_key_targets(conn, table)?);
    }
    let links: Vec<(&str, &[String])> = tables
        .iter()
        .copied()
        .zip(targets.iter().map(Vec::as_slice))
        .collect();
    Ok(children_first(&links))
}

/// The tables `table`'s foreign keys refer to, in lower case.
pub(crate) fn foreign_key_targets(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    Ok(foreign_keys_of(conn, table)?
        .into_iter()
        .map(|key| key.target)
        .collect())
}

/// The column of a copy (a rebuild's, a backup's) that keeps its rows' rowids: a module
/// may have kept one, and SQLite would renumber the rows of a table without an INTEGER
/// PRIMARY KEY. The prefix is modhost's: no module's column has it.
pub(crate) const ROWID: &str = "modhost_rowid";

/// Whether a table of `columns` has an INTEGER PRIMARY KEY, which is its rowid.
pub(crate) fn has_rowid_alias(columns: &[Column]) -> bool {
    let mut primary = columns.iter().filter(|c| c.primary);
    matches!(
        (primary.next(), primary.next()),
        (Some(only), None) if only.kind.eq_ignore_ascii_case("INTEGER")
    )
}

/// Whether `table` exists.
pub(crate) fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [table],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// One foreign key as SQLite keeps it: the table it refers to, its columns and theirs,
/// and its actions, in lower case.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    target: String,
    from: Vec<String>,
    to: Vec<String>,
    on_update: String,
    on_delete: String,
}

/// The foreign keys `table` has, as `pragma_foreign_key_list` lists them.
fn foreign_keys_of(conn: &Connection, table: &str) -> rusqlite::Result<Vec<ForeignKey>> {
    let mut stmt = conn.prepare(
        "SELECT id, \"table\", \"from\", coalesce(\"to\", ''), on_update, on_delete
         FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?;
    let rows = stmt.query_map([table], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
        ))
    })?;
    let mut keys: Vec<(i64, ForeignKey)> = Vec::new();
    for row in rows {
        let (id, target, from, to, on_update, on_delete) = row?;
        match keys.last_mut() {
            Some((last, key)) if *last == id => {
                key.from.push(from.to_ascii_lowercase());
                key.to.push(to.to_ascii_lowercase());
            }
            _ => keys.push((
                id,
                ForeignKey {
                    target: target.to_ascii_lowercase(),
                    from: vec![from.to_ascii_lowercase()],
                    to: vec![to.to_ascii_lowercase()],
                    on_update: on_update.to_ascii_lowercase(),
                    on_delete: on_delete.to_ascii_lowercase(),
                },
            )),
        }
    }
    Ok(keys.into_iter().map(|(_, key)| key).collect())
}

/// The columns foreign key `key` refers to: those its `foreigncolumns` names, else
/// columns of its own names.
fn target_columns(key: &Key) -> Vec<String> {
    key.attributes
        .get("foreigncolumns")
        .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_else(|| key.columns.clone())
}

/// `key`, a foreign key of the manifest, as SQLite would keep it once created.
fn declared_foreign_key(key: &Key) -> Option<ForeignKey> {
    let lower = |names: &[String]| names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let to = lower(&target_columns(key));
    let action = |attribute: &str| {
        key.attributes
            .get(attribute)
            .map_or_else(|| "no action".to_owned(), |a| a.to_ascii_lowercase())
    };
    Some(ForeignKey {
        target: key.attributes.get("foreigntable")?.to_ascii_lowercase(),
        from: lower(&key.columns),
        to,
        on_update: action("onupdate"),
        on_delete: action("ondelete"),
    })
}

/// The statements that bring the database to `module`'s `database`: new tables are
/// created, the others altered by [`alterations`] except those `rebuilding` names (in
/// lower case), which [`crate::rebuild`] makes again after these, once what they may
/// refer to (a new table, a new key of another) is there; indexes are created, and an
/// index whose key changed or was removed is dropped (and recreated as declared); no
/// table or column is dropped.
pub(crate) fn migration(
    conn: &Connection,
    module: &str,
    database: &Database,
    rebuilding: &[String],
) -> Result<Vec<String>, String> {
    let mut statements = Vec::new();
    for table in &database.tables {
        if rebuilding.contains(&table.name.to_ascii_lowercase()) {
            continue;
        }
        if table_exists(conn, &table.name).map_err(|e| e.to_string())? {
            statements.extend(alterations(conn, module, table)?);
            statements.extend(index_changes(conn, module, table).map_err(|e| e.to_string())?);
        } else {
            statements.push(create_table(table));
            statements.extend(create_indexes(module, table));
        }
    }
    Ok(statements)
}

/// The statements that bring the existing `table` to its declaration: new columns are
/// added, unique fields given a unique index. A table whose change `ALTER TABLE` cannot
/// make never comes here: [`crate::rebuild`] makes it again.
fn alterations(conn: &Connection, module: &str, table: &Table) -> Result<Vec<String>, String> {
    let mut statements = Vec::new();
    let present = existing_columns(conn, &table.name).map_err(|e| e.to_string())?;
    let find = |name: &str| present.iter().find(|c| c.name.eq_ignore_ascii_case(name));
    for field in table.fields.iter().filter(|f| find(&f.name).is_none()) {
        statements.push(format!(
            "ALTER TABLE {} ADD COLUMN {}",
            quote(&table.name),
            column(table, field, true)
        ));
    }
    // A lone primary key is unique already, an INTEGER one without any index.
    let single = single_primary(table);
    for field in table
        .fields
        .iter()
        .filter(|f| f.unique && !(f.primarykey && single))
    {
        if !unique_exists(conn, &table.name, &field.name).map_err(|e| e.to_string())? {
            statements.push(format!(
                "CREATE UNIQUE INDEX {} ON {} ({})",
                quote(&unique_index(module, table, field)),
                quote(&table.name),
                quote(&field.name)
            ));
        }
    }
    Ok(statements)
}

/// What AUTOINCREMENT has handed out for table `name` (its `sqlite_sequence` row), if
/// anything. Names ignore case.
pub(crate) fn sequence_of(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    let has_sequence: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_sequence'",
        [],
        |row| row.get(0),
    )?;
    if !has_sequence {
        return Ok(None);
    }
    conn.query_row(
        "SELECT seq FROM sqlite_sequence WHERE name = ?1 COLLATE NOCASE",
        [name],
        |row| row.get(0),
    )
    .optional()
}

/// Keeps what AUTOINCREMENT had handed out (`sequence`) handed out for table `name`, made
/// again with its rows put back (a rebuild, a rollback): the rows made its counter as high
/// as their largest id, which may be lower, and an empty table has none. (Names ignore
/// case: the table made again is named as now declared.)
pub(crate) fn keep_sequence(conn: &Connection, name: &str, sequence: i64) -> rusqlite::Result<()> {
    let Some((name, autoincrement)) = conn
        .query_row(
            "SELECT name, sql LIKE '%AUTOINCREMENT%' FROM sqlite_schema
             WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [name],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
        )
        .optional()?
    else {
        return Ok(());
    };
    if sequence_of(conn, &name)?.is_some() {
        conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
            rusqlite::params![name, sequence],
        )?;
    } else if autoincrement {
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
            rusqlite::params![name, sequence],
        )?;
    }
    Ok(())
}

/// The statements that make table `name` as it is: its `CREATE TABLE`, then those of its
/// indexes (an index SQLite makes for a constraint has none: the table's makes it).
pub(crate) fn definition_of(conn: &Connection, name: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_schema WHERE tbl_name = ?1 COLLATE NOCASE AND sql IS NOT NULL
         ORDER BY type = 'index', name",
    )?;
    let sql = stmt
        .query_map([name], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(sql)
}
