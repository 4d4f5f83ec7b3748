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

#[test]
fn pack_refuses_what_unpacking_would_before_reading_it_whole() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = write(dir, "module.xml", XML.as_bytes());
    let out = dir.join("demo.tgz");
    // Sparse: twenty gibibytes on disk in name only. Refused from its size, unread.
    let huge = write(dir, "huge.wasm", WASM);
    let grown = std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .and_then(|f| f.set_len(20 << 30));
    assert!(grown.is_ok(), "{grown:?}");
    let refused = pack(&xml, &huge, &out).map(drop).map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|m| m
                .contains("huge.wasm` is 20 GiB, more than the 256 MiB a package may unpack to")),
        "{refused:?}"
    );
    let xml_huge = write(dir, "big.xml", &vec![b' '; (1 << 20) + 1]);
    let refused = pack(&xml_huge, &huge, &out)
        .map(drop)
        .map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|m| m.contains("module.xml `") && m.contains("more than the 1 MiB")),
        "{refused:?}"
    );

    // Within the size, but nothing a compiler makes: a bomb, not written.
    let zeros = write(dir, "zeros.wasm", WASM);
    let grown = std::fs::OpenOptions::new()
        .write(true)
        .open(&zeros)
        .and_then(|f| f.set_len(64 << 20));
    assert!(grown.is_ok(), "{grown:?}");
    let refused = pack(&xml, &zeros, &out)
        .map(drop)
        .map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|m| m.contains("zeros.wasm` compresses more than 200:1")),
        "{refused:?}"
    );
    assert!(!out.exists(), "no package is left");
}
