//! Upgrades with backups, rollbacks, failing upgrades, enable/disable, broken modules.

use std::path::PathBuf;

use modhost_test_support::{Root, arg, component, package, package_at, packages_dir, repackage};

use crate::root;

/// A root with core and phonebook 1.0.0 installed, and short limits so hostile calls end fast.
fn phonebook_root() -> Root {
    let root = root();
    root.configure("[limits]\ncall_timeout_ms = 1500\nmax_memory_mb = 32\n");
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&package_at("phonebook", "1.0.0")),
    ]);
    root
}

/// Makes phonebook-bad's next `upgrade()`, `disable()` or `uninstall()` fail as `mode` says; returns the
/// data directory that call starts from.
fn fail_next_call(root: &Root, mode: &str) -> std::path::PathBuf {
    let data = root.installed_dir("phonebook", "data");
    assert!(std::fs::write(data.join("mode"), mode).is_ok());
    data
}

fn lookup(root: &Root) -> String {
    let calls = root
        .ok(&["hook", "lookup", "--payload", "2025550100", "--json"])
        .json();
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    calls[0]["output"].as_str().unwrap_or_default().to_owned()
}

fn status(root: &Root, rawname: &str) -> String {
    root.ok(&["info", "--json", rawname]).json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn version(root: &Root, rawname: &str) -> String {
    root.ok(&["info", "--json", rawname]).json()["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

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
        run.stdout.contains("rolled-back phonebook 2.0.0 -> 1.0.0"),
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
fn a_failing_disable_or_uninstall_changes_nothing_not_even_the_data_directory() {
    let root = phonebook_root();
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["install", arg(&package_at("phonebook", "3.0.0"))]);
    for (verb, mode, expected) in [
        (
            "disable",
            "error",
            "disable() failed: disable failed on purpose",
        ),
        ("disable", "trap", "disable() trapped"),
        (
            "disable",
            "loop",
            "disable() was stopped after its 1.5s deadline",
        ),
        (
            "uninstall",
            "error",
            "uninstall() failed: uninstall failed on purpose",
        ),
        ("uninstall", "trap", "uninstall() trapped"),
    ] {
        let data = fail_next_call(&root, mode);
        let before = root.fingerprint();
        let run = root.fails(&[verb, "phonebook"]);
        assert!(
            run.stderr.contains(expected),
            "{mode}: expected `{expected}` in:\n{}",
            run.stderr
        );
        assert_eq!(root.fingerprint(), before, "{mode}: nothing changed");
        assert!(!data.join("damage").exists(), "{mode}: data untouched");
        let info = root.ok(&["info", "--json", "phonebook"]).json();
        assert_eq!(info["status"], "enabled", "{mode}");
    }
}

#[test]
fn disable_force_runs_none_of_the_modules_code_and_keeps_its_data() {
    let root = phonebook_root();
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["install", arg(&package_at("phonebook", "3.0.0"))]);
    let data = fail_next_call(&root, "loop");
    assert!(std::fs::write(data.join("kept"), "yes").is_ok());
    let kv = root.ok(&["kv", "--json", "phonebook"]).json();
    let run = root.fails(&["disable", "phonebook"]);
    assert!(run.stderr.contains("deadline"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("help: `disable --force` disables it without running its code"),
        "{}",
        run.stderr
    );
    let started = std::time::Instant::now();
    let run = root.ok(&["disable", "--force", "phonebook", "--json"]);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "no deadline was waited for: disable() never ran ({:?})",
        started.elapsed()
    );
    assert_eq!(run.json()[0]["action"], "disabled", "{}", run.stdout);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["status"], "disabled");
    assert_eq!(
        info["reason"],
        "disabled by an administrator without running its disable()"
    );
    let data = root.installed_dir("phonebook", "data");
    assert_eq!(
        std::fs::read_to_string(data.join("kept")).unwrap_or_default(),
        "yes",
        "its data directory is the one it had"
    );
    assert_eq!(root.ok(&["kv", "--json", "phonebook"]).json(), kv);
    assert!(std::fs::write(data.join("mode"), "ok").is_ok());
    root.ok(&["enable", "phonebook"]);
    root.ok(&["recover"]);
}

