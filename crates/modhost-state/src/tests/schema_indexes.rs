//! Modules' keys and unique fields as SQLite indexes: named per module, rebuilt and
//! renamed on upgrade.

use super::{V1, V2, database, later, open};
use crate::{Result, Txn};

/// The index `name`'s uniqueness and columns, if it exists on table `book`.
fn index(txn: &Txn, name: &str) -> Option<(bool, Vec<String>)> {
    index_on(txn, "book", name)
}

/// The index `name`'s uniqueness and columns, if it exists on `table`.
fn index_on(txn: &Txn, table: &str, name: &str) -> Option<(bool, Vec<String>)> {
    let unique: bool = txn
        .conn
        .query_row(
            "SELECT \"unique\" FROM pragma_index_list(?2) WHERE name = ?1",
            [name, table],
            |r| r.get(0),
        )
        .ok()?;
    let mut stmt = txn
        .conn
        .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
        .ok()?;
    let columns = stmt
        .query_map([name], |r| r.get(0))
        .ok()?
        .collect::<rusqlite::Result<Vec<String>>>()
        .ok()?;
    Some((unique, columns))
}

/// The index of V1's key `number`.
const KEY: &str = "modhost_key:m:book:number";

#[test]
fn a_changed_key_is_rebuilt_and_a_removed_one_dropped_on_upgrade() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    assert_eq!(index(&txn, KEY), Some((false, vec!["number".into()])));

    let wider = V1.replace(
        r#"<key name="number" type="index"><column name="number"/></key>"#,
        r#"<field name="area" type="string" default=""/><key name="number" type="unique"><column name="area"/><column name="number"/></key>"#,
    );
    txn.apply_schema("m", &database(&wider))?;
    assert_eq!(
        index(&txn, KEY),
        Some((true, vec!["area".into(), "number".into()])),
        "the key as declared now, not as it was"
    );

    txn.apply_schema("m", &database(V2))?;
    assert_eq!(index(&txn, KEY), None, "V2 has no such key");
    txn.commit()?;
    Ok(())
}

/// Runs the host's own `sql` in `txn`, as the previous version's DDL would have.
fn host_sql(txn: &Txn, sql: &str) -> Result<()> {
    txn.conn.execute_batch(sql).map_err(txn.err())
}

/// Runs `module`'s `insert` twice: true if the second is refused as a duplicate.
fn duplicate_refused(txn: &mut Txn, module: &str, insert: &str) -> bool {
    let first = txn.module_execute(module, insert, &[], later());
    assert_eq!(first, Ok(1), "{insert}");
    let second = txn.module_execute(module, insert, &[], later());
    second.is_err_and(|e| e.contains("UNIQUE constraint failed"))
}

/// Two modules whose keys were both named `a_b_c` once (table `a_b` key `c`, table `a`
/// key `b_c`), and a table of that name.
const A_B: &str = r#"<table name="a_b"><field name="x" type="string"/><key name="c" type="unique"><column name="x"/></key></table>"#;
const A: &str = r#"<table name="a"><field name="y" type="string"/><key name="b_c" type="unique"><column name="y"/></key></table>"#;
const A_B_C: &str = r#"<table name="a_b_c"><field name="z" type="string"/></table>"#;

#[test]
fn index_names_are_per_module_and_never_meet() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(A_B))?;
    txn.apply_schema("n", &database(A))?;
    txn.apply_schema("o", &database(A_B_C))?;
    assert!(duplicate_refused(
        &mut txn,
        "m",
        "INSERT INTO a_b (x) VALUES (1)"
    ));
    assert!(
        duplicate_refused(&mut txn, "n", "INSERT INTO a (y) VALUES (1)"),
        "n's unique key is not lost to m's index"
    );
    assert_eq!(
        index_on(&txn, "a_b", "modhost_key:m:a_b:c"),
        Some((true, vec!["x".into()]))
    );
    assert_eq!(
        index_on(&txn, "a", "modhost_key:n:a:b_c"),
        Some((true, vec!["y".into()]))
    );
    // Applying again (an upgrade to the same schema) keeps them, and fails on nothing.
    txn.apply_schema("m", &database(A_B))?;
    txn.apply_schema("n", &database(A))?;
    assert!(index_on(&txn, "a_b", "modhost_key:m:a_b:c").is_some());
    assert!(index_on(&txn, "a", "modhost_key:n:a:b_c").is_some());
    txn.commit()?;
    Ok(())
}

