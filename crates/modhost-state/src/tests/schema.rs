//! Modules' `<database>` schemas: created, altered on upgrade, and refused where they
//! cannot be.

use super::{V1, V2, database, later, open, text};
use crate::{Error, Result, SqlValue, Txn};

/// Runs `sql` as module `m`'s statement, its refusal as a schema error.
pub(super) fn run(txn: &mut Txn, sql: &str) -> Result<u64> {
    txn.module_execute("m", sql, &[], later())
        .map_err(|message| Error::Schema {
            module: "m".into(),
            message,
        })
}

#[test]
fn schema_is_created_then_altered_never_dropped() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.module_execute(
        "m",
        "INSERT INTO book (number) VALUES (?1)",
        &[text("100")],
        later(),
    )
    .map_err(|message| Error::Schema {
        module: "m".into(),
        message,
    })?;
    txn.apply_schema("m", &database(V2))?;
    let rows = txn.module_query("m", "SELECT id, number, label FROM book", &[], later());
    assert_eq!(
        rows.map(|r| r.rows),
        Ok(vec![vec![SqlValue::Integer(1), text("100"), text("")]])
    );
    txn.apply_schema("m", &database(V1))?;
    txn.commit()?;
    assert_eq!(
        state.tables("m")?,
        ["book", "book_tags"],
        "tables are never dropped on upgrade"
    );
    Ok(())
}

#[test]
fn schema_refuses_reserved_foreign_and_impossible_tables() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let err = txn
        .apply_schema("other", &database(V1))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("module `other`: database schema: table `book` belongs to module `m`")
    );
    // SQLite's names ignore case, and so does ownership.
    let err = txn
        .apply_schema("other", &database(&V1.replace("\"book\"", "\"BOOK\"")))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("module `other`: database schema: table `BOOK` belongs to module `m`")
    );
    // A module.xml cannot name one (the manifest refuses it); a schema made otherwise.
    let mut reserved = database(r#"<table name="kv2"><field name="a" type="string"/></table>"#);
    reserved.tables[0].name = "modhost_kv2".into();
    let err = txn
        .apply_schema("m", &reserved)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("`modhost_kv2` is reserved"), "{err}");
    // Nor may it take a table SQLite answers without its being made: modhost's quotas
    // read `dbstat`, and its bookkeeping the pragmas as `pragma_…` tables.
    for name in [
        "dbstat",
        "DBSTAT",
        "pragma_freelist_count",
        "pragma_index_list",
        "json_each",
    ] {
        let mut shadow = database(r#"<table name="t"><field name="a" type="string"/></table>"#);
        shadow.tables[0].name = name.into();
        let err = txn
            .apply_schema("m", &shadow)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(&format!(
                "module `m`: database schema: table name `{name}` is reserved"
            )),
            "{err}"
        );
    }
    // modhost's copies keep rowids in a column of its own name.
    let mut column = database(r#"<table name="pad"><field name="r" type="integer"/></table>"#);
    column.tables[0].fields[0].name = "MODHOST_rowid".into();
    let err = txn.apply_schema("m", &column).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("module `m`: database schema: column name `MODHOST_rowid` of table `pad` is reserved")
    );
    let not_null = database(
        r#"<table name="book"><field name="id" type="integer"/><field name="x" type="string"/></table>"#,
    );
    run(&mut txn, "INSERT INTO book (number) VALUES ('1')")?;
    let err = txn
        .apply_schema("m", &not_null)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains(
            "cannot add NOT NULL column `x` without a default to existing table `book`, \
             which has 1 row(s)"
        ),
        "{err}"
    );
    assert!(
        err.ends_with(
            "a field is NOT NULL unless it says notnull=\"false\": say so, or give it a default"
        ),
        "{err}"
    );
    Ok(())
}

/// The columns of `table` as `PRAGMA table_info` has them: name, type, NOT NULL, default.
type Columns = Vec<(String, String, bool, Option<String>)>;

fn columns(txn: &Txn, table: &str) -> rusqlite::Result<Columns> {
    txn.conn
        .prepare("SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info(?1)")?
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect()
}

