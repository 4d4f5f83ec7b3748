//! Backups: keeping a module's previous version, restoring it, and the directories it
//! keeps referenced.

use super::{V1, V2, database, later, open, record, text};
use crate::{Result, SqlValue};

#[test]
fn tables_linked_by_foreign_keys_are_restored_and_removed_whatever_their_names() -> Result<()> {
    let (_dir, state) = open();
    let linked = database(
        r#"<table name="author"><field name="id" type="integer" primarykey="true"/></table>
        <table name="zseries"><field name="id" type="integer" primarykey="true"/></table>
        <table name="book"><field name="author" type="integer"/><field name="series" type="integer"/>
        <key name="by" type="foreign" foreigntable="author" foreigncolumns="id"><column name="author"/></key>
        <key name="in" type="foreign" foreigntable="zseries" foreigncolumns="id"><column name="series"/></key></table>"#,
    );
    let mut txn = state.begin()?;
    let v1 = record("m", "1.0");
    txn.put_module(&v1)?;
    txn.apply_schema("m", &linked)?;
    for sql in [
        "INSERT INTO author (id) VALUES (1)",
        "INSERT INTO zseries (id) VALUES (2)",
        "INSERT INTO book (author, series) VALUES (1, 2)",
    ] {
        assert_eq!(txn.module_execute("m", sql, &[], later()), Ok(1), "{sql}");
    }
    let orphan = txn.module_execute("m", "INSERT INTO book (author) VALUES (9)", &[], later());
    assert!(
        orphan.is_err(),
        "foreign keys hold for the module's own statements"
    );
    txn.keep_backup(&v1)?;
    txn.put_module(&record("m", "2.0"))?;
    txn.commit()?;

    let mut txn = state.begin()?;
    assert_eq!(txn.restore_backup("m", &linked)?, Some(v1));
    txn.commit()?;
    let rows = state.table_rows("m", "book")?.rows;
    assert_eq!(rows, vec![vec![SqlValue::Integer(1), SqlValue::Integer(2)]]);

    let mut txn = state.begin()?;
    txn.remove_module("m")?;
    txn.commit()?;
    assert!(state.tables("m")?.is_empty());
    Ok(())
}

#[test]
fn backup_restores_record_kv_and_table_contents() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    let v1 = record("m", "1.0");
    txn.put_module(&v1)?;
    txn.apply_schema("m", &database(V1))?;
    txn.kv_set("m", "k", "old")?;
    let insert = txn.module_execute(
        "m",
        "INSERT INTO book (number) VALUES ('100')",
        &[],
        later(),
    );
    assert_eq!(insert, Ok(1));

    txn.keep_backup(&v1)?;
    txn.apply_schema("m", &database(V2))?;
    let migrate = txn.module_execute(
        "m",
        "UPDATE book SET number = '+1' || number, label = 'new'",
        &[],
        later(),
    );
    assert_eq!(migrate, Ok(1));
    txn.kv_set("m", "k", "new")?;
    txn.put_module(&record("m", "2.0"))?;
    txn.commit()?;
    assert_eq!(
        state.backup("m")?.map(|b| b.record.version),
        Some("1.0".into())
    );

    let mut txn = state.begin()?;
    let restored = txn.restore_backup("m", &database(V1))?;
    assert_eq!(restored, Some(v1.clone()));
    txn.commit()?;
    assert_eq!(state.module("m")?, Some(v1));
    assert_eq!(state.kv_entries("m")?, vec![("k".into(), "old".into())]);
    assert_eq!(state.tables("m")?, ["book"]);
    let rows = state.table_rows("m", "book")?;
    assert_eq!(rows.columns, ["id", "number"]);
    assert_eq!(rows.rows, vec![vec![SqlValue::Integer(1), text("100")]]);
    assert_eq!(state.backup("m")?, None);
    Ok(())
}

#[test]
fn a_rollback_hands_out_no_id_autoincrement_handed_out_before() -> Result<()> {
    let (_dir, state) = open();
    let v1 = record("m", "1.0");
    let mut txn = state.begin()?;
    txn.put_module(&v1)?;
    txn.apply_schema("m", &database(V1))?;
    let run = |txn: &mut crate::Txn, sql: &str| txn.module_execute("m", sql, &[], later());
    // Ids 1 to 5 handed out, 4 and 5 deleted: the next is 6, never 4 again.
    for number in ["1", "2", "3", "4", "5"] {
        let sql = format!("INSERT INTO book (number) VALUES ('{number}')");
        assert_eq!(run(&mut txn, &sql), Ok(1));
    }
    assert_eq!(run(&mut txn, "DELETE FROM book WHERE id >= 4"), Ok(2));
    txn.keep_backup(&v1)?;
    txn.apply_schema("m", &database(V2))?;
    txn.put_module(&record("m", "2.0"))?;
    assert_eq!(txn.restore_backup("m", &database(V1))?, Some(v1));
    assert_eq!(
        run(&mut txn, "INSERT INTO book (number) VALUES ('6')"),
        Ok(1)
    );
    txn.commit()?;
    let rows = state.table_rows("m", "book")?;
    let ids: Vec<&SqlValue> = rows.rows.iter().map(|row| &row[0]).collect();
    assert_eq!(
        ids,
        [
            &SqlValue::Integer(1),
            &SqlValue::Integer(2),
            &SqlValue::Integer(3),
            &SqlValue::Integer(6)
        ]
    );
    Ok(())
}

