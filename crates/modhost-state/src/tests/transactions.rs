//! Transactions: commit and rollback, a dispatch's lazy session and its scopes, and the
//! size cap.

use super::{open, record};
use crate::{Error, Result, Session, State, Stop};

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
fn a_dispatch_whose_handlers_kept_nothing_writes_no_commit() -> Result<()> {
    let (dir, state) = open();
    let wal = || std::fs::metadata(dir.path().join("modhost.db-wal")).map_or(0, |m| m.len());
    let mut session = Session::lazy(state.clone());
    // A handler that wrote, then failed (or was cancelled): its scope undone.
    session.enter()?;
    session.txn(far())?.kv_set("a", "undone", "1")?;
    session.leave(false)?;
    let before = wal();
    session.checkpoint()?;
    assert_eq!(wal(), before, "a commit record was written for nothing");
    assert!(state.kv_entries("a")?.is_empty());
    // One that kept its write commits it.
    session.enter()?;
    session.txn(far())?.kv_set("a", "kept", "1")?;
    session.leave(true)?;
    session.checkpoint()?;
    assert!(wal() > before);
    assert_eq!(state.kv_entries("a")?.len(), 1);
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

#[test]
fn a_call_that_waited_out_its_deadline_for_the_lock_names_the_module_holding_it() -> Result<()> {
    let (_dir, state) = open();
    let mut holding = Session::lazy(state.clone());
    holding.enter_module(&record("slowpoke", "1").found())?;
    holding.txn(far())?;
    let mut waiting = Session::lazy(state.clone());
    waiting.enter_module(&record("victim", "1").found())?;
    let soon = std::time::Instant::now() + std::time::Duration::from_millis(100);
    let busy = waiting.txn(soon).map(|_| ()).err();
    assert!(
        matches!(&busy, Some(Error::Busy { held_by: Some(module), .. }) if module == "slowpoke"),
        "{busy:?}"
    );
    let message = busy.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("stayed locked by module `slowpoke`'s call until the call's deadline"),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_call_cancelled_while_it_waits_for_the_lock_stops_waiting_at_once() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_dir, state) = open();
    let mut holding = Session::lazy(state.clone());
    holding.enter_module(&record("slowpoke", "1").found())?;
    holding.txn(far())?;
    let flag = Arc::new(AtomicBool::new(false));
    let setter = Arc::clone(&flag);
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        setter.store(true, Ordering::SeqCst);
    });
    let mut waiting = Session::lazy(state.clone());
    waiting.enter_module(&record("victim", "1").found())?;
    let started = std::time::Instant::now();
    let busy = waiting.txn(Stop::new(far(), Some(flag))).map(|_| ()).err();
    let waited = started.elapsed();
    assert!(canceller.join().is_ok());
    assert!(matches!(busy, Some(Error::Cancelled)), "{busy:?}");
    // The lock is held far longer: only the cancellation ended the wait.
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    Ok(())
}

#[test]
fn a_change_kept_waiting_past_its_wait_is_told_so_not_given_sqlites_code() {
    let busy = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("database is locked".into()),
    );
    let said = crate::state::not_begun(std::path::Path::new("/r/modhost.db"), busy).to_string();
    assert_eq!(
        said,
        "state database `/r/modhost.db` stayed locked by other writers (a module's long hook \
         call, or another process's change) for the 30 s a change waits for it; try again"
    );
}

#[test]
fn a_change_kept_waiting_by_another_process_names_it() {
    let said = Error::Contended {
        path: "/r/modhost.db".into(),
        waited_secs: 30,
        process: Some("process 4242 (`asterisk -f`)".into()),
    }
    .to_string();
    assert_eq!(
        said,
        "state database `/r/modhost.db` stayed locked by process 4242 (`asterisk -f`), \
         writing to it, for the 30 s a change waits for it; try again"
    );
}

#[test]
fn several_openers_of_a_new_database_make_its_tables_once() {
    // As processes installing into a root that does not exist yet. A race: before the
    // switch to WAL waited its turn, most runs of this lost one opener.
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("modhost.db");
        let barrier = std::sync::Barrier::new(12);
        let opened: Vec<std::result::Result<(), String>> = std::thread::scope(|scope| {
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        crate::State::open(&path)
                            .map(drop)
                            .map_err(|e| e.to_string())
                    })
                })
                .collect();
            openers
                .into_iter()
                .map(|o| o.join().unwrap_or_else(|_| Err("panicked".into())))
                .collect()
        });
        assert!(
            opened.iter().all(Result::is_ok),
            "round {round}: {opened:?}"
        );
    }
}
