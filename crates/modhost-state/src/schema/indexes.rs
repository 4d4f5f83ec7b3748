//! The indexes of a module's tables: named per module, made from its `<key>`s, brought
//! to the declaration on upgrade, renamed from the names older versions gave them.

use modhost_manifest::{Field, Key, Table};
use rusqlite::Connection;

use super::{columns, quote};

/// The index made from `key` of `module`'s `table`. Rawnames, table and key names are
/// identifiers (letters, digits, `_`), so the `:` between them makes every module's,
/// table's and key's index name its own; and since tables may not start with `modhost_`,
/// no table has it either. (Once, it was `TABLE_KEY`: `a_b` + `c` met `a` + `b_c`.)
fn key_index(module: &str, table: &Table, key: &Key) -> String {
    format!("{KEY_INDEX}{module}:{}:{}", table.name, key.name)
}

/// The unique index an upgrade gives a new unique field of `module`'s `table`, named
/// like [`key_index`] and for the same reason.
pub(super) fn unique_index(module: &str, table: &Table, field: &Field) -> String {
    format!("{UNIQUE_INDEX}{module}:{}:{}", table.name, field.name)
}

/// How the names of [`key_index`] and [`unique_index`] start.
const KEY_INDEX: &str = "modhost_key:";
const UNIQUE_INDEX: &str = "modhost_unique:";

/// The index of a `<key>` as declared: its name, uniqueness and columns, lower-cased
/// (SQLite's names ignore case), and the statement that creates it.
struct Declared {
    name: String,
    unique: bool,
    columns: Vec<String>,
    create: String,
}

/// The index keys of `module`'s `table`.
fn declared_indexes(module: &str, table: &Table) -> Vec<Declared> {
    table
        .keys
        .iter()
        .filter(|k| k.kind == "index" || k.kind == "unique")
        .map(|key| {
            let name = key_index(module, table, key);
            let unique = key.kind == "unique";
            let create = format!(
                "CREATE {}INDEX {} ON {} ({})",
                if unique { "UNIQUE " } else { "" },
                quote(&name),
                quote(&table.name),
                columns(&key.columns)
            );
            Declared {
                name: name.to_ascii_lowercase(),
                unique,
                columns: key.columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
                create,
            }
        })
        .collect()
}

/// `CREATE [UNIQUE] INDEX` for each index key of `module`'s new `table`. Never `IF NOT
/// EXISTS`: an index of that name that is not this key's must fail the schema, not
/// silently stand in for it.
pub(crate) fn create_indexes(module: &str, table: &Table) -> Vec<String> {
    declared_indexes(module, table)
        .into_iter()
        .map(|index| index.create)
        .collect()
}

