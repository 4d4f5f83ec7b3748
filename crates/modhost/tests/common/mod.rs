//! What the embedding tests share: a host in a fresh root with the test modules installed.

use modhost::{Host, Limits, Options};
use modhost_test_support::{package, package_at};

/// A host in a fresh root opened with `limits`, with core, phonebook 1.0.0 and the hostile
/// test module installed.
pub fn with_hostile(limits: Limits) -> (tempfile::TempDir, Host) {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open_with(root.path(), limits).unwrap_or_else(|e| panic!("{e}"));
    let packages = [
        package("core"),
        package_at("phonebook", "1.0.0"),
        package("hostile"),
    ];
    host.install(&packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (root, host)
}
