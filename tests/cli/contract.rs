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
        // No root yet: reading one does not create it.
        (&["list"], false),
        // A change that fails leaves no root made for it.
        (&["install", arg(&missing)], false),
        (&["list"], false),
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
        // A module already in the state asked for is left as it is, as an installed
        // version is.
        (&["disable", "voicemail"], true),
        (&["enable", "voicemail"], true),
        (&["enable", "voicemail"], true),
        (&["enable", "nosuch"], false),
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
    // Forced in, it runs, and `list` says what it lacks, in text and JSON.
    let list = root.ok(&["list"]).stdout;
    assert!(
        list.lines().any(|line| line.contains("voicemail")
            && line.contains("enabled (requirements not met: module `core")
            && line.contains("not installed")),
        "{list}"
    );
    let listed = root.ok(&["list", "--json"]).json();
    assert!(
        listed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("requirements not met: module `core")),
        "{listed}"
    );

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
    // Whom that left without it is still asked after by its name.
    let dependents = root.ok(&["reversedepends", "--json", "core"]).json();
    assert_eq!(dependents, serde_json::json!(["phonebook", "voicemail"]));
}

#[test]
fn an_error_shows_each_cause_once() {
    let root = root();
    // Under a file, not a directory: opening it fails with a cause of its own.
    let file = root.path().with_file_name("plain-file");
    assert!(std::fs::write(&file, b"x").is_ok());
    let missing = file.join("module.xml");
    for json in [false, true] {
        let mut args = vec!["manifest", arg(&missing)];
        if json {
            args.insert(0, "--json");
        }
        let run = root.fails(&args);
        let shown = if json {
            run.json()["error"].as_str().unwrap_or_default().to_owned()
        } else {
            run.stderr.clone()
        };
        assert_eq!(
            shown.matches(arg(&missing)).count(),
            2,
            "the path once as the subject, once in the failed open, and no more: {shown}"
        );
        assert_eq!(shown.matches("Not a directory").count(), 1, "{shown}");
    }
}

