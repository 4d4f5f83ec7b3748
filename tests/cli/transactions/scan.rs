//! `scan`, `list` and `info`: every status with its reason, and what a scan compiles kept.

use modhost_test_support::{Root, arg, package, package_at, packages_dir, repackage};

use super::phonebook_root;
use crate::root;

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
    // The same directory spelt another way is the same directory.
    root.ok(&["scan", &format!("{}/./", dir.display())]);
    assert_eq!(status(&root), ("enabled".to_owned(), None));
    // A mark of a directory removed since is taken back by the next scan of any.
    assert!(std::fs::copy(package_at("phonebook", "3.0.0"), &newer).is_ok());
    root.ok(&["scan", arg(&dir)]);
    assert_eq!(status(&root), marked);
    assert!(std::fs::remove_dir_all(&dir).is_ok());
    root.ok(&["scan", arg(&elsewhere)]);
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
    // Described as in full as an installed module: its module.xml, and what it lacks.
    assert_eq!(info["manifest"]["rawname"], "voicemail", "{info}");
    assert_eq!(info["unmet"], serde_json::json!([]), "{info}");
    let text = root.ok(&["info", "--from", arg(&dir), "voicemail"]).stdout;
    assert!(
        text.contains("\n  description  ") && text.contains("\n  depends      core ge 16.0"),
        "{text}"
    );
    let callback = root
        .ok(&["info", "--json", "--from", arg(&dir), "callback"])
        .json();
    assert!(
        callback["unmet"][0].as_str().is_some_and(|u| u.contains(
            "requires module `voicemail ge 16.0`: not installed (16.0.12 is in the package \
                 directory"
        )),
        "{callback}"
    );
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
    // Looked for in a package directory too, which is named.
    let unknown = root.fails(&["info", "nosuchmodule", "--from", arg(&dir)]);
    assert!(
        unknown.stderr.contains(&format!(
            "module `nosuchmodule` is not installed, and `{}` holds no package of it",
            dir.display()
        )),
        "{}",
        unknown.stderr
    );
    // Two packages of one version that differ: neither is used, and that is why.
    let dir = root.path().with_file_name("twins");
    assert!(std::fs::create_dir(&dir).is_ok());
    assert!(std::fs::copy(package("voicemail"), dir.join("voicemail-16.0.12.tgz")).is_ok());
    let twin = dir.join("zz-voicemail-twin.tgz");
    repackage(
        &package("voicemail"),
        |xml| xml.replace("</module>", "<!-- rebuilt --></module>"),
        &twin,
    );
    let unused = root.fails(&["info", "voicemail", "--from", arg(&dir)]);
    assert!(
        unused.stderr.contains(&format!(
            "module `voicemail` is not installed, and `{}` holds none of it that can be \
             used: ",
            dir.display()
        )) && unused.stderr.contains("but are not the same package")
            && !unused.stderr.contains("nothing was changed"),
        "{}",
        unused.stderr
    );
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

    // Uninstalled, its code is kept within the cache's bound, for installing it again.
    root.ok(&["uninstall", "voicemail"]);
    assert_eq!(root.tree("cache"), scanned, "kept within keep_mb");

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

/// Makes `dir` a package directory of core, phonebook 1.0.0, the packages `more` names,
/// and voicemail with its module.xml edited by `edit`.
fn with_voicemail(dir: &std::path::Path, more: &[&str], edit: impl Fn(&str) -> String) {
    let made = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::copy(package("core"), dir.join("core.tgz")))
        .and_then(|_| std::fs::copy(package_at("phonebook", "1.0.0"), dir.join("pb.tgz")));
    assert!(made.is_ok(), "{made:?}");
    for name in more {
        let copied = std::fs::copy(package(name), dir.join(format!("{name}.tgz")));
        assert!(copied.is_ok(), "{copied:?}");
    }
    modhost_test_support::repackage(&package("voicemail"), edit, &dir.join("voicemail.tgz"));
}

