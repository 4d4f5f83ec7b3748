//! What SQLite's authorizer does not see: the columns a `NATURAL JOIN` or `JOIN … USING`
//! compares, `VACUUM`; and how a wrong number of parameters is told.

use super::{V1, database, later, open, text};
use crate::{Result, SqlValue, Txn};

/// Every way of naming `{}` (a table) that a statement of module `m` might use.
const FORMS: &[&str] = &[
    "SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {}",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q NATURAL LEFT JOIN {}",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q NATURAL INNER JOIN {}",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q NATURAL CROSS JOIN {}",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q NATURAL RIGHT JOIN {}",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q NATURAL FULL JOIN {}",
    "SELECT 1 FROM {} NATURAL JOIN (SELECT 'topsecret' AS s)",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q JOIN {} USING (s)",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q LEFT JOIN {} USING (s)",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q RIGHT JOIN {} USING (s)",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) AS q FULL OUTER JOIN {} USING (s)",
    "SELECT 1 FROM book NATURAL JOIN {}",
    "SELECT 1 FROM book JOIN {} USING (id)",
    "SELECT 1 FROM book, {}",
    "SELECT 1 FROM book CROSS JOIN {}",
    "SELECT 1 FROM book JOIN {} ON 1",
    "SELECT 1 FROM book LEFT JOIN {} AS t ON t.rowid = book.id",
    "SELECT EXISTS (SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {})",
    "SELECT (SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {})",
    "SELECT 1 WHERE 'topsecret' IN (SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {})",
    "WITH w AS (SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {}) SELECT * FROM w",
    "WITH w AS MATERIALIZED (SELECT 1 FROM (SELECT 'x' AS s) NATURAL JOIN {}) SELECT * FROM w",
    "SELECT 1 FROM (SELECT * FROM (SELECT 'topsecret' AS s) NATURAL JOIN {})",
    "SELECT 1 UNION SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {}",
    "SELECT count(*) OVER (PARTITION BY (SELECT 1 FROM (SELECT 'x' AS s) NATURAL JOIN {}))",
    "INSERT INTO book (number) SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN {}",
    "UPDATE book SET number = (SELECT 1 FROM (SELECT 'x' AS s) NATURAL JOIN {})",
    "DELETE FROM book WHERE EXISTS (SELECT 1 FROM (SELECT 'x' AS s) NATURAL JOIN {})",
    "UPDATE book SET number = 1 FROM (SELECT 'x' AS s) AS q NATURAL JOIN {}",
    "INSERT INTO book (number) VALUES ('1') RETURNING (SELECT 1 FROM (SELECT 'x' AS s) NATURAL JOIN {})",
    "SELECT 1 FROM (SELECT 'victim' AS module, 'k' AS key) NATURAL JOIN {}",
    "SELECT 1 FROM (SELECT 'victim' AS rawname) NATURAL JOIN {}",
    "SELECT 1 FROM (SELECT 'topsecret' AS s) NATURAL JOIN main.{}",
];

/// What module `m` is told for each of [`FORMS`], `{}` standing for `table`.
fn told(txn: &mut Txn, table: &str) -> Vec<Result<Vec<Vec<SqlValue>>, String>> {
    FORMS
        .iter()
        .map(|sql| {
            txn.module_query("m", &sql.replace("{}", table), &[], later())
                .map(|rows| rows.rows)
        })
        .collect()
}

#[test]
fn no_join_or_subquery_reaches_another_modules_table_or_the_hosts() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.apply_schema(
        "victim",
        &database(r#"<table name="secrets"><field name="s" type="string"/></table>"#),
    )?;
    txn.module_execute(
        "victim",
        "INSERT INTO secrets (s) VALUES ('topsecret'), ('x')",
        &[],
        later(),
    )
    .map_err(|e| panic!("{e}"))
    .ok();
    txn.kv_set("victim", "k", "v")?;
    for (table, missing) in [
        ("secrets", "nothere"),
        ("modhost_kv", "modhost_xx"),
        ("modhost_modules", "modhost_yy"),
    ] {
        let theirs = told(&mut txn, table);
        let nobodys = told(&mut txn, missing);
        for (sql, (theirs, nobodys)) in FORMS.iter().zip(theirs.iter().zip(&nobodys)) {
            let nobodys = nobodys.clone().map_err(|e| e.replace(missing, table));
            assert_eq!(theirs, &nobodys, "`{sql}` with `{table}`");
            assert!(theirs.is_err(), "`{sql}` with `{table}` must be refused");
        }
    }
    // `sqlite_sequence` exists in the database `m` alone would have (its own table is
    // AUTOINCREMENT): refused as not its own rather than missing, but refused.
    for (sql, told) in FORMS.iter().zip(told(&mut txn, "sqlite_sequence")) {
        assert!(
            told.is_err(),
            "`{sql}` with `sqlite_sequence` must be refused"
        );
    }
    // The module's own tables join as before, and AUTOINCREMENT still writes.
    let own = txn.module_query(
        "m",
        "INSERT INTO book (number) VALUES ('7') RETURNING id",
        &[],
        later(),
    );
    assert_eq!(own.map(|r| r.rows), Ok(vec![vec![SqlValue::Integer(1)]]));
    for sql in [
        "SELECT count(*) FROM (SELECT '7' AS number) NATURAL JOIN book",
        "SELECT count(*) FROM (SELECT '7' AS number) AS q JOIN book USING (number)",
        "SELECT count(*) FROM book AS a NATURAL JOIN book AS b",
    ] {
        let rows = txn.module_query("m", sql, &[], later()).map(|r| r.rows);
        assert_eq!(rows, Ok(vec![vec![SqlValue::Integer(1)]]), "`{sql}`");
    }
    Ok(())
}

#[test]
fn vacuum_is_refused_as_not_the_modules_own_tables_inside_a_transaction_too() -> Result<()> {
    let (dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let copy = dir.path().join("copy.db");
    for sql in [
        format!("VACUUM INTO '{}'", copy.display()),
        "VACUUM".to_owned(),
        "VACUUM main".to_owned(),
    ] {
        let refused = txn.module_execute("m", &sql, &[], later());
        assert_eq!(
            refused,
            Err("not authorized: a module may only read and write its own tables".to_owned()),
            "`{sql}`"
        );
    }
    assert!(!copy.exists());
    Ok(())
}

#[test]
fn a_wrong_number_of_parameters_is_told_in_words() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let many = vec![text("1"); 1_000_000];
    let sql = "INSERT INTO book (number) VALUES (?1)";
    for (params, expected) in [
        (
            &many[..],
            "the statement takes 1 parameter, and 1000000 were given",
        ),
        (&[], "the statement takes 1 parameter, and 0 were given"),
        (
            &many[..2],
            "the statement takes 1 parameter, and 2 were given",
        ),
    ] {
        assert_eq!(
            txn.module_execute("m", sql, params, later()),
            Err(expected.to_owned())
        );
    }
    let two = txn.module_query("m", "SELECT ?1, ?2", &many[..1], later());
    assert_eq!(
        two,
        Err("the statement takes 2 parameters, and 1 was given".to_owned())
    );
    Ok(())
}
