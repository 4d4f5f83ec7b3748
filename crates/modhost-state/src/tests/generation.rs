//! The generation: other processes see a module change at once, and a committer that
//! died half-way misleads no one.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rusqlite::Connection;

use super::{open, record};
use crate::error::sqlite;
use crate::signal::{gray, ungray};
use crate::{Result, State};

fn counter_path(state: &State) -> PathBuf {
    let mut path = state.path().as_os_str().to_owned();
    path.push("-generation");
    PathBuf::from(path)
}

/// The counter as the file holds it (Gray-coded, little-endian).
fn counter(state: &State) -> u64 {
    let path = counter_path(state);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    ungray(u64::from_le_bytes(
        bytes.try_into().unwrap_or_else(|b| panic!("{b:?}")),
    ))
}

fn set_counter(state: &State, value: u64) {
    let path = counter_path(state);
    std::fs::write(&path, gray(value).to_le_bytes()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
}

/// Cuts the counter file to `length` bytes in place, as `truncate -s` would.
fn cut(state: &State, length: u64) {
    let path = counter_path(state);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(length))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
}

fn mode(state: &State) -> u32 {
    let path = counter_path(state);
    std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Moves the generation by one module change.
fn change(state: &State, rawname: &str) -> Result<()> {
    let mut txn = state.begin()?;
    txn.put_module(&record(rawname, "1.0"))?;
    txn.commit()
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

#[test]
fn gray_coded_neighbours_differ_in_one_bit() {
    for n in [0, 1, 2, 254, 255, 256, 0xffff, 1 << 40, (1 << 62) + 12345] {
        assert_eq!(ungray(gray(n)), n);
        assert_eq!((gray(n) ^ gray(n + 1)).count_ones(), 1, "{n}");
    }
}

#[test]
fn a_generation_file_cut_short_crashes_no_host_and_is_made_whole_again() -> Result<()> {
    let (dir, reader) = open();
    let db = dir.path().join("modhost.db");
    // Opened before the file is cut, so that its open repairs nothing.
    let writer = State::open(&db)?;
    let mut expected = reader.generation()?;
    for length in [0, 3] {
        // The reader comes to trust counter 2: the very value a writer counting again
        // from nothing would reach with its first commit.
        set_counter(&reader, 0);
        change(&writer, "before")?;
        expected += 1;
        assert_eq!(reader.generation()?, expected);
        let trusted = counter(&reader);
        assert_eq!(trusted, 2);

        cut(&reader, length);
        assert_eq!(
            reader.generation()?,
            expected,
            "a file cut to {length} bytes is read, not mapped: no SIGBUS"
        );
        assert_eq!(reader.generation()?, expected, "and never trusted");
        change(&writer, "after")?;
        expected += 1;
        let whole = std::fs::metadata(counter_path(&reader)).map(|m| m.len());
        assert_eq!(whole.ok(), Some(8), "the next commit writes it whole again");
        assert_ne!(
            counter(&reader),
            trusted,
            "and not back to a value once trusted"
        );
        assert_eq!(counter(&reader) % 2, 0);
        assert_eq!(reader.generation()?, expected, "the reader sees the commit");
        assert_eq!(reader.generation()?, expected);
        change(&reader, "reader")?;
        expected += 1;
        assert_eq!(writer.generation()?, expected);
    }

    cut(&reader, 0);
    let _next = State::open(&db)?;
    let whole = std::fs::metadata(counter_path(&reader)).map(|m| m.len());
    assert_eq!(whole.ok(), Some(8), "an open makes a short file whole");
    assert_eq!(counter(&reader) % 2, 0);
    assert_eq!(reader.generation()?, expected);
    change(&writer, "again")?;
    assert_eq!(reader.generation()?, expected + 1);
    Ok(())
}

#[test]
fn a_generation_file_missing_is_made_again_and_its_mode_is_set_on_every_open() -> Result<()> {
    let (dir, state) = open();
    let db = dir.path().join("modhost.db");
    assert_eq!(mode(&state), 0o600);
    let path = counter_path(&state);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let reopened = State::open(&db)?;
    assert_eq!(mode(&reopened), 0o600, "set on open, not only on creation");

    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let reopened = State::open(&db)?;
    assert_eq!(mode(&reopened), 0o600);
    let before = reopened.generation()?;
    change(&reopened, "m")?;
    assert_eq!(reopened.generation()?, before + 1);
    Ok(())
}

#[test]
fn a_link_or_a_fifo_in_the_generation_files_place_is_refused_never_followed() -> Result<()> {
    let (dir, state) = open();
    let db = dir.path().join("modhost.db");
    let path = counter_path(&state);
    drop(state);
    // A file outside the root, which a host following the link would chmod and write.
    let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let precious = outside.path().join("precious");
    std::fs::write(&precious, b"precious data").unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    std::os::unix::fs::symlink(&precious, &path).unwrap_or_else(|e| panic!("{e}"));
    let refused = State::open(&db).map(|_| ()).err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("it is a symbolic link, which modhost does not follow")),
        "{refused:?}"
    );
    let kept = std::fs::metadata(&precious).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(kept.ok(), Some(0o644));
    assert_eq!(
        std::fs::read(&precious).ok().as_deref(),
        Some(&b"precious data"[..])
    );
    // A FIFO is no counter either, and opening it waits for nothing.
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    assert!(made.as_ref().is_ok_and(|s| s.success()), "{made:?}");
    let refused = State::open(&db).map(|_| ()).err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("it is not a regular file")),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn a_running_host_follows_a_generation_file_deleted_or_replaced_under_it() -> Result<()> {
    let (dir, running) = open();
    let db = dir.path().join("modhost.db");
    let path = counter_path(&running);
    let seen = running.generation()?;
    // Deleted under the running host; another process opens the root and changes it,
    // publishing on the file it made anew.
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let other = State::open(&db)?;
    change(&other, "a")?;
    // Within the recheck interval the running host follows the new file.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(running.generation()?, seen + 1, "the change was seen");
    // Replaced by a rename, as a restore from backup does: followed too.
    let copy = path.with_extension("restored");
    std::fs::copy(&path, &copy).unwrap_or_else(|e| panic!("{copy:?}: {e}"));
    std::fs::rename(&copy, &path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let other = State::open(&db)?;
    change(&other, "b")?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        running.generation()?,
        seen + 2,
        "the second change was seen"
    );
    // And the running host's own commits reach the others.
    change(&running, "c")?;
    assert_eq!(other.generation()?, seen + 3);
    Ok(())
}

#[test]
fn the_database_s_mode_is_set_on_every_open_too() -> Result<()> {
    let (dir, _state) = open();
    let db = dir.path().join("modhost.db");
    let db_mode = || {
        std::fs::metadata(&db)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{db:?}: {e}"))
    };
    assert_eq!(db_mode(), 0o600);
    // Restored from a backup, or copied by hand: readable by everyone, download keys and all.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{db:?}: {e}"));
    let _reopened = State::open(&db)?;
    assert_eq!(db_mode(), 0o600);
    Ok(())
}
