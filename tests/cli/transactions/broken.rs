//! Broken modules: vanished or changed files, repair by reinstalling, grants that reach the
//! root refused.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use modhost_test_support::{Root, arg, component, package, package_at};

use super::{lookup, phonebook_root, status};
use crate::root;

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
    // The list keeps its columns narrow: the reason, with its path and digests, is said
    // below the table.
    let listed = root.ok(&["list"]).stdout;
    let (table, reasons) = listed.split_once("\n\n").unwrap_or_default();
    assert!(
        table.lines().all(|line| line.len() < 60) && table.contains("phonebook  1.0.0    broken"),
        "{listed}"
    );
    assert!(
        reasons.starts_with("phonebook: broken: component `")
            && reasons.contains("has changed since it was installed"),
        "{listed}"
    );
    root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    assert!(!lookup(&root).is_empty(), "reinstalling repairs it");
}

/// Makes `dir` (a leftover no module uses) impossible to remove until dropped: an
/// immutable file in it for root, whom permissions do not stop; a read-only directory
/// for anyone else.
struct Unremovable(PathBuf, bool);

impl Unremovable {
    /// `None` where it cannot be done: root without `CAP_LINUX_IMMUTABLE` (a container)
    /// or on a file system without the attribute.
    fn new(dir: PathBuf) -> Option<Self> {
        let file = dir.join("recording.wav");
        assert!(std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&file, "x").is_ok());
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let made = if root {
            std::process::Command::new("chattr")
                .arg("+i")
                .arg(&file)
                .status()
                .is_ok_and(|s| s.success())
        } else {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).is_ok()
        };
        if !made {
            return None;
        }
        Some(Unremovable(dir, root))
    }
}

