//! A root an administrator damaged — its state database emptied or replaced by another
//! program's or restored from another time, one of its directories replaced by a link —
//! is refused or kept as it is found: nothing of it, and nothing outside it, is removed.

use modhost_test_support::{Root, arg, package, package_at};

use crate::root;

#[test]
fn an_emptied_or_foreign_database_or_a_linked_directory_is_refused_and_nothing_removed() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let database = root.path().join("modhost.db");
    let wal = |suffix: &str| root.path().join(format!("modhost.db{suffix}"));
    let reset = |contents: &[u8]| {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(wal(suffix));
        }
        std::fs::write(&database, contents).unwrap_or_else(|e| panic!("{e}"));
    };
    let kept = std::fs::read(&database).unwrap_or_else(|e| panic!("{e}"));
    root.ok(&["list"]);
    let modules = root.tree("modules");
    let data = root.tree("data");
    assert!(!modules.is_empty() && !data.is_empty());

    // Emptied (`> modhost.db`, a failed copy): not taken for a new root, which would
    // list no module and keep every one's files as unclaimed — not even by a command
    // that only reads.
    reset(b"");
    for args in [
        &["list"][..],
        &["info", "core"],
        &["recover"],
        &["hook", "lookup"],
    ] {
        let run = root.fails(args);
        assert!(
            run.stderr
                .contains("modhost.db` holds no table, but the root holds `modules`")
                && run.stderr.contains("restore the root from a backup, its modhost.db together with its modules/ and data/"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            (root.tree("modules"), root.tree("data")),
            (modules.clone(), data.clone())
        );
    }

    // Emptied with a -wal left from a crash, or a database of no table at all (what a
    // VACUUM of a dropped schema leaves): the same.
    reset(b"");
    std::fs::write(wal("-wal"), vec![7u8; 12_288]).unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&["list"]);
    assert!(run.stderr.contains("holds no table"), "{}", run.stderr);
    reset(b"");
    root.write_state("CREATE TABLE t (x); DROP TABLE t; VACUUM");
    let run = root.fails(&["recover"]);
    assert!(run.stderr.contains("holds no table"), "{}", run.stderr);
    assert_eq!(
        (root.tree("modules"), root.tree("data")),
        (modules.clone(), data.clone())
    );
    // Made by a newer modhost: left for it.
    reset(&kept);
    root.write_state("PRAGMA user_version = 999");
    let run = root.fails(&["list"]);
    assert!(
        run.stderr.contains("it was made by a newer modhost"),
        "{}",
        run.stderr
    );

    // Another program's database copied over it: refused, and left as it was found.
    // Whatever schema version the other program gave it; not even its mode is changed.
    reset(b"");
    root.write_state(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); PRAGMA user_version = 5",
    );
    let mode = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    let readable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    std::fs::set_permissions(&database, readable).unwrap_or_else(|e| panic!("{e}"));
    let foreign = std::fs::read(&database).unwrap_or_else(|e| panic!("{e}"));
    for args in [&["list"][..], &["info", "core"], &["recover"]] {
        let run = root.fails(args);
        assert!(
            run.stderr.contains(
                "it is not a modhost state database: it holds tables (`users`) and none of modhost's"
            ),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read(&database).ok().as_deref(), Some(&foreign[..]));
        assert_eq!(mode(&database), Some(0o644));
        assert_eq!(
            (root.tree("modules"), root.tree("data")),
            (modules.clone(), data.clone())
        );
    }
    // Given as a root, a directory holding another program's database gets nothing
    // made beside it.
    let elsewhere = root.path().with_file_name("someones");
    std::fs::create_dir_all(&elsewhere).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&database, elsewhere.join("modhost.db")).unwrap_or_else(|e| panic!("{e}"));
    let run = Root::output(
        std::process::Command::new(env!("CARGO_BIN_EXE_modhost"))
            .arg("--root")
            .arg(&elsewhere)
            .arg("list"),
    );
    assert!(
        !run.success && run.stderr.contains("none of modhost's"),
        "{}",
        run.stderr
    );
    let names: Vec<_> = std::fs::read_dir(&elsewhere)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(names, ["modhost.db"]);
    // modhost's own, copied without its schema version (through `.dump`): its
    // migrations would run again over its tables.
    reset(&kept);
    root.write_state("PRAGMA user_version = 0");
    let run = root.fails(&["list"]);
    assert!(
        run.stderr
            .contains("it holds modhost's tables but not its schema version"),
        "{}",
        run.stderr
    );
    reset(&kept);
    root.ok(&["list"]);

    // `staging/` (or `modules/`, `data/`, `cache/`) made a link to someone's directory:
    // never followed, so recovery empties nothing there.
    let elsewhere = root.path().with_file_name("elsewhere");
    std::fs::create_dir_all(elsewhere.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(elsewhere.join("sub/precious"), "mine").unwrap_or_else(|e| panic!("{e}"));
    for dir in ["staging", "cache"] {
        let at = root.path().join(dir);
        std::fs::remove_dir_all(&at).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&elsewhere, &at).unwrap_or_else(|e| panic!("{e}"));
        for args in [&["list"][..], &["recover"]] {
            let run = root.fails(args);
            assert!(
                run.stderr.contains(&format!(
                    "{dir}`: a link stands where modhost keeps a directory"
                )),
                "{args:?}: {}",
                run.stderr
            );
            assert!(elsewhere.join("sub/precious").is_file(), "{dir} {args:?}");
        }
        std::fs::remove_file(&at).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(&at).unwrap_or_else(|e| panic!("{e}"));
    }
    // What no record names and no interrupted change made is kept, and said whatever
    // the command.
    let ghost = root.path().join("data/ghost/data-x");
    std::fs::create_dir_all(&ghost).unwrap_or_else(|e| panic!("{e}"));
    let run = root.ok(&["list"]);
    assert!(
        run.stderr
            .contains("found 1 directory under modules/ and data/ that no record")
            && run.stderr.contains("restoring them together mends it"),
        "{}",
        run.stderr
    );
    assert!(ghost.is_dir());
    std::fs::remove_dir_all(root.path().join("data/ghost")).unwrap_or_else(|e| panic!("{e}"));
    // One level down, a link where a module's directories are is never followed either:
    // a stray one goes as a link; a module's own stays, and changes to it are refused.
    let stray = root.path().join("modules/zzz");
    std::os::unix::fs::symlink(&elsewhere, &stray).unwrap_or_else(|e| panic!("{e}"));
    root.ok(&["recover"]);
    assert!(
        std::fs::symlink_metadata(&stray).is_err(),
        "the stray link went"
    );
    assert!(elsewhere.join("sub/precious").is_file());
    let data = root.path().join("data/core");
    let moved = root.path().with_file_name("moved-core-data");
    std::fs::rename(&data, &moved).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&moved, &data).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(moved.join("precious"), "mine").unwrap_or_else(|e| panic!("{e}"));
    root.ok(&["list"]);
    let run = root.fails(&["disable", "core"]);
    assert!(
        run.stderr
            .contains("a link stands where modhost keeps a directory of its own"),
        "{}",
        run.stderr
    );
    assert!(
        moved.join("precious").is_file(),
        "nothing beside it was swept"
    );
    std::fs::remove_file(&data).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&moved, &data).unwrap_or_else(|e| panic!("{e}"));
    root.ok(&["hook", "lookup", "--payload", "2025550100"]);
}