#[test]
fn referenced_dirs_cover_current_and_backup_versions() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_module(&record("m", "1.0"))?;
    txn.keep_backup(&record("m", "0.9"))?;
    txn.commit()?;
    let dirs: Vec<_> = state.referenced_dirs()?.into_iter().collect();
    assert_eq!(
        dirs,
        [
            ("m".to_owned(), "data", "1".to_owned()),
            ("m".to_owned(), "modules", "0.9-1".to_owned()),
            ("m".to_owned(), "modules", "1.0-1".to_owned()),
        ]
    );
    Ok(())
}

#[test]
fn a_key_value_store_of_any_content_is_backed_up_without_holding_it_in_memory() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    let v1 = record("m", "1.0");
    txn.put_module(&v1)?;
    // NUL bytes: six bytes each as JSON, so that a store of 48 MiB made a copy past
    // SQLite's heap when the backup held the store as one JSON value.
    let value = "\0".repeat(1 << 20);
    for i in 0..48 {
        txn.kv_set("m", &format!("k{i:02}"), &value)?;
    }
    txn.commit()?;
    let mut txn = state.begin()?;
    txn.keep_backup(&v1)?;
    txn.kv_set("m", "k00", "changed")?;
    txn.put_module(&record("m", "2.0"))?;
    txn.commit()?;

    let mut txn = state.begin()?;
    assert_eq!(txn.restore_backup("m", &database(V1))?, Some(v1));
    txn.commit()?;
    let entries = state.kv_entries("m")?;
    assert_eq!(entries.len(), 48);
    assert!(entries.iter().all(|(_, v)| *v == value));
    assert_eq!(state.backup("m")?, None);
    Ok(())
}

