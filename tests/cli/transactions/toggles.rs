//! Enable, disable and uninstall: dependencies respected, failures undone, `--force`.

use modhost_test_support::{arg, package, package_at, repackage};

use super::{fail_next_call, lookup, phonebook_root, status};
use crate::root;

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
    // Said before anyone tries: by `info` and `manifest`.
    let said =
        "protected    cannot be disabled or uninstalled, its module.xml says (--force overrides)";
    for shown in [
        root.ok(&["info", "core"]).stdout,
        root.ok(&["manifest", arg(&core)]).stdout,
    ] {
        assert!(shown.contains(said), "{shown}");
    }
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
    // Forced, the override is said.
    let run = root.ok(&["disable", "--force", "core"]);
    assert!(
        run.stderr
            .contains("forced: `core` says it cannot be disabled (<candisable>no</candisable>)"),
        "{}",
        run.stderr
    );
    let run = root.ok(&["uninstall", "--force", "core"]);
    assert!(
        run.stderr.contains(
            "forced: `core` says it cannot be uninstalled (<canuninstall>no</canuninstall>)"
        ),
        "{}",
        run.stderr
    );
    assert!(root.ok(&["list", "--json"]).json()[0].is_null());
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
    // Forced past its dependents, core's absence is shown on them, not only by
    // checkdepends: they run without what they require.
    root.ok(&["disable", "--force", "core"]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert!(
        info["unmet"][0].as_str().is_some_and(
            |u| u.contains("requires module `core ge 16.0`: installed 16.0.40 but disabled")
        ),
        "{info}"
    );
    let text = root.ok(&["info", "phonebook"]).stdout;
    assert!(
        text.contains("  unmet        `phonebook` 1.0.0 requires"),
        "{text}"
    );
    root.ok(&["enable", "core"]);
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert!(info.get("unmet").is_none(), "{info}");
    // Removed while only disabled modules require it: allowed, and said.
    root.ok(&["disable", "phonebook"]);
    root.ok(&["disable", "voicemail"]);
    let run = root.ok(&["uninstall", "--force", "core"]);
    assert!(
        run.stderr.contains(
            "phonebook, voicemail (disabled) require it: enabling them needs `core` installed again"
        ),
        "{}",
        run.stderr
    );
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

    // What is enabled already is left as it is, said, and the rest enabled.
    root.ok(&["disable", "voicemail"]);
    let run = root.ok(&["enable", "--json", "core", "voicemail"]);
    let actions: Vec<String> = run
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}", c["rawname"], c["action"]))
        .collect();
    assert_eq!(
        actions,
        ["\"voicemail\" \"enabled\"", "\"core\" \"unchanged\""]
    );
    let before = root.fingerprint();
    let run = root.ok(&["enable", "voicemail"]);
    assert_eq!(run.stdout, "nothing to do\n");
    assert!(
        run.stderr.contains("`voicemail` is already enabled"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "no code ran, nothing changed");
    root.ok(&["disable", "voicemail"]);
    let before = root.fingerprint();
    let run = root.ok(&["disable", "voicemail"]);
    assert!(
        run.stderr.contains("`voicemail` is already disabled"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "no code ran, nothing changed");
    root.ok(&["enable", "voicemail"]);

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
fn ctrl_c_stops_an_uninstall_whose_call_loops_at_once_keeping_the_module() {
    let root = phonebook_root();
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["install", arg(&package_at("phonebook", "3.0.0"))]);
    // A deadline far off: only the interruption can stop the looping uninstall() soon.
    root.configure("[limits]\ncall_timeout_ms = 60000\n");
    let data = fail_next_call(&root, "loop");
    let before = root.fingerprint();
    let run = crate::interrupted(&root, &["uninstall", "phonebook"], "Uninstalling");
    run.assert_stopped(std::time::Duration::from_secs(20));
    assert_eq!(root.fingerprint(), before, "the module, as it was");
    assert!(!data.join("damage").exists());
    assert_eq!(status(&root, "phonebook"), "enabled");
}

#[test]
fn disable_takes_several_modules_dependents_first_all_or_none() {
    let root = phonebook_root();
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["install", arg(&package_at("phonebook", "3.0.0"))]);
    root.ok(&["install", arg(&package("voicemail"))]);
    fail_next_call(&root, "ok");
    // Alone, core is refused: phonebook and voicemail require it.
    let run = root.fails(&["disable", "core"]);
    assert!(
        run.stderr.contains("`core`") && run.stderr.contains("phonebook"),
        "{}",
        run.stderr
    );
    // Given with them, it goes last.
    let disabled = root
        .ok(&["disable", "--json", "core", "phonebook", "voicemail"])
        .json();
    let order: Vec<&str> = disabled
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["rawname"].as_str())
        .collect();
    assert_eq!(
        order,
        ["voicemail", "phonebook", "core"],
        "dependents first, as enabling's order turned round"
    );
    for rawname in ["core", "phonebook", "voicemail"] {
        assert_eq!(status(&root, rawname), "disabled", "{rawname}");
    }

    // A failing disable() among several leaves every one of them enabled.
    root.ok(&["enable", "core", "phonebook", "voicemail"]);
    fail_next_call(&root, "error");
    let before = root.fingerprint();
    // voicemail's disable() runs first and succeeds; phonebook's then fails.
    let run = root.fails(&["disable", "voicemail", "phonebook"]);
    assert!(
        run.stderr.contains("Disabling voicemail") && run.stderr.contains("disable() failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        root.fingerprint(),
        before,
        "all or none: voicemail stays enabled"
    );
}

#[test]
fn uninstall_and_delete_take_several_modules_dependents_first_all_or_none() {
    let root = phonebook_root();
    root.ok(&["uninstall", "phonebook"]);
    root.ok(&["install", arg(&package_at("phonebook", "3.0.0"))]);
    root.ok(&["install", arg(&package("voicemail"))]);
    // A failing uninstall() among several leaves every one of them installed.
    fail_next_call(&root, "error");
    let before = root.fingerprint();
    let run = root.fails(&["uninstall", "voicemail", "phonebook"]);
    assert!(
        run.stderr.contains("Uninstalling voicemail") && run.stderr.contains("uninstall() failed"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "all or none: voicemail stays");

    // core alone is refused; given with those requiring it, it goes last.
    fail_next_call(&root, "ok");
    assert!(
        root.fails(&["uninstall", "core"])
            .stderr
            .contains("phonebook")
    );
    let removed = root
        .ok(&["uninstall", "--json", "core", "phonebook", "voicemail"])
        .json();
    let order: Vec<&str> = removed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["rawname"].as_str())
        .collect();
    assert_eq!(order, ["voicemail", "phonebook", "core"], "{removed}");
    assert!(root.ok(&["list", "--json"]).json() == serde_json::json!([]));
    assert!(root.dirs("modules").is_empty() && root.dirs("data").is_empty());

    // delete takes several too, running none of their code.
    root.ok(&["install", arg(&package("core")), arg(&package("voicemail"))]);
    let deleted = root.ok(&["delete", "--json", "voicemail", "core"]).json();
    assert_eq!(
        deleted,
        serde_json::json!([
            {"rawname": "voicemail", "action": "deleted", "from": "16.0.12", "to": null},
            {"rawname": "core", "action": "deleted", "from": "16.0.40", "to": null}
        ])
    );
}
