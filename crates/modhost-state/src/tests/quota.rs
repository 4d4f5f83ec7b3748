//! The size cap: held within a statement, through `execute` and `query` alike; free pages
//! not counted, and given back when a module goes; modhost's own writes never starved by
//! modules; and what a statement may spill.

use std::path::Path;

use super::{database, later, record};
use crate::state::{HEAP_LIMIT, JOURNAL_SIZE_LIMIT, RESERVE};
use crate::{Error, Result, Session, State, Txn};

/// The cap of these tests: 1 MiB, 256 pages of 4 KiB.
const CAP: u64 = 1024 * 1024;
const PAGE: u64 = 4096;
/// The most modules' statements may grow the file to: the cap and its slack, a quarter.
const CEILING: u64 = (CAP + CAP / 4) / PAGE;

const BLOBS: &str = r#"<table name="blobs"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
    <field name="data" type="blob"/></table>"#;

/// 6.4 MiB in one statement, from a few bytes of SQL.
const BURST: &str = "INSERT INTO blobs (data) \
    WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) \
    SELECT zeroblob(65536) FROM n";

/// The same through `db.query`, the route the WIT recommends for new ids.
const BURST_RETURNING: &str = "INSERT INTO blobs (data) \
    WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) \
    SELECT zeroblob(65536) FROM n RETURNING id";

fn capped(cap: u64) -> (tempfile::TempDir, State) {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let state = State::open_capped(&dir.path().join("modhost.db"), cap);
    let Ok(state) = state else {
        panic!("{state:?}")
    };
    (dir, state)
}

/// `m` owning `blobs`, committed.
fn with_blobs(cap: u64) -> Result<(tempfile::TempDir, State)> {
    let (dir, state) = capped(cap);
    let mut txn = state.begin()?;
    txn.put_module(&record("m", "1.0"))?;
    txn.apply_schema("m", &database(BLOBS))?;
    txn.commit()?;
    Ok((dir, state))
}

fn pragma(state: &State, name: &str) -> Result<i64> {
    let conn = state.connect()?;
    conn.pragma_query_value(None, name, |row| row.get(0))
        .map_err(crate::error::sqlite(state.path()))
}

/// What SQLite says of the whole file, on a connection of its own.
fn integrity(path: &Path) -> String {
    let check = rusqlite::Connection::open(path).and_then(|conn| {
        conn.query_row("PRAGMA integrity_check", [], |row| row.get::<_, String>(0))
    });
    check.unwrap_or_else(|e| e.to_string())
}

/// Fills `module`'s store with 16 KiB values, one transaction each, until modhost refuses:
/// returns how many it took and the refusal.
fn fill(state: &State, module: &str, most: usize) -> Result<(usize, Option<Error>)> {
    let value = "x".repeat(16 * 1024);
    for i in 0..most {
        let mut txn = state.begin()?;
        match txn.kv_set(module, &format!("fill/{i}"), &value) {
            Ok(()) => txn.commit()?,
            Err(e) => return Ok((i, Some(e))),
        }
    }
    Ok((most, None))
}

/// The file's pages as `txn` sees them, which no statement of a module may push past
/// the cap.
fn pages(txn: &Txn) -> Result<u64> {
    Ok(txn.usage()?.pages)
}

#[test]
fn a_burst_through_execute_stops_at_the_cap_within_the_statement() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    let mut txn = state.begin()?;
    let burst = txn.module_execute("m", BURST, &[], later());
    assert!(
        burst.as_ref().is_err_and(|e| e.contains("full")),
        "{burst:?}"
    );
    assert!(pages(&txn)? <= CEILING, "{} pages", pages(&txn)?);
    assert!(
        !txn.conn.is_autocommit(),
        "a multi-row statement is undone alone: the transaction goes on"
    );
    // modhost's own writes go on past the modules' cap.
    txn.put_module(&record("m", "1.1"))?;
    txn.commit()?;
    assert_eq!(state.module("m")?.map(|r| r.version), Some("1.1".into()));
    assert_eq!(integrity(state.path()), "ok");
    let size = std::fs::metadata(state.path()).map_or(u64::MAX, |m| m.len());
    assert!(size <= CEILING * PAGE, "{size} bytes");
    Ok(())
}

