//! Roots an embedding application opens: one made for a failed change, many hosts making
//! one root at once, and recovering what a crash or an interrupted change left.

use super::*;

#[test]
fn a_root_made_for_a_failed_change_is_kept_while_another_host_has_it_open() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("fresh");
    // Two hosts open a root that did not exist, as two first installs at once do.
    let made = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    let other = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(made.discard_if_unused().ok(), Some(false));
    assert!(
        root.join("modhost.db").exists(),
        "removed from under the other host"
    );
    other
        .install(&[package("core")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    drop(other);
    // Alone, a root made and left empty is removed.
    let alone = dir.path().join("alone");
    let host = Host::open(&alone).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.discard_if_unused().ok(), Some(true));
    assert!(!alone.exists());
}

#[test]
fn hosts_making_one_new_root_at_once_all_open_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for round in 0..10 {
        let root = dir.path().join(format!("fresh{round}"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let opening: Vec<_> = (0..6)
            .map(|_| {
                let (root, barrier) = (root.clone(), std::sync::Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    Host::open(&root).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for thread in opening {
            let opened = thread.join().unwrap_or_else(|_| panic!("panicked"));
            // One seeing another's directories before its database is waiting for it,
            // not refusing a directory that is no root.
            assert_eq!(opened, Ok(()), "round {round}");
        }
    }
}

#[test]
fn discarding_a_root_made_in_an_existing_directory_removes_only_what_opening_made() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("etc");
    std::fs::create_dir_all(root.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("extensions.conf"), "precious").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("sub/b.conf"), "x").unwrap_or_else(|e| panic!("{e}"));
    // A link that was there stays, and what it leads to is never touched.
    std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap_or_else(|e| panic!("{e}"));
    let names = |path: &std::path::Path| -> std::collections::BTreeSet<_> {
        std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<std::io::Result<_>>()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let before = names(&root);
    let host = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    assert!(names(&root).len() > before.len(), "opening made nothing");
    assert!(
        host.install(&[root.join("nosuch.tgz")], Options::default())
            .is_err()
    );
    assert_eq!(host.discard_if_unused().ok(), Some(true));
    assert_eq!(names(&root), before);
    assert_eq!(names(&root.join("sub")).len(), 1);
    assert_eq!(
        std::fs::read_to_string(root.join("extensions.conf"))
            .ok()
            .as_deref(),
        Some("precious")
    );
    assert!(!Host::is_root(&root));
    // A root that was there before is never discarded, though nothing is installed.
    let host = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    drop(host);
    let host = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.discard_if_unused().ok(), Some(false));
    assert!(Host::is_root(&root));

    // A directory that is no root but holds what a root holds (FreePBX's admin directory
    // has a `modules/`) is refused, and nothing in it is touched: recovery would remove
    // what no record names.
    let admin = dir.path().join("admin");
    std::fs::create_dir_all(admin.join("modules/core")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(admin.join("modules/core/module.xml"), "<module/>")
        .unwrap_or_else(|e| panic!("{e}"));
    let opened = Host::open(&admin).map(|_| ());
    assert!(
        matches!(&opened, Err(modhost::Error::NotARootButHolds { entry, .. }) if entry == "modules"),
        "{opened:?}"
    );
    assert_eq!(names(&admin).len(), 1);
    assert!(admin.join("modules/core/module.xml").is_file());

    // Opening that fails after making the root's directories (here its modhost.toml is
    // a directory, which is no configuration) takes them away again: the directory is
    // as it was, and is not refused ever after for holding a root's names.
    let config_dir = dir.path().join("config-dir");
    std::fs::create_dir_all(config_dir.join("modhost.toml")).unwrap_or_else(|e| panic!("{e}"));
    let before = names(&config_dir);
    assert!(Host::open(&config_dir).is_err());
    assert_eq!(names(&config_dir), before);
    std::fs::remove_dir(config_dir.join("modhost.toml")).unwrap_or_else(|e| panic!("{e}"));
    Host::open(&config_dir).unwrap_or_else(|e| panic!("{e}"));

    // A root before its first change (its modhost.toml written), its cache seeded: a
    // failed first change takes what it made, never the administrator's seeded cache.
    let seeded = dir.path().join("seeded");
    std::fs::create_dir_all(seeded.join("cache")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(seeded.join("cache/kept"), "compiled").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(seeded.join("modhost.toml"), "").unwrap_or_else(|e| panic!("{e}"));
    let before = names(&seeded);
    let host = Host::open(&seeded).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        host.install(&[seeded.join("nosuch.tgz")], Options::default())
            .is_err()
    );
    assert_eq!(host.discard_if_unused().ok(), Some(true));
    assert_eq!(names(&seeded), before);
    assert!(seeded.join("cache/kept").is_file());
    // A FIFO where the users file would be is someone's, and never waited on.
    let piped = dir.path().join("piped");
    std::fs::create_dir_all(&piped).unwrap_or_else(|e| panic!("{e}"));
    let made = std::process::Command::new("mkfifo")
        .arg(piped.join("users"))
        .status();
    assert!(made.is_ok_and(|s| s.success()));
    let opened = Host::open(&piped).map(|_| ());
    assert!(
        matches!(&opened, Err(modhost::Error::NotARootButHolds { entry, .. }) if entry == "users"),
        "{opened:?}"
    );
}

#[test]
fn recover_removes_the_half_written_files_a_crash_left_and_no_others() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let write = |path: std::path::PathBuf, old: bool| {
        std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))
            .and_then(|()| std::fs::write(&path, b"half"))
            .and_then(|()| match old {
                true => std::fs::File::options()
                    .write(true)
                    .open(&path)?
                    .set_modified(hour_ago),
                false => Ok(()),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        path
    };
    // A compile's and a reload's, cut short long ago; one being written now; and files
    // of other names.
    let left = [
        write(dir.path().join("cache/.modhost-partial-a1"), true),
        write(dir.path().join("etc/.modhost-partial-b2"), true),
    ];
    let kept = [
        write(dir.path().join("cache/.modhost-partial-now"), false),
        write(dir.path().join("etc/notes.conf"), true),
    ];
    let recovery = host.recover().unwrap_or_else(|e| panic!("{e}"));
    for path in &left {
        assert!(
            !path.exists() && recovery.removed.contains(path),
            "{path:?}: {recovery:?}"
        );
    }
    for path in &kept {
        assert!(path.exists(), "{path:?}");
    }
}

#[test]
fn recover_reports_a_leftover_it_cannot_remove_found_after_the_host_opened() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    // Left by a change run as another user and killed, after this host opened the root:
    // the directory, and the intent that listed it before making it.
    let stuck = dir.path().join("data/gone/data-1");
    let file = stuck.join("recording.wav");
    let intent = dir.path().join("staging/intent-1-2-3");
    std::fs::create_dir_all(&stuck)
        .and_then(|()| std::fs::write(&file, b"x"))
        .and_then(|()| std::fs::write(&intent, "after none\nmade data/gone/data-1\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let immutable = |flag: &str| chattr(flag, &file);
    if !immutable("+i") {
        eprintln!("skipped: chattr +i is not allowed here");
        return;
    }
    let recovery = host.recover();
    let _ = immutable("-i");
    let recovery = recovery.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        recovery.stuck.iter().any(|(path, _)| *path == stuck),
        "{recovery:?}"
    );
    assert!(
        recovery.to_string().contains("cannot remove leftover `"),
        "{recovery}"
    );
    assert!(recovery.removed.is_empty(), "{recovery:?}");
    assert!(
        recovery.unclaimed.is_empty(),
        "said as stuck only: {recovery:?}"
    );
    // The intent stays until what it lists could go.
    assert!(intent.is_file());
    let recovery = host.recover().unwrap_or_else(|e| panic!("{e}"));
    assert!(recovery.removed.contains(&stuck), "{recovery:?}");
    assert!(!intent.exists() && !stuck.exists());
}

#[test]
fn recover_sweeps_only_what_an_interrupted_change_listed_and_no_record_names() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("core")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let installed = std::fs::read_dir(root.join("data/core"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap_or_else(|| panic!("core has a data directory"));
    let outside_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let outside = outside_dir.path().to_owned();
    let outside_name = outside
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let make = |path: &std::path::Path| {
        std::fs::create_dir_all(path)
            .and_then(|()| std::fs::write(path.join("kept"), "mine"))
            .unwrap_or_else(|e| panic!("{e}"));
    };
    let crashed = root.join("data/core/data-crashed");
    let first_install = root.join("modules/newmod");
    let unlisted = root.join("data/core/data-restored");
    make(&crashed);
    make(&first_install.join("1.0-x"));
    make(&unlisted);
    make(&outside.join("x"));
    std::os::unix::fs::symlink(&outside, root.join("data/linked"))
        .unwrap_or_else(|e| panic!("{e}"));
    let installed_line = installed
        .strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let noted = modhost_state::State::open(&root.join("modhost.db"))
        .and_then(|state| state.noted_intent())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the install noted its intent"));
    let intent = |name: String, text: &str| {
        std::fs::write(root.join("staging").join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    // Killed before its commit (the database still notes the intent it began after):
    // what it made goes, but not the installed module's own (named by its record), a
    // path out of the root, one through a link, nor a line the crash cut short; what it
    // would have replaced stays.
    intent(
        "intent-1".to_owned(),
        &format!(
            "after {noted}\nmade data/core/data-crashed\nmade modules/newmod\n\
             made {installed_line}\nmade data/../../{outside_name}\nmade data/linked/x\n\
             replaced data/core/data-restored\nmade data/core/data-res"
        ),
    );
    // Killed after its commit (the database notes it): what it replaced goes, what it
    // made stays.
    let replaced = root.join("data/core/data-before");
    let made_then = root.join("data/core/data-after");
    make(&replaced);
    make(&made_then);
    intent(
        format!("intent-{noted}"),
        "after none\nmade data/core/data-after\nreplaced data/core/data-before\n",
    );
    // One the database cannot tell (restored from another time): nothing goes, and it
    // stays for the database it belongs to.
    let other_time = root.join("data/core/data-other");
    make(&other_time);
    intent(
        "intent-2".to_owned(),
        "after 5\nmade data/core/data-other\n",
    );
    // One whose first line a crash cut short: nothing it lists was made yet.
    intent("intent-3".to_owned(), "aft");
    let recovery = host.recover().unwrap_or_else(|e| panic!("{e}"));
    assert!(!crashed.exists() && !first_install.exists(), "{recovery:?}");
    assert!(installed.is_dir(), "{recovery:?}");
    assert!(unlisted.join("kept").is_file(), "{recovery:?}");
    assert!(!replaced.exists() && made_then.join("kept").is_file());
    assert!(other_time.join("kept").is_file(), "{recovery:?}");
    let mut unclaimed = recovery.unclaimed.clone();
    unclaimed.sort();
    assert_eq!(
        unclaimed,
        [made_then, other_time.clone(), unlisted],
        "{recovery:?}"
    );
    assert!(outside.join("x/kept").is_file(), "{recovery:?}");
    let staged: Vec<_> = std::fs::read_dir(root.join("staging"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(staged, ["intent-2"], "{recovery:?}");
    let said = recovery.to_string();
    assert!(
        said.contains("kept 3 directories that no record names") && said.contains("data-restored"),
        "{said}"
    );
    // Asked to, what no record names goes, and the intent no database can tell with it.
    let recovery = host
        .recover_with(modhost::RecoverOptions {
            remove_unclaimed: true,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !other_time.exists() && recovery.unclaimed.is_empty(),
        "{recovery:?}"
    );
    assert!(!root.join("staging/intent-2").exists());
    assert!(installed.is_dir(), "{recovery:?}");
    host.dispatch("lookup", "2025550100")
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_change_that_cannot_sweep_what_it_replaced_leaves_an_intent_listing_only_that() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let host = Host::open(root).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("core")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let children = |sub: &str| -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(root.join(sub))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    };
    let Ok([old_data]) = <[_; 1]>::try_from(children("data/core")) else {
        panic!("one data directory: {:?}", children("data/core"));
    };
    let file = old_data.join("recording.wav");
    std::fs::write(&file, b"x").unwrap_or_else(|e| panic!("{e}"));
    let immutable = |flag: &str| chattr(flag, &file);
    if !immutable("+i") {
        eprintln!("skipped: chattr +i is not allowed here");
        return;
    }
    // The same version again: its old files and data are replaced, the new ones made.
    let again = Options {
        reinstall: true,
        ..Options::default()
    };
    let reinstalled = host.install(&[package("core")], again);
    let intents = children("staging");
    let listed: Vec<String> = intents
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect();
    let recovery = host.recover();
    let _ = immutable("-i");
    reinstalled.unwrap_or_else(|e| panic!("{e}"));
    // Only the directory that could not go: what the change made is named now, and must
    // never be swept, even under a database restored later.
    let relative = old_data
        .strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    assert_eq!(
        listed,
        [format!("leftovers\nreplaced {relative}\n")],
        "{intents:?}"
    );
    let recovery = recovery.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        recovery.stuck.iter().any(|(path, _)| *path == old_data) && recovery.unclaimed.is_empty(),
        "{recovery:?}"
    );
    let recovery = host.recover().unwrap_or_else(|e| panic!("{e}"));
    assert!(recovery.removed.contains(&old_data), "{recovery:?}");
    assert!(children("staging").is_empty());
    assert_eq!(children("data/core").len(), 1);
    host.dispatch("lookup", "2025550100")
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Whether `chattr FLAG FILE` succeeded: only root may make a file immutable (`+i`), and
/// only where the file system can.
fn chattr(flag: &str, file: &std::path::Path) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(file)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn an_interrupted_change_stops_before_it_commits_and_its_root_goes() {
    let base = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = base.path().join("new");
    let host = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    // What the command line's SIGINT handler does while the change runs.
    host.interruption().cancel();
    let installed = host.install(&[package("core")], Options::default());
    assert!(
        matches!(installed, Err(modhost::Error::Interrupted)),
        "{installed:?}"
    );
    assert_eq!(host.list().map(|l| l.len()).ok(), Some(0));
    // Code it compiled is not kept for it: the change was not wanted.
    assert_eq!(host.discard_if_unused().ok(), Some(true));
    assert!(!root.exists(), "the root made for it is gone");
}
