//! Failed installs leave no trace: schema errors, errors, traps, loops, memory, refusals
//! midway.

use std::path::PathBuf;

use modhost_test_support::{Root, arg, component, package, package_at, repackage};

use super::{lookup, phonebook_root, status, version};
use crate::root;

#[test]
fn a_first_install_whose_schema_fails_leaves_no_trace() {
    let root = root();
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&package_at("phonebook", "1.0.0")),
    ]);
    let module = root.path().with_file_name("clash");
    assert!(std::fs::create_dir_all(&module).is_ok());
    assert!(std::fs::copy(component("hostile"), module.join("module.wasm")).is_ok());
    // A valid module.xml (the manifest refuses duplicate fields and reserved names), but
    // a table another module owns: refused when the schema is applied.
    let xml = "<module><rawname>clash</rawname><name>Clash</name><version>1.0</version>\
               <database><table name=\"phonebook_entries\">\
               <field name=\"id\" type=\"integer\"/>\
               </table></database></module>";
    assert!(std::fs::write(module.join("module.xml"), xml).is_ok());
    let package = module.join("clash.tgz");
    root.ok(&["pack", arg(&module), "-o", arg(&package)]);
    let before = root.fingerprint();
    let run = root.fails(&["install", arg(&package)]);
    assert!(
        run.stderr.contains("module `clash`")
            && run.stderr.contains(
                "database schema: table `phonebook_entries` belongs to module `phonebook`"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert!(root.dirs("data").iter().all(|d| d != "clash"));
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
/// prints the same, `list` shows core alone, and no table, row, grant, directory or staged
/// file of phonebook's is left (its compiled component may stay in the cache).
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
    // Its compiled code alone may stay, within the cache's bound, so that installing it
    // again (mended, or with what it lacked) does not compile it again.
    let after = root.tree("cache");
    assert!(
        cache.is_subset(&after) && after.len() <= cache.len() + 1,
        "{case}: at most its compiled component is left: {cache:?} -> {after:?}"
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
    let run = root.ok(&["install", arg(&pb1)]);
    assert_eq!(lookup(&root), "Alice Example", "a later install works");
    assert!(
        !run.stderr.contains("Compiled phonebook"),
        "what the failed install compiled is not compiled again: {}",
        run.stderr
    );
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
            "installed `voicemail` 16.0.13 requires module `core lt 16.1`, which upgrading \
             `core` to 16.1.0 would not meet: 16.1.0 is too new"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "the refusal changes nothing");
    root.ok(&["upgrade", "--force", arg(&core161)]);
    assert_eq!(version(&root, "core"), "16.1.0");
    assert_eq!(lookup(&root), "Alice Example", "its dependents still run");
}

#[test]
fn a_first_install_that_fails_after_compiling_keeps_the_root_for_its_compiled_code() {
    let root = root();
    // Its install() runs out of memory: after its component was compiled.
    root.configure("[limits]\nmax_memory_mb = 1\n");
    let pb1 = package_at("phonebook", "1.0.0");
    let run = root.fails(&["install", "--force", arg(&pb1)]);
    assert!(run.stderr.contains("Compiled"), "{}", run.stderr);
    assert!(root.ok(&["list", "--json"]).json()[0].is_null());
    // Tried again, nothing is compiled.
    root.configure("");
    let run = root.ok(&["install", "--force", arg(&pb1)]);
    assert!(!run.stderr.contains("Compiled"), "{}", run.stderr);
}

#[test]
fn a_first_install_killed_mid_change_leaves_the_next_command_no_root_to_find() {
    let root = root();
    let (bad, mode_dir) = phonebook_bad_reading_its_mode(&root);
    // Its install() loops: the change is under way when it is killed.
    assert!(std::fs::write(mode_dir.join("mode"), "loop").is_ok());
    for (given, kept) in [
        (None, false),
        (Some("[limits]\ncall_timeout_ms = 60000\n"), true),
    ] {
        // Given a modhost.toml first, the directory is the administrator's, and stays.
        if let Some(config) = given {
            assert!(std::fs::create_dir_all(root.path()).is_ok());
            assert!(std::fs::write(root.path().join("modhost.toml"), config).is_ok());
        }
        let core = package("core");
        let args = ["install", "--grant", arg(&core), arg(&bad)];
        let run = crate::interrupted_by(&root, &args, "Installing phonebook", "KILL");
        assert_eq!(run.code, None, "killed: {:?}", run.said);
        assert!(
            root.path().join("modhost.db").exists(),
            "the kill left the root"
        );
        // The next command finds what was there before: nothing, or the administrator's
        // directory with its modhost.toml, a root to be with nothing in it.
        let run = root.run(&["list"]);
        let said = match kept {
            false => "no modhost root at",
            true => "nothing is installed in",
        };
        assert!(
            run.success == kept && (run.stdout + &run.stderr).contains(said),
            "{kept}: {said}"
        );
        let left: Vec<String> = std::fs::read_dir(root.path())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        match kept {
            false => assert!(!root.path().exists(), "{left:?}"),
            // A root is meant there: `list` finds it empty, as before the change.
            true => assert!(
                left.contains(&"modhost.toml".to_owned()) && !left.contains(&"made".to_owned()),
                "{left:?}"
            ),
        }
    }
    // A root where a change committed keeps its modules whatever is killed after.
    root.ok(&["install", arg(&package("core"))]);
    assert!(
        !root.path().join("made").exists(),
        "kept: no record of its making"
    );
    root.ok(&["list"]);
}

#[test]
fn a_first_install_signalled_or_killed_while_it_opens_a_new_root_leaves_nothing_behind() {
    let root = root();
    // A mistyped root two directories deep: neither directory was there.
    let top = root.path();
    let typo = top.join("a/b");
    let core = package("core");
    let modhost = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_modhost"));
        command
            .arg("--root")
            .arg(&typo)
            .args(args)
            .env_remove("MODHOST_ROOT")
            .env_remove("MODHOST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    // Signals spread over the first tenth of a second, while the root is being made and
    // opened, before the change begins.
    for (signal, delay_ms) in (0..8).flat_map(|i| [("TERM", i * 12), ("KILL", i * 12 + 6)]) {
        let Ok(mut child) = modhost(&["install", arg(&core)]).spawn() else {
            panic!("cannot run modhost");
        };
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()));
        let code = child.wait().ok().and_then(|s| s.code());
        // SIGTERM stops the change as Ctrl-C does, once modhost catches it: before
        // then (the process barely started) it ends the process, which made nothing yet.
        match signal {
            "TERM" => assert!(matches!(code, Some(130) | None), "{delay_ms} ms: {code:?}"),
            _ => assert_eq!(code, None, "{delay_ms} ms"),
        }
        // The next command finds no root, and what the first made is gone.
        let listed = modhost(&["list"]).status();
        assert!(
            listed.is_ok_and(|s| !s.success()),
            "{signal} at {delay_ms} ms"
        );
        // Nothing is left; only a kill in the instant between making the root's
        // directories and recording that it made them (before that record, nothing
        // says they were not the administrator's) may leave those directories, empty.
        let left = root.tree("");
        let empty_dirs_only = left.iter().all(|path| top.join(path).is_dir());
        assert!(
            !top.exists() || (signal == "KILL" && empty_dirs_only),
            "{signal} at {delay_ms} ms left {left:?}"
        );
        if top.exists() {
            assert!(std::fs::remove_dir_all(&top).is_ok());
        }
    }
}

#[test]
fn a_command_that_repairs_what_a_killed_change_left_says_so() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let (bad, mode_dir) = phonebook_bad_reading_its_mode(&root);
    assert!(std::fs::write(mode_dir.join("mode"), "loop").is_ok());
    let args = ["install", "--grant", arg(&bad)];
    let run = crate::interrupted_by(&root, &args, "Installing phonebook", "KILL");
    assert_eq!(run.code, None, "killed: {:?}", run.said);
    // A read repairs it as it opens the root, and says so rather than leave `recover`
    // to find nothing.
    let run = root.ok(&["list"]);
    assert!(
        run.stderr.contains("Recovered") && run.stderr.contains("leftover"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("phonebook"), "{}", run.stdout);
    assert!(root.ok(&["recover"]).stdout.contains("nothing to recover"));
}
