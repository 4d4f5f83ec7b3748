use std::time::{Duration, Instant};

use modhost_manifest::Manifest;
use rusqlite::limits::Limit;

use super::*;

fn record(rawname: &str, version: &str) -> ModuleRecord {
    ModuleRecord {
        rawname: rawname.into(),
        name: rawname.into(),
        version: version.into(),
        status: Status::Enabled,
        reason: None,
        module_dir: format!("{version}-1"),
        data_dir: "1".into(),
        component_sha256: "00".into(),
        manifest: "<module/>".into(),
        installed_at: 1,
    }
}

fn open() -> (tempfile::TempDir, State) {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let state = State::open(&dir.path().join("modhost.db"));
    let Ok(state) = state else {
        panic!("{state:?}")
    };
    (dir, state)
}

fn database(tables: &str) -> Database {
    let xml = format!(
        "<module><rawname>m</rawname><name>M</name><version>1</version><database>{tables}</database></module>"
    );
    Manifest::parse(&xml, "m.xml")
        .map(|m| m.database)
        .unwrap_or_else(|e| panic!("{e}"))
}

const V1: &str = r#"<table name="book"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
    <field name="number" type="string" length="20"/><key name="number" type="index"><column name="number"/></key></table>"#;
const V2: &str = r#"<table name="book"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
    <field name="number" type="string" length="20"/><field name="label" type="string" default="" notnull="true"/></table>
    <table name="book_tags"><field name="tag" type="string"/></table>"#;

fn later() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.into())
}

#[test]
fn committed_changes_persist_and_dropped_transactions_roll_back() -> Result<()> {
    let (dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_module(&record("core", "1.0"))?;
    txn.kv_set("core", "a", "1")?;
    txn.commit()?;
    {
        let mut txn = state.begin()?;
        txn.put_module(&record("voicemail", "1.0"))?;
        txn.kv_set("core", "a", "2")?;
    }
    let reopened = State::open(&dir.path().join("modhost.db"))?;
    assert_eq!(reopened.modules()?, vec![record("core", "1.0")]);
    assert_eq!(reopened.kv_entries("core")?, vec![("a".into(), "1".into())]);
    Ok(())
}

#[test]
fn kv_is_per_module_and_removed_with_the_module() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_module(&record("core", "1.0"))?;
    txn.kv_set("core", "extension/100", "x")?;
    txn.kv_set("core", "other", "y")?;
    txn.kv_set("voicemail", "extension/100", "z")?;
    assert_eq!(
        txn.kv_keys("core", "extension/")?,
        vec!["extension/100".to_owned()]
    );
    assert_eq!(txn.kv_get("voicemail", "other")?, None);
    assert!(txn.kv_delete("core", "other")?);
    assert!(!txn.kv_delete("core", "other")?);
    txn.remove_module("core")?;
    txn.commit()?;
    assert!(state.kv_entries("core")?.is_empty());
    assert_eq!(state.kv_entries("voicemail")?.len(), 1);
    Ok(())
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
    let reserved = database(r#"<table name="modhost_kv2"><field name="a" type="string"/></table>"#);
    let err = txn
        .apply_schema("m", &reserved)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("`modhost_kv2` is reserved"), "{err}");
    let not_null = database(
        r#"<table name="book"><field name="id" type="integer"/><field name="x" type="string"/></table>"#,
    );
    let err = txn
        .apply_schema("m", &not_null)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("cannot add NOT NULL column `x` without a default"),
        "{err}"
    );
    Ok(())
}

