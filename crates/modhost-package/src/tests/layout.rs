//! Both formats, told by their first bytes, and both layouts: module.xml at the root or
//! in one top-level directory.

use super::fixtures::{XML, scratch, unpack_fresh, write_package};
use crate::staging::UNPACKING;
use crate::{Limits, read_manifest};

#[test]
fn the_format_is_told_by_the_first_bytes_not_the_name() {
    let scratch = scratch();
    let dir = scratch.path();
    let files: [(&str, &[u8]); 2] = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", b"\0asm"),
    ];
    // A zip named like a gzip tar, and the other way round.
    for (name, zip) in [("zip.tgz", true), ("tgz.zip", false)] {
        let package = dir.join(name);
        write_package(&package, zip, &files);
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        assert_eq!(
            unpacked.map(|u| u.manifest.rawname),
            Ok("demo".to_owned()),
            "{name}"
        );
    }
    for (name, bytes) in [
        ("text.tgz", &b"<module/>"[..]),
        ("empty.zip", b""),
        ("gzip-only-one-byte.tgz", b"\x1f"),
        ("zip-spanned.zip", b"PK\x07\x08"),
    ] {
        let package = dir.join(name);
        assert!(fs_err::write(&package, bytes).is_ok());
        let expected = format!(
            "package `{}`: is neither a gzip tar nor a zip archive",
            package.display()
        );
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        assert_eq!(unpacked.err(), Some(expected.clone()), "{name}");
        let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
        assert_eq!(manifest.err(), Some(expected), "{name}");
    }
}

#[test]
fn module_xml_at_the_root_puts_every_entry_under_the_rawname() {
    let scratch = scratch();
    let dir = scratch.path();
    let other = XML.replace("demo", "other");
    for zip in [false, true] {
        // module.xml comes last, after a module.xml in a directory that is only an
        // asset here: the rawname is known only at the end.
        let package = dir.join(format!("root-{zip}.pkg"));
        write_package(
            &package,
            zip,
            &[
                ("module.wasm", b"\0asm"),
                ("other/module.xml", other.as_bytes()),
                ("assets/a.txt", b"a"),
                ("module.xml", XML.as_bytes()),
            ],
        );
        let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
        assert_eq!(
            manifest.map(|m| m.rawname),
            Ok("demo".to_owned()),
            "zip {zip}"
        );
        let (unpacked, staging) = unpack_fresh(&package, &Limits::default());
        let Ok(unpacked) = unpacked else {
            panic!("zip {zip}: {unpacked:?}")
        };
        assert_eq!(unpacked.dir, staging.join("demo"));
        assert_eq!(unpacked.component, staging.join("demo/module.wasm"));
        assert_eq!(
            fs_err::read(staging.join("demo/assets/a.txt")).ok(),
            Some(b"a".to_vec())
        );
        assert!(staging.join("demo/other/module.xml").is_file());
        assert!(!staging.join(UNPACKING).exists(), "zip {zip}");

        // Files at the root beside a top-level directory holding module.xml.
        let mixed = dir.join(format!("mixed-{zip}.pkg"));
        write_package(
            &mixed,
            zip,
            &[
                ("README", b"r"),
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", b"\0asm"),
            ],
        );
        let (unpacked, _) = unpack_fresh(&mixed, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(
            message.contains("more than one top-level directory (`README` and `demo`)"),
            "zip {zip}: {message}"
        );
    }
}
