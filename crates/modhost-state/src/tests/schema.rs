//! Modules' `<database>` schemas: created, altered on upgrade, and refused where they
//! cannot be.

use super::{V1, V2, database, later, open, text};
use crate::{Error, Result, SqlValue, Txn};

/// Runs `sql` as module `m`'s statement, its refusal as a schema error.
fn run(txn: &mut Txn, sql: &str) -> Result<u64> {
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
            r#"<field name="label" type="string"/>"#,
            "cannot add NOT NULL column `label` without a default to existing table `book`, \
             which has 2 row(s)",
        ),
        (
            r#"<field name="code" type="string"/>"#,
            "cannot make column `code` of existing table `book` NOT NULL without a default: \
             1 row(s) hold NULL in it",
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

#[test]
fn a_foreign_key_acts_as_its_on_delete_says() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema(
        "m",
        &database(
            r#"<table name="calls"><field name="id" type="integer" primaryKey="true"/></table>
            <table name="tags"><field name="call" type="integer"/><field name="tag" type="string"/>
              <key name="tag_call" type="foreign" foreignTable="calls" foreignCols="id"
                   onDelete="cascade"><column name="call"/></key></table>"#,
        ),
    )?;
    run(&mut txn, "INSERT INTO calls (id) VALUES (1), (2)")?;
    run(
        &mut txn,
        "INSERT INTO tags (call, tag) VALUES (1, 'a'), (2, 'b')",
    )?;
    run(&mut txn, "DELETE FROM calls WHERE id = 1")?;
    let rows = txn.module_query("m", "SELECT call, tag FROM tags", &[], later());
    assert_eq!(
        rows.map(|r| r.rows),
        Ok(vec![vec![SqlValue::Integer(2), text("b")]])
    );
    // Without a row to refer to, a tag is refused, as a foreign key refuses it.
    assert!(run(&mut txn, "INSERT INTO tags (call, tag) VALUES (9, 'c')").is_err());
    Ok(())
}

