//! The generation: other processes see a module change at once, and a committer that
//! died half-way misleads no one.

use rusqlite::Connection;

use super::{open, record};
use crate::error::sqlite;
use crate::{Result, State};

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
