//! What a newcomer reads: messages that say what happened and what to do.

use std::process::Command;

use modhost_test_support::{Root, arg, package, package_at, packages_dir};

use crate::root;

#[test]
fn a_mistyped_package_or_a_directory_without_module_xml_is_named_for_what_it_is() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("phonebok-1.0.0.tgz");
    let run = root.fails(&["install", arg(&missing)]);
    assert!(
        run.stderr
            .contains(&format!("there is no file `{}`", missing.display())),
        "{}",
        run.stderr
    );
    let run = root.fails(&["install", arg(dir.path())]);
    assert!(
        run.stderr.contains("is a directory without a module.xml"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["install", "https://example.org/phonebook-1.0.0.tgz"]);
    assert!(
        run.stderr.contains("a URL is not read as a package"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["install", "phonebook"]);
    assert!(
        run.stderr
            .contains("no package directory was given or is configured")
            && run.stderr.contains("there is no file `phonebook`"),
        "{}",
        run.stderr
    );
    // The commands that read a module without installing it say the same, and nothing
    // about changes.
    for command in [&["manifest"][..], &["checkdepends"], &["pack"]] {
        let with = |path: &std::path::Path| {
            let mut args = command.to_vec();
            args.push(arg(path));
            root.fails(&args).stderr
        };
        let stderr = with(&missing);
        assert!(
            stderr.contains(&format!("there is no file `{}`", missing.display()))
                && !stderr.contains("nothing was changed"),
            "{command:?}: {stderr}"
        );
        let stderr = with(dir.path());
        assert!(
            stderr.contains("is a directory without a module.xml"),
            "{command:?}: {stderr}"
        );
    }
    // `info` looks modules up by rawname: a path is said not to be one.
    let run = root.fails(&["info", arg(&missing)]);
    assert!(
        run.stderr.contains("is not a module's rawname"),
        "{}",
        run.stderr
    );
    // A FIFO or a device is named for what it is, and never opened (a FIFO would block).
    let fifo = dir.path().join("pb.tgz");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()));
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (std::path::Path::new("/dev/zero"), "a device"),
    ] {
        let run = root.fails(&["upgrade", arg(path)]);
        assert!(
            run.stderr.contains(&format!(
                "`{}` is {kind}, not a package file",
                path.display()
            )),
            "{}",
            run.stderr
        );
        // Nor opened by what only reads a package: a FIFO would hold them for ever.
        let run = root.fails(&["manifest", arg(path)]);
        assert!(
            run.stderr
                .contains(&format!("it is {kind}, not a package file")),
            "{}",
            run.stderr
        );
    }
    // In a package directory, it is one unreadable package beside the others.
    let run = root.run(&["scan", arg(dir.path()), "--json"]);
    assert!(
        run.stdout.contains("it is a FIFO, not a package file"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_empty_list_and_a_hook_nobody_handles_say_so() {
    let root = root();
    root.ok(&["recover"]);
    let run = root.ok(&["list"]);
    assert!(
        run.stdout.starts_with("nothing is installed in ")
            && run.stdout.contains("modhost install PACKAGE"),
        "{}",
        run.stdout
    );
    assert_eq!(root.ok(&["list", "--json"]).json(), serde_json::json!([]));
    root.ok(&["install", arg(&package("core"))]);
    let run = root.ok(&["hook", "nobody.handles", "--json"]);
    assert_eq!(run.json(), serde_json::json!([]));
    assert!(
        run.stderr
            .contains("no running module handles hook `nobody.handles`")
            && !run.stderr.contains("differs")
            && !run.stderr.contains("hook point"),
        "{}",
        run.stderr
    );
    // One of an installed module's hook points: what would handle it.
    let run = root.ok(&["hook", "core.undeclared"]);
    assert!(
        run.stderr.contains(
            "no running module handles hook `core.undeclared`; it is module `core`'s hook \
             point, and no enabled module's module.xml maps a handler to it (under <hooks> or \
             <methods>: `<core.undeclared>handler_name</core.undeclared>`)"
        ),
        "{}",
        run.stderr
    );
    root.ok(&["disable", "core"]);
    let run = root.ok(&["hook", "core.undeclared"]);
    assert!(
        run.stderr
            .contains("; module `core`, whose hook point it is, is disabled"),
        "{}",
        run.stderr
    );
    root.ok(&["enable", "core"]);
    // Hook names are case-sensitive: one handled in another case is named.
    let run = root.ok(&["hook", "Call.Route", "--payload", "{}"]);
    assert!(
        run.stderr.contains(
            "no running module handles hook `Call.Route`; `call.route` differs from it only \
             in case (hook names are case-sensitive)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_empty_modhost_root_variable_is_as_good_as_unset() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = env!("CARGO_BIN_EXE_modhost");
    let run = Root::output(
        Command::new(bin)
            .arg("recover")
            .env("MODHOST_ROOT", "")
            .env("XDG_DATA_HOME", data.path())
            .env("HOME", data.path()),
    );
    assert!(run.success, "{}", run.stderr);
    assert!(
        data.path().join("modhost").is_dir(),
        "the per-user root was used"
    );
    let help = Root::output(Command::new(bin).arg("--help"));
    assert!(
        !help.stdout.contains("[env: MODHOST_ROOT="),
        "{}",
        help.stdout
    );
    // Each command's --force says what it forces for that command.
    let help = Root::output(Command::new(bin).args(["rollback", "--help"]));
    assert!(
        help.stdout.contains("need the current version") && !help.stdout.contains("canuninstall"),
        "{}",
        help.stdout
    );
    let help = Root::output(Command::new(bin).args(["uninstall", "--help"]));
    assert!(help.stdout.contains("<canuninstall>no"), "{}", help.stdout);
}

#[test]
fn a_root_with_a_tilde_the_shell_left_is_refused_and_makes_no_directory() {
    let cwd = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = env!("CARGO_BIN_EXE_modhost");
    let core = package("core");
    for (env, args) in [
        (Some("~/mh"), vec!["install", arg(&core)]),
        (None, vec!["--root=~/mh", "install", arg(&core)]),
        (None, vec!["--root", "~admin/mh", "list"]),
    ] {
        let mut command = Command::new(bin);
        command.current_dir(cwd.path()).args(&args);
        if let Some(root) = env {
            command.env("MODHOST_ROOT", root);
        }
        let run = Root::output(&mut command);
        assert!(
            !run.success && run.stderr.contains("which the shell did not expand"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(
        std::fs::read_dir(cwd.path()).is_ok_and(|mut d| d.next().is_none()),
        "nothing made in the working directory"
    );
}

#[test]
fn the_default_root_not_made_yet_reads_as_empty_and_a_file_is_no_root() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = env!("CARGO_BIN_EXE_modhost");
    let fresh = |args: &[&str]| {
        Root::output(
            Command::new(bin)
                .args(args)
                .env_remove("MODHOST_ROOT")
                .env("XDG_DATA_HOME", data.path())
                .env("HOME", data.path()),
        )
    };
    // A fresh machine's first look: nothing installed, not an error, and nothing made.
    let run = fresh(&["list"]);
    assert!(
        run.success
            && run.stdout.contains(&format!(
                "nothing is installed in `{}`",
                data.path().join("modhost").display()
            )),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = fresh(&["hook", "call.route"]);
    assert!(run.success, "{}", run.stderr);
    assert!(!data.path().join("modhost").exists(), "a root was made");

    // A file where a root was named is said to be one.
    let file = data.path().join("notes.txt");
    assert!(std::fs::write(&file, "x").is_ok());
    for args in [&["list"][..], &["install", arg(&package("core"))]] {
        let run = Root::output(Command::new(bin).arg("--root").arg(&file).args(args));
        assert!(
            !run.success
                && run.stderr.contains(&format!(
                    "`{}` is a file, not a modhost root",
                    file.display()
                )),
            "{args:?}: {}",
            run.stderr
        );
        // And one under it is said to be under a file, not "not a directory".
        let under = file.join("root");
        let run = Root::output(Command::new(bin).arg("--root").arg(&under).args(args));
        assert!(
            !run.success
                && run.stderr.contains(&format!(
                    "`{}` cannot be a modhost root: `{}` is a file, not a directory",
                    under.display(),
                    file.display()
                )),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_mistyped_module_name_is_told_the_installed_one_it_is_near() {
    let root = root();
    root.ok(&["install", arg(&package("core")), arg(&package("voicemail"))]);
    for args in [
        &["info", "voicemial"][..],
        &["uninstall", "vociemail"],
        &["disable", "Voicemail"],
        &["rollback", "voicemal"],
        &["kv", "cor"],
        &["grant", "voicemai"],
    ] {
        let run = root.fails(args);
        let meant = if args[1].starts_with('c') {
            "core"
        } else {
            "voicemail"
        };
        assert!(
            run.stderr.contains(&format!(
                "module `{}` is not installed (did you mean `{meant}`?)",
                args[1]
            )),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Nothing near: nothing guessed.
    let run = root.fails(&["info", "phonebook"]);
    assert!(
        run.stderr.contains("module `phonebook` is not installed")
            && !run.stderr.contains("did you mean"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bare_name_that_is_also_a_directory_says_how_to_read_the_directory() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert!(std::fs::create_dir(dir.path().join("voicemail")).is_ok());
    let mut command = root.command(&["checkdepends", "voicemail"]);
    let run = Root::output(command.current_dir(dir.path()));
    assert!(
        !run.success
            && run.stderr.contains("module `voicemail` is not installed")
            && run.stderr.contains("write it as a path: `./NAME`"),
        "{}",
        run.stderr
    );
    // A command that takes no path says nothing of one.
    for args in [&["uninstall", "voicemail"][..], &["kv", "voicemail"]] {
        let run = Root::output(root.command(args).current_dir(dir.path()));
        assert!(
            !run.success
                && run.stderr.contains("module `voicemail` is not installed")
                && !run.stderr.contains("as a path"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn upgrading_online_a_module_not_installed_says_to_install_it() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let run = root.fails(&["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("`phonebook` is not installed; install it instead of upgrading"),
        "{}",
        run.stderr
    );
}

#[test]
fn installing_online_without_any_source_says_that_none_is_configured() {
    let root = root();
    let run = root.fails(&["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("no update sources are configured")
            && run.stderr.contains("nothing offers `phonebook`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_package_whose_file_name_is_not_utf8_installs_and_is_checked() {
    use std::os::unix::ffi::OsStrExt;
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let name = std::ffi::OsStr::from_bytes(b"core-caf\xe9.tgz");
    let path = dir.path().join(name);
    assert!(std::fs::copy(package("core"), &path).is_ok());
    for command in ["checkdepends", "install", "manifest"] {
        let mut run = root.command(&[command]);
        let run = Root::output(run.arg(&path));
        assert!(run.success, "{command}: {}", run.stderr);
    }
    assert_eq!(root.ok(&["list", "--json"]).json()[0]["rawname"], "core");
}

#[test]
fn a_change_that_fails_on_a_root_it_made_leaves_no_root_behind() {
    let root = root();
    let changes: [&[&str]; 6] = [
        &["install", "nosuch-1.0.0.tgz"],
        &["install", "--online", "phonebook"],
        &["upgradeall", "--online"],
        &["installlocal"],
        &["source", "add", "main", "/nonexistent/repository"],
        &["source", "remove", "main"],
    ];
    for args in changes {
        let run = root.fails(args);
        assert!(!run.stderr.is_empty(), "{args:?}");
        assert!(
            !root.path().exists(),
            "{args:?} left a root: {}",
            run.stderr
        );
    }
    // Upgrading needs something installed: a root that is not there is said to be so.
    let run = root.fails(&["upgradeall", "--online"]);
    assert!(
        run.stderr.contains("no modhost root at") && run.stderr.contains("check --root"),
        "{}",
        run.stderr
    );
    // A change that succeeds keeps the root it made.
    root.ok(&["install", arg(&package("core"))]);
    let run = root.fails(&["install", "nosuch-1.0.0.tgz"]);
    assert!(run.stderr.contains("there is no file"), "{}", run.stderr);
    assert!(root.path().join("modhost.db").exists());
    let text = root.ok(&["source", "list"]).stdout;
    assert!(
        text.starts_with("no update sources are configured; add one with `modhost source add"),
        "{text}"
    );
    let run = root.fails(&["upgradeall", "--online"]);
    assert!(
        run.stderr.contains("no update sources are configured")
            && run.stderr.contains("nothing can be upgraded online"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_change_that_fails_or_does_nothing_leaves_no_directory_it_made_for_a_nested_root() {
    let root = root();
    let top = root.path();
    let nested = top.join("a").join("b");
    let empty = root.path().with_file_name("empty");
    assert!(std::fs::create_dir(&empty).is_ok());
    let empty = arg(&empty);
    let changes: [(&[&str], bool); 4] = [
        (&["install", "nosuch-1.0.0.tgz"], false),
        (&["installlocal"], false),
        (&["source", "add", "main", "/nonexistent/repository"], false),
        // Nothing to do: no root is kept for it.
        (&["installlocal", "--from", empty], true),
    ];
    // The binary with `args` on the root at `at`.
    let run_at = |at: &std::path::Path, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modhost"));
        command
            .arg("--root")
            .arg(at)
            .args(args)
            .env_remove("MODHOST_ROOT");
        Root::output(&mut command)
    };
    for (args, succeeds) in changes {
        let run = run_at(&nested, args);
        assert_eq!(run.success, succeeds, "{args:?}: {}", run.stderr);
        assert!(!top.exists(), "{args:?} left {top:?}: {}", run.stderr);
    }
    // A directory that was there stays, though opening made what is below it.
    assert!(std::fs::create_dir(&top).is_ok());
    assert!(!run_at(&nested, &["install", "nosuch-1.0.0.tgz"]).success);
    assert!(top.is_dir() && !top.join("a").exists());
    // Through `..` the path's text names other directories than those made: an empty one
    // that was there stays.
    let had = top.join("had");
    assert!(std::fs::create_dir(&had).is_ok());
    let through = top.join("x/../had/root");
    assert!(!run_at(&through, &["install", "nosuch-1.0.0.tgz"]).success);
    assert!(had.is_dir() && !had.join("root").exists());
}

#[test]
fn reading_commands_never_create_a_root_and_scan_and_manifest_need_none() {
    let root = root();
    let reads: [&[&str]; 12] = [
        &["list"],
        &["check-online"],
        &["showupgrades"],
        &["reload"],
        &["info", "core"],
        &["kv", "core"],
        &["rows", "core", "core_devices"],
        &["reversedepends", "core"],
        &["checkdepends", "core"],
        &["source", "list"],
        &["hook", "call.route"],
        &["download", "core"],
    ];
    for args in reads {
        let run = root.fails(args);
        assert!(
            run.stderr.contains(&format!(
                "no modhost root at `{}`: nothing was ever installed there",
                root.path().display()
            )) && run.stderr.contains("help: check --root and MODHOST_ROOT"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!root.path().exists(), "{args:?} created the root");
    }
    let json = root.run(&["--json", "list"]).json();
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("no modhost root")),
        "{json}"
    );

    // Describing packages needs no root, and makes none.
    let dir = root.path().with_file_name("packages");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    assert!(std::fs::copy(package("core"), dir.join("core.tgz")).is_ok());
    let run = root.ok(&["--json", "scan", arg(&dir)]);
    let scan = run.json();
    assert_eq!(scan[0]["rawname"], "core", "{scan}");
    assert_eq!(scan[0]["installable"], true, "{scan}");
    // With no root to keep it in, nothing is compiled: the component is read.
    assert!(!run.stderr.contains("Compiled"), "{}", run.stderr);
    let exports = scan[0]["exports"].as_array().cloned().unwrap_or_default();
    assert!(
        exports.contains(&"lifecycle.install".into()) && exports.contains(&"hooks.handle".into()),
        "{scan}"
    );
    let manifest = root
        .ok(&["--json", "manifest", arg(&package("core"))])
        .json();
    assert_eq!(manifest["rawname"], "core", "{manifest}");
    // A package directory listed against a root named but not there says so.
    let listed = root.ok(&["list", "--from", arg(&dir)]);
    assert!(
        listed.stdout.contains("not-installed")
            && listed.stderr.contains(&format!(
                "note: there is no modhost root at `{}`",
                root.path().display()
            )),
        "{listed:?}"
    );
    // A download by URL is verified by its checksum alone: it needs no root either (this
    // one fails to connect, and leaves nothing behind).
    let run = root.fails(&[
        "download",
        "https://127.0.0.1:1/core.tgz",
        "--sha256",
        &"0".repeat(64),
        "--out",
        arg(&dir),
    ]);
    assert!(!run.stderr.contains("no modhost root"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the server refused the connection: nothing answers at that host and port")
            && !run.stderr.contains("os error"),
        "{}",
        run.stderr
    );
    // One whose query holds a download key: refused in a one-off download's words,
    // without showing the key.
    let run = root.fails(&[
        "download",
        "https://127.0.0.1:1/core.tgz?key=883c0ffee",
        "--sha256",
        &"0".repeat(64),
        "--out",
        arg(&dir),
    ]);
    assert!(
        run.stderr.contains("nothing was downloaded:")
            && run
                .stderr
                .contains("it holds `key=` (in its query, or its path's parameters)")
            && run
                .stderr
                .contains("a package behind a download key comes from its update source")
            && !run.stderr.contains("883c0ffee"),
        "{}",
        run.stderr
    );
    assert!(!root.path().exists(), "a root was created");
}

#[test]
fn changing_an_installed_module_needs_a_root_and_makes_none() {
    let root = root();
    let changes: [&[&str]; 9] = [
        &["upgrade", "core"],
        &["upgradeall"],
        &["uninstall", "core"],
        &["delete", "core"],
        &["enable", "core"],
        &["disable", "core"],
        &["rollback", "core"],
        &["grant", "core"],
        &["revoke", "core"],
    ];
    for args in changes {
        let run = root.fails(args);
        assert!(
            run.stderr.contains("no modhost root at"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!root.path().exists(), "{args:?} created the root");
    }
    // `recover` makes a root where there is none, and says so: a mistyped `--root` must
    // not read as a healthy root.
    let run = root.ok(&["recover"]);
    assert!(
        run.stderr.contains("note: there was no root at")
            && run.stderr.contains("made an empty one"),
        "{}",
        run.stderr
    );
    let again = root.ok(&["recover"]);
    assert!(
        !again.stderr.contains("there was no root"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_failed_change_given_someones_directory_as_the_root_keeps_it_and_everything_in_it() {
    let (root, other) = (root(), root());
    let victim = root.path();
    std::fs::create_dir_all(victim.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(victim.join("extensions.conf"), "precious").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(victim.join("sub/b.conf"), "x").unwrap_or_else(|e| panic!("{e}"));
    let before = root.tree("");
    let missing = victim.join("nosuch.tgz");
    let not_a_package = victim.join("extensions.conf");
    let failing: [&[&str]; 3] = [
        &["install", arg(&missing)],
        &["install", arg(&not_a_package)],
        &["source", "add", "x", "/nonexistent/modhost-repo"],
    ];
    for args in failing {
        root.fails(args);
        // What the failed change made is gone; what was there is as it was.
        assert_eq!(root.tree(""), before, "{args:?}");
    }
    // A directory holding what a root holds (`data/`) is refused before anything is done:
    // recovery would take `data/x` for a removed module's leftovers.
    std::fs::create_dir_all(other.path().join("data/x")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(other.path().join("data/x/y"), "mine").unwrap_or_else(|e| panic!("{e}"));
    let before = other.tree("");
    for args in [
        &["install", arg(&package("core"))][..],
        &["recover"],
        &["list"],
        &["info", "core"],
    ] {
        let run = other.fails(args);
        assert!(
            run.stderr
                .contains("is not a modhost root (it has no state database")
                && run.stderr.contains("but holds `data` as a root does"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(other.tree(""), before, "{args:?}");
    }
    // A root that lost its state database but kept its modhost.toml: not a root either,
    // and what its modules kept is left for the administrator to restore.
    other.configure("");
    let before = other.tree("");
    for args in [
        &["list"][..],
        &["install", arg(&package("core"))],
        &["recover"],
    ] {
        let run = other.fails(args);
        assert!(
            run.stderr
                .contains("restore its modhost.db if it was a root"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(other.tree(""), before, "{args:?}");
    }
    // `recover` says the directory was no root, though the directory was there.
    let run = root.ok(&["recover"]);
    assert!(
        run.stderr.contains("there was no root at"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(victim.join("extensions.conf"))
            .ok()
            .as_deref(),
        Some("precious")
    );
}

#[test]
fn two_different_packages_of_one_version_in_a_directory_are_named_not_picked_by_chance() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let core = package("core");
    // The same file twice is no ambiguity.
    for name in ["a.tgz", "b.tgz"] {
        std::fs::copy(&core, dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    root.ok(&["scan", arg(dir.path())]);
    // The same module and version packed another way is: which one was meant?
    modhost_test_support::zipped(&core, false, &dir.path().join("c.zip"));
    let run = root.fails(&["install", "--from", arg(dir.path()), "core"]);
    assert!(
        run.stderr
            .contains("both hold `core` 16.0.40 but are not the same package")
            && run.stderr.contains("c.zip")
            && run.stderr.contains("a.tgz"),
        "{}",
        run.stderr
    );
    // Refused on a root it would have made: none is left behind.
    assert!(!root.path().exists());
    let scan = root.run(&["scan", "--json", arg(dir.path())]).json();
    // Each rival is named, with the module it holds.
    assert_eq!(
        scan.to_string().matches("not the same package").count(),
        2,
        "{scan}"
    );
    // In text, the rivals' one error is said once, as what it is.
    let text = root.run(&["scan", arg(dir.path())]);
    assert_eq!(
        text.stdout.matches("ambiguous: ").count(),
        1,
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("unreadable"), "{}", text.stdout);
    std::fs::remove_file(dir.path().join("c.zip")).unwrap_or_else(|e| panic!("{e}"));
    root.ok(&["install", "--from", arg(dir.path()), "core"]);
}

#[test]
fn a_root_whose_state_database_cannot_be_written_is_not_left_behind() {
    let root = root();
    let made = root.path().join("new");
    // Files may not grow (as on a full disk): the state database is made, and stays empty.
    let script = "trap '' XFSZ; ulimit -f 0 && exec \"$0\" --root \"$1\" install \"$2\"";
    let run = Root::output(
        Command::new("sh")
            .args(["-c", script, env!("CARGO_BIN_EXE_modhost")])
            .arg(&made)
            .arg(package("core")),
    );
    assert!(!run.success);
    assert!(run.stderr.contains("state database"), "{}", run.stderr);
    assert!(!made.exists(), "a root that holds nothing was left behind");
}

#[test]
fn a_root_this_user_cannot_write_is_named_with_its_owner_and_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let open_up = |path: &std::path::Path| {
        assert!(std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).is_ok());
    };
    let superuser = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let path = root.path();
    let (run, expected) = if superuser {
        // Another user, who may reach the root but not write it.
        for dir in path.ancestors().take(3) {
            open_up(dir);
        }
        let list_as_nobody = || {
            Root::output(
                Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(env!("CARGO_BIN_EXE_modhost"))
                    .arg("--root")
                    .arg(&path)
                    .arg("list"),
            )
        };
        let run = list_as_nobody();
        assert!(run.stderr.contains("cannot be written ("), "{}", run.stderr);
        // Its database readable by others too, it is said the same way.
        let readable = std::fs::Permissions::from_mode(0o644);
        assert!(std::fs::set_permissions(path.join("modhost.db"), readable).is_ok());
        (
            list_as_nobody(),
            "belongs to user `root` (uid 0), and this is ",
        )
    } else {
        let read_only = std::fs::Permissions::from_mode(0o555);
        assert!(std::fs::set_permissions(&path, read_only).is_ok());
        let run = root.run(&["list"]);
        open_up(&path);
        (run, "let this user write it")
    };
    assert!(!run.success);
    assert!(
        run.stderr.contains(&format!(
            "the modhost root `{}` cannot be written (",
            path.display()
        )) && run.stderr.contains(expected),
        "{}",
        run.stderr
    );
}

#[test]
fn a_root_that_is_a_link_to_nothing_is_named_so_by_changes_and_reads() {
    let root = root();
    let link = root.path().with_file_name("dangling");
    let target = root.path().with_file_name("unmounted");
    assert!(std::os::unix::fs::symlink(&target, &link).is_ok());
    let expected = format!(
        "`{}` is a link to `{}`, which does not exist (a file system not mounted?)",
        link.display(),
        target.display()
    );
    for command in [&["install", arg(&package("core"))][..], &["list"]] {
        let mut args = vec!["--root", arg(&link)];
        args.extend_from_slice(command);
        let run = Root::output(Command::new(env!("CARGO_BIN_EXE_modhost")).args(&args));
        assert!(!run.success);
        assert!(
            run.stderr.contains(&expected),
            "{command:?}: {}",
            run.stderr
        );
    }
    assert!(!target.exists());
}

#[test]
fn a_damaged_state_database_is_named_with_how_to_recover_it() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let database = root.path().join("modhost.db");
    let mut bytes = std::fs::read(&database).unwrap_or_default();
    bytes[..16].copy_from_slice(b"not a database!\0");
    assert!(std::fs::write(&database, bytes).is_ok());
    let run = root.fails(&["list"]);
    assert!(
        run.stderr.contains("modhost.db` is damaged (")
            && run.stderr.contains(".recover | sqlite3 recovered.db"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_address_space_limit_is_named_as_what_keeps_the_sandbox_from_starting() {
    let root = root();
    let script = "ulimit -v 8000000 && exec \"$0\" --root \"$1\" install \"$2\"";
    let run = Root::output(
        Command::new("sh")
            .args(["-c", script, env!("CARGO_BIN_EXE_modhost")])
            .arg(root.path())
            .arg(package("core")),
    );
    assert!(!run.success);
    assert!(
        run.stderr.contains("cannot set up the WebAssembly engine")
            && run.stderr.contains("run without `ulimit -v`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_table_a_missing_or_file_scan_directory_and_an_empty_one_are_said_plainly() {
    let root = root();
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&package_at("phonebook", "1.0.0")),
    ]);
    let run = root.fails(&["rows", "phonebook", "nosuch"]);
    assert!(
        run.stderr
            .contains("module `phonebook` has no table `nosuch` (its tables: phonebook_entries)")
            && !run.stderr.contains("no such table"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["rows", "core", "nosuch"]);
    assert!(run.stderr.contains("(it has no tables)"), "{}", run.stderr);

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("nowhere");
    for args in [
        vec!["scan", arg(&missing)],
        vec!["install", "--from", arg(&missing), "core"],
        vec!["upgradeall", "--from", arg(&missing)],
        vec!["installlocal", "--from", arg(&missing)],
    ] {
        let run = root.fails(&args);
        assert!(
            run.stderr
                .contains(&format!("there is no directory `{}`", missing.display()))
                && !run.stderr.contains("os error"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let run = root.fails(&["scan", arg(&package("core"))]);
    assert!(
        run.stderr
            .contains("is a file, not a directory of packages")
            && run
                .stderr
                .contains("`modhost manifest FILE` describes one package"),
        "{}",
        run.stderr
    );
    let run = root.ok(&["scan", arg(dir.path())]);
    assert!(
        run.stdout
            .starts_with("no packages (*.tgz, *.tar.gz, *.zip) or module directories in"),
        "{}",
        run.stdout
    );
    assert_eq!(
        root.ok(&["--json", "scan", arg(dir.path())]).json(),
        serde_json::json!([])
    );
    // An archive no package is named as (a release as .tar.xz, a bare .tar) is named, with
    // what to make of it, by every command reading the directory.
    let tar = dir.path().join("core-16.0.40.tar");
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap_or_else(|e| panic!("{e}"));
    let made = Command::new("tar")
        .arg("-xzf")
        .arg(package("core"))
        .arg("-C")
        .arg(&unpacked)
        .status()
        .and_then(|_| {
            Command::new("tar")
                .arg("-cf")
                .arg(&tar)
                .arg("-C")
                .arg(&unpacked)
                .arg("core")
                .status()
        });
    assert!(made.is_ok_and(|s| s.success()));
    std::fs::remove_dir_all(&unpacked).unwrap_or_else(|e| panic!("{e}"));
    let said = "it is an uncompressed tar archive; compress it with gzip";
    let scan = root.fails(&["scan", arg(dir.path())]);
    assert!(scan.stdout.contains(said), "{}", scan.stdout);
    let install = root.fails(&["install", "--from", arg(dir.path()), "core"]);
    assert!(install.stderr.contains(said), "{}", install.stderr);
    let list = root.ok(&["list", "--from", arg(dir.path())]);
    assert!(list.stderr.contains(said), "{}", list.stderr);
}

#[test]
fn a_source_url_is_kept_as_it_is_requested_and_one_never_requestable_is_refused_at_once() {
    let root = root();
    root.ok(&["source", "add", "idn", "https://bücher.example/pl ain/"]);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(
        sources[0]["url"], "https://xn--bcher-kva.example/pl%20ain",
        "{sources}"
    );
    let run = root.fails(&["source", "add", "port", "https://repo.example:99999/x"]);
    assert!(
        run.stderr.contains(
            "`https://repo.example:99999/x`: it is not a valid URL (invalid port number)"
        ),
        "{}",
        run.stderr
    );
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources.as_array().map(Vec::len), Some(1), "{sources}");
}

#[test]
fn a_directory_of_packages_is_not_taken_as_a_source() {
    let root = root();
    let run = root.fails(&["source", "add", "main", arg(&packages_dir())]);
    assert!(
        run.stderr.contains(&format!(
            "source `main`: `{}` holds packages but no `index.json`, so it is a package \
             directory, not an update source",
            packages_dir().display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn an_engine_this_process_cannot_have_leaves_no_root_behind() {
    // Under `ulimit -v` (or valgrind) the sandbox pool cannot reserve its address space:
    // opening fails, saying so, before anything of a root is made.
    let root = root();
    let bin = env!("CARGO_BIN_EXE_modhost");
    let run = Root::output(
        Command::new("sh")
            .args([
                "-c",
                "ulimit -v 8000000 && exec \"$0\" \"$@\"",
                bin,
                "--root",
            ])
            .arg(root.path())
            .args(["install", arg(&package("core"))]),
    );
    assert!(
        !run.success && run.stderr.contains("run without `ulimit -v`"),
        "{}",
        run.stderr
    );
    assert!(!root.path().exists(), "a root was left behind");
}

#[test]
fn installlocal_online_is_refused_rather_than_upgrading() {
    // Nothing installs every module a source offers: modules from the sources are
    // installed by name, and `installlocal --online` once upgraded instead.
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let before = root.fingerprint();
    let run = root.fails(&["installlocal", "--online"]);
    assert!(
        run.stderr
            .contains("modules from the update sources are installed by name: `modhost install --online NAME...`"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn force_is_suggested_only_when_requirements_alone_refuse_a_change() {
    let root = root();
    let phonebook = package_at("phonebook", "1.0.0");
    let suggests_force = |args: &[&str]| {
        let run = root.fails(args);
        assert!(
            run.stderr.contains("requires module `core")
                && run
                    .stderr
                    .contains("--force does it anyway, setting the requirements aside"),
            "{args:?}: {}",
            run.stderr
        );
    };
    suggests_force(&["install", arg(&phonebook)]);
    // And, first, what mends it: core installed with it.
    let run = root.fails(&["install", arg(&phonebook)]);
    assert!(
        run.stderr
            .contains("help: install what it requires with it (give its packages too"),
        "{}",
        run.stderr
    );
    // The same package twice beside the unmet requirement: forcing would not mend that.
    let run = root.fails(&["install", arg(&phonebook), arg(&phonebook)]);
    assert!(
        run.stderr.contains("requires module `core") && !run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    // Enabling a module whose requirements are unmet, which forcing sets aside too.
    root.ok(&["install", "--force", arg(&phonebook)]);
    root.ok(&["disable", "phonebook"]);
    suggests_force(&["enable", "phonebook"]);
    // Forced, what it sets aside is said, as a forced install says it.
    let run = root.ok(&["enable", "--force", "phonebook"]);
    assert!(
        run.stderr
            .contains("forced: ignoring: `phonebook` 1.0.0 requires module `core"),
        "{}",
        run.stderr
    );
    // A requirement disabled: enabled with it.
    root.ok(&["install", arg(&package("core"))]);
    root.ok(&["disable", "phonebook"]);
    root.ok(&["disable", "core"]);
    let run = root.fails(&["enable", "phonebook"]);
    assert!(
        run.stderr.contains(
            "help: enable what it requires with it (`modhost enable` takes several modules)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_dependency_only_in_a_package_that_cannot_be_read_is_named_with_why() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let phonebook = dir.path().join("phonebook-1.0.0.tgz");
    std::fs::copy(package_at("phonebook", "1.0.0"), &phonebook).unwrap_or_else(|e| panic!("{e}"));
    // core's package, cut short by a copy that stopped half-way.
    let core = std::fs::read(package("core")).unwrap_or_else(|e| panic!("{e}"));
    let cut = dir.path().join("core-16.0.40.tgz");
    std::fs::write(&cut, &core[..core.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let info = root().ok(&["info", "--json", "--from", arg(dir.path()), "phonebook"]);
    let unmet = info.json()["unmet"].to_string();
    assert!(
        unmet.contains(&format!(
            "requires module `core ge 16.0`: not installed, and `{}` may hold it but cannot be read: ",
            cut.display()
        )) && unmet.contains("truncated"),
        "{unmet}"
    );
    // Not "not present at all", which sends the administrator looking for a package
    // that is there.
    assert!(!unmet.contains("not present at all"), "{unmet}");
    // Installing it from that directory is refused saying the same.
    let run = root().fails(&["install", "--from", arg(dir.path()), "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "not installed, and `{}` may hold it but cannot be read",
            cut.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_requirement_is_not_brought_while_a_package_that_may_be_newer_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (from, name) in [
        (package("core"), "core-16.0.40.tgz"),
        (package_at("phonebook", "1.0.0"), "phonebook-1.0.0.tgz"),
    ] {
        std::fs::copy(from, dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let junk = dir.path().join("core-16.0.50.tgz");
    std::fs::write(&junk, b"not a package").unwrap_or_else(|e| panic!("{e}"));
    let root = root();
    let run = root.fails(&["install", "--from", arg(dir.path()), "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "`core` is not brought from `{}` (`phonebook` requires it; `{}` cannot be read, and may hold a newer `core`",
            dir.path().display(),
            junk.display()
        )),
        "{}",
        run.stderr
    );
    // Nothing was installed, and the root it would have made is not left behind.
    assert!(!root.path().exists());
}

#[test]
fn upgradeall_passes_over_what_holds_no_installed_module() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A module's sources not built yet, and a broken package of a module nobody installed.
    let sources = dir.path().join("notes");
    std::fs::create_dir(&sources).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        sources.join("module.xml"),
        "<module><rawname>notes</rawname><name>Notes</name><version>1.0</version></module>",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("billing-2.0.tgz"), b"cut").unwrap_or_else(|e| panic!("{e}"));
    let run = root.ok(&["upgradeall", "--from", arg(dir.path())]);
    assert!(!run.stderr.contains("left out"), "{}", run.stderr);
    // One that may hold an installed module's newer version still stops it.
    let cut = dir.path().join("core-16.0.50.tgz");
    std::fs::write(&cut, b"cut").unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&["upgradeall", "--from", arg(dir.path())]);
    assert!(
        run.stderr.contains(&format!("`{}`", cut.display())),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("billing-2.0.tgz`:"), "{}", run.stderr);
}

#[test]
fn output_that_cannot_be_written_is_said_on_stderr_under_json_too() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    for args in [&["list"][..], &["list", "--json"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
        let Ok(full) = full else { panic!("{full:?}") };
        let run = Root::output(root.command(args).stdout(full));
        assert!(
            !run.success && run.stderr.contains("error:") && run.stderr.contains("No space left"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_reader_that_stopped_reading_ends_the_command_quietly() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    for args in [&["info", "core"][..], &["info", "--json", "core"]] {
        // A pipe whose reader is gone before anything is written: `| head -0`.
        let pipe = std::io::pipe();
        let Ok((reader, writer)) = pipe else {
            panic!("{pipe:?}")
        };
        drop(reader);
        let run = root.command(args).stdout(writer).output();
        let Ok(run) = run else { panic!("{run:?}") };
        // As a shell shows a program SIGPIPE ended, with nothing said.
        assert_eq!(run.status.code(), Some(141), "{args:?}");
        assert!(run.stderr.is_empty(), "{args:?}: {:?}", run.stderr);
    }
}
