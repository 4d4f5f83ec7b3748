//! Foreign keys, and tables an upgrade rebuilds: rows, rowids and references kept.

use super::schema::run;
use super::{database, later, open, text};
use crate::{Result, SqlValue, Txn};

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
    let err = err.unwrap_or_default();
    assert!(
        err.starts_with(
            "module `m`: database schema: table `tags` has rows its foreign keys refuse (row "
        ) && err.ends_with(
            "); remove or correct those rows in the version before, or leave the key out"
        ),
        "{err}"
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
