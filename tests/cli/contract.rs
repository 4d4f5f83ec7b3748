//! The CLI's contract for scripts, command by command: with `--json`, stdout is exactly
//! one JSON document — the result, or `{"error": …}` — and the exit status is 0 only on
//! success.

use modhost_test_support::{Root, arg, package, package_at};

use crate::root;

/// Runs `args` with `--json`; checks the exit status and that stdout is one JSON document
/// of the expected kind.
fn contract(root: &Root, args: &[&str], succeeds: bool) -> serde_json::Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let run = root.run(&with_json);
    assert_eq!(
        run.success,
        succeeds,
        "`modhost {}`: exit status\nstdout: {}\nstderr: {}",
        with_json.join(" "),
        run.stdout,
        run.stderr
    );
    let json = run.json();
    assert_eq!(
        json.get("error").is_some(),
        !succeeds,
        "`modhost {}`: {json}",
        with_json.join(" ")
    );
    json
}

#[test]
fn every_command_prints_one_json_document_and_exits_non_zero_only_on_failure() {
    let root = root();
    let dir = root.path().with_file_name("packages");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    for (name, package) in [
        ("core.tgz", package("core")),
        ("voicemail.tgz", package("voicemail")),
        ("pb1.tgz", package_at("phonebook", "1.0.0")),
    ] {
        assert!(std::fs::copy(package, dir.join(name)).is_ok());
    }
    let missing = root.path().with_file_name("missing.tgz");
    let nowhere = root.path().with_file_name("nowhere");
    let pb2 = package_at("phonebook", "2.0.0");
    let voicemail = package("voicemail");

    // In an order where each step's success leaves what the next one needs.
    let steps: &[(&[&str], bool)] = &[
        (&["list"], true),
        (&["install", arg(&missing)], false),
        (&["install", arg(&voicemail)], false),
        (&["installlocal", "--from", arg(&nowhere)], false),
        (&["installlocal", "--from", arg(&dir)], true),
        (&["scan", arg(&dir)], true),
        (&["scan", arg(&nowhere)], false),
        (&["info", "core"], true),
        (&["info", "nosuch"], false),
        (&["checkdepends", arg(&voicemail)], true),
        (&["checkdepends", "nosuch"], false),
        (&["reversedepends", "core"], true),
        (&["reversedepends", "nosuch"], false),
        (&["disable", "core"], false),
        (&["disable", "voicemail"], true),
        (&["disable", "voicemail"], false),
        (&["enable", "voicemail"], true),
        (&["enable", "voicemail"], false),
        (&["rollback", "phonebook"], false),
        (&["upgrade", arg(&missing)], false),
        (&["upgrade", arg(&pb2)], true),
        (&["rollback", "phonebook"], true),
        (&["upgradeall", "--from", arg(&nowhere)], false),
        (&["upgradeall", "--from", arg(&dir)], true),
        (&["uninstall", "core"], false),
        (&["uninstall", "voicemail"], true),
        (&["uninstall", "voicemail"], false),
        (&["delete", "phonebook"], true),
        (&["delete", "phonebook"], false),
        (&["recover"], true),
        (&["list"], true),
    ];
    for (args, succeeds) in steps {
        contract(&root, args, *succeeds);
    }
    let list = contract(&root, &["list"], true);
    assert_eq!(
        list.as_array()
            .map(|l| l.iter().map(|m| m["rawname"].clone()).collect::<Vec<_>>()),
        Some(vec![serde_json::json!("core")])
    );

    // A root that cannot be opened fails every command, reading ones included.
    let file = root.path().with_file_name("not-a-directory");
    assert!(std::fs::write(&file, "").is_ok());
    for args in [&["list"][..], &["recover"], &["info", "core"]] {
        let run = Root::output(
            std::process::Command::new(env!("CARGO_BIN_EXE_modhost"))
                .arg("--json")
                .args(args)
                .env("MODHOST_ROOT", &file),
        );
        assert!(!run.success, "{args:?}");
        assert!(
            run.json().get("error").is_some(),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn force_overrides_dependency_checks_but_never_safety_checks() {
    let root = root();
    let run = root.fails(&["install", arg(&package("voicemail"))]);
    assert!(run.stderr.contains("core"), "{}", run.stderr);
    root.ok(&["install", "--force", arg(&package("voicemail"))]);

    // Safety checks stand: a downgrade and a hostile archive stay refused.
    root.ok(&["install", arg(&package("core"))]);
    root.ok(&["install", arg(&package_at("phonebook", "2.0.0"))]);
    let before = root.fingerprint();
    let run = root.fails(&["upgrade", "--force", arg(&package_at("phonebook", "1.0.0"))]);
    assert!(run.stderr.contains("downgrade"), "{}", run.stderr);
    let bomb = root.path().with_file_name("bomb.tgz");
    modhost_test_support::hostile::write_bomb(&bomb, "bomb", 1);
    let run = root.fails(&["install", "--force", arg(&bomb)]);
    assert!(!run.stderr.is_empty());
    assert_eq!(root.fingerprint(), before);

    // Reverse dependencies are dependency checks: --force overrides them.
    root.fails(&["uninstall", "core"]);
    root.ok(&["uninstall", "--force", "core"]);
}
