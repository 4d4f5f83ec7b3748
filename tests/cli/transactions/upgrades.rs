//! Upgrades with backups and rollbacks: data migrated and restored, a failing upgrade
//! undone, downgrades refused.

use modhost_test_support::{Root, arg, package, package_at, packages_dir};

use super::{fail_next_call, lookup, phonebook_root, status, version};
use crate::root;

#[test]
fn upgrade_migrates_data_keeps_a_backup_and_rollback_restores_everything() {
    let root = phonebook_root();
    assert_eq!(lookup(&root), "Alice Example");

    let run = root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{}",
        run.stdout
    );
    assert_eq!(lookup(&root), "Alice Example <+12025550100>");
    let rows = root
        .ok(&["rows", "--json", "phonebook", "phonebook_entries"])
        .json();
    assert_eq!(
        rows["columns"],
        serde_json::json!(["id", "name", "number", "e164"])
    );
    assert_eq!(
        rows["rows"][1],
        serde_json::json!([2, "Bob Example", "2025550101", "+12025550101"])
    );
    assert_eq!(
        root.ok(&["kv", "--json", "phonebook"]).json(),
        serde_json::json!({"schema": "2"})
    );
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["backup_version"], "1.0.0");

    let run = root.ok(&["rollback", "phonebook"]);
    assert!(
        run.stdout.contains("rolled back phonebook 2.0.0 -> 1.0.0"),
        "{}",
        run.stdout
    );
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    assert_eq!(lookup(&root), "Alice Example");
    let rows = root
        .ok(&["rows", "--json", "phonebook", "phonebook_entries"])
        .json();
    assert_eq!(rows["columns"], serde_json::json!(["id", "name", "number"]));
    assert_eq!(
        root.ok(&["kv", "--json", "phonebook"]).json(),
        serde_json::json!({})
    );
    assert_eq!(
        root.dirs("modules/phonebook").len(),
        1,
        "the upgraded version's files are gone"
    );
    assert_eq!(root.dirs("data/phonebook").len(), 1, "and its data");
    let again = root.fails(&["rollback", "phonebook"]);
    assert!(
        again
            .stderr
            .contains("`phonebook` has no previous version to roll back to"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_failing_upgrade_leaves_the_old_version_enabled_with_its_data_as_it_was() {
    let root = phonebook_root();
    for (mode, expected) in [
        ("error", "upgrade(1.0.0) failed: upgrade failed on purpose"),
        ("trap", "upgrade(1.0.0) trapped"),
        ("loop", "upgrade(1.0.0) was stopped after its 1.5s deadline"),
        ("oom", "upgrade(1.0.0) trapped"),
        // SQLite, interrupted in a write, rolls back the whole transaction: the change is
        // refused all the same, naming the module, and nothing of it is kept.
        (
            "runaway",
            "upgrade(1.0.0) was stopped after its 1.5s deadline",
        ),
    ] {
        let data = fail_next_call(&root, mode);
        let before = root.fingerprint();
        let run = root.fails(&["upgrade", arg(&package_at("phonebook", "3.0.0"))]);
        assert!(
            run.stderr.contains("module `phonebook` 3.0.0"),
            "{mode}: names the module:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(expected),
            "{mode}: expected `{expected}` in:\n{}",
            run.stderr
        );
        assert_eq!(
            root.fingerprint(),
            before,
            "{mode}: files, record, kv and rows are as they were"
        );
        assert!(
            !data.join("damage").exists(),
            "{mode}: the data directory is untouched"
        );
        assert_eq!(
            lookup(&root),
            "Alice Example",
            "{mode}: the old version still works"
        );
    }
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(
        (info["version"].as_str(), info["status"].as_str()),
        (Some("1.0.0"), Some("enabled"))
    );
    assert_eq!(info["tables"], serde_json::json!(["phonebook_entries"]));
}

#[test]
fn upgradeall_uses_the_package_directory_and_downgrades_are_refused() {
    let root = phonebook_root();
    let dir = root.path().with_file_name("packages");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    for rawname in ["core", "voicemail"] {
        assert!(std::fs::copy(package(rawname), dir.join(format!("{rawname}.tgz"))).is_ok());
    }
    assert!(std::fs::copy(package_at("phonebook", "1.0.0"), dir.join("pb1.tgz")).is_ok());
    assert!(std::fs::copy(package_at("phonebook", "2.0.0"), dir.join("pb2.tgz")).is_ok());
    // What upgradeall would apply, shown first: read, nothing changed.
    let before = root.fingerprint();
    let shown = root
        .ok(&["showupgrades", "--from", arg(&dir), "--json"])
        .json();
    assert_eq!(
        shown,
        serde_json::json!([{"rawname": "phonebook", "installed": "1.0.0", "version": "2.0.0",
                            "package": dir.join("pb2.tgz").display().to_string()}])
    );
    assert_eq!(
        root.fingerprint(),
        before,
        "showing upgrades changes nothing"
    );
    let run = root
        .ok(&["upgradeall", "--from", arg(&dir), "--json"])
        .json();
    assert_eq!(
        run,
        serde_json::json!([{"rawname": "phonebook", "action": "upgraded", "from": "1.0.0", "to": "2.0.0"}])
    );
    assert_eq!(
        root.ok(&["upgradeall", "--from", arg(&dir)]).stdout,
        "nothing to do\n"
    );
    assert_eq!(
        root.ok(&["showupgrades", "--from", arg(&dir)]).stdout,
        format!(
            "no upgrades: `{}` holds no newer version of an installed module\n",
            dir.display()
        )
    );
    let run = root
        .ok(&["installlocal", "--from", arg(&dir), "--json"])
        .json();
    assert_eq!(
        run,
        serde_json::json!([{"rawname": "voicemail", "action": "installed", "from": null, "to": "16.0.12"}])
    );

    let refused = root.fails(&["upgrade", arg(&package_at("phonebook", "1.0.0"))]);
    assert!(
        refused
            .stderr
            .contains("`phonebook` 2.0.0 is installed; 1.0.0 would be a downgrade"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("a rollback returns to 1.0.0, which its last upgrade kept"),
        "{}",
        refused.stderr
    );
    let refused = root.ok(&["install", arg(&package("core"))]);
    assert!(
        refused
            .stderr
            .contains("`core` 16.0.40 is already installed"),
        "{}",
        refused.stderr
    );
    let refused = root.ok(&[
        "upgrade",
        arg(&packages_dir().join("voicemail-16.0.12.tgz")),
    ]);
    assert!(
        refused
            .stderr
            .contains("`voicemail` 16.0.12 is already installed"),
        "{}",
        refused.stderr
    );
}

#[test]
fn installing_by_name_finds_the_newest_package_in_the_directory() {
    let root = root();
    root.configure(&format!("packages = {:?}\n", packages_dir()));
    root.ok(&["install", "core", "voicemail"]);
    assert_eq!(version(&root, "voicemail"), "16.0.12");
    let missing = root.fails(&["install", "nosuchmodule"]);
    assert!(
        missing.stderr.contains("no package of `nosuchmodule`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn rollback_checks_the_dependencies_of_the_version_it_returns_to() {
    let root = phonebook_root();
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    root.ok(&["uninstall", "--force", "core"]);
    let before = root.fingerprint();
    let run = root.fails(&["rollback", "phonebook"]);
    assert!(
        run.stderr
            .contains("`phonebook` 1.0.0 requires module `core")
            && run.stderr.contains("not installed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: install what it requires first (`modhost install` with its package")
            && run
                .stderr
                .contains("--force does it anyway, setting the requirements aside"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    root.ok(&["rollback", "--force", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}

#[test]
fn a_backup_whose_files_were_removed_by_hand_is_never_rolled_back_to() {
    let root = phonebook_root();
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    // The administrator "cleans old versions"; the compiled code stays in the cache.
    let modules = root.path().join("modules/phonebook");
    let backups = std::fs::read_dir(&modules)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("1.0.0-"))
        .map(|e| e.path())
        .collect::<Vec<_>>();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(std::fs::remove_dir_all(&backups[0]).is_ok());
    let info = root.ok(&["info", "phonebook"]);
    assert!(
        info.stdout
            .contains("1.0.0, which cannot be used: component `"),
        "{}",
        info.stdout
    );
    let before = root.fingerprint();
    let run = root.fails(&["rollback", "phonebook"]);
    assert!(
        run.stderr
            .contains("the backup of `phonebook` (1.0.0) cannot be used: component `")
            && run.stderr.contains("is missing")
            && run.stderr.contains(
                "2.0.0 stays installed, and the only way back to 1.0.0 without the backup is \
                 to uninstall `phonebook`"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert_eq!(version(&root, "phonebook"), "2.0.0");
    assert_eq!(lookup(&root), "Alice Example <+12025550100>");
}

#[test]
fn reinstalling_the_same_version_keeps_the_backup_of_the_one_before() {
    let root = phonebook_root();
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let run = root.ok(&[
        "upgrade",
        "--reinstall",
        arg(&package_at("phonebook", "2.0.0")),
    ]);
    assert!(
        run.stdout.contains("reinstalled phonebook 2.0.0"),
        "{}",
        run.stdout
    );
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["backup_version"], "1.0.0", "{info}");
    root.ok(&["rollback", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    assert_eq!(lookup(&root), "Alice Example");
    // And with no backup yet, a reinstall makes none: there is no other version.
    root.ok(&[
        "install",
        "--reinstall",
        arg(&package_at("phonebook", "1.0.0")),
    ]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["backup_version"], serde_json::Value::Null, "{info}");
}

#[test]
fn a_module_disabled_on_purpose_stays_disabled_through_an_upgrade() {
    let root = phonebook_root();
    root.ok(&["disable", "phonebook"]);
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(
        (info["version"].as_str(), info["status"].as_str()),
        (Some("2.0.0"), Some("disabled")),
        "{info}"
    );
    let calls = root
        .ok(&["hook", "lookup", "--json", "--payload", "2025550100"])
        .json();
    assert_eq!(calls, serde_json::json!([]), "still not running");
    root.ok(&["enable", "phonebook"]);
    assert!(
        !lookup(&root).is_empty(),
        "the upgraded version runs once enabled"
    );
}

/// Whether any enabled module's handlers answer the `lookup` hook.
fn lookup_answers(root: &Root) -> bool {
    let calls = root
        .ok(&["hook", "lookup", "--json", "--payload", "2025550100"])
        .json();
    calls.as_array().is_some_and(|c| !c.is_empty())
}

#[test]
fn rollback_keeps_the_status_the_module_has_now_not_the_one_its_backup_was_taken_with() {
    let root = phonebook_root();
    let pb2 = package_at("phonebook", "2.0.0");
    // Backed up enabled, disabled since: the rollback leaves it disabled, not running.
    root.ok(&["upgrade", arg(&pb2)]);
    root.ok(&["disable", "phonebook"]);
    root.ok(&["rollback", "phonebook"]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(
        (
            info["version"].as_str(),
            info["status"].as_str(),
            info["reason"].as_str()
        ),
        (
            Some("1.0.0"),
            Some("disabled"),
            Some("disabled by an administrator")
        ),
        "{info}"
    );
    assert!(!lookup_answers(&root), "its hooks do not run");

    // Backed up disabled (upgraded while disabled), enabled since: it comes back enabled.
    root.ok(&["upgrade", arg(&pb2)]);
    assert_eq!(status(&root, "phonebook"), "disabled");
    root.ok(&["enable", "phonebook"]);
    root.ok(&["rollback", "phonebook"]);
    assert_eq!(
        (version(&root, "phonebook"), status(&root, "phonebook")),
        ("1.0.0".to_owned(), "enabled".to_owned())
    );
    assert_eq!(
        lookup(&root),
        "Alice Example",
        "the version returned to runs"
    );

    // Disabled and enabled again between the upgrade and the rollback: enabled.
    root.ok(&["upgrade", arg(&pb2)]);
    root.ok(&["disable", "phonebook"]);
    root.ok(&["enable", "phonebook"]);
    root.ok(&["rollback", "phonebook"]);
    assert_eq!(status(&root, "phonebook"), "enabled");
    assert_eq!(lookup(&root), "Alice Example");
}

#[test]
fn ctrl_c_stops_an_upgrade_whose_call_loops_at_once_leaving_the_old_version() {
    let root = phonebook_root();
    // A deadline far off: only the interruption can stop the looping upgrade() soon.
    root.configure("[limits]\ncall_timeout_ms = 60000\n");
    let data = fail_next_call(&root, "loop");
    let before = root.fingerprint();
    // Said just before its upgrade() runs.
    let run = crate::interrupted(
        &root,
        &["upgrade", arg(&package_at("phonebook", "3.0.0"))],
        "Upgrading",
    );
    run.assert_stopped(std::time::Duration::from_secs(20));
    assert_eq!(root.fingerprint(), before, "the old version, as it was");
    assert!(!data.join("damage").exists());
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}