#[test]
fn a_burst_through_query_stops_at_the_cap_in_a_dispatch_and_in_a_handlers_scope() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    // A dispatch's transaction: every statement of it runs under the modules' ceiling.
    let mut txn = state.begin_by(later(), None)?;
    let burst = txn.module_query("m", BURST_RETURNING, &[], later());
    assert!(
        burst.as_ref().is_err_and(|e| e.contains("full")),
        "{burst:?}"
    );
    assert!(pages(&txn)? <= CEILING, "{} pages", pages(&txn)?);
    drop(txn);

    // A handler fired inside modhost's own transaction runs in a scope, under the same.
    let mut session = Session::over(state.begin()?);
    session.enter()?;
    let burst = session
        .txn(later())?
        .module_query("m", BURST_RETURNING, &[], later());
    assert!(
        burst.as_ref().is_err_and(|e| e.contains("full")),
        "{burst:?}"
    );
    session.leave(false)?;
    if let Some(txn) = session.into_txn() {
        assert!(pages(&txn)? <= CEILING, "{} pages", pages(&txn)?);
        txn.commit()?;
    }

    // What fits still goes through the same route.
    let mut txn = state.begin_by(later(), None)?;
    let ids = txn.module_query(
        "m",
        "INSERT INTO blobs (data) VALUES (zeroblob(1000)) RETURNING id",
        &[],
        later(),
    );
    assert!(ids.is_ok_and(|rows| rows.rows.len() == 1));
    txn.commit()?;
    assert_eq!(integrity(state.path()), "ok");
    Ok(())
}

#[test]
fn a_module_filling_the_cap_is_refused_with_an_error_naming_it_and_the_setting() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    let (written, refusal) = fill(&state, "m", 1000)?;
    assert!(
        matches!(refusal, Some(Error::Full { max_size: CAP, .. })),
        "{refusal:?}"
    );
    assert!(written > 32, "most of the cap was written first: {written}");
    let txn = state.begin()?;
    let refused = txn.check_room_for("m", 10);
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("module `m`: state database `")
            && message.contains("is full: it reached its size cap of 1 MiB ([state] max_size_mb"),
        "{message}"
    );
    // A write that would not fit is refused before it runs, however small the rest.
    drop(txn);
    let (_dir, state) = with_blobs(CAP)?;
    let txn = state.begin()?;
    assert!(txn.check_room_for("m", 100 * 1024).is_ok());
    assert!(txn.check_room_for("m", 2 * CAP).is_err());
    Ok(())
}

