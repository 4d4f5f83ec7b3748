//! Packing, and reading a package's module.xml without unpacking it.

use super::fixtures::{module_dir, write_tgz};
use crate::{Limits, pack, read_manifest, unpack};

#[test]
fn pack_then_unpack_round_trips() {
    let (dir, xml, wasm) = module_dir();
    let package = dir.path().join("demo.tgz");
    let packed = pack(&xml, &wasm, &package).map_err(|e| e.to_string());
    assert_eq!(packed.map(|m| m.rawname), Ok("demo".to_owned()));
    let staging = dir.path().join("staging");
    assert!(fs_err::create_dir(&staging).is_ok());
    let unpacked = unpack(&package, &staging, &Limits::default()).map_err(|e| e.to_string());
    let Ok(unpacked) = unpacked else {
        panic!("{unpacked:?}")
    };
    assert_eq!(unpacked.manifest.rawname, "demo");
    assert_eq!(unpacked.dir, staging.join("demo"));
    assert_eq!(
        fs_err::read(&unpacked.component).ok(),
        Some(b"\0asm".to_vec())
    );
}

#[test]
fn packing_is_reproducible() {
    let (dir, xml, wasm) = module_dir();
    let (a, b) = (dir.path().join("a.tgz"), dir.path().join("b.tgz"));
    assert!(pack(&xml, &wasm, &a).is_ok() && pack(&xml, &wasm, &b).is_ok());
    assert_eq!(fs_err::read(&a).ok(), fs_err::read(&b).ok());
}

#[test]
fn read_manifest_reads_module_xml_without_unpacking() {
    let (dir, xml, wasm) = module_dir();
    let package = dir.path().join("demo.tgz");
    assert!(pack(&xml, &wasm, &package).is_ok());
    let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
    assert_eq!(manifest.map(|m| m.rawname), Ok("demo".to_owned()));

    let empty = dir.path().join("empty.tgz");
    write_tgz(&empty, &[("demo/module.wasm", b"\0asm")]);
    let message = read_manifest(&empty, &Limits::default())
        .err()
        .map(|e| e.to_string());
    assert!(message.is_some_and(|m| {
        m.contains("no `module.xml` at the package's root or in its top-level directory `demo/`")
    }));

    // Read alone, a package is held to what unpacking it would require.
    let xml = std::fs::read(&xml).unwrap_or_default();
    let misnamed = dir.path().join("misnamed.tgz");
    write_tgz(&misnamed, &[("other/module.xml", &xml)]);
    let message = read_manifest(&misnamed, &Limits::default()).map_err(|e| e.to_string());
    assert!(
        message.as_ref().is_err_and(|m| m
            .contains("module.xml names rawname `demo` but the package's directory is `other`")),
        "{message:?}"
    );
    // Saved in windows-1252 without saying so.
    let cp1252 = dir.path().join("cp1252.tgz");
    let xml = b"<!-- windows-1252 -->\n<module><name>Caf\xe9</name></module>";
    write_tgz(&cp1252, &[("demo/module.xml", xml)]);
    let message = read_manifest(&cp1252, &Limits::default()).map_err(|e| e.to_string());
    assert!(
        message
            .as_ref()
            .is_err_and(|m| m.contains("2:18: byte 0xE9 is not UTF-8")
                && m.contains("declare its encoding")),
        "{message:?}"
    );
}