#[test]
fn an_upgrade_keeps_unique_fields_unique_and_rebuilds_what_alter_cannot_change() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let rows = |txn: &mut Txn, sql: &str| {
        txn.module_query("m", sql, &[], later())
            .map(|r| r.rows)
            .map_err(|message| Error::Schema {
                module: "m".into(),
                message,
            })
    };
    run(
        &mut txn,
        "INSERT INTO book (number) VALUES ('1'), ('2'), ('3')",
    )?;
    // The highest id is given out and gone: a rebuild must not give it again.
    run(&mut txn, "DELETE FROM book WHERE id = 3")?;
    let with_code = |code: &str| {
        database(&format!(
            r#"<table name="book"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
            <field name="number" type="string" length="20"/>{code}</table>"#
        ))
    };
    txn.apply_schema(
        "m",
        &with_code(r#"<field name="code" type="string" unique="true" notnull="false"/>"#),
    )?;
    run(&mut txn, "UPDATE book SET code = 'a' WHERE id = 1")?;
    let duplicate = run(&mut txn, "UPDATE book SET code = 'a' WHERE id = 2");
    assert!(
        duplicate.is_err_and(|e| e
            .to_string()
            .contains("UNIQUE constraint failed: book.code")),
        "a unique column added by an upgrade is unique"
    );
    txn.apply_schema(
        "m",
        &with_code(r#"<field name="code" type="string" unique="true" notnull="false"/>"#),
    )?;
    let before = columns(&txn, "book").map_err(|e| e.to_string());

    // What the rows cannot take is refused, naming the column, and changes nothing.
    for (field, problem) in [
        (
            r#"<field name="same" type="string" unique="true" default="x"/>"#,
            "UNIQUE constraint failed: book.same",
        ),
        (
            r#"<field name="same" type="string" unique="true" default="x"/>"#,
            "rows already repeat those values: remove the repeats in the version before, or \
             leave the key (or `unique`) out",
        ),
        (
            r#"<field name="label" type="string"/>"#,
            "cannot add NOT NULL column `label` without a default to existing table `book`, \
             which has 2 row(s)",
        ),
        (
            r#"<field name="code" type="string"/>"#,
            "cannot make column `code` of existing table `book` NOT NULL without a default: \
             1 row(s) hold NULL in it; give it a default (default=\"…\"), which those rows \
             take, or leave it nullable (notnull=\"false\"): the schema changes before \
             upgrade() runs, so the module cannot fill them first",
        ),
    ] {
        let err = txn
            .apply_schema("m", &with_code(field))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(problem), "{field}: {err}");
        assert_eq!(
            columns(&txn, "book").map_err(|e| e.to_string()),
            before,
            "{field}"
        );
    }

    // A type, NOT NULL and a default change: the table is made again, its rows kept, a
    // NULL taking the new default.
    txn.apply_schema(
        "m",
        &with_code(r#"<field name="code" type="integer" notnull="true" default="7"/>"#),
    )?;
    let code = columns(&txn, "book")
        .ok()
        .and_then(|c| c.into_iter().find(|c| c.0 == "code"));
    assert_eq!(
        code,
        Some(("code".into(), "INTEGER".into(), true, Some("'7'".into())))
    );
    assert_eq!(
        rows(&mut txn, "SELECT id, number, code FROM book ORDER BY id")?,
        [
            vec![SqlValue::Integer(1), text("1"), text("a")],
            vec![SqlValue::Integer(2), text("2"), SqlValue::Integer(7)],
        ]
    );
    run(&mut txn, "INSERT INTO book (number) VALUES ('4')")?;
    assert_eq!(
        rows(&mut txn, "SELECT max(id) FROM book")?,
        [vec![SqlValue::Integer(4)]],
        "AUTOINCREMENT does not give an id twice"
    );

    // A new primary key, with a column the declaration no longer names: kept as it was.
    let new_key = database(
        r#"<table name="book"><field name="id" type="integer"/>
        <field name="number" type="string" length="20" primarykey="true"/></table>"#,
    );
    txn.apply_schema("m", &new_key)?;
    let duplicate = run(&mut txn, "INSERT INTO book (id, number) VALUES (9, '1')");
    assert!(
        duplicate.is_err_and(|e| e.to_string().contains("UNIQUE constraint failed")),
        "`number` is the primary key now"
    );
    assert_eq!(
        rows(&mut txn, "SELECT number, code FROM book ORDER BY number")?,
        [
            vec![text("1"), text("a")],
            vec![text("2"), SqlValue::Integer(7)],
            vec![text("4"), SqlValue::Integer(7)],
        ]
    );
    txn.commit()?;
    let checked: rusqlite::Result<String> =
        state
            .connect()?
            .query_row("PRAGMA integrity_check", [], |r| r.get(0));
    assert_eq!(checked.ok().as_deref(), Some("ok"));
    Ok(())
}

#[test]
fn schema_refuses_foreign_keys_outside_the_module_or_unfit_for_their_target() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema(
        "n",
        &database(r#"<table name="secrets"><field name="s" type="string" unique="true"/></table>"#),
    )?;
    for (target, columns, message) in [
        (
            "modhost_modules",
            "rawname",
            "table `t`: foreign key `k` refers to `modhost_modules`, which is not a table the module declares",
        ),
        (
            "secrets",
            "s",
            "table `t`: foreign key `k` refers to `secrets`, which is not a table the module declares",
        ),
        (
            "parent",
            "label",
            "table `t`: foreign key mismatch - \"t\" referencing \"parent\"",
        ),
    ] {
        let schema = database(&format!(
            r#"<table name="parent"><field name="id" type="integer" primarykey="true"/><field name="label" type="string"/></table>
            <table name="t"><field name="a" type="string"/>
            <key name="k" type="foreign" foreigntable="{target}" foreigncolumns="{columns}"><column name="a"/></key></table>"#
        ));
        let err = txn.apply_schema("m", &schema).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("module `m`: database schema: {message}")));
    }
    Ok(())
}

