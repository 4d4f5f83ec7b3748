//! Per-module quotas: a module at its own quota is refused, with an error naming it and
//! the setting, while the others keep writing; one statement stops at it too.

use std::collections::BTreeMap;

use super::{database, later, record};
use crate::{Error, Quotas, Result, State};

const BLOBS: &str = r#"<table name="blobs"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
    <field name="data" type="blob"/></table>"#;

/// A root whose shared cap (64 MiB) is far above the quota of `hog` (1 MiB), with two
/// modules owning a table each.
fn two_modules() -> Result<(tempfile::TempDir, State)> {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let quotas = Quotas {
        default: 8 * 1024 * 1024,
        modules: BTreeMap::from([("hog".to_owned(), 1024 * 1024)]),
    };
    let state =
        State::open_capped(&dir.path().join("modhost.db"), 64 * 1024 * 1024)?.with_quotas(quotas);
    let mut txn = state.begin()?;
    for module in ["hog", "calm"] {
        txn.put_module(&record(module, "1.0"))?;
        let tables = BLOBS.replace("blobs", &format!("{module}_blobs"));
        txn.apply_schema(module, &database(&tables))?;
    }
    txn.commit()?;
    Ok((dir, state))
}

#[test]
fn a_module_at_its_quota_is_refused_and_the_others_keep_writing() -> Result<()> {
    let (_dir, state) = two_modules()?;
    let value = "x".repeat(100 * 1024);
    let mut refused = None;
    for i in 0..40 {
        let mut txn = state.begin()?;
        match txn.kv_set("hog", &format!("v/{i}"), &value) {
            Ok(()) => txn.commit()?,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let Some(Error::OverQuota { module, quota, .. }) = &refused else {
        panic!("not refused at the quota: {refused:?}");
    };
    assert_eq!((module.as_str(), *quota), ("hog", 1024 * 1024));
    let message = refused.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("module `hog` would go past its quota")
            && message.contains("[state.quotas] hog"),
        "{message}"
    );
    let used = state.module_usage("hog")?;
    assert!(used <= 1024 * 1024, "{used} bytes kept");
    // The other module writes on, in its store and its table.
    let mut txn = state.begin()?;
    txn.kv_set("calm", "k", &value)?;
    txn.module_execute(
        "calm",
        "INSERT INTO calm_blobs (data) VALUES (zeroblob(200000))",
        &[],
        later(),
    )
    .map_err(|e| panic!("{e}"))
    .ok();
    txn.commit()?;
    assert!(state.module_usage("calm")? > 300_000);
    Ok(())
}

#[test]
fn one_statement_stops_at_the_modules_quota() -> Result<()> {
    let (_dir, state) = two_modules()?;
    let mut txn = state.begin()?;
    // 6.4 MiB in one statement, from a few bytes of SQL.
    let burst = txn.module_execute(
        "hog",
        "INSERT INTO hog_blobs (data) \
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) \
         SELECT zeroblob(65536) FROM n",
        &[],
        later(),
    );
    assert!(
        burst
            .as_ref()
            .is_err_and(|e| e.contains("module `hog` would go past its quota")),
        "{burst:?}"
    );
    drop(txn);
    let used = state.module_usage("hog")?;
    assert!(used < 1024 * 1024, "{used} bytes kept");
    let mut txn = state.begin()?;
    txn.module_execute(
        "calm",
        "INSERT INTO calm_blobs (data) VALUES (zeroblob(100000))",
        &[],
        later(),
    )
    .map_err(|e| panic!("{e}"))
    .ok();
    txn.commit()?;
    Ok(())
}

#[test]
fn a_module_reaching_its_quota_row_by_row_keeps_its_earlier_writes_and_can_go_on() -> Result<()> {
    let (_dir, state) = two_modules()?;
    let mut txn = state.begin()?;
    // One row at a time, each from a few bytes of SQL, as a module loops until refused:
    // a one-row write that SQLite stopped at the ceiling would roll the whole
    // transaction back; the refusal must undo that statement only.
    let insert = "INSERT INTO hog_blobs (data) VALUES (randomblob(100000))";
    let mut written = 0;
    let refusal = loop {
        match txn.module_execute("hog", insert, &[], later()) {
            Ok(_) => written += 1,
            Err(refusal) => break refusal,
        }
        assert!(written < 100, "never refused");
    };
    assert!(
        refusal.contains("module `hog` would go past its quota"),
        "{refusal}"
    );
    // Refused again, as many times as it tries; and it may still free room.
    for _ in 0..3 {
        let again = txn.module_execute("hog", insert, &[], later());
        assert!(again.is_err_and(|e| e.contains("past its quota")));
    }
    let kept = txn.module_query("hog", "SELECT count(*) FROM hog_blobs", &[], later());
    assert_eq!(
        kept.map(|rows| rows.rows),
        Ok(vec![vec![crate::SqlValue::Integer(written)]])
    );
    let freed = txn.module_execute(
        "hog",
        "DELETE FROM hog_blobs WHERE id % 2 = 0",
        &[],
        later(),
    );
    assert!(freed.is_ok(), "{freed:?}");
    txn.commit()?;
    let used = state.module_usage("hog")?;
    assert!(used < 1024 * 1024, "{used} bytes kept");
    Ok(())
}

#[test]
fn many_tiny_entries_meet_the_quota_at_about_the_bytes_they_take() -> Result<()> {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let module = "m".repeat(64);
    let quotas = Quotas {
        default: 1024 * 1024,
        modules: BTreeMap::new(),
    };
    let state =
        State::open_capped(&dir.path().join("modhost.db"), 64 * 1024 * 1024)?.with_quotas(quotas);
    let pages = |state: &State| -> Result<i64> {
        let conn = state.connect()?;
        conn.query_row("PRAGMA page_count", [], |row| row.get(0))
            .map_err(crate::error::sqlite(state.path()))
    };
    let before = pages(&state)?;
    let mut txn = state.begin()?;
    let mut written = 0u64;
    // Keys of 4 bytes, values empty: 68 bytes of data a row, not 4.
    for i in 0..300_000u64 {
        let key = format!("{:04x}", i % 0x1_0000) + &"z".repeat((i / 0x1_0000) as usize);
        match txn.kv_set(&module, &key, "") {
            Ok(()) => written += 1,
            Err(Error::OverQuota { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    txn.commit()?;
    let grown = u64::try_from((pages(&state)? - before) * 4096).unwrap_or(0);
    assert!(written < 20_000, "{written} entries under a 1 MiB quota");
    assert!(
        (900 * 1024..=1200 * 1024).contains(&grown),
        "{written} entries took {grown} bytes against a 1 MiB quota"
    );
    Ok(())
}

#[test]
fn a_module_pushed_past_its_quota_may_still_free_room_but_not_grow() -> Result<()> {
    let (_dir, state) = two_modules()?;
    // Statements of ten 100 KB rows each, until one is refused: the last that ran may
    // have ended past the quota by a statement's slack.
    let ten_rows = "INSERT INTO hog_blobs (data) \
                    WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) \
                    SELECT zeroblob(100000) FROM n";
    for _ in 0..20 {
        let mut txn = state.begin()?;
        match txn.module_execute("hog", ten_rows, &[], later()) {
            Ok(_) => txn.commit()?,
            Err(_) => break,
        }
    }
    // Whatever it keeps now, it may delete, and it may not grow.
    let mut txn = state.begin()?;
    let grow = txn.module_execute(
        "hog",
        "UPDATE hog_blobs SET data = zeroblob(300000) WHERE id = (SELECT min(id) FROM hog_blobs)",
        &[],
        later(),
    );
    assert!(
        grow.as_ref()
            .is_err_and(|e| e.contains("module `hog` would go past its quota")),
        "{grow:?}"
    );
    drop(txn);
    let mut txn = state.begin()?;
    let deleted = txn.module_execute(
        "hog",
        "DELETE FROM hog_blobs WHERE id > ?1",
        &[crate::SqlValue::Integer(2)],
        later(),
    );
    assert!(deleted.as_ref().is_ok_and(|n| *n > 0), "{deleted:?}");
    txn.commit()?;
    assert!(state.module_usage("hog")? < 512 * 1024);
    // Below its quota again, it writes again.
    let mut txn = state.begin()?;
    txn.kv_set("hog", "k", &"x".repeat(100_000))?;
    txn.commit()?;
    Ok(())
}

#[test]
fn free_pages_never_let_a_statement_past_the_quota() -> Result<()> {
    let (_dir, state) = two_modules()?;
    // Another module's 6 MiB, written and deleted: free pages a statement can fill
    // without growing the file, which the page ceiling alone would not stop.
    let mut txn = state.begin()?;
    let grow = |txn: &mut crate::Txn, module: &str, rows: u32| {
        txn.module_execute(
            module,
            &format!(
                "INSERT INTO {module}_blobs (data) \
                 WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows}) \
                 SELECT zeroblob(65536) FROM n"
            ),
            &[],
            later(),
        )
    };
    grow(&mut txn, "calm", 96).map_err(|e| panic!("{e}")).ok();
    txn.commit()?;
    let mut txn = state.begin()?;
    txn.module_execute("calm", "DELETE FROM calm_blobs", &[], later())
        .map_err(|e| panic!("{e}"))
        .ok();
    txn.commit()?;
    for (round, via_query) in [(0, false), (1, true), (2, false)] {
        let mut txn = state.begin()?;
        // 6.4 MiB for a module of 1 MiB, through execute and through `INSERT … RETURNING`.
        let burst = match via_query {
            false => grow(&mut txn, "hog", 100).map(drop),
            true => txn
                .module_query(
                    "hog",
                    "INSERT INTO hog_blobs (data) \
                     WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) \
                     SELECT zeroblob(65536) FROM n RETURNING id",
                    &[],
                    later(),
                )
                .map(drop),
        };
        assert!(
            burst
                .as_ref()
                .is_err_and(|e| e.contains("module `hog` would go past its quota")),
            "round {round}: {burst:?}"
        );
        // What fits is kept, then deleted: the module's own free pages, next round.
        grow(&mut txn, "hog", 12).map_err(|e| panic!("{e}")).ok();
        txn.commit()?;
        let used = state.module_usage("hog")?;
        assert!(used <= 1024 * 1024, "round {round}: {used} bytes kept");
        let mut txn = state.begin()?;
        txn.module_execute("hog", "DELETE FROM hog_blobs", &[], later())
            .map_err(|e| panic!("{e}"))
            .ok();
        txn.commit()?;
    }
    Ok(())
}

#[test]
fn rewriting_the_same_entry_and_rows_in_one_transaction_never_adds_up() -> Result<()> {
    let (_dir, state) = two_modules()?;
    // `hog` may keep 1 MiB. One transaction (a handler's, a whole upgrade's) rewrites
    // a 300 KB entry 20 times and a row holding 4 KB 500 times: 6 MB and 2 MB written,
    // about 300 KB and one row kept.
    let mut txn = state.begin()?;
    for i in 0..20 {
        txn.kv_set("hog", "state", &i.to_string().repeat(150_000))?;
    }
    txn.module_execute(
        "hog",
        "INSERT INTO hog_blobs (id, data) VALUES (1, X'')",
        &[],
        later(),
    )
    .map_err(|e| panic!("{e}"))
    .ok();
    let data = crate::SqlValue::Blob(vec![7; 4096]);
    for i in 0..500 {
        let updated = txn.module_execute(
            "hog",
            "UPDATE hog_blobs SET data = ?1 WHERE id = 1",
            std::slice::from_ref(&data),
            later(),
        );
        assert!(updated.is_ok(), "update {i}: {updated:?}");
    }
    txn.commit()?;
    let used = state.module_usage("hog")?;
    assert!((300_000..700_000).contains(&used), "{used} bytes kept");
    Ok(())
}

#[test]
fn a_ring_buffer_at_its_quota_deletes_its_oldest_and_writes_on() -> Result<()> {
    let (_dir, state) = two_modules()?;
    // Fill `hog` with 50 KB rows until refused, as a log kept to its quota does.
    let insert = "INSERT INTO hog_blobs (data) VALUES (randomblob(50000))";
    let mut txn = state.begin()?;
    let mut rows = 0;
    while txn.module_execute("hog", insert, &[], later()).is_ok() {
        rows += 1;
        assert!(rows < 100, "never refused");
    }
    txn.commit()?;
    assert!(rows > 10, "{rows} rows before the quota");
    // From then on, in one transaction: drop the oldest, write the newest, 30 times.
    let mut txn = state.begin()?;
    for i in 0..30 {
        let deleted = txn.module_execute(
            "hog",
            "DELETE FROM hog_blobs WHERE id = (SELECT min(id) FROM hog_blobs)",
            &[],
            later(),
        );
        assert!(deleted.is_ok_and(|n| n == 1), "delete {i}");
        let written = txn.module_execute("hog", insert, &[], later());
        assert!(written.is_ok(), "write {i}: {written:?}");
    }
    txn.commit()?;
    assert!(state.module_usage("hog")? <= 1024 * 1024 + 64 * 1024);
    Ok(())
}

#[test]
fn one_write_may_take_most_of_the_room_its_quota_leaves() -> Result<()> {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    // A cap whose slack (a quarter, 4 MiB) is well under a module's quota (8 MiB): the
    // write's own room is what bounds it.
    let quotas = Quotas {
        default: 8 * 1024 * 1024,
        modules: BTreeMap::new(),
    };
    let state =
        State::open_capped(&dir.path().join("modhost.db"), 16 * 1024 * 1024)?.with_quotas(quotas);
    let mut txn = state.begin()?;
    txn.put_module(&record("big", "1.0"))?;
    txn.commit()?;
    let mut txn = state.begin()?;
    txn.kv_set("big", "snapshot", &"s".repeat(6 * 1024 * 1024))?;
    txn.commit()?;
    assert!(state.module_usage("big")? > 6 * 1024 * 1024);
    Ok(())
}

#[test]
fn a_schema_whose_empty_tables_pass_the_quota_is_refused_whole() -> Result<()> {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    // 16 pages of 4 KiB: 20 tables, each a page before it holds a row, pass it.
    let quotas = Quotas {
        default: 8 * 1024 * 1024,
        modules: BTreeMap::from([("wide".to_owned(), 64 * 1024)]),
    };
    let state =
        State::open_capped(&dir.path().join("modhost.db"), 64 * 1024 * 1024)?.with_quotas(quotas);
    let tables: String = (0..20)
        .map(|i| BLOBS.replace("blobs", &format!("wide_{i}")))
        .collect();
    let mut txn = state.begin()?;
    txn.put_module(&record("wide", "1.0"))?;
    let refused = txn.apply_schema("wide", &database(&tables));
    let Err(Error::OverQuota {
        module,
        quota,
        used,
    }) = &refused
    else {
        panic!("not refused: {refused:?}");
    };
    assert_eq!((module.as_str(), *quota), ("wide", 64 * 1024));
    assert!(*used > 64 * 1024, "{used}");
    // Nothing of it is left: the module owns no table, and its use is what it was.
    assert_eq!(txn.module_usage("wide")?, 0);
    txn.commit()?;
    assert!(state.tables("wide")?.is_empty());
    // Three tables fit; the same schema applied again, taking no more, is kept.
    let three: String = (0..3)
        .map(|i| BLOBS.replace("blobs", &format!("wide_{i}")))
        .collect();
    let mut txn = state.begin()?;
    txn.apply_schema("wide", &database(&three))?;
    txn.apply_schema("wide", &database(&three))?;
    txn.commit()?;
    assert_eq!(state.tables("wide")?.len(), 3);
    Ok(())
}
