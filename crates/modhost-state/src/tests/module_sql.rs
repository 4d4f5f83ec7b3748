//! The SQL a module runs against its own tables: what it may reach, call and allocate,
//! and for how long it may run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::limits::Limit;

use super::{V1, database, later, open, text};
use crate::module_sql::Writes;
use crate::{Result, Rows, SqlValue, Txn, module_sql};

#[test]
fn module_sql_reaches_only_the_modules_own_tables() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.apply_schema(
        "n",
        &database(r#"<table name="secrets"><field name="s" type="string"/></table>"#),
    )?;
    txn.kv_set("n", "password", "hunter2")?;
    // Another module's tables and the host's are as absent as tables nobody has.
    for (sql, table) in [
        ("SELECT * FROM secrets", "secrets"),
        ("SELECT * FROM modhost_kv", "modhost_kv"),
        ("INSERT INTO secrets (s) VALUES ('x')", "secrets"),
        ("DELETE FROM modhost_modules", "modhost_modules"),
        (
            "SELECT * FROM book WHERE number IN (SELECT s FROM secrets)",
            "secrets",
        ),
        // A table read without any of its columns is reported with no database name.
        ("SELECT count(*) FROM modhost_kv", "modhost_kv"),
        ("SELECT 1 FROM secrets", "secrets"),
        ("SELECT count(*) FROM SECRETS", "SECRETS"),
        ("SELECT count(*) FROM main.secrets", "main.secrets"),
        ("INSERT INTO book (number) SELECT 1 FROM secrets", "secrets"),
        (
            "UPDATE book SET number = (SELECT count(*) FROM secrets)",
            "secrets",
        ),
        ("SELECT book.* FROM book, secrets", "secrets"),
    ] {
        let denied = txn.module_query("m", sql, &[], later());
        assert_eq!(
            denied,
            Err(format!(
                "no such table: {table} {}",
                crate::module_sql::REACH
            )),
            "`{sql}` must be refused"
        );
    }
    // Schema changes and transaction statements are refused saying why.
    for (sql, why) in [
        ("DROP TABLE book", "module.xml's <database> declares"),
        ("CREATE TABLE mine (a)", "module.xml's <database> declares"),
        (
            "CREATE INDEX book_name ON book (name)",
            "module.xml's <database> declares",
        ),
        ("COMMIT", "transactions are the host's"),
        ("SAVEPOINT mine", "transactions are the host's"),
    ] {
        let denied = txn.module_query("m", sql, &[], later());
        assert!(
            denied
                .as_ref()
                .is_err_and(|e| e.starts_with("not authorized: ") && e.contains(why)),
            "`{sql}`: {denied:?}"
        );
    }
    for sql in [
        "SELECT * FROM sqlite_schema",
        "PRAGMA writable_schema = ON",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "SELECT count(*) FROM sqlite_master",
        "SELECT count(*) FROM temp.sqlite_master",
        "SELECT count(*) FROM pragma_table_info('modhost_kv')",
        "SELECT count(*) FROM dbstat",
        "SELECT count(*) FROM json_each('[1, 2]')",
    ] {
        let denied = txn.module_query("m", sql, &[], later());
        assert_eq!(
            denied,
            Err("not authorized: a module may only read and write its own tables".to_owned()),
            "`{sql}` must be refused"
        );
    }
    for (sql, count) in [
        ("SELECT count(*) FROM book", 0),
        ("SELECT count(*) FROM BOOK", 0),
        ("SELECT count(*) FROM MAIN.Book", 0),
        ("SELECT count(book.id) FROM book, book AS other", 0),
        ("WITH t(x) AS (VALUES (1), (2)) SELECT count(*) FROM t", 2),
        ("WITH t AS (SELECT 1) SELECT count(*) FROM book, t", 0),
    ] {
        let rows = txn.module_query("m", sql, &[], later()).map(|r| r.rows);
        let expected = Ok(vec![vec![SqlValue::Integer(count)]]);
        assert_eq!(rows, expected, "`{sql}` reads only the module's own data");
    }
    let own = txn.module_execute(
        "m",
        "INSERT INTO book (number) VALUES (?1), (?2)",
        &[text("1"), text("2")],
        later(),
    );
    assert_eq!(own, Ok(2));
    let multiple = txn.module_execute("m", "DELETE FROM book; DELETE FROM book", &[], later());
    assert!(multiple.is_err(), "one statement at a time");
    assert_eq!(txn.kv_get("n", "password")?.as_deref(), Some("hunter2"));
    Ok(())
}