#[test]
fn a_module_that_says_it_cannot_be_uninstalled_or_disabled_is_kept_unless_forced() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let core = repackage(
        &package("core"),
        |xml| {
            xml.replace(
                "</version>",
                "</version><candisable>no</candisable><canuninstall>no</canuninstall>",
            )
        },
        &dir.path().join("core-16.0.40.tgz"),
    );
    root.ok(&["install", arg(&core)]);
    for (verb, what) in [
        ("disable", "disabled"),
        ("uninstall", "uninstalled"),
        ("delete", "deleted"),
    ] {
        let before = root.fingerprint();
        let run = root.fails(&[verb, "core"]);
        assert!(
            run.stderr.contains(&format!(
                "module `core` says it cannot be {what} (<can{}>no</can{}>)",
                if verb == "disable" {
                    "disable"
                } else {
                    "uninstall"
                },
                if verb == "disable" {
                    "disable"
                } else {
                    "uninstall"
                },
            )),
            "{}",
            run.stderr
        );
        assert_eq!(root.fingerprint(), before, "{verb}: nothing changed");
    }
    root.ok(&["disable", "--force", "core"]);
    root.ok(&["uninstall", "--force", "core"]);
    assert!(root.ok(&["list", "--json"]).json()[0].is_null());
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
fn disable_and_enable_respect_dependencies_and_stop_handlers() {
    let root = phonebook_root();
    root.ok(&["install", arg(&package("voicemail"))]);
    let reverse = root.ok(&["reversedepends", "core", "--json"]).json();
    assert_eq!(reverse, serde_json::json!(["phonebook", "voicemail"]));

    let refused = root.fails(&["disable", "core"]);
    assert!(
        refused
            .stderr
            .contains("module `core` is required by phonebook, voicemail"),
        "{}",
        refused.stderr
    );
    root.ok(&["disable", "phonebook"]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(
        (info["status"].as_str(), info["reason"].as_str()),
        (Some("disabled"), Some("disabled by an administrator"))
    );
    let calls = root
        .ok(&["hook", "lookup", "--json", "--payload", "2025550100"])
        .json();
    assert_eq!(
        calls,
        serde_json::json!([]),
        "a disabled module's handlers never run"
    );
    root.ok(&["enable", "phonebook"]);
    assert_eq!(lookup(&root), "Alice Example");
}

#[test]
fn a_module_whose_files_vanish_is_marked_broken_and_can_be_deleted() {
    let root = phonebook_root();
    let dir = root.installed_dir("phonebook", "modules");
    assert!(std::fs::remove_file(dir.join("module.wasm")).is_ok());
    let run = root.ok(&["recover", "--json"]).json();
    assert_eq!(run["broken"][0][0], "phonebook");
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["status"], "broken");
    assert!(
        info["reason"]
            .as_str()
            .is_some_and(|r| r.contains("module.wasm") && r.contains("missing")),
        "{info}"
    );
    let calls = root
        .ok(&["hook", "lookup", "--json", "--payload", "2025550100"])
        .json();
    assert_eq!(calls, serde_json::json!([]), "broken modules never run");
    let refused = root.fails(&["enable", "phonebook"]);
    assert!(refused.stderr.contains("is broken"), "{}", refused.stderr);
    root.ok(&["delete", "phonebook"]);
    assert!(
        root.fails(&["info", "phonebook"])
            .stderr
            .contains("not installed")
    );
    assert!(
        !root.path().join("modules/phonebook").exists()
            && !root.path().join("data/phonebook").exists()
    );
}