#[test]
fn indexes_the_previous_version_named_are_renamed_before_any_schema_is_applied() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    // What the previous version left: `a_b_c` for m's key, none for n's (its `CREATE
    // INDEX IF NOT EXISTS a_b_c` was skipped), `book_number` for another key of m's, and
    // `book__code__unique` for a unique field an upgrade added.
    txn.apply_schema("m", &database(&format!("{A_B}{V1}")))?;
    txn.apply_schema("n", &database(A))?;
    host_sql(
        &txn,
        r#"DROP INDEX "modhost_key:m:a_b:c"; CREATE UNIQUE INDEX a_b_c ON a_b (x);
        DROP INDEX "modhost_key:n:a:b_c";
        DROP INDEX "modhost_key:m:book:number"; CREATE INDEX book_number ON book (number);
        ALTER TABLE book ADD COLUMN code TEXT; CREATE UNIQUE INDEX book__code__unique ON book (code);"#,
    )?;
    // A new module's table of the old index's name installs, and m's indexes are renamed
    // though m was not upgraded.
    txn.apply_schema("o", &database(A_B_C))?;
    assert_eq!(index_on(&txn, "a_b", "a_b_c"), None, "the old name is gone");
    assert_eq!(
        index_on(&txn, "a_b", "modhost_key:m:a_b:c"),
        Some((true, vec!["x".into()]))
    );
    assert_eq!(index(&txn, "book_number"), None);
    assert_eq!(index(&txn, KEY), Some((false, vec!["number".into()])));
    assert_eq!(index(&txn, "book__code__unique"), None);
    assert_eq!(
        index(&txn, "modhost_unique:m:book:code"),
        Some((true, vec!["code".into()]))
    );
    assert!(duplicate_refused(
        &mut txn,
        "m",
        "INSERT INTO book (number, code) VALUES (1, 1)"
    ));

    // The key the old name cost n is made at n's upgrade; m's upgrade keeps what it has.
    txn.apply_schema("n", &database(A))?;
    assert_eq!(
        index_on(&txn, "a", "modhost_key:n:a:b_c"),
        Some((true, vec!["y".into()]))
    );
    assert!(duplicate_refused(
        &mut txn,
        "n",
        "INSERT INTO a (y) VALUES (1)"
    ));
    let with_code = V1.replace(
        r#"<key name="number""#,
        r#"<field name="code" type="string" unique="true" notnull="false"/><key name="number""#,
    );
    txn.apply_schema("m", &database(&format!("{A_B}{with_code}")))?;
    let names: Vec<String> = txn
        .conn
        .prepare("SELECT name FROM pragma_index_list('book') WHERE origin = 'c' ORDER BY name")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(txn.err())?;
    assert_eq!(names, [KEY, "modhost_unique:m:book:code"]);
    txn.commit()?;
    Ok(())
}

#[test]
fn a_unique_field_added_by_an_upgrade_gets_an_index_of_the_modules_own() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let with_code = V1.replace(
        r#"<key name="number""#,
        r#"<field name="code" type="string" unique="true" notnull="false"/><key name="number""#,
    );
    txn.apply_schema("m", &database(&with_code))?;
    assert_eq!(
        index(&txn, "modhost_unique:m:book:code"),
        Some((true, vec!["code".into()]))
    );
    txn.apply_schema("m", &database(&with_code))?;
    assert_eq!(
        index(&txn, "modhost_unique:m:book:code"),
        Some((true, vec!["code".into()])),
        "kept by the next upgrade"
    );
    Ok(())
}