#[test]
fn what_a_first_install_killed_half_way_left_is_made_into_a_root() {
    // Killed before its database was made: empty directories and the users file.
    let root = root();
    for dir in ["modules", "data", "cache"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(root.path().join("users"), "").unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&["list"]);
    assert!(
        run.stderr.contains("no modhost root at") && !run.stderr.contains("holds `modules`"),
        "{}",
        run.stderr
    );
    root.ok(&["install", arg(&package("core"))]);
    root.ok(&["hook", "lookup", "--payload", "2025550100"]);
    // A directory of someone's that holds something under such a name is still refused.
    let other = root.path().with_file_name("someones-admin");
    std::fs::create_dir_all(other.join("modules/core")).unwrap_or_else(|e| panic!("{e}"));
    let run = Root::output(
        std::process::Command::new(env!("CARGO_BIN_EXE_modhost"))
            .arg("--root")
            .arg(&other)
            .arg("list"),
    );
    assert!(run.stderr.contains("but holds `modules`"), "{}", run.stderr);
}

#[test]
fn a_database_restored_from_before_an_install_and_an_upgrade_loses_none_of_their_files() {
    let root = root();
    let snapshot = || snapshot(&root);
    let restore = |database: &Database| restore(&root, database);
    root.ok(&["install", arg(&package("core"))]);
    let before = snapshot();
    root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let after = snapshot();
    let modules = root.tree("modules");
    let data = root.tree("data");

    // Restored alone, from before phonebook: its versions, backup and data stay, said.
    restore(&before);
    for args in [
        &["list"][..],
        &["hook", "lookup", "--payload", "2025550100"],
    ] {
        let run = root.ok(args);
        assert!(
            run.stderr
                .contains("found 4 directories under modules/ and data/ that no record")
                && run
                    .stderr
                    .contains("restored apart from the root's modules/ and data/"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let recovered = root.ok(&["recover", "--json"]).json();
    assert_eq!(recovered["removed"], serde_json::json!([]), "{recovered}");
    let unclaimed = recovered["unclaimed"].as_array().map_or(0, Vec::len);
    assert_eq!(unclaimed, 4, "{recovered}");
    let said = root.ok(&["recover"]);
    assert!(
        said.stdout
            .contains("kept 4 directories that no record names")
            && said
                .stderr
                .contains("`modhost recover --remove-unclaimed` removes them"),
        "{}{}",
        said.stdout,
        said.stderr
    );
    assert_eq!((root.tree("modules"), root.tree("data")), (modules, data));

    // Restored with its own database, the root is whole again.
    restore(&after);
    let run = root.ok(&["list"]);
    assert!(!run.stderr.contains("kept"), "{}", run.stderr);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["version"], "2.0.0", "{info}");
    root.ok(&["rollback", "phonebook"]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["version"], "1.0.0", "{info}");

    // Once the administrator is sure nothing needs them, they go when asked.
    restore(&before);
    let removed = root.ok(&["recover", "--remove-unclaimed", "--json"]).json();
    assert_eq!(removed["unclaimed"], serde_json::json!([]), "{removed}");
    assert!(
        !root.path().join("modules/phonebook").exists()
            && !root.path().join("data/phonebook").exists(),
        "{removed}"
    );
    assert!(root.path().join("data/core").is_dir());
    let run = root.ok(&["list"]);
    assert!(!run.stderr.contains("kept"), "{}", run.stderr);
    root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    let run = root.ok(&["hook", "lookup", "--payload", "2025550100"]);
    assert!(run.stdout.contains("Alice Example"), "{}", run.stdout);
}

#[test]
fn an_uninstall_or_a_crash_under_a_database_restored_from_before_keeps_what_it_does_not_name() {
    let root = root();
    let snapshot = || snapshot(&root);
    let restore = |database: &Database| restore(&root, database);
    let dirs = |kind: &str| root.dirs(&format!("{kind}/phonebook"));
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&package_at("phonebook", "1.0.0")),
    ]);
    let v1 = snapshot();
    let v1_dirs = (dirs("modules"), dirs("data"));
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let v2 = snapshot();

    // Uninstalled under the database from before the upgrade: only what it names goes.
    restore(&v1);
    root.ok(&["uninstall", "phonebook"]);
    let (modules, data) = (dirs("modules"), dirs("data"));
    assert!(
        modules.len() == 1 && modules.is_disjoint(&v1_dirs.0),
        "{modules:?}"
    );
    assert!(data.len() == 1 && data.is_disjoint(&v1_dirs.1), "{data:?}");
    restore(&v2);
    let run = root.ok(&["hook", "lookup", "--payload", "2025550100"]);
    assert!(
        run.stdout.contains("Alice Example <+12025550100>"),
        "{}",
        run.stdout
    );

    // An upgrade killed right after its commit, then the database restored from before
    // it: what the upgrade made stays (said), what it replaced goes once it is named by
    // nothing.
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["recover", "--remove-unclaimed"]);
    root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    let before = snapshot();
    let mut upgrade = root.command(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    upgrade.env("MODHOST_FAULT", "apply:committed");
    let run = Root::output(&mut upgrade);
    assert!(
        !run.success && run.stderr.contains("aborting at apply:committed"),
        "{}",
        run.stderr
    );
    let after = snapshot();
    let made = (dirs("modules"), dirs("data"));
    restore(&before);
    let run = root.ok(&["list"]);
    assert!(run.stderr.contains("found 2 directories"), "{}", run.stderr);
    assert_eq!((dirs("modules"), dirs("data")), made);
    restore(&after);
    let run = root.ok(&["hook", "lookup", "--payload", "2025550100"]);
    assert!(
        run.stdout.contains("Alice Example <+12025550100>"),
        "{}",
        run.stdout
    );
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(
        (info["version"].as_str(), info["status"].as_str()),
        (Some("2.0.0"), Some("enabled")),
        "{info}"
    );
    root.ok(&["rollback", "phonebook"]);
}

/// A root's state database and its -wal, if any: what a backup of the database alone
/// holds (a crash may leave a -wal; a CLI that ended leaves none).
type Database = (Vec<u8>, Option<Vec<u8>>);

/// `root`'s state database as it is now.
fn snapshot(root: &Root) -> Database {
    let database = root.path().join("modhost.db");
    (
        std::fs::read(&database).unwrap_or_else(|e| panic!("{e}")),
        std::fs::read(root.path().join("modhost.db-wal")).ok(),
    )
}

/// Restores `database` into `root` alone, with no -wal or -shm but its own.
fn restore(root: &Root, (db, wal): &Database) {
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(root.path().join(format!("modhost.db{suffix}")));
    }
    std::fs::write(root.path().join("modhost.db"), db).unwrap_or_else(|e| panic!("{e}"));
    if let Some(wal) = wal {
        std::fs::write(root.path().join("modhost.db-wal"), wal).unwrap_or_else(|e| panic!("{e}"));
    }
}
