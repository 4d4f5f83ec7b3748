//! Packing never follows a link and packs only a WebAssembly component.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{WASM, XML, scratch, unpacked, write};
use modhost_package::pack;

/// Why packing `xml` and `wasm` into `out` is refused.
fn refusal(xml: &Path, wasm: &Path, out: &Path) -> String {
    match pack(xml, wasm, out) {
        Ok(_) => panic!("{} packed", wasm.display()),
        Err(e) => e.to_string(),
    }
}

/// A sparse WebAssembly file `name` in `dir`, `len` bytes long.
fn sparse(dir: &Path, name: &str, len: u64) -> std::path::PathBuf {
    let path = write(dir, name, WASM);
    let grown = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len));
    assert!(grown.is_ok(), "{grown:?}");
    path
}

#[test]
fn pack_refuses_a_linked_component_or_module_xml() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = write(dir, "module.xml", XML.as_bytes());
    let wasm = write(dir, "real.wasm", WASM);
    let link = dir.join("module.wasm");
    assert!(symlink("/etc/passwd", &link).is_ok());
    let out = dir.join("demo.tgz");
    let message = refusal(&xml, &link, &out);
    assert!(
        message.contains("the component `") && message.contains("module.wasm` is a symbolic link"),
        "{message}"
    );
    assert!(message.contains("packing never follows links"), "{message}");

    let linked_xml = dir.join("linked.xml");
    assert!(symlink(&xml, &linked_xml).is_ok());
    let m = refusal(&linked_xml, &wasm, &out);
    assert!(
        m.contains("module.xml `") && m.contains("is a symbolic link"),
        "{m}"
    );

    let m = refusal(&xml, dir, &out);
    assert!(m.contains("is not a regular file"), "{m}");

    assert!(pack(&xml, &wasm, &out).is_ok());
    assert_eq!(unpacked(&out), Ok("demo".into()));
}

#[test]
fn pack_refuses_a_component_that_is_not_webassembly() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = write(dir, "module.xml", XML.as_bytes());
    let wasm = write(dir, "module.wasm", b"root:x:0:0:root:/root:/bin/bash\n");
    let m = refusal(&xml, &wasm, &dir.join("demo.tgz"));
    assert!(m
            .contains("module.wasm` is not a WebAssembly file (it does not start with the WebAssembly magic bytes)"), "{m}");
}

#[test]
fn pack_refuses_what_unpacking_would_before_reading_it_whole() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = write(dir, "module.xml", XML.as_bytes());
    let out = dir.join("demo.tgz");
    // Sparse: twenty gibibytes on disk in name only. Refused from its size, unread.
    let huge = sparse(dir, "huge.wasm", 20 << 30);
    let m = refusal(&xml, &huge, &out);
    assert!(
        m.contains("huge.wasm` is 20 GiB, more than the 256 MiB a package may unpack to"),
        "{m}"
    );
    let xml_huge = write(dir, "big.xml", &vec![b' '; (1 << 20) + 1]);
    let m = refusal(&xml_huge, &huge, &out);
    assert!(
        m.contains("module.xml `") && m.contains("more than the 1 MiB"),
        "{m}"
    );

    // Within the size, but nothing a compiler makes: a bomb, not written.
    let zeros = sparse(dir, "zeros.wasm", 64 << 20);
    let m = refusal(&xml, &zeros, &out);
    assert!(m.contains("zeros.wasm` compresses more than 200:1"), "{m}");
    assert!(!out.exists(), "no package is left");
}