#[test]
fn scan_describes_a_directory_and_marks_outdated_modules() {
    let root = phonebook_root();
    let entries = root.ok(&["scan", arg(&packages_dir()), "--json"]).json();
    let phonebook = entries
        .as_array()
        .and_then(|e| e.iter().find(|e| e["rawname"] == "phonebook"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            phonebook["version"].as_str(),
            phonebook["available"].as_str()
        ),
        (Some("3.0.0"), Some("upgrade"))
    );
    let exports: Vec<&str> = phonebook["exports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .collect();
    for expected in [
        "lifecycle.install",
        "lifecycle.upgrade",
        "lifecycle.uninstall",
        "lifecycle.enable",
        "lifecycle.disable",
        "hooks.handle",
    ] {
        assert!(exports.contains(&expected), "{expected} in {exports:?}");
    }
    let voicemail = entries
        .as_array()
        .and_then(|e| e.iter().find(|e| e["rawname"] == "voicemail"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(voicemail["available"], "new");
    let core = entries
        .as_array()
        .and_then(|e| e.iter().find(|e| e["rawname"] == "core"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        [&phonebook, &voicemail, &core].map(|e| e["installable"].as_bool()),
        [Some(true), Some(true), Some(false)],
        "an installed version is not offered again"
    );
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["status"], "needs-upgrade");
    assert!(
        info["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("3.0.0 is available")),
        "{info}"
    );
}

#[test]
fn needs_upgrade_lasts_while_the_scanned_directory_holds_a_newer_version() {
    let root = phonebook_root();
    let dir = root.path().with_file_name("packages");
    let elsewhere = root.path().with_file_name("elsewhere");
    let newer = dir.join("phonebook-3.0.0.tgz");
    let made = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::create_dir_all(&elsewhere))
        .and_then(|()| std::fs::copy(package_at("phonebook", "3.0.0"), &newer));
    assert!(made.is_ok(), "{made:?}");
    let status = |root: &Root| {
        let info = root.ok(&["info", "--json", "phonebook"]).json();
        (
            info["status"].as_str().unwrap_or_default().to_owned(),
            info["reason"].as_str().map(str::to_owned),
        )
    };
    let marked = (
        "needs-upgrade".to_owned(),
        Some(format!("3.0.0 is available in `{}`", dir.display())),
    );
    root.ok(&["scan", arg(&dir)]);
    assert_eq!(status(&root), marked);
    root.ok(&["scan", arg(&elsewhere)]);
    assert_eq!(
        status(&root),
        marked,
        "another directory says nothing about it"
    );
    assert!(std::fs::remove_file(&newer).is_ok());
    root.ok(&["scan", arg(&dir)]);
    assert_eq!(status(&root), ("enabled".to_owned(), None));
}

#[test]
fn list_and_info_show_every_status_with_its_reason_not_installed_included() {
    let root = phonebook_root();
    let statuses = |root: &Root, args: &[&str]| -> Vec<(String, String, String)> {
        let listed = root.ok(args).json();
        listed
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let field = |name: &str| m[name].as_str().unwrap_or("-").to_owned();
                (field("rawname"), field("status"), field("reason"))
            })
            .collect()
    };
    let installed_only = statuses(&root, &["list", "--json"]);
    assert_eq!(
        installed_only.iter().map(|m| &m.0).collect::<Vec<_>>(),
        ["core", "phonebook"],
        "without a package directory, list shows what is installed"
    );

    root.ok(&["disable", "phonebook"]);
    let dir = packages_dir();
    let listed = statuses(&root, &["list", "--json", "--from", arg(&dir)]);
    let voicemail = dir.join("voicemail-16.0.12.tgz");
    assert_eq!(
        listed[..2],
        [
            ("core".into(), "enabled".into(), "-".into()),
            (
                "phonebook".into(),
                "disabled".into(),
                "disabled by an administrator".into()
            ),
        ],
        "installed modules first, each with its stored status"
    );
    assert!(
        listed.contains(&(
            "voicemail".into(),
            "not-installed".into(),
            format!("package `{}`", voicemail.display())
        )),
        "{listed:?}"
    );
    assert!(
        listed[2..].iter().all(|m| m.1 == "not-installed") && listed.len() > 3,
        "{listed:?}"
    );
    let info = root
        .ok(&["info", "--json", "--from", arg(&dir), "voicemail"])
        .json();
    assert_eq!(info["status"], "not-installed", "{info}");
    root.configure(&format!("packages = {dir:?}\n"));
    let text = root.ok(&["list"]).stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("voicemail") && l.contains("not-installed (package")),
        "{text}"
    );
    let info = root.ok(&["info", "--json", "voicemail"]).json();
    assert_eq!(
        (info["status"].as_str(), info["version"].as_str()),
        (Some("not-installed"), Some("16.0.12"))
    );
    let unknown = root.fails(&["info", "nosuchmodule"]);
    assert!(
        unknown.stderr.contains("`nosuchmodule` is not installed"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_directory_that_reaches_the_root_or_data_is_never_granted() {
    let root = root();
    let module = root.path().with_file_name("greedy");
    assert!(std::fs::create_dir_all(&module).is_ok());
    assert!(std::fs::copy(component("hostile"), module.join("module.wasm")).is_ok());
    let parent = root
        .path()
        .parent()
        .map(|p| p.to_owned())
        .unwrap_or_default();
    for (path, reason) in [
        (root.path().join("cache"), "overlaps modhost's root"),
        (parent, "overlaps modhost's root"),
        ("/data/x".into(), "where the module's own data is"),
    ] {
        let xml = format!(
            "<module><rawname>greedy</rawname><name>Greedy</name><version>1.0</version>\
             <capabilities><directory path=\"{}\" access=\"read-write\"/></capabilities></module>",
            path.display()
        );
        assert!(std::fs::write(module.join("module.xml"), xml).is_ok());
        let package = module.join("greedy.tgz");
        root.ok(&["pack", arg(&module), "-o", arg(&package)]);
        let before = root.fingerprint();
        let run = root.fails(&["install", "--grant", "--force", arg(&package)]);
        assert!(
            run.stderr.contains("is never granted") && run.stderr.contains(reason),
            "{}: {}",
            path.display(),
            run.stderr
        );
        assert_eq!(root.fingerprint(), before, "{}", path.display());
        // Installed without the grant, it is still refused on request.
        root.ok(&["install", arg(&package)]);
        let run = root.fails(&["grant", "greedy"]);
        assert!(run.stderr.contains(reason), "{}", run.stderr);
        root.ok(&["uninstall", "greedy"]);
    }
}

#[test]
fn a_first_install_whose_schema_fails_leaves_no_trace() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let module = root.path().with_file_name("clash");
    assert!(std::fs::create_dir_all(&module).is_ok());
    assert!(std::fs::copy(component("hostile"), module.join("module.wasm")).is_ok());
    // A valid module.xml (the manifest refuses duplicate fields), but a table name the
    // state database keeps for itself: refused when the schema is applied.
    let xml = "<module><rawname>clash</rawname><name>Clash</name><version>1.0</version>\
               <database><table name=\"modhost_kv\">\
               <field name=\"id\" type=\"integer\"/>\
               </table></database></module>";
    assert!(std::fs::write(module.join("module.xml"), xml).is_ok());
    let package = module.join("clash.tgz");
    root.ok(&["pack", arg(&module), "-o", arg(&package)]);
    let before = root.fingerprint();
    let run = root.fails(&["install", arg(&package)]);
    assert!(
        run.stderr.contains("module `clash`")
            && run
                .stderr
                .contains("database schema: table name `modhost_kv` is reserved"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert!(root.dirs("data").iter().all(|d| d != "clash"));
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
    assert_eq!(root.fingerprint(), before);
    root.ok(&["rollback", "--force", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}

#[test]
fn enable_takes_several_modules_dependencies_first_all_or_none() {
    let root = phonebook_root();
    root.ok(&["install", arg(&package("voicemail"))]);
    root.ok(&["disable", "voicemail"]);
    root.ok(&["disable", "phonebook"]);
    root.ok(&["disable", "core"]);
    let run = root.fails(&["enable", "voicemail"]);
    assert!(
        run.stderr.contains("requires module `core") && run.stderr.contains("disabled"),
        "{}",
        run.stderr
    );
    let enabled = root.ok(&["enable", "--json", "voicemail", "core"]).json();
    let order: Vec<&str> = enabled
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["rawname"].as_str())
        .collect();
    assert_eq!(order, ["core", "voicemail"], "dependencies first");

    // A failing enable() among several leaves every one of them disabled.
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["install", arg(&package_at("phonebook", "3.0.0"))]);
    fail_next_call(&root, "ok");
    root.ok(&["disable", "phonebook"]);
    root.ok(&["disable", "voicemail"]);
    root.ok(&["disable", "core"]);
    fail_next_call(&root, "error");
    let before = root.fingerprint();
    // core's enable() runs first and succeeds; phonebook's then fails.
    let run = root.fails(&["enable", "phonebook", "core"]);
    assert!(
        run.stderr.contains("Enabling core") && run.stderr.contains("enable() failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        root.fingerprint(),
        before,
        "all or none: core stays disabled"
    );
}

#[test]
fn a_broken_module_is_repaired_by_installing_its_version_again_keeping_its_data() {
    let root = phonebook_root();
    let answer = lookup(&root);
    let dir = root.installed_dir("phonebook", "modules");
    assert!(std::fs::remove_file(dir.join("module.wasm")).is_ok());
    root.ok(&["recover"]);
    assert_eq!(status(&root, "phonebook"), "broken");

    let run = root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    assert!(
        run.stdout.contains("reinstalled phonebook 1.0.0"),
        "{}",
        run.stdout
    );
    assert_eq!(status(&root, "phonebook"), "enabled");
    assert_eq!(
        lookup(&root),
        answer,
        "its tables and data survive the repair"
    );
    assert!(!dir.exists(), "the broken version's files are swept");
    assert!(
        root.fails(&["rollback", "phonebook"])
            .stderr
            .contains("no previous version"),
        "a broken version is never kept to roll back to"
    );
    assert!(
        root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))])
            .stderr
            .contains("already installed"),
        "a working module is not reinstalled"
    );
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

#[test]
fn a_component_changed_on_disk_is_never_compiled_and_recover_marks_it_broken() {
    let root = phonebook_root();
    let wasm = root
        .installed_dir("phonebook", "modules")
        .join("module.wasm");
    // Another valid component in its place, and no compiled copy of the original left.
    assert!(std::fs::copy(component("hostile"), &wasm).is_ok());
    assert!(std::fs::remove_dir_all(root.path().join("cache")).is_ok());

    let calls = root
        .fails(&["hook", "lookup", "--json", "--payload", "2025550100"])
        .json();
    assert!(
        calls[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("has changed since it was installed")),
        "{calls}"
    );
    let run = root.ok(&["recover", "--json"]).json();
    assert_eq!(run["broken"][0][0], "phonebook", "{run}");
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["status"], "broken");
    assert!(
        info["reason"]
            .as_str()
            .is_some_and(|r| r.contains("has changed since it was installed")),
        "{info}"
    );
    root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    assert!(!lookup(&root).is_empty(), "reinstalling repairs it");
}

