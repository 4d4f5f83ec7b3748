//! Upgrades with backups, rollbacks, failing upgrades, enable/disable, broken modules: what
//! a change does, and that a failed one leaves the root as it was.

use modhost_test_support::{Root, arg, package, package_at};

use crate::root;

mod broken;
mod failures;
mod scan;
mod toggles;
mod upgrades;

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
