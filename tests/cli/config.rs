//! `modhost.toml` as an administrator edits it by hand: a value that could only fail
//! later (a zero that stops every call, a quota for a name that is no module's), a link
//! to nothing or to a device, a relative package directory. Each is refused when the
//! file is read, naming the file and the key, or means what the administrator meant.

use modhost_test_support::{arg, package};

use crate::root;

#[test]
fn zeros_that_would_fail_every_call_and_quotas_of_no_module_are_refused_by_key() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let cases = [
        (
            "[limits]\ncall_timeout_ms = 0\n",
            "[limits] call_timeout_ms = 0 would fail every call",
        ),
        (
            "[hooks.\"x\"]\nmax_memory_mb = 0\n",
            "[hooks.\"x\"] max_memory_mb = 0 would fail every call",
        ),
        (
            "[state]\nmodule_quota_mb = 0\n",
            "[state] module_quota_mb = 0 leaves no room at all",
        ),
        (
            "[data]\nmodule_entries = 0\n",
            "[data] module_entries = 0 leaves no room at all",
        ),
        (
            "[state.quotas]\n\"../x\" = 5\n",
            "[state.quotas] `../x` is not a module's rawname",
        ),
        (
            "[data.quotas]\nRHello = { mb = 1 }\n",
            "[data.quotas] `RHello` is not a module's rawname",
        ),
        (
            "packages = \"\"\n",
            "packages = \"\" names no directory (it would be the root itself)",
        ),
        (
            "[state.quotas]\ncore = 0\n",
            "[state.quotas] core = 0 leaves the module no room at all",
        ),
        (
            "[data.quotas]\ncore = { mb = 5, entries = 0 }\n",
            "[data.quotas] core.entries = 0 leaves the module no room at all",
        ),
    ];
    for (config, message) in cases {
        root.configure(config);
        let run = root.fails(&["list"]);
        assert!(
            run.stderr.contains("modhost.toml") && run.stderr.contains(message),
            "{config}: {}",
            run.stderr
        );
    }
    // What means "none" stays allowed.
    root.configure("[limits]\nmax_fire_depth = 0\nmax_log_records = 0\n");
    root.ok(&["list"]);
}

#[test]
fn a_quota_for_a_name_a_letter_or_two_from_an_installed_module_is_warned_about() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    // A typo leaves `core` on the default quota, with nothing else to say so.
    root.configure("[state.quotas]\ncroe = 1\n[data.quotas]\ncore = { mb = 5 }\n");
    let run = root.ok(&["list"]);
    assert!(
        run.stderr.contains(
            "modhost.toml's [state.quotas] names `croe`, which is not installed, and `core` is"
        ) && !run.stderr.contains("[data.quotas] names"),
        "{}",
        run.stderr
    );
    // One set ahead for a module like none installed waits for it, unsaid.
    root.configure("[state.quotas]\nvoicemail = 1\n");
    let run = root.ok(&["list"]);
    assert!(!run.stderr.contains("is not installed"), "{}", run.stderr);
}

#[test]
fn a_config_that_links_to_nothing_or_to_a_device_is_refused_and_never_read_forever() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let config = root.path().join("modhost.toml");
    std::os::unix::fs::symlink(root.path().join("gone.toml"), &config)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&["list"]);
    assert!(run.stderr.contains("modhost.toml"), "{}", run.stderr);
    std::fs::remove_file(&config).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let run = root.fails(&["list"]);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn a_relative_package_directory_is_the_roots_not_the_working_directorys() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let packages = root.path().join("incoming");
    std::fs::create_dir_all(&packages).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(package("voicemail"), packages.join("voicemail.tgz"))
        .unwrap_or_else(|e| panic!("{e}"));
    root.configure("packages = \"incoming\"\n");
    // Run from elsewhere: the directory is still found beside modhost.toml.
    let run = root
        .command(&["install", "voicemail"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn a_configured_package_directory_that_is_not_there_leaves_list_to_show_what_is_installed() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    root.configure("packages = \"not-made-yet\"\n");
    let run = root.ok(&["--json", "list"]);
    assert_eq!(run.json()[0]["rawname"], "core", "{}", run.stdout);
    assert!(
        run.stderr.contains("the package directory")
            && run.stderr.contains("not-made-yet")
            && run.stderr.contains("is not there"),
        "{}",
        run.stderr
    );
    // One named on the command line is the administrator's mistake, and said so.
    let run = root.fails(&["list", "--from", "/nowhere/at-all"]);
    assert!(
        run.stderr
            .contains("there is no directory `/nowhere/at-all`"),
        "{}",
        run.stderr
    );
}

#[test]
fn what_a_package_directory_offers_is_listed_before_any_root_is_made() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let core = package("core");
    let copied = std::fs::copy(&core, dir.path().join("core-16.0.40.tgz"));
    assert!(copied.is_ok(), "{copied:?}");
    let run = root.ok(&["list", "--from", arg(dir.path())]);
    assert!(
        run.stdout.contains("core     16.0.40  not-installed"),
        "{}",
        run.stdout
    );
    let run = root.ok(&["info", "core", "--from", arg(dir.path())]);
    assert!(run.stdout.contains("16.0.40"), "{}", run.stdout);
    // Nothing was made: a module's list still says there is no root.
    assert!(!root.path().exists());
    let run = root.fails(&["list"]);
    assert!(run.stderr.contains("no modhost root"), "{}", run.stderr);
    // A mistyped directory is said, for an installed module too, which needs none.
    root.ok(&["install", arg(&core)]);
    let missing = dir.path().join("mistyped");
    for rawname in ["core", "voicemail"] {
        let run = root.fails(&["info", rawname, "--from", arg(&missing)]);
        assert!(
            run.stderr.contains(&missing.display().to_string()),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn an_update_timeout_past_a_whole_transfers_is_waited_as_that_and_said() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let src = root.path().with_file_name("src");
    let site = root.path().with_file_name("site");
    assert!(std::fs::create_dir_all(&src).is_ok());
    assert!(std::fs::copy(package("core"), src.join("core.tgz")).is_ok());
    root.ok(&["repo", "build", arg(&src), "--out", arg(&site)]);
    root.ok(&["source", "add", "local", arg(&site.join("public"))]);
    root.configure("[updates]\ntimeout_secs = 9223372036854775807\n");
    let run = root.ok(&["check-online"]);
    assert!(
        run.stderr.contains(
            "[updates] timeout_secs is more than 600 s, the longest a whole transfer may take"
        ),
        "{}",
        run.stderr
    );
}
