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