#[test]
fn scan_says_why_a_package_cannot_be_installed() {
    let root = root();
    let dir = root.path().with_file_name("offered");
    assert!(std::fs::create_dir(&dir).is_ok());
    let future = dir.join("future_api.tgz");
    assert!(std::fs::copy(package("future_api"), &future).is_ok());
    let entries = root.ok(&["scan", "--json", arg(&dir)]).json();
    assert_eq!(entries[0]["installable"], false, "{entries}");
    assert!(
        entries[0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains(&format!("`{}/", future.display()))
                && p.contains("is built against modhost:module@0.9.0")),
        "{entries}"
    );
    let text = root.ok(&["scan", arg(&dir)]).stdout;
    assert!(
        text.contains("cannot be installed: ") && !text.contains("can be installed\n"),
        "{text}"
    );
}

#[test]
fn a_scan_keeps_what_it_compiled_for_the_install_within_the_caches_bound() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let cache = root.tree("cache");
    assert_eq!(cache.len(), 1, "core's artifact: {cache:?}");
    let artifact = root
        .path()
        .join("cache")
        .join(cache.iter().next().cloned().unwrap_or_default());
    let modified = || std::fs::metadata(&artifact).and_then(|m| m.modified()).ok();
    let installed_at = modified();
    let dir = root.path().with_file_name("offered");
    let made = std::fs::create_dir(&dir)
        .and_then(|()| std::fs::copy(package("core"), dir.join("core.tgz")))
        .and_then(|_| std::fs::copy(package("voicemail"), dir.join("voicemail.tgz")));
    assert!(made.is_ok(), "{made:?}");

    let run = root.ok(&["scan", arg(&dir)]);
    assert!(
        run.stderr.contains("Compiled voicemail") && !run.stderr.contains("Compiled core"),
        "voicemail is compiled to list its exports, core's artifact mapped: {}",
        run.stderr
    );
    assert!(run.stdout.contains("exports: lifecycle."), "{}", run.stdout);
    assert!(
        run.stdout.contains("imports: modhost:module@0.1.0 (")
            && run.stdout.contains("note: its only directories are /data"),
        "{}",
        run.stdout
    );
    let scanned = root.tree("cache");
    assert_eq!(
        scanned.len(),
        2,
        "voicemail's artifact is kept: {scanned:?}"
    );
    assert_eq!(
        modified(),
        installed_at,
        "core's artifact is the one its install left"
    );

    // Installing what was scanned maps what the scan compiled.
    let run = root.ok(&["install", arg(&package("voicemail"))]);
    assert!(
        !run.stderr.contains("Compiled voicemail"),
        "not compiled again: {}",
        run.stderr
    );
    assert_eq!(root.tree("cache"), scanned);

    // Uninstalled, its code goes with it.
    root.ok(&["uninstall", "voicemail"]);
    assert_eq!(root.tree("cache"), cache, "core's artifact alone");

    // With nothing to keep, a scan leaves no code of modules not installed behind, and an
    // installed module's artifact the scan compiles again (the cache was cleared) stays.
    root.configure("[cache]\nkeep_mb = 0\n");
    assert!(std::fs::remove_dir_all(root.path().join("cache")).is_ok());
    let run = root.ok(&["scan", arg(&dir)]);
    assert!(
        run.stderr.contains("Compiled core") && run.stderr.contains("Compiled voicemail"),
        "{}",
        run.stderr
    );
    assert_eq!(root.tree("cache"), cache, "core's artifact alone is back");

    // Core's handlers still run from that artifact, without compiling it again.
    let mut hook = root.command(&["hook", "get_config", "--json"]);
    hook.env("MODHOST_LOG", "modhost_runtime=debug");
    let run = Root::output(&mut hook);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("loaded precompiled component")
            && !run.stderr.contains("Compiled core"),
        "{}",
        run.stderr
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