#[test]
fn at_the_cap_a_module_can_still_delete_to_make_room_but_not_grow() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    // Filled through its own table, one row at a time, until the cap refuses.
    let insert = "INSERT INTO blobs (data) VALUES (zeroblob(16384))";
    let mut refused = None;
    for _ in 0..1000 {
        let mut txn = state.begin()?;
        match txn.module_execute("m", insert, &[], later()) {
            Ok(_) => txn.commit()?,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    // Said naming who keeps the most, whichever module's write met the cap.
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("is full") && e.contains("; `m` keeps the most, 0.")),
        "{refused:?}"
    );
    let mut txn = state.begin()?;
    txn.put_module(&record("other", "1.0"))?;
    let message = txn
        .check_room_for("other", 10)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with("module `other`: ") && message.contains("; `m` keeps the most, "),
        "{message}"
    );
    drop(txn);
    // At the cap nothing grows, not even into pages already used: a small insert, an
    // update, an `INSERT … RETURNING` are all refused as the cap.
    let mut txn = state.begin()?;
    let small = "INSERT INTO blobs (data) VALUES (x'00')";
    let update = "UPDATE blobs SET data = zeroblob(10) WHERE id = 1";
    for refused in [
        txn.module_execute("m", small, &[], later()).map(drop),
        txn.module_execute("m", update, &[], later()).map(drop),
        txn.module_query("m", &format!("{small} RETURNING id"), &[], later())
            .map(drop),
    ] {
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.starts_with("module `m`: ") && e.contains("is full")),
            "{refused:?}"
        );
    }
    // Rows deleted at the cap, through `execute` or `query`: the statement runs, and
    // what it freed is kept.
    let deleted = txn.module_execute(
        "m",
        "DELETE FROM blobs WHERE id IN (SELECT id FROM blobs ORDER BY id LIMIT 8)",
        &[],
        later(),
    );
    assert_eq!(deleted, Ok(8));
    let returned = txn.module_query(
        "m",
        "DELETE FROM blobs WHERE id = (SELECT min(id) FROM blobs) RETURNING id",
        &[],
        later(),
    );
    assert_eq!(returned.map(|rows| rows.rows.len()), Ok(1));
    txn.commit()?;
    // Room made: writes go through again.
    let mut txn = state.begin()?;
    assert_eq!(txn.module_execute("m", insert, &[], later()), Ok(1));
    txn.commit()?;
    // Filled again within one transaction: the insert past the cap is refused alone, and
    // a delete after it still runs.
    let mut txn = state.begin()?;
    while txn.module_execute("m", insert, &[], later()).is_ok() {}
    let grown = txn.module_execute("m", insert, &[], later());
    assert!(grown.is_err_and(|e| e.contains("full")));
    assert_eq!(
        txn.module_execute(
            "m",
            "DELETE FROM blobs WHERE id = (SELECT max(id) FROM blobs)",
            &[],
            later()
        ),
        Ok(1)
    );
    txn.commit()?;
    assert_eq!(integrity(state.path()), "ok");
    Ok(())
}

#[test]
fn a_flood_in_one_transaction_is_refused_before_the_ceiling_and_keeps_what_fitted() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    let mut session = Session::lazy(state.clone());
    session.enter()?;
    let value = "x".repeat(60_000);
    let mut refusal = None;
    for i in 0..1000 {
        if let Err(e) = session
            .txn(later())?
            .kv_set("m", &format!("flood/{i}"), &value)
        {
            refusal = Some(e);
            break;
        }
    }
    assert!(matches!(refusal, Some(Error::Full { .. })), "{refusal:?}");
    assert!(
        !session.lost(),
        "refused by modhost, not by SQLite's ceiling"
    );
    let txn = session.txn(later())?;
    assert!(pages(txn)? <= CEILING, "{} pages", pages(txn)?);
    session.leave(true)?;
    session.commit()?;
    assert!(state.kv_entries("m")?.len() > 10, "what fitted is kept");
    Ok(())
}

#[test]
fn freed_pages_do_not_count_and_a_removed_modules_pages_go_back_to_the_disk() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    assert_eq!(pragma(&state, "auto_vacuum")?, 2, "incremental");
    let (_, refusal) = fill(&state, "m", 1000)?;
    assert!(refusal.is_some());
    let (written, refusal) = fill(&state, "n", 10)?;
    assert_eq!(written, 0, "{refusal:?}");
    let full = pragma(&state, "page_count")?;

    // A module deleting its own data frees room for every module, vacuumed or not.
    let mut txn = state.begin()?;
    for i in 0..20 {
        txn.kv_delete("m", &format!("fill/{i}"))?;
    }
    txn.commit()?;
    let (written, _) = fill(&state, "n", 10)?;
    assert_eq!(written, 10, "the freed pages are reused");

    // Removing a module frees what it held, at once, and gives it back to the disk.
    let mut txn = state.begin()?;
    txn.remove_module("m")?;
    txn.commit()?;
    assert_eq!(pragma(&state, "freelist_count")?, 0);
    let pages = pragma(&state, "page_count")?;
    assert!(pages < full / 2, "{pages} pages left of {full}");
    let (written, _) = fill(&state, "n", 10)?;
    assert_eq!(written, 10, "other modules write again");
    assert_eq!(state.reclaim()?, 0, "nothing left to give back");
    assert_eq!(integrity(state.path()), "ok");
    Ok(())
}