#[test]
fn module_sql_calls_only_functions_that_see_nothing_but_their_arguments() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.kv_set("n", "written", "by another module")?;
    for (sql, function) in [
        ("SELECT load_extension('/tmp/x.so')", "load_extension"),
        ("SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
        ("SELECT last_insert_rowid()", "last_insert_rowid"),
        ("SELECT changes()", "changes"),
        ("SELECT TOTAL_CHANGES()", "total_changes"),
        ("SELECT sqlite_log(1, 'x')", "sqlite_log"),
        (
            "SELECT sqlite_compileoption_get(0)",
            "sqlite_compileoption_get",
        ),
        ("SELECT count(*) FROM book WHERE changes() > 0", "changes"),
    ] {
        let denied = txn.module_query("m", sql, &[], later());
        let expected = format!("not authorized: function `{function}` is not available to modules");
        assert_eq!(denied, Err(expected), "`{sql}`");
    }
    // One call of these is one uninterruptible step that can outlast any deadline.
    for function in ["json_patch", "JSONB_PATCH"] {
        let sql = format!("SELECT {function}('{{\"a\":1}}', '{{\"b\":2}}')");
        let denied = txn.module_query("m", &sql, &[], later());
        assert!(
            denied.as_ref().is_err_and(|e| e.starts_with(&format!(
                "not authorized: function `{}` is not available to modules: one call of it can \
                 run for minutes",
                function.to_lowercase()
            ))),
            "`{sql}`: {denied:?}"
        );
    }
    // Nor does one call walk a document once per path for more paths than a second allows.
    let paths: String = (0..40).map(|n| format!(", '$.k{n}', {n}")).collect();
    let denied = txn.module_query(
        "m",
        &format!("SELECT json_set('{{}}'{paths})"),
        &[],
        later(),
    );
    assert!(
        denied
            .as_ref()
            .is_err_and(|e| e.contains("too many arguments on function json_set")),
        "{denied:?}"
    );
    let paths: String = (0..20).map(|n| format!(", '$.k{n}', {n}")).collect();
    let allowed = txn.module_query(
        "m",
        &format!("SELECT json_set('{{}}'{paths})"),
        &[],
        later(),
    );
    assert!(allowed.is_ok(), "{allowed:?}");
    let allowed = txn.module_query(
        "m",
        "SELECT abs(-1), upper('a'), json_extract('{\"a\": 2}', '$.a'), '{\"a\": 3}' ->> 'a', \
         date('2020-01-02'), count(*) OVER (), length(zeroblob(10))",
        &[],
        later(),
    );
    assert_eq!(
        allowed.map(|r| r.rows),
        Ok(vec![vec![
            SqlValue::Integer(1),
            text("A"),
            SqlValue::Integer(2),
            SqlValue::Integer(3),
            text("2020-01-02"),
            SqlValue::Integer(1),
            SqlValue::Integer(10),
        ]])
    );
    let returning = txn.module_query(
        "m",
        "INSERT INTO book (number) VALUES ('1') RETURNING id",
        &[],
        later(),
    );
    assert_eq!(
        returning.map(|r| r.rows),
        Ok(vec![vec![SqlValue::Integer(1)]]),
        "RETURNING gives a module its row ids"
    );
    let listed: BTreeSet<String> = txn
        .conn
        .prepare("SELECT name FROM pragma_function_list")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(txn.err())?;
    for function in module_sql::FUNCTIONS {
        assert!(
            listed.contains(*function),
            "`{function}` is not an SQLite function"
        );
    }
    Ok(())
}