#[test]
fn a_column_an_upgrade_no_longer_declares_is_kept_but_never_refuses_its_inserts() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    // `legacy` is NOT NULL without a default, as a FreePBX field is unless it says not.
    let v1 = database(
        r#"<table name="nn"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
        <field name="legacy" type="string"/><field name="v" type="string" notnull="false"/></table>"#,
    );
    txn.apply_schema("m", &v1)?;
    run(&mut txn, "INSERT INTO nn (legacy, v) VALUES ('old', 'one')")?;
    // 1.1 drops it: its rows keep their values, and its inserts need not name it.
    let v2 = database(
        r#"<table name="nn"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
        <field name="v" type="string" notnull="false"/></table>"#,
    );
    txn.apply_schema("m", &v2)?;
    run(&mut txn, "INSERT INTO nn (v) VALUES ('two')")?;
    let kept = columns(&txn, "nn").map_err(|e| e.to_string());
    assert!(
        kept.as_ref().is_ok_and(|c| c
            .iter()
            .any(|(name, _, not_null, _)| name == "legacy" && !not_null)),
        "{kept:?}"
    );
    let rows = txn
        .module_query("m", "SELECT legacy, v FROM nn ORDER BY id", &[], later())
        .map(|r| r.rows)
        .unwrap_or_default();
    assert_eq!(
        rows,
        [
            vec![text("old"), text("one")],
            vec![SqlValue::Null, text("two")]
        ]
    );
    Ok(())
}

#[test]
fn a_field_an_upgrade_no_longer_declares_unique_is_held_to_it_no_more() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    let table = |name: &str, unique: bool| {
        format!(
            r#"<table name="{name}"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
            <field name="u" type="string" notnull="false"{}/></table>"#,
            if unique { r#" unique="true""# } else { "" }
        )
    };
    let schema = |made: bool, grown: bool| {
        database(&format!("{}{}", table("made", made), table("grown", grown)))
    };
    // `made` unique with the table (its column's own constraint), `grown` made unique by
    // an upgrade (an index of modhost's).
    txn.apply_schema("m", &schema(true, false))?;
    txn.apply_schema("m", &schema(true, true))?;
    for name in ["made", "grown"] {
        run(&mut txn, &format!("INSERT INTO {name} (u) VALUES ('x')"))?;
        let twice = run(&mut txn, &format!("INSERT INTO {name} (u) VALUES ('x')"));
        assert!(twice.is_err(), "{name}: unique as declared");
    }
    txn.apply_schema("m", &schema(false, false))?;
    for name in ["made", "grown"] {
        run(&mut txn, &format!("INSERT INTO {name} (u) VALUES ('x')"))?;
        let count = txn
            .module_query("m", &format!("SELECT count(*) FROM {name}"), &[], later())
            .map(|r| r.rows)
            .unwrap_or_default();
        assert_eq!(count, [vec![SqlValue::Integer(2)]], "{name}: rows kept");
    }
    Ok(())
}

#[test]
fn a_table_too_large_to_show_is_said_as_the_tables_not_the_schemas() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema(
        "m",
        &database(r#"<table name="many"><field name="n" type="integer"/></table>"#),
    )?;
    run(
        &mut txn,
        "INSERT INTO many (n) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
         WHERE x < 10001) SELECT x FROM c",
    )?;
    txn.commit()?;
    let shown = state.table_rows("m", "many").map_err(|e| e.to_string());
    assert!(
        shown
            .as_ref()
            .is_err_and(|e| e.starts_with("module `m`: table `many`: the result exceeds")),
        "{shown:?}"
    );
    Ok(())
}

#[test]
fn a_composite_keys_autoincrement_field_is_not_null_and_the_key_holds() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    // SQLite fills only a lone INTEGER primary key; in a composite key the field declared
    // autoincrement is an ordinary key column, NOT NULL as the field says.
    let composite = database(
        r#"<table name="pair"><field name="id" type="integer" primarykey="true"/>
        <field name="b" type="integer" primarykey="true" autoincrement="true"/></table>"#,
    );
    txn.apply_schema("m", &composite)?;
    let declared = columns(&txn, "pair").map_err(|e| e.to_string());
    assert!(
        declared.as_ref().is_ok_and(|c| c
            .iter()
            .all(|(name, _, not_null, _)| (name == "id" || name == "b") && *not_null)),
        "{declared:?}"
    );
    // Without `b`, a row is refused rather than kept twice with a NULL in its key.
    let refused = run(&mut txn, "INSERT INTO pair (id) VALUES (1)").map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("NOT NULL")),
        "{refused:?}"
    );
    run(&mut txn, "INSERT INTO pair (id, b) VALUES (1, 1)")?;
    assert!(run(&mut txn, "INSERT INTO pair (id, b) VALUES (1, 1)").is_err());
    // The lone INTEGER autoincrement key is still the rowid, which SQLite fills.
    let lone = database(
        r#"<table name="one"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
        <field name="v" type="string" notnull="false"/></table>"#,
    );
    txn.apply_schema("m", &lone)?;
    assert_eq!(run(&mut txn, "INSERT INTO one (v) VALUES ('x')")?, 1);
    Ok(())
}