#[test]
fn foreign_keys_an_upgrade_changes_are_applied_and_every_row_kept() -> Result<()> {
    let (_dir, state) = open();
    let tables = |kind: &str, on_delete: &str, extra: &str| {
        database(&format!(
            r#"<table name="calls"><field name="id" type="integer" primaryKey="true"/>
              <field name="kind" type="string" notnull="false"{kind}/></table>
            <table name="tags"><field name="call" type="integer"/>
              <field name="other" type="integer" notnull="false"/>
              <key name="tag_call" type="foreign" foreignTable="calls" foreignCols="id"
                   onDelete="{on_delete}"><column name="call"/></key>{extra}</table>"#
        ))
    };
    let tags = |txn: &mut Txn| {
        txn.module_query(
            "m",
            "SELECT call, other FROM tags ORDER BY call",
            &[],
            later(),
        )
        .map(|r| r.rows)
    };
    let kept = vec![
        vec![SqlValue::Integer(1), SqlValue::Null],
        vec![SqlValue::Integer(2), SqlValue::Integer(3)],
    ];
    let mut txn = state.begin()?;
    txn.apply_schema("m", &tables("", "cascade", ""))?;
    run(&mut txn, "INSERT INTO calls (id) VALUES (1), (2), (3)")?;
    run(
        &mut txn,
        "INSERT INTO tags (call, other) VALUES (1, NULL), (2, 3)",
    )?;

    // The parent made again (its column's default changes): the cascade of dropping it
    // takes nothing from the table that refers to it.
    txn.apply_schema("m", &tables(r#" default="x""#, "cascade", ""))?;
    assert_eq!(tags(&mut txn), Ok(kept.clone()));
    // A changed action is applied.
    txn.apply_schema("m", &tables(r#" default="x""#, "restrict", ""))?;
    assert_eq!(tags(&mut txn), Ok(kept.clone()));
    let restricted = run(&mut txn, "DELETE FROM calls WHERE id = 1");
    assert!(
        restricted.is_err_and(|e| e.to_string().contains("FOREIGN KEY constraint failed")),
        "ON DELETE RESTRICT holds"
    );
    // So is a key added to an existing table.
    let added = r#"<key name="tag_other" type="foreign" foreignTable="calls" foreignCols="id"><column name="other"/></key>"#;
    txn.apply_schema("m", &tables(r#" default="x""#, "restrict", added))?;
    assert_eq!(tags(&mut txn), Ok(kept.clone()));
    assert!(run(&mut txn, "INSERT INTO tags (call, other) VALUES (3, 99)").is_err());
    txn.commit()?;

    // A key the rows already break is refused, and the transaction keeps nothing of it.
    let mut txn = state.begin()?;
    run(&mut txn, "DELETE FROM tags")?;
    txn.commit()?;
    let mut txn = state.begin()?;
    txn.apply_schema("m", &tables(r#" default="x""#, "cascade", ""))?;
    run(&mut txn, "INSERT INTO tags (call, other) VALUES (1, 42)")?;
    let err = txn
        .apply_schema("m", &tables(r#" default="x""#, "cascade", added))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("module `m`: database schema: table `tags` has rows its foreign keys refuse")
    );
    drop(txn);
    let mut txn = state.begin()?;
    assert_eq!(tags(&mut txn), Ok(vec![]));
    assert!(
        run(&mut txn, "INSERT INTO tags (call, other) VALUES (1, 42)").is_err(),
        "the committed schema still has `tag_other`"
    );
    Ok(())
}

#[test]
fn tables_rebuilt_together_keep_their_rows_whatever_order_they_are_declared_in() -> Result<()> {
    let (_dir, state) = open();
    // The child is declared first, its key RESTRICT: both are made again before either
    // is refilled, and a row refers to a table that exists.
    let tables = |default: &str| {
        database(&format!(
            r#"<table name="tags"><field name="call" type="integer"/>
              <field name="label" type="string" notnull="false"{default}/>
              <key name="tag_call" type="foreign" foreignTable="calls" foreignCols="id"
                   onDelete="restrict"><column name="call"/></key></table>
            <table name="calls"><field name="id" type="integer" primaryKey="true"/>
              <field name="kind" type="string" notnull="false"{default}/></table>"#
        ))
    };
    let mut txn = state.begin()?;
    txn.apply_schema("m", &tables(""))?;
    for sql in [
        "INSERT INTO calls (id) VALUES (1), (2)",
        "INSERT INTO tags (call) VALUES (1), (2)",
    ] {
        run(&mut txn, sql)?;
    }
    txn.apply_schema("m", &tables(r#" default="x""#))?;
    let rows = txn
        .module_query(
            "m",
            "SELECT count(*) FROM tags JOIN calls ON id = call",
            &[],
            later(),
        )
        .map(|r| r.rows);
    assert_eq!(rows, Ok(vec![vec![SqlValue::Integer(2)]]));
    txn.commit()?;
    Ok(())
}

#[test]
fn tables_that_refer_to_each_other_are_rebuilt_together() -> Result<()> {
    let (_dir, state) = open();
    let tables = |default: &str| {
        database(&format!(
            r#"<table name="person"><field name="id" type="integer" primaryKey="true"/>
              <field name="team" type="integer" notnull="false"{default}/>
              <key name="person_team" type="foreign" foreignTable="team" foreignCols="id"
                   onDelete="cascade"><column name="team"/></key></table>
            <table name="team"><field name="id" type="integer" primaryKey="true"/>
              <field name="lead" type="integer" notnull="false"/>
              <key name="team_lead" type="foreign" foreignTable="person" foreignCols="id"
                   onDelete="cascade"><column name="lead"/></key></table>"#
        ))
    };
    let mut txn = state.begin()?;
    txn.apply_schema("m", &tables(""))?;
    run(&mut txn, "INSERT INTO person (id) VALUES (1), (2)")?;
    run(&mut txn, "INSERT INTO team (id, lead) VALUES (10, 1)")?;
    run(&mut txn, "UPDATE person SET team = 10")?;
    // Only `person` changes; `team` refers to it, and it to `team`.
    txn.apply_schema("m", &tables(r#" default="0""#))?;
    let rows = txn
        .module_query(
            "m",
            "SELECT person.id, team.id, lead FROM person JOIN team ON team.id = team ORDER BY 1",
            &[],
            later(),
        )
        .map(|r| r.rows);
    assert_eq!(
        rows,
        Ok(vec![
            vec![
                SqlValue::Integer(1),
                SqlValue::Integer(10),
                SqlValue::Integer(1)
            ],
            vec![
                SqlValue::Integer(2),
                SqlValue::Integer(10),
                SqlValue::Integer(1)
            ],
        ])
    );
    txn.commit()?;
    Ok(())
}

#[test]
fn a_rebuilt_table_may_refer_to_a_table_and_a_key_the_same_upgrade_adds() -> Result<()> {
    let (_dir, state) = open();
    let v1 = database(
        r#"<table name="Calls"><field name="id" type="integer" primaryKey="true" autoincrement="true"/>
           <field name="note" type="string" notnull="false"/></table>
         <table name="lines"><field name="code" type="string"/></table>"#,
    );
    // `calls` (now spelt so) gets a key into a new table, and one into `lines` by a
    // column that this upgrade makes unique.
    let v2 = database(
        r#"<table name="calls"><field name="id" type="integer" primaryKey="true" autoincrement="true"/>
           <field name="note" type="string" notnull="false"/>
           <field name="carrier" type="integer" notnull="false"/>
           <field name="line" type="string" notnull="false"/>
           <key name="by" type="foreign" foreignTable="carriers" foreignCols="id"><column name="carrier"/></key>
           <key name="on" type="foreign" foreignTable="lines" foreignCols="code"><column name="line"/></key></table>
         <table name="carriers"><field name="id" type="integer" primaryKey="true"/></table>
         <table name="lines"><field name="code" type="string"/>
           <key name="code" type="unique"><column name="code"/></key></table>"#,
    );
    let mut txn = state.begin()?;
    txn.apply_schema("m", &v1)?;
    run(
        &mut txn,
        "INSERT INTO calls (note) VALUES ('a'), ('b'), ('c')",
    )?;
    run(&mut txn, "DELETE FROM calls WHERE id = 3")?;
    txn.apply_schema("m", &v2)?;
    run(&mut txn, "INSERT INTO calls (note) VALUES ('d')")?;
    let rows = txn
        .module_query("m", "SELECT id, note FROM calls ORDER BY id", &[], later())
        .map(|r| r.rows);
    assert_eq!(
        rows,
        Ok(vec![
            vec![SqlValue::Integer(1), text("a")],
            vec![SqlValue::Integer(2), text("b")],
            vec![SqlValue::Integer(4), text("d")],
        ]),
        "rows kept, and an id given once is not given again"
    );
    assert!(
        run(&mut txn, "INSERT INTO calls (carrier) VALUES (9)").is_err(),
        "the new key holds"
    );
    txn.commit()?;
    // The table is recorded once, as now spelt: a backup copies it once.
    assert_eq!(state.tables("m")?, ["calls", "carriers", "lines"]);
    let mut txn = state.begin()?;
    txn.put_module(&super::record("m", "2.0"))?;
    txn.keep_backup(&super::record("m", "2.0"))?;
    txn.commit()?;
    Ok(())
}

#[test]
fn a_rebuild_keeps_the_rowids_a_module_may_have_kept() -> Result<()> {
    let (_dir, state) = open();
    let keyed = |default: &str| {
        database(&format!(
            r#"<table name="pairs"><field name="a" type="string" primaryKey="true"/>
               <field name="b" type="string" primaryKey="true"/>
               <field name="note" type="string" notnull="false"{default}/></table>"#
        ))
    };
    let mut txn = state.begin()?;
    txn.apply_schema("m", &keyed(""))?;
    run(
        &mut txn,
        "INSERT INTO pairs (a, b) VALUES ('x', '1'), ('y', '2'), ('z', '3')",
    )?;
    run(&mut txn, "DELETE FROM pairs WHERE a = 'x'")?;
    let rowids = |txn: &mut Txn| {
        txn.module_query("m", "SELECT rowid, a FROM pairs ORDER BY a", &[], later())
            .map(|r| r.rows)
    };
    let before = rowids(&mut txn);
    assert_eq!(
        before,
        Ok(vec![
            vec![SqlValue::Integer(2), text("y")],
            vec![SqlValue::Integer(3), text("z")],
        ])
    );
    txn.apply_schema("m", &keyed(r#" default="n""#))?;
    assert_eq!(rowids(&mut txn), before);
    Ok(())
}