#[test]
fn an_upgrade_keeps_unique_fields_unique_and_refuses_what_it_cannot_alter() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    let run = |txn: &mut Txn, sql: &str| {
        txn.module_execute("m", sql, &[], later())
            .map_err(|message| Error::Schema {
                module: "m".into(),
                message,
            })
    };
    run(&mut txn, "INSERT INTO book (number) VALUES ('1'), ('2')")?;
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

    for (field, problem) in [
        (
            r#"<field name="same" type="string" unique="true" default="x"/>"#,
            "UNIQUE constraint failed: book.same",
        ),
        (
            r#"<field name="label" type="string"/>"#,
            "cannot add NOT NULL column `label` without a default to existing table `book`",
        ),
        (
            r#"<field name="code" type="integer" notnull="false"/>"#,
            "cannot change its type from TEXT to INTEGER in column `code` of existing table `book`",
        ),
        (
            r#"<field name="code" type="string"/>"#,
            "cannot change it from nullable to NOT NULL in column `code` of existing table `book`",
        ),
        (
            r#"<field name="code" type="string" notnull="false" default="z"/>"#,
            "cannot change its default from none to 'z' in column `code` of existing table `book`",
        ),
    ] {
        let err = txn
            .apply_schema("m", &with_code(field))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(problem), "{field}: {err}");
    }
    let new_key = database(
        r#"<table name="book"><field name="id" type="integer" autoincrement="true"/>
        <field name="number" type="string" length="20" primarykey="true"/></table>"#,
    );
    let err = txn.apply_schema("m", &new_key).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "module `m`: database schema: cannot change the primary key of existing table `book` \
             from (id) to (number): SQLite cannot alter it"
        )
    );
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
fn module_sql_reaches_only_the_modules_own_tables() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    txn.apply_schema(
        "n",
        &database(r#"<table name="secrets"><field name="s" type="string"/></table>"#),
    )?;
    txn.kv_set("n", "password", "hunter2")?;
    for sql in [
        "SELECT * FROM secrets",
        "SELECT * FROM modhost_kv",
        "INSERT INTO secrets (s) VALUES ('x')",
        "DELETE FROM modhost_modules",
        "SELECT * FROM sqlite_schema",
        "DROP TABLE book",
        "CREATE TABLE mine (a)",
        "PRAGMA writable_schema = ON",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "COMMIT",
        "SELECT * FROM book WHERE number IN (SELECT s FROM secrets)",
        // A table read without any of its columns is reported with no database name.
        "SELECT count(*) FROM modhost_kv",
        "SELECT count(*) FROM sqlite_master",
        "SELECT count(*) FROM temp.sqlite_master",
        "SELECT 1 FROM secrets",
        "SELECT count(*) FROM SECRETS",
        "SELECT count(*) FROM main.secrets",
        "INSERT INTO book (number) SELECT 1 FROM secrets",
        "UPDATE book SET number = (SELECT count(*) FROM secrets)",
        "SELECT book.* FROM book, secrets",
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
        let refused = module_sql::query(&mut conn, owned.clone(), later(), &sql, &[]);
        assert_eq!(
            refused,
            Err("not authorized: a module may only read and write its own tables".to_owned()),
            "`{sql}`"
        );
    }
    assert!(!copy.exists(), "nothing is written outside the database");
    let values = module_sql::query(&mut conn, owned, later(), "VALUES (1)", &[]);
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
    let still_works = txn.module_query("m", "SELECT count(*) FROM book", &[], later());
    assert_eq!(
        still_works.map(|r| r.rows),
        Ok(vec![vec![SqlValue::Integer(0)]])
    );
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
fn a_lazy_session_opens_only_when_used_and_scopes_undo_alone() -> Result<()> {
    let (_dir, state) = open();
    let generation = state.generation()?;
    let mut idle = Session::lazy(state.clone());
    idle.enter()?;
    idle.leave(true)?;
    assert!(idle.into_txn().is_none(), "an unused session opens nothing");

    let mut session = Session::lazy(state.clone());
    session.enter()?;
    session.txn(far())?.kv_set("a", "kept", "1")?;
    session.enter()?;
    session.txn(far())?.kv_set("b", "undone", "1")?;
    session.leave(false)?;
    session.leave(true)?;
    session.enter()?;
    session.txn(far())?.kv_set("c", "undone", "1")?;
    session.leave(false)?;
    session.commit()?;
    assert_eq!(state.kv_entries("a")?.len(), 1);
    assert!(state.kv_entries("b")?.is_empty() && state.kv_entries("c")?.is_empty());
    assert_eq!(
        state.generation()?,
        generation,
        "kv changes do not move the generation"
    );

    let mut txn = state.begin()?;
    txn.put_module(&record("m", "1.0"))?;
    txn.commit()?;
    assert_eq!(state.generation()?, generation + 1, "module changes do");
    Ok(())
}

fn counter(state: &State) -> u64 {
    let mut path = state.path().as_os_str().to_owned();
    path.push("-generation");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    if bytes.is_empty() {
        return 0;
    }
    u64::from_le_bytes(bytes.try_into().unwrap_or_else(|b| panic!("{b:?}")))
}

fn set_counter(state: &State, value: u64) {
    let mut path = state.path().as_os_str().to_owned();
    path.push("-generation");
    std::fs::write(&path, value.to_le_bytes()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
}

#[test]
fn another_process_sees_a_module_change_at_once() -> Result<()> {
    let (dir, reader) = open();
    let writer = State::open(&dir.path().join("modhost.db"))?;
    let before = reader.generation()?;
    assert_eq!(reader.generation()?, before, "answered from memory");
    let mut txn = writer.begin()?;
    txn.put_module(&record("m", "1.0"))?;
    txn.commit()?;
    assert_eq!(reader.generation()?, before + 1);
    assert_eq!(counter(&reader) % 2, 0, "no commit is under way");
    Ok(())
}

#[test]
fn a_commit_that_died_half_way_is_never_trusted_and_open_repairs_it() -> Result<()> {
    let (dir, reader) = open();
    let before = reader.generation()?;
    // A committer marks the counter; a reader comes before its commit is visible; the
    // commit lands and the committer dies before unmarking the counter.
    let marked = counter(&reader) | 1;
    set_counter(&reader, marked);
    assert_eq!(reader.generation()?, before);
    let raw = Connection::open(reader.path()).map_err(sqlite(reader.path()))?;
    raw.execute_batch("UPDATE modhost_meta SET value = value + 1 WHERE key = 'generation'")
        .map_err(sqlite(reader.path()))?;
    assert_eq!(
        reader.generation()?,
        before + 1,
        "an odd counter is not trusted"
    );
    assert_eq!(reader.generation()?, before + 1);

    let _next = State::open(&dir.path().join("modhost.db"))?;
    assert_eq!(counter(&reader), marked + 1, "the next open repairs it");
    assert_eq!(reader.generation()?, before + 1);
    raw.execute_batch("UPDATE modhost_meta SET value = value + 1 WHERE key = 'generation'")
        .map_err(sqlite(reader.path()))?;
    assert_eq!(
        reader.generation()?,
        before + 1,
        "an even counter that stays put is trusted: only modhost commits move the generation"
    );
    Ok(())
}

/// The index `name`'s uniqueness and columns, if it exists.
fn index(txn: &Txn, name: &str) -> Option<(bool, Vec<String>)> {
    let unique: bool = txn
        .conn
        .query_row(
            "SELECT \"unique\" FROM pragma_index_list('book') WHERE name = ?1",
            [name],
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

#[test]
fn a_changed_key_is_rebuilt_and_a_removed_one_dropped_on_upgrade() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    assert_eq!(
        index(&txn, "book_number"),
        Some((false, vec!["number".into()]))
    );

    let wider = V1.replace(
        r#"<key name="number" type="index"><column name="number"/></key>"#,
        r#"<field name="area" type="string" default=""/><key name="number" type="unique"><column name="area"/><column name="number"/></key>"#,
    );
    txn.apply_schema("m", &database(&wider))?;
    assert_eq!(
        index(&txn, "book_number"),
        Some((true, vec!["area".into(), "number".into()])),
        "the key as declared now, not as it was"
    );

    txn.apply_schema("m", &database(V2))?;
    assert_eq!(index(&txn, "book_number"), None, "V2 has no such key");
    txn.commit()?;
    Ok(())
}

#[test]
fn the_database_grows_to_its_cap_and_no_further_and_stays_readable() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        path: "tempdir".into(),
        source,
    })?;
    let cap = 512 * 1024;
    let state = State::open_capped(&dir.path().join("modhost.db"), cap)?;
    let mut txn = state.begin()?;
    txn.kv_set("m", "kept", "before the flood")?;
    txn.commit()?;

    let value = "x".repeat(16 * 1024);
    let mut txn = state.begin()?;
    let full = (0..1000).find_map(|i| txn.kv_set("m", &format!("flood/{i}"), &value).err());
    assert!(
        matches!(full, Some(Error::Full { max_size, .. }) if max_size == cap),
        "{full:?}"
    );
    assert!(
        full.is_some_and(|e| e
            .to_string()
            .contains("size cap of 0.5 MiB ([state] max_size_mb")),
        "the message names the setting"
    );
    drop(txn);
    assert_eq!(
        state.kv_entries("m")?,
        [("kept".to_owned(), "before the flood".to_owned())],
        "what was there stays, and the failed transaction left nothing"
    );
    let size = std::fs::metadata(state.path())
        .map(|m| m.len())
        .unwrap_or(u64::MAX);
    assert!(size <= cap, "{size} bytes");
    Ok(())
}

fn far() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(10)
}
