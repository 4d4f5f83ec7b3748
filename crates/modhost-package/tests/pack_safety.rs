//! Packing never follows a link and packs only a WebAssembly component.

mod common;

use std::os::unix::fs::symlink;

use common::{WASM, XML, scratch, unpacked, write};
use modhost_package::pack;

#[test]
fn pack_refuses_a_linked_component_or_module_xml() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = write(dir, "module.xml", XML.as_bytes());
    let wasm = write(dir, "real.wasm", WASM);
    let link = dir.join("module.wasm");
    assert!(symlink("/etc/passwd", &link).is_ok());
    let out = dir.join("demo.tgz");
    let refused = pack(&xml, &link, &out).map(drop).map_err(|e| e.to_string());
    let message = refused.err().unwrap_or_default();
    assert!(
        message.contains("the component `") && message.contains("module.wasm` is a symbolic link"),
        "{message}"
    );
    assert!(message.contains("packing never follows links"), "{message}");

    let linked_xml = dir.join("linked.xml");
    assert!(symlink(&xml, &linked_xml).is_ok());
    let refused = pack(&linked_xml, &wasm, &out)
        .map(drop)
        .map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|m| m.contains("module.xml `") && m.contains("is a symbolic link")),
        "{refused:?}"
    );

    let refused = pack(&xml, dir, &out).map(drop).map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|m| m.contains("is not a regular file")),
        "{refused:?}"
    );

    assert!(pack(&xml, &wasm, &out).is_ok());
    assert_eq!(unpacked(&out), Ok("demo".into()));
}

#[test]
fn pack_refuses_a_component_that_is_not_webassembly() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = write(dir, "module.xml", XML.as_bytes());
    let wasm = write(dir, "module.wasm", b"root:x:0:0:root:/root:/bin/bash\n");
    let refused = pack(&xml, &wasm, &dir.join("demo.tgz"))
        .map(drop)
        .map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|m| m
            .contains("module.wasm` is not a WebAssembly file (it does not start with the WebAssembly magic bytes)")),
        "{refused:?}"
    );
}
