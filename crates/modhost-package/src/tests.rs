use std::path::Path;

use super::*;

const XML: &str = "<module><rawname>demo</rawname><name>Demo</name><version>1.0</version></module>";

/// Writes a gzip tar whose header names are set byte for byte, so hostile paths that the
/// tar crate's safe setters refuse can still be written.
fn raw_package(path: &Path, entries: &[Entry<'_>]) {
    let Ok(file) = fs_err::File::create(path) else {
        panic!("create {path:?}")
    };
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_old();
        let field = &mut header.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o4777);
        header.set_size(data.len() as u64);
        if kind.is_symlink() {
            let _ = header.set_link_name("/etc/passwd");
        }
        header.set_cksum();
        assert!(builder.append(&header, *data).is_ok());
    }
    let gz = builder.into_inner().ok();
    assert!(gz.and_then(|gz| gz.finish().ok()).is_some());
}

fn unpack_in(dir: &Path, package: &Path) -> Result<Unpacked, Error> {
    let staging = dir.join("staging");
    let _ = fs_err::create_dir(&staging);
    unpack(package, &staging, &Limits::default())
}

fn refusal(entries: &[Entry<'_>]) -> String {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let package = dir.path().join("p.tgz");
    raw_package(&package, entries);
    match unpack_in(dir.path(), &package) {
        Ok(u) => panic!("package unpacked but should be refused: {u:?}"),
        Err(e) => e.to_string(),
    }
}

const FILE: tar::EntryType = tar::EntryType::Regular;

/// One archive entry: its raw name, its type and its content.
type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);

#[test]
fn pack_then_unpack_round_trips() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let xml = dir.path().join("module.xml");
    let wasm = dir.path().join("c.wasm");
    assert!(fs_err::write(&xml, XML).is_ok() && fs_err::write(&wasm, b"\0asm").is_ok());
    let package = dir.path().join("demo.tgz");
    let packed = pack(&xml, &wasm, &package).map_err(|e| e.to_string());
    assert_eq!(packed.map(|m| m.rawname), Ok("demo".to_owned()));
    let unpacked = unpack_in(dir.path(), &package).map_err(|e| e.to_string());
    let Ok(unpacked) = unpacked else {
        panic!("{unpacked:?}")
    };
    assert_eq!(unpacked.manifest.rawname, "demo");
    assert_eq!(
        fs_err::read(&unpacked.component).ok(),
        Some(b"\0asm".to_vec())
    );
}

#[test]
fn packing_is_reproducible() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let xml = dir.path().join("module.xml");
    let wasm = dir.path().join("c.wasm");
    assert!(fs_err::write(&xml, XML).is_ok() && fs_err::write(&wasm, b"\0asm").is_ok());
    let (a, b) = (dir.path().join("a.tgz"), dir.path().join("b.tgz"));
    assert!(pack(&xml, &wasm, &a).is_ok() && pack(&xml, &wasm, &b).is_ok());
    assert_eq!(fs_err::read(&a).ok(), fs_err::read(&b).ok());
}

#[test]
fn modes_are_never_taken_from_the_archive() {
    use std::os::unix::fs::PermissionsExt;
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let package = dir.path().join("p.tgz");
    raw_package(
        &package,
        &[
            ("demo/module.xml", FILE, XML.as_bytes()),
            ("demo/module.wasm", FILE, b"x"),
        ],
    );
    let unpacked = unpack_in(dir.path(), &package).map_err(|e| e.to_string());
    let Ok(unpacked) = unpacked else {
        panic!("{unpacked:?}")
    };
    let mode = fs_err::metadata(&unpacked.component).map(|m| m.permissions().mode() & 0o7777);
    let mode = mode.unwrap_or(0o7777);
    assert_eq!(
        mode & 0o6002,
        0,
        "no setuid/setgid/world-writable bits: {mode:o}"
    );
}

#[test]
fn refuses_hostile_and_malformed_archives() {
    let xml = XML.as_bytes();
    let cases: Vec<(&str, Vec<Entry<'_>>)> = vec![
        (
            "not a relative path",
            vec![
                ("demo/module.xml", FILE, xml),
                ("demo/../../evil", FILE, b"x"),
            ],
        ),
        ("not a relative path", vec![("/etc/evil", FILE, b"x")]),
        (
            "only regular files and directories",
            vec![
                ("demo/module.xml", FILE, xml),
                ("demo/link", tar::EntryType::Symlink, b""),
            ],
        ),
        (
            "only regular files and directories",
            vec![("demo/fifo", tar::EntryType::Fifo, b"")],
        ),
        (
            "only regular files and directories",
            vec![("demo/dev", tar::EntryType::Char, b"")],
        ),
        (
            "more than one top-level directory",
            vec![("demo/module.xml", FILE, xml), ("other/x", FILE, b"x")],
        ),
        (
            "duplicate entry",
            vec![
                ("demo/module.xml", FILE, xml),
                ("demo/module.xml", FILE, xml),
            ],
        ),
        (
            "module.xml` is missing",
            vec![("demo/module.wasm", FILE, b"x")],
        ),
        (
            "module.xml` is missing",
            vec![("demo/module.xml/", tar::EntryType::Directory, b"")],
        ),
        (
            "not inside the module's directory",
            vec![("module.xml", FILE, xml)],
        ),
        (
            "component `demo/module.wasm` is missing",
            vec![("demo/module.xml", FILE, xml)],
        ),
        (
            "but the package's directory is `other`",
            vec![
                ("other/module.xml", FILE, xml),
                ("other/module.wasm", FILE, b"x"),
            ],
        ),
    ];
    for (expected, entries) in cases {
        let message = refusal(&entries);
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}

#[test]
fn refuses_a_compression_bomb_quickly() {
    let zeros = vec![0u8; 64 * 1024 * 1024];
    let message = refusal(&[
        ("demo/module.xml", FILE, XML.as_bytes()),
        ("demo/zeros", FILE, &zeros),
    ]);
    assert!(message.contains("compression-ratio"), "{message}");
}

#[test]
fn read_manifest_reads_module_xml_without_unpacking() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let package = dir.path().join("p.tgz");
    raw_package(
        &package,
        &[
            ("demo/module.wasm", FILE, b"x"),
            ("demo/module.xml", FILE, XML.as_bytes()),
        ],
    );
    let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
    assert_eq!(manifest.map(|m| m.rawname), Ok("demo".to_owned()));
    let empty = dir.path().join("e.tgz");
    raw_package(&empty, &[("demo/module.wasm", FILE, b"x")]);
    let message = read_manifest(&empty, &Limits::default())
        .err()
        .map(|e| e.to_string());
    assert!(message.is_some_and(|m| m.contains("no `<rawname>/module.xml`")));
}