#[test]
fn module_sql_cannot_make_the_host_allocate_more_than_its_limits() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let default_length = txn
        .conn
        .limit(Limit::SQLITE_LIMIT_LENGTH)
        .map_err(txn.err())?;
    let long_sql = format!("SELECT '{}'", "x".repeat(2 << 20));
    let big = SqlValue::Blob(vec![0; 20 << 20]);
    for (sql, params) in [
        ("SELECT zeroblob(20000000)", &[][..]),
        ("SELECT length(randomblob(20000000))", &[]),
        ("SELECT length(printf('%020000000d', 1))", &[]),
        (
            "SELECT length(zeroblob(10000000) || zeroblob(10000000))",
            &[],
        ),
        (long_sql.as_str(), &[]),
        ("SELECT length(?1)", std::slice::from_ref(&big)),
    ] {
        let refused = txn.module_query("m", sql, params, later());
        let shown = &sql[..sql.len().min(60)];
        assert_eq!(
            refused,
            Err(
                "too big: values are limited to 16777216 bytes and statements to 1048576 bytes"
                    .to_owned()
            ),
            "`{shown}`"
        );
    }
    let wide = txn.module_query(
        "m",
        "SELECT zeroblob(10000000), zeroblob(10000000)",
        &[],
        later(),
    );
    assert_eq!(
        wide,
        Err("the result exceeds 10000 rows or 16777216 bytes".to_owned()),
        "one row is bounded too"
    );
    // Empty values take room in the host too: 10,000 rows of 1,000 empty strings (ten
    // million values, over 300 MB as values) are refused, as are as many NULLs.
    let columns = vec!["''"; 1000].join(", ");
    let empty = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         SELECT {columns} FROM n"
    );
    for sql in [empty.clone(), empty.replace("''", "NULL")] {
        assert_eq!(
            txn.module_query("m", &sql, &[], later()),
            Err("the result exceeds 10000 rows or 16777216 bytes".to_owned()),
        );
    }
    assert_eq!(
        txn.conn
            .limit(Limit::SQLITE_LIMIT_LENGTH)
            .map_err(txn.err())?,
        default_length,
        "the host's own statements are not limited"
    );
    Ok(())
}

#[test]
fn module_sql_is_one_select_insert_update_or_delete_even_outside_a_transaction() -> Result<()> {
    let (dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.commit()?;
    // VACUUM has no authorizer action of its own (SQLite refuses the ATTACH it runs):
    // it must stay refused where no host transaction stands in its way either.
    let copy = dir.path().join("copy.db");
    let Ok(mut conn) = Connection::open(state.path()) else {
        panic!("open")
    };
    let owned = BTreeSet::from(["book".to_owned()]);
    for sql in [
        format!("VACUUM INTO '{}'", copy.display()),
        "VACUUM".to_owned(),
        "REINDEX".to_owned(),
    ] {
        let refused = module_sql::query(
            &mut conn,
            owned.clone(),
            Writes::Any,
            &later().into(),
            &sql,
            &[],
        );
        assert_eq!(
            refused,
            Err("not authorized: a module may only read and write its own tables".to_owned()),
            "`{sql}`"
        );
    }
    assert!(!copy.exists(), "nothing is written outside the database");
    // SQLite reads a statement up to a NUL byte and runs what comes before it.
    let mut txn = state.begin()?;
    let inserted = txn.module_execute(
        "m",
        "INSERT INTO book (number) VALUES ('kept')",
        &[],
        later(),
    );
    assert_eq!(inserted, Ok(1));
    for sql in [
        "DELETE FROM book\0 WHERE id = -1",
        "SELECT 1\0; DELETE FROM book",
    ] {
        let refused = txn.module_execute("m", sql, &[], later());
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("NUL byte")),
            "`{sql}`: {refused:?}"
        );
    }
    let kept = txn.module_query("m", "SELECT count(*) FROM book", &[], later());
    assert_eq!(kept.map(|r| r.rows), Ok(vec![vec![SqlValue::Integer(1)]]));
    let values = module_sql::query(
        &mut conn,
        owned,
        Writes::Any,
        &later().into(),
        "VALUES (1)",
        &[],
    );
    assert_eq!(values.map(|r| r.rows), Ok(vec![vec![SqlValue::Integer(1)]]));
    Ok(())
}