#[test]
fn scan_says_which_modules_install_together_and_shows_module_xml_warnings() {
    let root = root();
    let dir = root.path().with_file_name("together");
    // A module that needs callback, which cannot be installed here (it imports an
    // application's capability this host lacks).
    with_voicemail(&dir, &["callback"], |xml| {
        xml.replace(
            "<module>core ge 16.0</module>",
            "<module>core ge 16.0</module><module>callback</module>",
        )
        .replace("</methods>", "</methods><descripton>typo</descripton>")
    });
    let entries = root.ok(&["scan", arg(&dir), "--json"]).json();
    let entry = |rawname: &str| {
        entries
            .as_array()
            .and_then(|e| e.iter().find(|e| e["rawname"] == rawname))
            .cloned()
            .unwrap_or_default()
    };
    let with = |rawname: &str| {
        let entry = entry(rawname);
        (
            entry["installable"].as_bool(),
            entry["installable_with"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    };
    assert_eq!(with("core"), (Some(true), vec![]));
    assert_eq!(
        with("phonebook"),
        (Some(false), vec![serde_json::json!("core 16.0.40")])
    );
    assert_eq!(with("callback"), (Some(false), vec![]));
    assert_eq!(
        with("voicemail"),
        (Some(false), vec![]),
        "callback cannot be"
    );
    // What a requirement requires is named too: one `install` of them all works.
    let chain = root.path().with_file_name("chain");
    with_voicemail(&chain, &[], |xml| {
        xml.replace(
            "<module>core ge 16.0</module>",
            "<module>phonebook</module>",
        )
    });
    let chained = root.ok(&["scan", arg(&chain), "--json"]).json();
    let voicemail = chained
        .as_array()
        .and_then(|e| e.iter().find(|e| e["rawname"] == "voicemail"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        voicemail["installable_with"],
        serde_json::json!(["core 16.0.40", "phonebook 1.0.0"]),
        "{voicemail}"
    );
    let warnings = entry("voicemail")["warnings"].clone();
    assert!(
        warnings.as_array().is_some_and(|w| w.len() == 1
            && w[0]
                .as_str()
                .is_some_and(|w| w.contains("unknown element <descripton>"))),
        "{warnings}"
    );
    let text = root.ok(&["scan", arg(&dir)]).stdout;
    assert!(
        text.contains(
            "  can be installed together with core 16.0.40 from this directory (name them in \
             one `modhost install`)"
        ) && text.contains("  cannot be installed: `callback` ")
            && text.contains("  warning: module.xml:")
            && text.contains("unknown element <descripton>"),
        "{text}"
    );

    // Beside a voicemail it could be installed with, callback is refused for its import
    // alone: what the directory holds does not count against it.
    assert!(std::fs::copy(package("voicemail"), dir.join("voicemail.tgz")).is_ok());
    let entries = root.ok(&["scan", arg(&dir), "--json"]).json();
    let callback = entries
        .as_array()
        .and_then(|e| e.iter().find(|e| e["rawname"] == "callback"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(callback["unmet"], serde_json::json!([]), "{callback}");
    assert!(
        callback["problem"]
            .as_str()
            .is_some_and(|p| p.contains("imports pbx:telephony")),
        "{callback}"
    );
}

#[test]
fn a_module_marked_needs_upgrade_still_meets_what_requires_it() {
    let root = phonebook_root();
    let dir = root.path().with_file_name("newer");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    modhost_test_support::repackage(
        &package("core"),
        |xml| xml.replace("<version>16.0.40</version>", "<version>16.0.41</version>"),
        &dir.join("core-16.0.41.tgz"),
    );
    root.ok(&["scan", arg(&dir)]);
    let info = root.ok(&["info", "--json", "core"]).json();
    assert_eq!(info["status"], "needs-upgrade");
    // It runs, as the dispatcher runs it: what requires it is met.
    root.ok(&["checkdepends", "phonebook"]);
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    root.ok(&["disable", "phonebook"]);
    root.ok(&["enable", "phonebook"]);
}
