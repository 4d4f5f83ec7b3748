//! Modules' key-value stores.

use std::time::{Duration, Instant};

use super::{open, record};
use crate::{Error, Result, Stop};

/// A stop the tests do not reach.
fn soon() -> Stop {
    Stop::new(Instant::now() + Duration::from_secs(30), None)
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
        txn.kv_keys("core", "extension/", &soon())?,
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
fn kv_keys_reads_the_keys_alone_never_the_values() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    let big = "v".repeat(1 << 20);
    for key in ["a/1", "a/2", "a0", "a%", "a_b", "b", ""] {
        txn.kv_set("m", key, &big)?;
    }
    txn.kv_set("n", "a/3", "another module's")?;
    // A value that is not UTF-8 cannot even be read as a string: a listing that touched
    // the values would fail on it.
    txn.conn
        .execute(
            "INSERT INTO modhost_kv (module, key, value) VALUES ('m', 'a/unreadable', CAST(x'ff' AS TEXT))",
            [],
        )
        .map_err(txn.err())?;
    assert!(txn.kv_get("m", "a/unreadable").is_err(), "the value is bad");
    assert_eq!(
        txn.kv_keys("m", "a/", &soon())?,
        ["a/1", "a/2", "a/unreadable"]
    );
    assert_eq!(
        txn.kv_keys("m", "a%", &soon())?,
        ["a%"],
        "no LIKE wildcards"
    );
    assert_eq!(txn.kv_keys("m", "a_", &soon())?, ["a_b"]);
    assert_eq!(
        txn.kv_keys("m", "", &soon())?,
        ["", "a%", "a/1", "a/2", "a/unreadable", "a0", "a_b", "b"],
        "every key, in byte order"
    );
    assert!(txn.kv_keys("m", "c", &soon())?.is_empty());
    assert!(txn.kv_keys("o", "", &soon())?.is_empty());
    // Nor does it read them from disk: the scan is of an index that holds no value (a
    // scan of the table reads each row's overflow pages to compare it with the range).
    let plan: Vec<String> = txn
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", crate::kv::KEYS_SQL))
        .and_then(|mut stmt| {
            stmt.query_map(["m", "a/"], |row| row.get::<_, String>(3))?
                .collect()
        })
        .map_err(txn.err())?;
    assert!(
        plan.len() == 1 && plan[0].contains("USING COVERING INDEX modhost_kv_keys"),
        "{plan:?}"
    );
    Ok(())
}

#[test]
fn a_store_kept_before_the_key_index_gets_it_and_its_use_counted_again_when_opened() -> Result<()> {
    let (dir, state) = open();
    let mut txn = state.begin()?;
    for (i, size) in [0, 10, 1000, 5000].into_iter().enumerate() {
        txn.kv_set("core", &format!("k{i}"), &"v".repeat(size))?;
    }
    txn.commit()?;
    drop(state);
    // As a database made before the index: none, and each entry's use counted without it.
    let path = dir.path().join("modhost.db");
    let legacy = rusqlite::Connection::open(&path).and_then(|conn| {
        conn.execute_batch(
            "DROP INDEX modhost_kv_keys;
             UPDATE modhost_kv_usage SET bytes = bytes - 100;
             PRAGMA user_version = 11;",
        )
    });
    assert!(legacy.is_ok(), "{legacy:?}");
    let state = crate::State::open(&path)?;
    let txn = state.begin()?;
    let kept = crate::quota::kv_usage(&txn.conn, "core").map_err(txn.err())?;
    let counted = crate::quota::kv_cost(&txn.conn, "modhost_kv", "core").map_err(txn.err())?;
    let each: u64 = [0, 10, 1000, 5000]
        .into_iter()
        .enumerate()
        .map(|(i, size)| crate::kv::row_cost("core", &format!("k{i}"), &"v".repeat(size)))
        .sum();
    assert_eq!((kept, counted), (each as i64, each as i64));
    assert_eq!(txn.kv_keys("core", "k", &soon())?, ["k0", "k1", "k2", "k3"]);
    Ok(())
}