/// Phonebook `from` (its package) as version `to`, with a NOT NULL column that has no
/// default added to its table: a first install's `install()` fails on it (its INSERT
/// leaves the column out), and an upgrade's schema cannot add it to a table with rows.
fn phonebook_requiring_a_column(root: &Root, from: &str, to: &str) -> PathBuf {
    let number = r#"<field name="number" type="string" length="32"/>"#;
    let out = root
        .path()
        .with_file_name(format!("phonebook-required-{to}.tgz"));
    repackage(
        &package_at("phonebook", from),
        |xml| {
            assert!(xml.contains(number), "{xml}");
            xml.replace(
                number,
                &format!(r#"{number}<field name="required" type="string" notnull="true"/>"#),
            )
            .replace(
                &format!("<version>{from}</version>"),
                &format!("<version>{to}</version>"),
            )
        },
        &out,
    )
}

/// A copy of `rawname`'s package at version `to`, its module.xml otherwise passed
/// through `edit`.
fn repackaged(root: &Root, rawname: &str, to: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let package = package(rawname);
    let out = root.path().with_file_name(format!("{rawname}-{to}.tgz"));
    repackage(
        &package,
        |xml| {
            let start = xml.find("<version>").unwrap_or_default();
            let end = xml.find("</version>").unwrap_or_default();
            edit(&format!("{}<version>{to}{}", &xml[..start], &xml[end..]))
        },
        &out,
    )
}

/// Phonebook-bad (3.0.0) asking for read-only access to a directory beside `root`, whose
/// `mode` file, once granted, makes its first `install()` fail that way; returns the
/// package and the directory.
fn phonebook_bad_reading_its_mode(root: &Root) -> (PathBuf, PathBuf) {
    let dir = root.path().with_file_name("install-mode");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    let out = root.path().with_file_name("phonebook-bad-granted.tgz");
    let package = repackage(
        &package_at("phonebook", "3.0.0"),
        |xml| {
            assert!(xml.contains("</module>"), "{xml}");
            xml.replace(
                "</module>",
                &format!(
                    "<capabilities><directory path=\"{}\" access=\"read-only\"/></capabilities></module>",
                    dir.display()
                ),
            )
        },
        &out,
    );
    (package, dir)
}

/// Runs `install ARGS`, which must fail naming module `phonebook` and then `expected`
/// (its version, the call and how it failed), and checks that it left no trace: the root
/// prints the same, `list` shows core alone, and no table, row, grant, directory, staged
/// file or compiled component of phonebook's is left.
fn install_fails_leaving_no_trace(root: &Root, args: &[&str], case: &str, expected: &str) {
    let before = root.fingerprint();
    let cache = root.tree("cache");
    let mut install = vec!["install"];
    install.extend(args);
    let run = root.fails(&install);
    assert!(
        run.stderr
            .contains(&format!("module `phonebook` {expected}")),
        "{case}: expected the module and `{expected}` in:\n{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "{case}: no trace");
    let listed = root.ok(&["list", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{case}: {listed}");
    assert_eq!(listed[0]["rawname"], "core", "{case}: {listed}");
    let state = root.state_dump();
    assert!(
        !state.contains("phonebook"),
        "{case}: none of its tables, rows, records or grants are left:\n{state}"
    );
    assert!(
        !root.path().join("modules/phonebook").exists()
            && !root.path().join("data/phonebook").exists(),
        "{case}: no directory of it left"
    );
    assert_eq!(
        root.tree("staging"),
        Default::default(),
        "{case}: nothing staged is left"
    );
    assert_eq!(
        root.tree("cache"),
        cache,
        "{case}: no compiled component of it is left"
    );
}

#[test]
fn a_failing_first_install_leaves_no_trace() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let required = phonebook_requiring_a_column(&root, "1.0.0", "1.0.0");
    let pb1 = package_at("phonebook", "1.0.0");
    let pb2 = package_at("phonebook", "2.0.0");
    for (limits, package, expected) in [
        (
            "",
            &required,
            "1.0.0: install() failed: NOT NULL constraint failed: phonebook_entries.required",
        ),
        // 2.0.0's install() sets a key-value entry, which the host refuses.
        (
            "max_kv_value_kb = 0",
            &pb2,
            "2.0.0: install() failed: value is 1 bytes; the limit is 0",
        ),
        (
            "max_memory_mb = 1",
            &pb1,
            "1.0.0: install() trapped: out of memory at its memory cap of 1 MiB",
        ),
    ] {
        root.configure(&format!("[limits]\n{limits}\n"));
        install_fails_leaving_no_trace(&root, &[arg(package)], limits, expected);
    }
    root.configure("");
    root.ok(&["install", arg(&pb1)]);
    assert_eq!(lookup(&root), "Alice Example", "a later install works");
    // The fingerprint sees what a file holds, not only its name.
    let before = root.fingerprint();
    let xml = root
        .installed_dir("phonebook", "modules")
        .join("module.xml");
    let text = std::fs::read_to_string(&xml).unwrap_or_default();
    assert!(std::fs::write(&xml, text.replacen("Phonebook", "PhoneBook", 1)).is_ok());
    assert_ne!(root.fingerprint(), before, "a changed file is seen");
}

#[test]
fn a_first_install_that_errors_traps_loops_or_runs_out_of_memory_leaves_no_trace() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    // Short limits, so that the hostile modes end fast.
    root.configure("[limits]\ncall_timeout_ms = 1000\nmax_memory_mb = 16\n");
    let (bad, mode_dir) = phonebook_bad_reading_its_mode(&root);
    // Phonebook-bad's install() fills its tables, its key-value store and its data
    // directory, then fails as the `mode` in the directory it is granted says.
    for (mode, expected) in [
        (
            "error",
            "3.0.0: install() failed: install failed on purpose",
        ),
        ("trap", "3.0.0: install() trapped"),
        ("loop", "3.0.0: install() was stopped after its 1s deadline"),
        (
            "oom",
            "3.0.0: install() trapped: out of memory at its memory cap of 16 MiB",
        ),
    ] {
        assert!(std::fs::write(mode_dir.join("mode"), mode).is_ok());
        install_fails_leaving_no_trace(&root, &["--grant", arg(&bad)], mode, expected);
    }

    // The damage is real: told to succeed, its install() leaves it behind.
    assert!(std::fs::write(mode_dir.join("mode"), "ok").is_ok());
    root.ok(&["install", "--grant", arg(&bad)]);
    let rows = root
        .ok(&["rows", "--json", "phonebook", "phonebook_entries"])
        .json();
    assert_eq!(rows["rows"][0][1], "DAMAGED", "{rows}");
    assert_eq!(
        root.ok(&["kv", "--json", "phonebook"]).json(),
        serde_json::json!({"damaged": "yes"})
    );
    assert!(
        root.installed_dir("phonebook", "data")
            .join("damage")
            .exists()
    );
    // Its uninstall() fails, there being no `/data/mode` to say otherwise; the help says
    // how to remove it anyway.
    let run = root.fails(&["uninstall", "phonebook"]);
    assert!(
        run.stderr
            .contains("help: `delete` removes it without running its code"),
        "{}",
        run.stderr
    );
    root.ok(&["delete", "phonebook"]);

    // Asked for but not granted, the directory is not there: phonebook-bad installs
    // cleanly, having damaged nothing. What made it fail was what it read there.
    let run = root.ok(&["install", arg(&bad)]);
    assert!(run.stderr.contains("(not granted"), "{}", run.stderr);
    assert_eq!(status(&root, "phonebook"), "enabled");
    let rows = root
        .ok(&["rows", "--json", "phonebook", "phonebook_entries"])
        .json();
    assert_eq!(rows["rows"], serde_json::json!([]), "{rows}");
    assert_eq!(
        root.ok(&["kv", "--json", "phonebook"]).json(),
        serde_json::json!({})
    );
    assert!(
        !root
            .installed_dir("phonebook", "data")
            .join("damage")
            .exists()
    );
}

#[test]
fn a_failure_midway_or_a_refusal_leaves_the_root_as_it_was_and_force_overrides_a_dependent() {
    let root = phonebook_root();
    let core41 = repackaged(&root, "core", "16.0.41", str::to_owned);
    // A batch: core's upgrade runs first (phonebook depends on it) and succeeds, then
    // phonebook 3.0.0's upgrade() fails; core's upgrade is rolled back with it.
    let before = root.fingerprint();
    let run = root.fails(&[
        "upgrade",
        arg(&core41),
        arg(&package_at("phonebook", "3.0.0")),
    ]);
    let core_ran = run.stderr.find("Upgrading core 16.0.40 -> 16.0.41");
    let failed = run
        .stderr
        .find("upgrade(1.0.0) failed: upgrade failed on purpose");
    assert!(
        core_ran.is_some() && failed.is_some() && core_ran < failed,
        "core's upgrade ran before phonebook's failed:\n{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "core is rolled back too");
    let core = root.ok(&["info", "--json", "core"]).json();
    assert_eq!(
        (core["version"].as_str(), &core["backup_version"]),
        (Some("16.0.40"), &serde_json::Value::Null),
        "{core}"
    );
    assert_eq!(lookup(&root), "Alice Example");

    // An upgrade whose schema fails (a NOT NULL column without a default, added to a
    // table with rows) changes nothing.
    let required = phonebook_requiring_a_column(&root, "1.0.0", "1.5.0");
    let run = root.fails(&["upgrade", arg(&required)]);
    assert!(
        run.stderr.contains("module `phonebook`")
            && run.stderr.contains(
                "database schema: cannot add NOT NULL column `required` without a default"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(
        root.fingerprint(),
        before,
        "a failing schema changes nothing"
    );

    // voicemail, as installed, wants a core older than 16.1: upgrading core to 16.1.0 is
    // refused, naming it, unless forced.
    let voicemail = repackaged(&root, "voicemail", "16.0.13", |xml| {
        xml.replace("core ge 16.0", "core lt 16.1")
    });
    root.ok(&["install", arg(&voicemail)]);
    let core161 = repackaged(&root, "core", "16.1.0", str::to_owned);
    let before = root.fingerprint();
    let run = root.fails(&["upgrade", arg(&core161)]);
    assert!(
        run.stderr.contains(
            "installed `voicemail` 16.0.13 requires module `core lt 16.1`, which the upgrade would break"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "the refusal changes nothing");
    root.ok(&["upgrade", "--force", arg(&core161)]);
    assert_eq!(version(&root, "core"), "16.1.0");
    assert_eq!(lookup(&root), "Alice Example", "its dependents still run");
}