#[test]
fn backups_have_room_of_their_own_and_never_stop_modules_writing() -> Result<()> {
    let (_dir, state) = with_blobs(CAP)?;
    // `m` fills about half the cap, then an upgrade keeps its backup.
    let (written, _) = fill(&state, "m", 30)?;
    assert_eq!(written, 30);
    let mut txn = state.begin()?;
    txn.keep_backup(&record("m", "1.0"))?;
    txn.put_module(&record("m", "2.0"))?;
    let usage = txn.usage()?;
    assert!(usage.backups >= 30 * 4, "measured: {usage:?}");
    txn.commit()?;
    // Other modules still have the other half.
    let (written, _) = fill(&state, "n", 20)?;
    assert_eq!(written, 20);
    let (_, refusal) = fill(&state, "n", 1000)?;
    assert!(refusal.is_some());
    // Modules at the cap starve none of modhost's writes: another backup, a record.
    let mut txn = state.begin()?;
    txn.keep_backup(&record("n", "1.0"))?;
    let mut big = record("o", "1.0");
    big.manifest = "x".repeat(512 * 1024);
    txn.put_module(&big)?;
    txn.commit()?;
    // A rollback puts back what the backup held, beyond the modules' cap.
    let mut txn = state.begin()?;
    assert!(txn.restore_backup("m", &database(BLOBS))?.is_some());
    txn.commit()?;
    assert_eq!(state.kv_entries("m")?.len(), 30);
    assert_eq!(integrity(state.path()), "ok");
    let size = std::fs::metadata(state.path()).map_or(u64::MAX, |m| m.len());
    assert!(size <= 2 * CAP + RESERVE, "{size} bytes");
    Ok(())
}

#[test]
fn modhost_s_own_writes_stop_at_twice_the_cap_plus_the_reserve() -> Result<()> {
    let (_dir, state) = capped(CAP);
    let mut txn = state.begin()?;
    let mut huge = record("m", "1.0");
    huge.manifest = "x".repeat(usize::try_from(2 * CAP + RESERVE).unwrap_or(usize::MAX));
    let full = txn.put_module(&huge);
    assert!(
        matches!(full, Err(Error::Full { module: None, .. })),
        "{full:?}"
    );
    Ok(())
}

#[test]
fn every_connection_bounds_what_a_statement_may_spill() -> Result<()> {
    let (_dir, state) = capped(CAP);
    assert_eq!(pragma(&state, "temp_store")?, 2, "memory");
    assert_eq!(pragma(&state, "journal_size_limit")?, JOURNAL_SIZE_LIMIT);
    let heap = pragma(&state, "hard_heap_limit")?;
    assert!(heap > 0 && heap <= HEAP_LIMIT, "{heap}");
    let ceiling = u64::try_from(pragma(&state, "max_page_count")?).unwrap_or(0);
    assert_eq!(ceiling, 2 * CAP / PAGE + RESERVE / PAGE);
    Ok(())
}

#[test]
fn an_older_database_is_converted_and_its_backups_measured_when_opened() -> Result<()> {
    let (dir, state) = with_blobs(CAP)?;
    let (written, _) = fill(&state, "m", 10)?;
    assert_eq!(written, 10);
    let mut txn = state.begin()?;
    txn.keep_backup(&record("m", "1.0"))?;
    txn.commit()?;
    drop(state);
    // As a database made before: no auto-vacuum, no measured backups.
    let path = dir.path().join("modhost.db");
    let legacy = rusqlite::Connection::open(&path).and_then(|conn| {
        conn.execute_batch(
            "PRAGMA auto_vacuum = NONE; VACUUM;
             ALTER TABLE modhost_backups DROP COLUMN pages; PRAGMA user_version = 5;",
        )?;
        conn.pragma_query_value(None, "auto_vacuum", |row| row.get::<_, i64>(0))
    });
    assert_eq!(legacy.ok(), Some(0));

    let state = State::open_capped(&path, CAP)?;
    assert_eq!(pragma(&state, "auto_vacuum")?, 2);
    let txn = state.begin()?;
    assert!(txn.usage()?.backups >= 10 * 4, "{:?}", txn.usage()?);
    drop(txn);
    assert_eq!(state.kv_entries("m")?.len(), 10);
    assert_eq!(integrity(&path), "ok");
    Ok(())
}
