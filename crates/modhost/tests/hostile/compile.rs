//! A package of a few hundred kilobytes whose code would take minutes and gigabytes to
//! compile: refused before compiling, naming the function.

use modhost_test_support::costly::with_costly_module;

use super::*;

#[test]
fn a_component_costing_minutes_to_compile_is_refused_before_compiling() {
    let (root, host) = host();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let hostile =
        std::fs::read(modhost_test_support::component("hostile")).unwrap_or_else(|e| panic!("{e}"));
    // Compiled, this took 8 minutes and 17 GB before it failed.
    let costly = scratch.path().join("module.wasm");
    std::fs::write(&costly, with_costly_module(&hostile, &[(50_000, 20_000)]))
        .unwrap_or_else(|e| panic!("{e}"));
    let xml = scratch.path().join("module.xml");
    std::fs::write(
        &xml,
        "<module><rawname>bomb</rawname><name>Bomb</name><version>1.0</version></module>",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let package = scratch.path().join("bomb-1.0.tgz");
    modhost::pack(&xml, &costly, &package).unwrap_or_else(|e| panic!("{e}"));
    let packed = std::fs::metadata(&package).map_or(u64::MAX, |m| m.len());
    assert!(packed < 512 * 1024, "{packed} bytes packed");

    let refused = host.install(&[package], modhost::Options::default());
    let message = refused
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        message.contains("bomb")
            && message.contains("has 50000 locals across 20000 blocks")
            && message.contains("minutes and gigabytes to compile"),
        "{message}"
    );
    let bomb = host.module("bomb").unwrap_or_else(|e| panic!("{e}"));
    assert!(bomb.is_none(), "nothing of it is installed: {bomb:?}");
    let compiled = modhost_test_support::compiled_artifacts(root.path());
    assert_eq!(compiled, 3, "core's, phonebook's and hostile's alone");
    still_serving(&host, "a costly component refused");
}