#[test]
fn a_runaway_statement_is_stopped_at_the_deadline() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let forever =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
    let started = Instant::now();
    let stopped = txn.module_query(
        "m",
        forever,
        &[],
        Instant::now() + Duration::from_millis(100),
    );
    assert_eq!(
        stopped,
        Err("the statement ran past the call's deadline".to_owned())
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A statement each of whose rows is costly is stopped within a few rows of it.
    let costly = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 100000) \
                  SELECT count(randomblob(16000000)) FROM n";
    let started = Instant::now();
    let stopped = txn.module_query(
        "m",
        costly,
        &[],
        Instant::now() + Duration::from_millis(100),
    );
    assert_eq!(
        stopped,
        Err("the statement ran past the call's deadline".to_owned())
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let still_works = txn.module_query("m", "SELECT count(*) FROM book", &[], later());
    assert_eq!(
        still_works.map(|r| r.rows),
        Ok(vec![vec![SqlValue::Integer(0)]])
    );
    Ok(())
}

#[test]
fn a_sort_in_memory_is_bounded_so_that_it_ends_near_the_deadline() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    // Millions of rows gathered for one sort, which SQLite then sorts in one step that
    // no deadline interrupts: bounded by what the statement may gather, it fails soon.
    let sort = "SELECT count(*) FROM (SELECT x FROM (WITH RECURSIVE n(i) AS \
                (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000000) \
                SELECT random() AS x FROM n) ORDER BY x)";
    let started = Instant::now();
    let stopped = txn.module_query("m", sort, &[], Instant::now() + Duration::from_secs(30));
    let took = started.elapsed();
    assert!(
        stopped
            .as_ref()
            .is_err_and(|e| e.starts_with("the statement needed more than 64 MiB of memory")),
        "{stopped:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A sort of what a module keeps in a call is untouched.
    let small = "SELECT count(*) FROM (SELECT x FROM (WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
                 SELECT random() AS x FROM n) ORDER BY x)";
    let sorted = txn.module_query("m", small, &[], later());
    assert_eq!(
        sorted.map(|r| r.rows),
        Ok(vec![vec![SqlValue::Integer(100_000)]])
    );
    Ok(())
}

/// What module `m` is told for each of `statements`, `{}` standing for `table`.
fn answers(txn: &mut Txn, table: &str, statements: &[&str]) -> Vec<Result<Rows, String>> {
    statements
        .iter()
        .map(|sql| txn.module_query("m", &sql.replace("{}", table), &[], later()))
        .collect()
}

