//! Sources: the keys they pin and how a release's next key takes over, what was accepted
//! from them, and the key a database made before several keys kept.

use crate::{PinnedKey, SeenRecord, SourceRecord, State};

use super::open;

fn source(name: &str, keys: &[&str]) -> SourceRecord {
    SourceRecord {
        name: name.into(),
        url: "https://repo.example.org".into(),
        kind: "index".into(),
        public_keys: keys.iter().map(|k| PinnedKey::new(k)).collect(),
        extra_query: None,
    }
}

fn keys(state: &State, name: &str) -> Vec<PinnedKey> {
    state
        .sources()
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.name == name))
        .map(|s| s.public_keys)
        .unwrap_or_default()
}

#[test]
fn a_next_key_is_pinned_beside_its_announcer_which_goes_once_it_signs() -> crate::Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_source(&source("main", &["A", "C"]))?;
    txn.put_source(&source("other", &["A"]))?;
    txn.commit()?;
    assert_eq!(
        keys(&state, "main"),
        [PinnedKey::new("A"), PinnedKey::new("C")]
    );

    let mut txn = state.begin()?;
    txn.announce_key("main", "A", "B")?;
    txn.commit()?;
    let announced = PinnedKey {
        key: "A".into(),
        successor: Some("B".into()),
    };
    assert_eq!(
        keys(&state, "main"),
        [announced, PinnedKey::new("C"), PinnedKey::new("B")]
    );
    let mut txn = state.begin()?;
    txn.retire_keys("main", "B")?;
    txn.commit()?;
    assert_eq!(
        keys(&state, "main"),
        [PinnedKey::new("C"), PinnedKey::new("B")]
    );
    assert_eq!(
        keys(&state, "other"),
        [PinnedKey::new("A")],
        "another source's keys stay"
    );
    Ok(())
}

#[test]
fn what_was_accepted_is_kept_per_channel_and_goes_with_its_source() -> crate::Result<()> {
    let (_dir, state) = open();
    let seen = SeenRecord {
        url: "https://repo.example.org".into(),
        serial: Some(1_764_851_234),
        signed_at: None,
    };
    let mut txn = state.begin()?;
    txn.put_source(&source("main", &["A"]))?;
    txn.set_seen("main", &seen)?;
    txn.set_seen(
        "phonebook/updateurl",
        &SeenRecord {
            serial: None,
            signed_at: Some(u64::MAX),
            ..seen.clone()
        },
    )?;
    txn.commit()?;
    assert_eq!(state.seen("main")?, Some(seen));
    assert_eq!(
        state.seen("phonebook/updateurl")?.and_then(|s| s.signed_at),
        Some(i64::MAX as u64),
        "kept at the most SQLite holds"
    );
    let mut txn = state.begin()?;
    assert!(txn.remove_source("main")?);
    txn.commit()?;
    assert_eq!(state.seen("main")?, None);
    assert!(keys(&state, "main").is_empty());
    Ok(())
}

#[test]
fn the_one_key_a_source_pinned_before_moves_to_the_keys_table() -> crate::Result<()> {
    let (dir, state) = open();
    drop(state);
    // As a database made before sources could pin several keys left it.
    let path = dir.path().join("modhost.db");
    let legacy = rusqlite::Connection::open(&path).and_then(|conn| {
        conn.execute_batch(
            "DROP TABLE modhost_source_keys; DROP TABLE modhost_source_seen;
             ALTER TABLE modhost_sources ADD COLUMN public_key TEXT;
             INSERT INTO modhost_sources (name, url, public_key, extra_query, kind)
                 VALUES ('main', 'https://repo.example.org', 'RWQkey', NULL, 'index'),
                        ('plain', '/srv/repo', NULL, NULL, 'index');
             PRAGMA user_version = 6;",
        )
    });
    assert!(legacy.is_ok(), "{legacy:?}");
    let state = State::open(&path)?;
    assert_eq!(keys(&state, "main"), [PinnedKey::new("RWQkey")]);
    assert!(keys(&state, "plain").is_empty());
    let column = rusqlite::Connection::open(&path).and_then(|conn| {
        conn.prepare(
            "SELECT 1 FROM pragma_table_info('modhost_sources') WHERE name = 'public_key'",
        )?
        .exists([])
    });
    assert_eq!(column.ok(), Some(false), "the old column is gone");
    Ok(())
}