/// The statements that bring the indexes of `module`'s existing `table` to its keys: an
/// index whose key the declaration no longer has, or has with other columns or another
/// uniqueness, is dropped, and each key without its index as declared gets one.
///
/// Every index of a module's table that a statement made (`origin = 'c'`) is modhost's:
/// modules run no DDL. The unique indexes upgrades give unique fields are kept; any other
/// is a key's. Indexes still under the names the previous version gave them are renamed
/// by [`rename_legacy_indexes`] first.
pub(super) fn index_changes(
    conn: &Connection,
    module: &str,
    table: &Table,
) -> rusqlite::Result<Vec<String>> {
    let declared = declared_indexes(module, table);
    let mut list = conn.prepare(
        "SELECT name, \"unique\" FROM pragma_index_list(?1) WHERE origin = 'c' ORDER BY name",
    )?;
    let existing: Vec<(String, bool)> = list
        .query_map([&table.name], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut info = conn.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
    let mut drops = Vec::new();
    let mut current = Vec::new();
    for (name, unique) in existing {
        let lower = name.to_ascii_lowercase();
        let columns: Vec<String> = info
            .query_map([&name], |row| row.get::<_, String>(0))?
            .map(|c| c.map(|c| c.to_ascii_lowercase()))
            .collect::<rusqlite::Result<_>>()?;
        if unique && columns.len() == 1 && lower.starts_with(UNIQUE_INDEX) {
            // Kept while its field is declared unique; a field that says so no more (or
            // is no longer declared) is no longer held to it.
            let still = table
                .fields
                .iter()
                .any(|f| f.unique && f.name.eq_ignore_ascii_case(&columns[0]));
            if !still {
                drops.push(format!("DROP INDEX {}", quote(&name)));
            }
            continue;
        }
        if declared
            .iter()
            .any(|d| d.name == lower && d.unique == unique && d.columns == columns)
        {
            current.push(lower);
        } else {
            drops.push(format!("DROP INDEX {}", quote(&name)));
        }
    }
    let creates = declared
        .into_iter()
        .filter(|d| !current.contains(&d.name))
        .map(|d| d.create);
    Ok(drops.into_iter().chain(creates).collect())
}

/// Renames every index of a module's table that is still named as the previous version
/// named them — `TABLE_KEY` for a key, `TABLE__FIELD__unique` for a unique field added by
/// an upgrade — to [`key_index`] and [`unique_index`]: under the old names, an index of
/// one module's could block another module's table or index of the same name until its
/// owner was upgraded. Runs before any schema is applied; once every index is renamed it
/// finds nothing to do. SQLite cannot rename an index: each is made again, as it was.
pub(crate) fn rename_legacy_indexes(conn: &Connection) -> rusqlite::Result<()> {
    let mut list = conn.prepare(
        "SELECT t.module, t.name, l.name, l.\"unique\"
         FROM modhost_tables AS t, pragma_index_list(t.name) AS l
         WHERE l.origin = 'c' AND l.name NOT LIKE 'modhost\\_%' ESCAPE '\\'
         ORDER BY t.name, l.name",
    )?;
    let legacy: Vec<(String, String, String, bool)> = list
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut info = conn.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
    for (module, table, index, unique) in legacy {
        // Only plain columns: what a `<key>` or a unique field made.
        let Some(names) = info
            .query_map([&index], |row| row.get::<_, Option<String>>(0))?
            .collect::<rusqlite::Result<Option<Vec<String>>>>()?
        else {
            continue;
        };
        let Some(rest) = index
            .get(..table.len() + 1)
            .filter(|head| head.eq_ignore_ascii_case(&format!("{table}_")))
            .and_then(|_| index.get(table.len() + 1..))
        else {
            continue;
        };
        let field = rest
            .strip_prefix('_')
            .and_then(|r| r.strip_suffix("__unique"));
        let name = match (field, names.as_slice()) {
            (Some(field), [column]) if unique && field.eq_ignore_ascii_case(column) => {
                format!("{UNIQUE_INDEX}{module}:{table}:{field}")
            }
            _ => format!("{KEY_INDEX}{module}:{table}:{rest}"),
        };
        conn.execute_batch(&format!(
            "DROP INDEX {}; CREATE {}INDEX {} ON {} ({})",
            quote(&index),
            if unique { "UNIQUE " } else { "" },
            quote(&name),
            quote(&table),
            columns(&names)
        ))?;
    }
    Ok(())
}

/// The columns of `table` its own `UNIQUE` column constraints cover (as `create_table`
/// writes a unique field), in lower case: SQLite drops such a constraint only by making
/// the table again.
pub(super) fn unique_constraints(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT lower(max(i.name)) FROM pragma_index_list(?1) AS l, pragma_index_info(l.name) AS i
         WHERE l.origin = 'u' GROUP BY l.name HAVING count(*) = 1",
    )?;
    let columns = stmt.query_map([table], |row| row.get(0))?;
    columns.collect()
}

/// Whether a unique index (or constraint) covers exactly `column` of `table`.
pub(super) fn unique_exists(
    conn: &Connection,
    table: &str,
    column: &str,
) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(
        "SELECT 1 FROM pragma_index_list(?1) AS l, pragma_index_info(l.name) AS i
         WHERE l.\"unique\" AND NOT l.partial GROUP BY l.name
         HAVING count(*) = 1 AND max(i.name) = ?2 COLLATE NOCASE",
    )?;
    stmt.exists([table, column])
}