#[test]
fn a_rollback_brings_back_the_columns_and_tables_an_upgrade_kept() -> Result<()> {
    let (_dir, state) = open();
    let v1 = database(
        r#"<table name="book"><field name="a" type="string"/><field name="k" type="string" notnull="false"/></table>
           <table name="old"><field name="x" type="string"/></table>"#,
    );
    // v2 declares neither `k` nor `old`: both are kept, as upgrades keep them.
    let v2 = database(r#"<table name="book"><field name="a" type="string"/></table>"#);
    let mut txn = state.begin()?;
    txn.put_module(&record("m", "1.0"))?;
    txn.apply_schema("m", &v1)?;
    for sql in [
        "INSERT INTO book (a, k) VALUES ('1', 'kept')",
        "INSERT INTO old (x) VALUES ('older')",
    ] {
        assert_eq!(txn.module_execute("m", sql, &[], later()), Ok(1), "{sql}");
    }
    txn.apply_schema("m", &v2)?;
    let v2_record = record("m", "2.0");
    txn.put_module(&v2_record)?;
    txn.keep_backup(&v2_record)?;
    txn.apply_schema("m", &v2)?;
    txn.put_module(&record("m", "3.0"))?;
    txn.commit()?;

    let mut txn = state.begin()?;
    assert_eq!(txn.restore_backup("m", &v2)?, Some(v2_record));
    txn.commit()?;
    let book = state.table_rows("m", "book")?.rows;
    assert_eq!(book, vec![vec![text("1"), text("kept")]]);
    let old = state.table_rows("m", "old")?.rows;
    assert_eq!(old, vec![vec![text("older")]]);
    Ok(())
}

#[test]
fn a_table_an_upgrade_kept_comes_back_from_a_rollback_with_its_keys() -> Result<()> {
    let (_dir, state) = open();
    let v1 = database(
        r#"<table name="entries"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
           <field name="number" type="string"/><key name="number" type="unique"><column name="number"/></key></table>"#,
    );
    // 1.1 and 1.2 declare another table only: `entries` is kept, as it was.
    let v11 =
        database(r#"<table name="extra"><field name="v" type="string" notnull="false"/></table>"#);
    let v12 = database(
        r#"<table name="extra"><field name="v" type="string" notnull="false"/>
           <field name="w" type="integer" notnull="false"/></table>"#,
    );
    let mut txn = state.begin()?;
    txn.put_module(&record("m", "1.0"))?;
    txn.apply_schema("m", &v1)?;
    let run = |txn: &mut crate::Txn, sql: &str| txn.module_execute("m", sql, &[], later());
    assert_eq!(
        run(&mut txn, "INSERT INTO entries (number) VALUES ('100')"),
        Ok(1)
    );
    txn.apply_schema("m", &v11)?;
    let v11_record = record("m", "1.1");
    txn.put_module(&v11_record)?;
    let before = definition(&txn)?;
    txn.keep_backup(&v11_record)?;
    txn.apply_schema("m", &v12)?;
    txn.put_module(&record("m", "1.2"))?;
    assert_eq!(txn.restore_backup("m", &v11)?, Some(v11_record));
    // Made again as it was: its key, its counter, its unique number.
    assert_eq!(definition(&txn)?, before);
    assert_eq!(
        run(&mut txn, "INSERT INTO entries (number) VALUES ('101')"),
        Ok(1)
    );
    assert!(run(&mut txn, "INSERT INTO entries (number) VALUES ('100')").is_err());
    txn.commit()?;
    let rows = state.table_rows("m", "entries")?.rows;
    assert_eq!(
        rows,
        vec![
            vec![SqlValue::Integer(1), text("100")],
            vec![SqlValue::Integer(2), text("101")]
        ]
    );
    Ok(())
}

/// How `entries` is made: its table's and its indexes' statements.
fn definition(txn: &crate::Txn) -> Result<Vec<String>> {
    crate::schema::definition_of(&txn.conn, "entries").map_err(|e| crate::Error::Corrupt {
        path: txn.path.to_path_buf(),
        message: e.to_string(),
    })
}

#[test]
fn a_rollback_keeps_the_rowids_of_a_table_without_an_integer_key() -> Result<()> {
    let (_dir, state) = open();
    let pairs = database(
        r#"<table name="pairs"><field name="a" type="string" primaryKey="true"/>
           <field name="b" type="string" primaryKey="true"/></table>"#,
    );
    let rowids = |state: &crate::State| -> Result<Vec<Vec<SqlValue>>> {
        let mut txn = state.begin()?;
        let rows = txn.module_query("m", "SELECT rowid, a FROM pairs ORDER BY a", &[], later());
        Ok(rows.map(|r| r.rows).unwrap_or_default())
    };
    let v1 = record("m", "1.0");
    let mut txn = state.begin()?;
    txn.put_module(&v1)?;
    txn.apply_schema("m", &pairs)?;
    for sql in [
        "INSERT INTO pairs (a, b) VALUES ('x', '1'), ('y', '2'), ('z', '3')",
        "DELETE FROM pairs WHERE a = 'x'",
    ] {
        assert!(txn.module_execute("m", sql, &[], later()).is_ok(), "{sql}");
    }
    txn.keep_backup(&v1)?;
    txn.put_module(&record("m", "2.0"))?;
    let vacuumed = "DELETE FROM pairs; INSERT INTO pairs (a, b) VALUES ('y', '2'), ('z', '3')";
    for sql in vacuumed.split("; ") {
        assert!(txn.module_execute("m", sql, &[], later()).is_ok(), "{sql}");
    }
    txn.commit()?;
    let kept = vec![
        vec![SqlValue::Integer(2), text("y")],
        vec![SqlValue::Integer(3), text("z")],
    ];
    assert_ne!(rowids(&state)?, kept, "the upgrade renumbered the rows");

    let mut txn = state.begin()?;
    assert_eq!(txn.restore_backup("m", &pairs)?, Some(v1.clone()));
    txn.commit()?;
    assert_eq!(rowids(&state)?, kept);

    // A backup kept before rowids were: its rows come back, numbered afresh.
    let mut txn = state.begin()?;
    txn.keep_backup(&v1)?;
    let copy = state_copy(&txn)?;
    let drop = format!("ALTER TABLE \"{copy}\" DROP COLUMN modhost_rowid");
    txn.conn.execute_batch(&drop).map_err(txn.err())?;
    txn.commit()?;
    let mut txn = state.begin()?;
    assert_eq!(txn.restore_backup("m", &pairs)?, Some(v1));
    txn.commit()?;
    assert_eq!(
        state.table_rows("m", "pairs")?.rows,
        vec![vec![text("y"), text("2")], vec![text("z"), text("3")]]
    );
    Ok(())
}

/// The name of the copy `m`'s backup keeps of its table `pairs`.
fn state_copy(txn: &crate::Txn) -> Result<String> {
    let backup = txn.backup("m")?;
    Ok(backup
        .and_then(|b| b.tables.get("pairs").cloned())
        .unwrap_or_default())
}
