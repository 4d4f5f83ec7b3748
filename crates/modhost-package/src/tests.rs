//! Unit tests of packing and reading; hostile archives are tested end to end in
//! `tests/cli/archives.rs`, where a refusal must also leave the root as it was.

use super::*;

const XML: &str = "<module><rawname>demo</rawname><name>Demo</name><version>1.0</version></module>";

fn module_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let xml = dir.path().join("module.xml");
    let wasm = dir.path().join("c.wasm");
    assert!(fs_err::write(&xml, XML).is_ok() && fs_err::write(&wasm, b"\0asm").is_ok());
    (dir, xml, wasm)
}

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
    let Ok(file) = fs_err::File::create(&empty) else {
        panic!("create")
    };
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_cksum();
    assert!(
        builder
            .append_data(&mut header, "demo/module.wasm", &b"\0asm"[..])
            .is_ok()
    );
    assert!(
        builder
            .into_inner()
            .ok()
            .and_then(|gz| gz.finish().ok())
            .is_some()
    );
    let message = read_manifest(&empty, &Limits::default())
        .err()
        .map(|e| e.to_string());
    assert!(message.is_some_and(|m| m.contains("no `<rawname>/module.xml`")));
}

#[test]
fn every_decompressed_byte_and_entry_counts_against_the_limits() {
    let (dir, xml, wasm) = module_dir();
    let package = dir.path().join("demo.tgz");
    assert!(pack(&xml, &wasm, &package).is_ok());
    let refusal = |limits: Limits, unpacking: bool| {
        let staging = tempfile::tempdir_in(dir.path()).ok();
        let staging = staging.as_ref().map(|s| s.path()).unwrap_or(dir.path());
        let result = if unpacking {
            unpack(&package, staging, &limits).map(drop)
        } else {
            read_manifest(&package, &limits).map(drop)
        };
        result.err().map(|e| e.to_string()).unwrap_or_default()
    };
    // Three headers, module.xml and the component, in 512-byte blocks: 2.5 KiB.
    let small = Limits {
        max_total_size: 2048,
        ..Limits::default()
    };
    assert!(refusal(small, true).contains("unpacks to more than 2048 bytes"));
    let few = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert!(refusal(few, true).contains("more than 2 entries"));
    let one = Limits {
        max_entries: 1,
        ..Limits::default()
    };
    assert!(refusal(one, false).contains("more than 1 entries"));
}
