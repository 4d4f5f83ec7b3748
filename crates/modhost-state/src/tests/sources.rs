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
    txn.follow_keys("main", "A", Some("B"))?;
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
    txn.follow_keys("main", "B", None)?;
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

/// The key ids pinned for `main`, each with its successor.
fn chain(state: &State) -> Vec<(String, Option<String>)> {
    keys(state, "main")
        .into_iter()
        .map(|k| (k.key, k.successor))
        .collect()
}

fn pair(key: &str, successor: Option<&str>) -> (String, Option<String>) {
    (key.to_owned(), successor.map(str::to_owned))
}

/// Follows `main`'s keys after a release signed by `signer` announcing `next`.
fn follow(state: &State, signer: &str, next: Option<&str>) -> crate::Result<()> {
    let mut txn = state.begin()?;
    txn.follow_keys("main", signer, next)?;
    txn.commit()
}

#[test]
fn a_next_key_withdrawn_or_replaced_by_its_announcer_is_unpinned() -> crate::Result<()> {
    let (_dir, state) = open();
    let follow = |signer: &str, next: Option<&str>| follow(&state, signer, next);
    let mut txn = state.begin()?;
    txn.put_source(&source("main", &["A", "C"]))?;
    txn.commit()?;
    follow("A", Some("B"))?;
    // Replaced: B was pinned only because A announced it.
    follow("A", Some("D"))?;
    assert_eq!(
        chain(&state),
        [pair("A", Some("D")), pair("C", None), pair("D", None)]
    );
    // Withdrawn.
    follow("A", None)?;
    assert_eq!(chain(&state), [pair("A", None), pair("C", None)]);
    // A key the administrator pinned stays when its announcement is withdrawn.
    follow("A", Some("C"))?;
    follow("A", None)?;
    assert_eq!(chain(&state), [pair("A", None), pair("C", None)]);
    Ok(())
}

#[test]
fn a_next_key_announcing_its_predecessor_back_keeps_both() -> crate::Result<()> {
    let (_dir, state) = open();
    let follow = |signer: &str, next: Option<&str>| follow(&state, signer, next);
    let mut txn = state.begin()?;
    txn.put_source(&source("main", &["A"]))?;
    txn.commit()?;
    follow("A", Some("B"))?;
    // B signs, announcing A back: A goes as B's predecessor and comes back as its next.
    follow("B", Some("A"))?;
    assert_eq!(chain(&state), [pair("B", Some("A")), pair("A", None)]);
    // A signs again: B goes, and A is pinned in its own right.
    follow("A", None)?;
    assert_eq!(chain(&state), [pair("A", None)]);
    // Announcing itself announces nothing.
    follow("A", Some("A"))?;
    assert_eq!(chain(&state), [pair("A", None)]);
    Ok(())
}

#[test]
fn a_next_key_announced_before_keys_knew_their_announcer_can_still_be_withdrawn()
-> crate::Result<()> {
    let (dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_source(&source("main", &["A"]))?;
    txn.follow_keys("main", "A", Some("B"))?;
    txn.commit()?;
    drop(state);
    // As a database made before `announced_by` left it.
    let path = dir.path().join("modhost.db");
    let legacy = rusqlite::Connection::open(&path).and_then(|conn| {
        conn.execute_batch(
            "ALTER TABLE modhost_source_keys DROP COLUMN announced_by; PRAGMA user_version = 8;",
        )
    });
    assert!(legacy.is_ok(), "{legacy:?}");
    let state = State::open(&path)?;
    assert_eq!(chain(&state), [pair("A", Some("B")), pair("B", None)]);
    let mut txn = state.begin()?;
    txn.follow_keys("main", "A", None)?;
    txn.commit()?;
    assert_eq!(chain(&state), [pair("A", None)]);
    Ok(())
}

#[test]
fn what_was_accepted_only_grows_for_the_same_url() -> crate::Result<()> {
    let (_dir, state) = open();
    let seen = |url: &str, serial: Option<u64>, signed_at: Option<u64>| SeenRecord {
        url: url.into(),
        serial,
        signed_at,
        module: None,
    };
    let set = |record: &SeenRecord| -> crate::Result<()> {
        let mut txn = state.begin()?;
        txn.set_seen("main", record)?;
        txn.commit()
    };
    set(&seen("https://a", Some(10), Some(100)))?;
    // A check that began before the last one finished, keeping what it saw.
    set(&seen("https://a", Some(9), Some(90)))?;
    assert_eq!(
        state.seen("main")?,
        Some(seen("https://a", Some(10), Some(100)))
    );
    set(&seen("https://a", None, Some(120)))?;
    assert_eq!(
        state.seen("main")?,
        Some(seen("https://a", Some(10), Some(120)))
    );
    // A later signing time brings its serial, lower or not: a publisher's serials may
    // restart, and only builds of one second are told apart by them.
    set(&seen("https://a", Some(2), Some(130)))?;
    assert_eq!(
        state.seen("main")?,
        Some(seen("https://a", Some(2), Some(130)))
    );
    set(&seen("https://a", Some(1), Some(130)))?;
    assert_eq!(
        state.seen("main")?,
        Some(seen("https://a", Some(2), Some(130)))
    );
    set(&seen("https://a", Some(10), Some(100)))?;
    assert_eq!(
        state.seen("main")?,
        Some(seen("https://a", Some(2), Some(130))),
        "a check of an earlier second, finishing late, changes nothing"
    );
    // Another URL starts over.
    set(&seen("https://b", Some(3), None))?;
    assert_eq!(state.seen("main")?, Some(seen("https://b", Some(3), None)));
    // The module first offered from a URL stays; another URL forgets it.
    let offering = |url: &str, module: &str| SeenRecord {
        module: Some(module.into()),
        ..seen(url, None, None)
    };
    set(&offering("https://b", "phonebook"))?;
    set(&offering("https://b", "core"))?;
    assert_eq!(
        state.seen("main")?.and_then(|s| s.module).as_deref(),
        Some("phonebook")
    );
    set(&offering("https://c", "core"))?;
    assert_eq!(
        state.seen("main")?.and_then(|s| s.module).as_deref(),
        Some("core")
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
        module: None,
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

#[test]
fn a_removed_source_leaves_its_modules_bound_to_none() -> crate::Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.put_source(&source("main", &["A"]))?;
    txn.put_source(&source("other", &["B"]))?;
    txn.set_module_source("core", "main")?;
    txn.set_module_source("phonebook", "other")?;
    txn.commit()?;
    let mut txn = state.begin()?;
    assert!(txn.remove_source("main")?);
    // A new source of the same name, on another server with another key, must not find
    // `core` waiting for it: it is as if installed from a file until attached.
    txn.put_source(&SourceRecord {
        url: "https://elsewhere.example.org".into(),
        ..source("main", &["Z"])
    })?;
    txn.commit()?;
    assert_eq!(state.module_source("core")?, None);
    assert_eq!(state.module_source("phonebook")?.as_deref(), Some("other"));
    Ok(())
}