#[test]
fn checkdepends_takes_a_bare_rawname_for_the_installed_module_even_beside_a_directory_of_that_name()
{
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    // Standing in a modules directory: `./core` holds another version of core.
    let here = root.path().with_file_name("modules-dir");
    assert!(std::fs::create_dir_all(here.join("core")).is_ok());
    let xml = "<module><rawname>core</rawname><name>Core</name><version>9.9.9</version></module>";
    assert!(std::fs::write(here.join("core/module.xml"), xml).is_ok());
    let checkdepends = |module: &str| {
        let run = Root::output(root.command(&["checkdepends", module]).current_dir(&here));
        assert!(run.success, "checkdepends {module}: {}", run.stderr);
        run.stdout.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(checkdepends("core"), "core 16.0.40", "the installed module");
    assert_eq!(checkdepends("./core"), "core 9.9.9", "a path is read");
    assert_eq!(checkdepends("core/module.xml"), "core 9.9.9");

    // dpkg's convention, as compare-versions: 1 is "not satisfied", 2 "cannot say".
    let code = |module: &str| {
        root.command(&["checkdepends", module])
            .output()
            .ok()
            .and_then(|o| o.status.code())
    };
    assert_eq!(code(arg(&package("voicemail"))), Some(0));
    let unmet = here.join("needy.xml");
    let needy = "<module><rawname>needy</rawname><name>N</name><version>1</version>\
                 <depends><module>nosuch</module></depends></module>";
    assert!(std::fs::write(&unmet, needy).is_ok());
    assert_eq!(code(arg(&unmet)), Some(1), "not satisfied");
    assert_eq!(code("nosuchmodule"), Some(2), "no such module: no answer");
    let json = Root::output(&mut root.command(&["checkdepends", "--json", "nosuchmodule"]));
    assert!(json.json()["error"].is_string(), "{}", json.stdout);
}

#[test]
fn check_online_and_showupgrades_say_when_there_is_nothing_to_show() {
    let root = root();
    // A root without sources (one that is not there is said to be missing).
    root.ok(&["recover"]);
    for command in ["check-online", "showupgrades"] {
        let run = root.ok(&[command]);
        assert_eq!(
            run.stdout,
            "no update sources are configured; add one with `modhost source add`\n"
        );
        assert_eq!(root.ok(&["--json", command]).json(), serde_json::json!([]));
    }

    let src = root.path().with_file_name("src");
    let site = root.path().with_file_name("site");
    assert!(std::fs::create_dir_all(&src).is_ok());
    assert!(std::fs::copy(package("core"), src.join("core.tgz")).is_ok());
    root.ok(&["repo", "build", arg(&src), "--out", arg(&site)]);
    root.ok(&["source", "add", "main", arg(&site.join("public"))]);
    root.ok(&["install", arg(&package("core"))]);
    let run = root.ok(&["showupgrades"]);
    assert_eq!(run.stdout, "no upgrades available\n");
    let reports = root.ok(&["--json", "showupgrades"]).json();
    assert_eq!(reports[0]["offers"], serde_json::json!([]), "{reports}");
    let run = root.ok(&["check-online"]);
    assert!(
        run.stdout.starts_with("main: core 16.0.40") && !run.stdout.contains("no upgrades"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_refusal_lists_its_reasons_for_scripts() {
    let root = root();
    let refused = root
        .fails(&["install", "--json", arg(&package("voicemail"))])
        .json();
    assert_eq!(
        refused["reasons"],
        serde_json::json!(["`voicemail` 16.0.12 requires module `core ge 16.0`: not installed"]),
        "{refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("nothing was changed"))
    );
}

#[test]
fn a_usage_error_under_json_is_one_json_error_document_and_exits_2() {
    let root = root();
    // Colours forced on: the document must hold clap's plain text, whatever stderr gets.
    let run = |args: &[&str]| {
        let output = root
            .command(args)
            .env("CLICOLOR_FORCE", "1")
            .env_remove("NO_COLOR")
            .output();
        let Ok(output) = output else {
            panic!("modhost did not run")
        };
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // `--json` before the subcommand or after it: (arguments, what the message says).
    let cases: &[(&[&str], &str)] = &[
        (
            &["--json", "install"],
            "the following required arguments were not provided",
        ),
        (
            &["install", "--json"],
            "the following required arguments were not provided",
        ),
        (
            &["--json", "frobnicate"],
            "unrecognized subcommand 'frobnicate'",
        ),
        (
            &["frobnicate", "--json"],
            "unrecognized subcommand 'frobnicate'",
        ),
        (
            &["--json", "compare-versions", "1.0", "lt"],
            "the following required arguments were not provided",
        ),
        (
            &["list", "--json", "--no-such-flag"],
            "unexpected argument '--no-such-flag'",
        ),
        (&["--json"], "'modhost' requires a subcommand"),
    ];
    for (args, says) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: a usage error\nstderr: {stderr}");
        let document: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{args:?}: stdout is not one JSON document ({e}): {stdout}")
        });
        let Some(fields) = document.as_object() else {
            panic!("{args:?}: {document}")
        };
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["error"], "{args:?}");
        let message = fields["error"].as_str().unwrap_or_default();
        assert!(message.starts_with(says), "{args:?}: {message}");
        assert!(
            message.contains("Usage: modhost"),
            "{args:?}: clap's whole message: {message}"
        );
        assert_eq!(message, message.trim(), "{args:?}: trimmed");
        assert!(
            !message.contains('\u{1b}'),
            "{args:?}: no ANSI codes: {message:?}"
        );
        assert!(
            stderr.contains('\u{1b}') && stderr.contains("error:") && stderr.contains("Usage:"),
            "{args:?}: clap's coloured text stays on stderr: {stderr}"
        );
    }

    // Without --json, clap's text only: stdout stays empty. After `--`, `--json` is a value.
    for args in [
        &["frobnicate"][..],
        &["install"],
        &["compare-versions", "--", "--json"],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
    }

    // Help and version print as usual, on stdout, and succeed; the version as JSON when
    // asked for.
    let version = format!(
        "modhost {} (runs components built against modhost:module@0.1.0)\n",
        env!("CARGO_PKG_VERSION")
    );
    let json_version = format!(
        "{{\"module_api\":[\"0.1.0\"],\"version\":\"{}\"}}\n",
        env!("CARGO_PKG_VERSION")
    );
    for (args, expected) in [
        (&["--version"][..], Some(version.as_str())),
        (&["--json", "--version"], Some(json_version.as_str())),
        (&["--version", "--json"], Some(json_version.as_str())),
        (&["--json", "--help"], None),
        (&["install", "--json", "--help"], None),
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        match expected {
            Some(expected) => assert_eq!(stdout, expected, "{args:?}"),
            None => assert!(
                stdout.contains("Usage:")
                    && serde_json::from_str::<serde_json::Value>(&stdout).is_err(),
                "{args:?}: {stdout}"
            ),
        }
        assert_eq!(stderr, "", "{args:?}");
    }
}