#[test]
fn kv_cost_follows_what_rows_take() -> Result<()> {
    // Values around the size at which a row spills into overflow pages, where a cost
    // counted in bytes alone would be a quarter of what a 1000-byte value takes.
    for size in [0, 100, 900, 1000, 1500, 3000, 4100, 9000, 50_000] {
        let (_dir, state) = open();
        let mut txn = state.begin()?;
        let value = "v".repeat(size);
        // Enough entries for pages to be filled as a store fills them.
        let count = (2_000_000 / (size + 20)).clamp(300, 50_000);
        for i in 0..count {
            txn.kv_set("m", &format!("key/{i:05}"), &value)?;
        }
        let measured = txn
            .conn
            .query_row(
                "SELECT sum(pgsize) FROM dbstat
                 WHERE name IN ('modhost_kv', 'modhost_kv_keys') AND aggregate = 1",
                [],
                |row| row.get::<_, i64>(0),
            )
            .and_then(|taken| Ok((taken, crate::quota::kv_usage(&txn.conn, "m")?)));
        let Ok((taken, counted)) = measured else {
            panic!("{measured:?}")
        };
        let each = (0..count)
            .map(|i| crate::kv::row_cost("m", &format!("key/{i:05}"), &value))
            .sum::<u64>();
        assert_eq!(u64::try_from(counted).unwrap_or(0), each, "size {size}");
        let ratio = counted as f64 / taken as f64;
        assert!(
            (0.8..=1.25).contains(&ratio),
            "size {size}: counted {counted} for {taken} bytes of pages"
        );
    }
    Ok(())
}

#[test]
fn kv_usage_is_kept_as_entries_change_and_equals_a_count_of_them() -> Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_module(&record("core", "1.0"))?;
    let recount = |txn: &crate::Txn, module: &str| -> Result<(i64, i64)> {
        let kept = crate::quota::kv_usage(&txn.conn, module).map_err(txn.err())?;
        let counted = crate::quota::kv_cost(&txn.conn, "modhost_kv", module).map_err(txn.err())?;
        Ok((kept, counted))
    };
    for (i, size) in [0, 10, 900, 1000, 5000, 70_000].into_iter().enumerate() {
        txn.kv_set("core", &format!("k{i}"), &"v".repeat(size))?;
    }
    txn.kv_set("other", "k", "another module's")?;
    let (kept, counted) = recount(&txn, "core")?;
    assert!(kept > 70_000 && kept == counted, "{kept} {counted}");
    // Replacing a value, shorter and longer, and deleting one; and an UPDATE, which no
    // modhost makes but a repair by hand might.
    txn.kv_set("core", "k5", "short")?;
    txn.kv_set("core", "k1", &"w".repeat(3000))?;
    assert!(txn.kv_delete("core", "k3")?);
    txn.conn
        .execute(
            "UPDATE modhost_kv SET value = 'edited' WHERE module = 'core' AND key = 'k4'",
            [],
        )
        .map_err(txn.err())?;
    let (kept, counted) = recount(&txn, "core")?;
    assert!(kept < 70_000 && kept == counted, "{kept} {counted}");
    // Removed with the module, the other's untouched.
    let other = recount(&txn, "other")?;
    txn.remove_module("core")?;
    assert_eq!(recount(&txn, "core")?, (0, 0));
    assert_eq!(recount(&txn, "other")?, other);
    let rows: i64 = txn
        .conn
        .query_row("SELECT count(*) FROM modhost_kv_usage", [], |row| {
            row.get(0)
        })
        .map_err(txn.err())?;
    assert_eq!(rows, 1, "no row is kept for a module with no entries");
    txn.commit()?;
    Ok(())
}

#[test]
fn kv_keys_is_bounded_in_the_host_and_by_the_calls_deadline() -> Result<()> {
    let (_dir, state) = open();
    let txn = state.begin()?;
    // 600,000 keys of 8 bytes: each also takes a `String` in the host, 19 MB in all.
    txn.conn
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 599999)
             INSERT INTO modhost_kv (module, key, value)
             SELECT 'm', printf('k%07d', i), '' FROM n;",
        )
        .map_err(txn.err())?;
    match txn.kv_keys("m", "", &soon()) {
        Err(Error::TooManyKeys { module, prefix, .. }) => {
            assert_eq!((module.as_str(), prefix.as_str()), ("m", ""));
        }
        other => panic!("{:?}", other.map(|keys| keys.len())),
    }
    // A narrower prefix is listed.
    assert_eq!(txn.kv_keys("m", "k00001", &soon())?.len(), 100);
    // Past the deadline, the scan stops within a thousand keys.
    let past = Stop::new(Instant::now(), None);
    assert!(matches!(
        txn.kv_keys("m", "k0", &past),
        Err(Error::Stopped { module, .. }) if module == "m"
    ));
    Ok(())
}