#[test]
fn a_module_cannot_tell_another_modules_table_from_a_missing_one() -> Result<()> {
    let statements = [
        "SELECT count(*) FROM {}",
        "SELECT * FROM {}",
        "SELECT s FROM {}",
        "SELECT count(*) FROM main.{}",
        "SELECT count(*) FROM {} WHERE nope = 1",
        "SELECT nope, {}.s FROM {}",
        "SELECT count(*) FROM {}, nowhere",
        "SELECT count(*) FROM {} AS t JOIN book ON t.nope = book.id",
        "SELECT count(*) FROM book INDEXED BY {}",
        "SELECT count(*) FROM {} WHERE last_insert_rowid() > 0",
        "INSERT INTO {} (s) VALUES (1)",
        "INSERT INTO {} (nope) VALUES (1)",
        "UPDATE {} SET nope = 1",
        "DELETE FROM {}",
        "DROP TABLE {}",
        "CREATE INDEX i ON {} (s)",
        "ALTER TABLE {} ADD COLUMN c",
        "WITH w AS (SELECT 1) SELECT count(*) FROM {}, w",
        "REINDEX {}",
        " /* maintenance */ ;REINDEX {}",
    ];
    // A common table expression runs alike, whatever else bears its name.
    let named_alike = ["WITH {} AS (SELECT 1) SELECT count(*) FROM {}"];
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    // `Secrets` does not exist yet: what `m` is told for a table that nobody has…
    let mut missing = Vec::new();
    for name in ["Secrets", "secrets", "SECRETS"] {
        missing.push(answers(&mut txn, name, &statements));
    }
    assert_eq!(
        missing[0][0],
        Err(format!(
            "no such table: Secrets {}",
            crate::module_sql::REACH
        )),
        "useful for the module's own typos"
    );
    // …is what it is told once another module has it, whatever its spelling.
    txn.apply_schema(
        "n",
        &database(r#"<table name="secrets"><field name="s" type="string"/><key name="s" type="unique"><column name="s"/></key></table>"#),
    )?;
    for (i, name) in ["Secrets", "secrets", "SECRETS"].into_iter().enumerate() {
        let theirs = answers(&mut txn, name, &statements);
        for (sql, (mine, theirs)) in statements.iter().zip(missing[i].iter().zip(&theirs)) {
            assert_eq!(mine, theirs, "`{sql}` with `{name}`");
            assert!(mine.is_err(), "`{sql}` with `{name}`");
        }
        let answered = answers(&mut txn, name, &named_alike);
        assert_eq!(
            answered[0].clone().map(|r| r.rows),
            Ok(vec![vec![SqlValue::Integer(1)]]),
            "`{}` with `{name}`",
            named_alike[0]
        );
    }
    // Likewise the host's tables, and another module's index.
    let index = "\"modhost_key:n:secrets:s\"";
    let every: Vec<&str> = statements.iter().chain(&named_alike).copied().collect();
    let host = answers(&mut txn, "modhost_kv", &every);
    let nobody = answers(&mut txn, "modhost_xx", &every);
    for (sql, (host, nobody)) in every.iter().zip(host.iter().zip(&nobody)) {
        let nobody = nobody
            .clone()
            .map_err(|e| e.replace("modhost_xx", "modhost_kv"));
        assert_eq!(host, &nobody, "`{sql}`");
    }
    let theirs = answers(
        &mut txn,
        index,
        &["SELECT count(*) FROM book INDEXED BY {}"],
    );
    let nobody = answers(
        &mut txn,
        "\"nothing\"",
        &["SELECT count(*) FROM book INDEXED BY {}"],
    );
    assert_eq!(
        theirs[0]
            .clone()
            .map_err(|e| e.replace("modhost_key:n:secrets:s", "nothing")),
        nobody[0]
    );
    Ok(())
}

#[test]
fn a_write_out_of_statement_memory_that_loses_the_transaction_is_put_down_to_that() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.commit()?;
    let mut session = crate::Session::lazy(state);
    session.enter()?;
    // A write whose DISTINCT gathers more than a statement may: SQLite's out-of-memory
    // error takes the whole transaction with it.
    let write = "INSERT INTO book (number) SELECT count(*) FROM (SELECT DISTINCT \
                 hex(randomblob(100)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
                 SELECT i + 1 FROM n WHERE i < 3000000) SELECT i FROM n))";
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = session
        .txn(deadline)?
        .module_execute("m", write, &[], deadline);
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.starts_with("the statement needed more than 64 MiB of memory")),
        "{failed:?}"
    );
    assert!(session.lost(), "SQLite rolled the transaction back");
    let told = session.rolled_back().to_string();
    assert!(
        told.contains("failed (the statement needed more than 64 MiB of memory")
            && !told.contains("deadline"),
        "{told}"
    );
    Ok(())
}
