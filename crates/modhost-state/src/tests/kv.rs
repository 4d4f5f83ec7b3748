//! Modules' key-value stores.

use super::{open, record};
use crate::Result;

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
    assert_eq!(txn.kv_keys("m", "a/")?, ["a/1", "a/2", "a/unreadable"]);
    assert_eq!(txn.kv_keys("m", "a%")?, ["a%"], "no LIKE wildcards");
    assert_eq!(txn.kv_keys("m", "a_")?, ["a_b"]);
    assert_eq!(
        txn.kv_keys("m", "")?,
        ["", "a%", "a/1", "a/2", "a/unreadable", "a0", "a_b", "b"],
        "every key, in byte order"
    );
    assert!(txn.kv_keys("m", "c")?.is_empty());
    assert!(txn.kv_keys("o", "")?.is_empty());
    Ok(())
}