impl Drop for Unremovable {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0.join("recording.wav"))
                .status();
        } else {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn a_leftover_that_cannot_be_removed_is_reported_and_stops_nothing() {
    let root = phonebook_root();
    // What an uninstall run by another user (or sudo) could not take away, and the
    // intent that listed it.
    let stuck = root.path().join("data/gone/data-1");
    let Some(_unremovable) = Unremovable::new(stuck.clone()) else {
        eprintln!("skipped: no way to make a leftover unremovable here");
        return;
    };
    let intent = root.path().join("staging/intent-1-2-3");
    std::fs::write(&intent, "leftovers\nmade data/gone/data-1\n").unwrap_or_else(|e| panic!("{e}"));
    let list = root.ok(&["list"]);
    assert!(list.stdout.contains("phonebook"), "{}", list.stdout);
    assert!(
        list.stderr.contains("cannot remove leftover `") && list.stderr.contains("data-1"),
        "{}",
        list.stderr
    );
    assert_eq!(lookup(&root), "Alice Example");
    root.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let recovered = root.ok(&["recover"]);
    assert!(
        recovered.stdout.contains("cannot remove leftover `")
            && recovered.stdout.contains("remove it as a user allowed to"),
        "{}",
        recovered.stdout
    );
    assert!(
        !recovered.stdout.contains("no interrupted change"),
        "said as stuck only: {}",
        recovered.stdout
    );
    assert!(stuck.exists());
    assert!(intent.is_file(), "kept for the next recovery to try again");
}

#[test]
fn a_broken_modules_handlers_are_named_as_left_out_and_reload_writes_nothing_without_it() {
    let root = phonebook_root();
    root.ok(&["install", arg(&package("voicemail"))]);
    root.ok(&["reload"]);
    let config = root.path().join("etc/extensions_modhost.conf");
    let before = std::fs::read_to_string(&config).unwrap_or_default();
    assert!(before.contains("voicemail"), "{before}");
    let component = root
        .installed_dir("voicemail", "modules")
        .join("module.wasm");
    assert!(std::fs::remove_file(component).is_ok());

    let run = root.ok(&["hook", "call.route", "--payload", "{\"to\":\"*100\"}"]);
    assert!(
        run.stderr.contains(
            "note: voicemail `voicemail_route` (pri 400) not run: its module is broken (component `"
        ),
        "{}",
        run.stderr
    );
    // Fail-closed, the chain cannot be whole: it runs up to the broken module's place
    // (phonebook at 100) and stops there; core, after it, is left out as stopped.
    root.configure("[hooks.\"call.route\"]\non_error = \"stop\"\n");
    let run = root.fails(&[
        "hook",
        "call.route",
        "--payload",
        "{\"to\":\"*100\"}",
        "--json",
    ]);
    let ran: Vec<String> = run.json().as_array().map_or_else(Vec::new, |calls| {
        calls.iter().map(|c| c["rawname"].to_string()).collect()
    });
    assert_eq!(ran, ["\"phonebook\""], "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "error: hook `call.route` stopped: `voicemail`'s handler could not run, its module \
             is broken"
        ) && run.stderr.contains(
            "core `core_route` (pri 480) not run: the chain stopped at `voicemail`, whose \
             module is broken"
        ),
        "{}",
        run.stderr
    );
    root.configure("");
    let run = root.fails(&["reload"]);
    assert!(
        run.stderr.contains(
            "nothing was written: `voicemail` has a get_config handler, and its module is \
             broken (component `"
        ) && run.stderr.contains("or delete it to reload without it"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap_or_default(), before);
    // Repaired by reinstalling its version, it is in the configuration again.
    root.ok(&["install", "--reinstall", arg(&package("voicemail"))]);
    root.ok(&["reload"]);
    assert_eq!(std::fs::read_to_string(&config).unwrap_or_default(), before);
    // Broken with a module.xml no longer read (as a stricter modhost may find one it
    // took): whether it has a get_config handler is unknown, so nothing is written.
    root.write_state(
        "UPDATE modhost_modules SET manifest = replace(manifest, '<version>16.0.12</version>', \
         '<version>16.0.12 x</version>') WHERE rawname = 'voicemail'",
    );
    root.ok(&["recover"]);
    assert!(std::fs::write(&config, "kept\n").is_ok());
    let run = root.fails(&["reload"]);
    assert!(
        run.stderr
            .contains("nothing was written: `voicemail` is broken (installed module `voicemail`: ")
            && run.stderr.contains(
                "its module.xml cannot be read to tell whether it has a get_config handler"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap_or_default(),
        "kept\n"
    );
    // Its uninstall() cannot run, said as that, with the way out.
    let run = root.fails(&["uninstall", "voicemail"]);
    assert!(
        run.stderr.contains(
            "`voicemail` 16.0.12 cannot run its uninstall(), as its code cannot be loaded"
        ) && run
            .stderr
            .contains("help: `delete` removes it without running its code"),
        "{}",
        run.stderr
    );
    root.ok(&["delete", "voicemail"]);
    root.ok(&["reload"]);

    // A fail-closed chain that stops says which handlers never ran.
    root.configure(
        "[limits]\ncall_timeout_ms = 1500\nmax_memory_mb = 32\n\
         [hooks.\"call.route\"]\nshape = \"pipeline\"\non_error = \"stop\"\n",
    );
    let run = root.fails(&["hook", "call.route", "--payload", "not json"]);
    assert!(
        run.stderr.contains(
            "note: core `core_route` (pri 480) not run: the chain stopped at `phonebook`'s failure"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_payload_too_long_for_a_command_line_comes_from_a_file_or_standard_input() {
    let root = phonebook_root();
    // Longer than one argument may be (128 KiB on Linux). Phonebook's route passes on a
    // call to no number of its own as it came (its keys sorted).
    let payload = format!("{{\"to\":\"*100\",\"pad\":\"{}\"}}", "a".repeat(200_000));
    let file = root.path().with_file_name("payload.txt");
    assert!(std::fs::write(&file, &payload).is_ok());
    let answer = |run: modhost_test_support::Run| {
        let calls = run.json();
        let output = calls[0]["output"].as_str().unwrap_or_default().to_owned();
        serde_json::from_str::<serde_json::Value>(&output).unwrap_or_default()
    };
    let payload = serde_json::from_str::<serde_json::Value>(&payload).unwrap_or_default();
    let from_file = root.ok(&["hook", "call.route", "--payload-file", arg(&file), "--json"]);
    assert!(answer(from_file) == payload, "not passed on whole");
    let mut command = root.command(&["hook", "call.route", "--payload-file", "-", "--json"]);
    let stdin = std::fs::File::open(&file).unwrap_or_else(|e| panic!("{e}"));
    let from_stdin = Root::output(command.stdin(stdin));
    assert!(from_stdin.success, "{}", from_stdin.stderr);
    assert!(answer(from_stdin) == payload, "not passed on whole");
}
