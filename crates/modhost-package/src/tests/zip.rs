//! Zips: unpacked like gzip tars with fixed modes, and every class of hostile zip refused.

use std::os::unix::fs::PermissionsExt;

use super::fixtures::{XML, Z, edit_headers, scratch, unpack_fresh, write_package, write_zip};
use crate::staging::{DIR_MODE, FILE_MODE};
use crate::{Limits, read_manifest};

#[test]
fn zip_packages_unpack_and_read_like_gzip_tars_with_fixed_modes() {
    let scratch = scratch();
    let dir = scratch.path();
    let package = dir.join("demo.zip");
    write_zip(
        &package,
        &[
            Z::Dir("demo/"),
            Z::File("demo/module.xml", XML.as_bytes()),
            Z::File("demo/module.wasm", b"\0asm"),
            Z::Dir("demo/assets/"),
            Z::File("demo/nested/deep/file", b"x"),
        ],
    );
    let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
    assert_eq!(manifest.map(|m| m.rawname), Ok("demo".to_owned()));
    let (unpacked, staging) = unpack_fresh(&package, &Limits::default());
    let Ok(unpacked) = unpacked else {
        panic!("{unpacked:?}")
    };
    assert_eq!(unpacked.dir, staging.join("demo"));
    assert_eq!(unpacked.component, staging.join("demo/module.wasm"));
    assert_eq!(
        fs_err::read(&unpacked.component).ok(),
        Some(b"\0asm".to_vec())
    );
    for (path, mode) in [
        ("", DIR_MODE),
        ("assets", DIR_MODE),
        ("nested", DIR_MODE),
        ("nested/deep", DIR_MODE),
        ("nested/deep/file", FILE_MODE),
        ("module.xml", FILE_MODE),
    ] {
        let found = fs_err::symlink_metadata(unpacked.dir.join(path))
            .map(|m| m.permissions().mode() & 0o7777)
            .ok();
        assert_eq!(found, Some(mode), "mode of `{path}`, whatever the umask");
    }
    let left: Vec<_> = fs_err::read_dir(&staging)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["demo"], "only the module's directory is left");
}

#[test]
fn every_class_of_hostile_zip_is_refused() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = XML.as_bytes();
    let long = format!("demo/{}", "a".repeat(300));
    let mut cases: Vec<(String, Vec<Z<'_>>, String)> = Vec::new();
    for (name, entry, what) in [
        (
            "symlink",
            Z::Symlink("demo/x"),
            "a symlink to `/etc/passwd`",
        ),
        ("fifo", Z::Special("demo/x", 0o010_000), "a FIFO"),
        (
            "device",
            Z::Special("demo/x", 0o020_000),
            "a character device",
        ),
        ("socket", Z::Special("demo/x", 0o140_000), "a socket"),
    ] {
        let expected =
            format!("entry `demo/x` is {what}; only regular files and directories are allowed");
        cases.push((
            name.into(),
            vec![Z::File("demo/module.xml", xml), entry],
            expected,
        ));
    }
    // `..` anywhere (even where it stays inside), absolute paths, backslashes the zip
    // crate takes for separators, drive prefixes.
    for path in [
        "demo/../../escape",
        "demo/../x",
        "/tmp/demo/x",
        "demo\\..\\..\\escape",
        "C:/demo/x",
    ] {
        // A Windows separator or drive gets its own refusal, saying what wrote it.
        let expected = if path.contains('\\') {
            format!("entry `{path}` separates its path with `\\`")
        } else if path.starts_with("C:") {
            format!("entry `{path}` names a Windows drive (`C:`)")
        } else {
            format!("entry `{path}` is not a relative path inside the package")
        };
        cases.push((
            path.into(),
            vec![Z::File("demo/module.xml", xml), Z::File(path, b"x")],
            expected,
        ));
    }
    let rules: Vec<(&str, Vec<Z<'_>>, &str)> = vec![
        (
            "long-name",
            vec![Z::File("demo/module.xml", xml), Z::File(&long, b"x")],
            "entry path longer than 255 bytes",
        ),
        (
            "same-path",
            vec![
                Z::File("demo/module.xml", xml),
                Z::File("demo/./module.xml", xml),
            ],
            "duplicate entry `demo/./module.xml`",
        ),
        (
            "two-tops",
            vec![Z::File("demo/module.xml", xml), Z::File("other/x", b"x")],
            "more than one entry at the archive's top level (`demo` and `other`)",
        ),
        (
            "wrong-dir",
            vec![
                Z::File("other/module.xml", xml),
                Z::File("other/module.wasm", b"\0asm"),
            ],
            "module.xml names rawname `demo` but the package's directory is `other`",
        ),
        (
            "no-module-xml",
            vec![Z::File("demo/module.wasm", b"\0asm")],
            "no `module.xml` at the package's root or in its top-level directory `demo/`",
        ),
        (
            "no-component",
            vec![Z::File("demo/module.xml", xml)],
            "component `demo/module.wasm` is missing",
        ),
        // What was most likely meant is named: module.xml in capitals, or a level too deep.
        (
            "capital-module-xml",
            vec![Z::File("demo/MODULE.XML", xml)],
            "no `module.xml` at the package's root or in its top-level directory `demo/` (the \
             package holds `demo/MODULE.XML`",
        ),
        (
            "nested-module-xml",
            vec![Z::File("demo/demo/module.xml", xml)],
            "(the package holds `demo/demo/module.xml`: module.xml is read by that name",
        ),
    ];
    cases.extend(
        rules
            .into_iter()
            .map(|(name, entries, expected)| (name.into(), entries, expected.into())),
    );
    for (index, (name, entries, expected)) in cases.iter().enumerate() {
        let package = dir.join(format!("{index}.zip"));
        write_zip(&package, entries);
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(
            message.starts_with(&format!("package `{}`: ", package.display()))
                && message.contains(expected),
            "{name}: expected `{expected}` in `{message}`"
        );
        // Reading only its module.xml names what it holds alike.
        if name.ends_with("module-xml") && name != "no-module-xml" {
            let read = read_manifest(&package, &Limits::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let hint = expected.split_once(" (").map_or("", |(_, hint)| hint);
            assert!(read.contains(hint), "{name}: `{hint}` in `{read}`");
        }
    }
}

#[test]
fn zips_the_writer_would_not_write_are_refused_too() {
    let scratch = scratch();
    let dir = scratch.path();
    let files: [(&str, &[u8]); 2] = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.xmL", XML.as_bytes()),
    ];
    let duplicate = dir.join("duplicate.zip");
    write_package(&duplicate, true, &files);
    edit_headers(&duplicate, |header, central| {
        let name = if central { 46 } else { 30 };
        if header.get(name..name + 15) == Some(b"demo/module.xmL") {
            header[name + 14] = b'l';
        }
    });
    let encrypted = dir.join("encrypted.zip");
    write_package(&encrypted, true, &files[..1]);
    edit_headers(&encrypted, |header, central| {
        header[if central { 8 } else { 6 }] |= 1
    });
    for (package, expected) in [
        (
            &duplicate,
            "duplicate entry names in the zip's central directory: `demo/module.xml`",
        ),
        (
            &encrypted,
            "entry `demo/module.xml` is encrypted; zip the module again without a password",
        ),
    ] {
        let (unpacked, _) = unpack_fresh(package, &Limits::default());
        assert_eq!(
            unpacked.err(),
            Some(format!("package `{}`: {expected}", package.display()))
        );
        let manifest = read_manifest(package, &Limits::default()).map_err(|e| e.to_string());
        assert_eq!(
            manifest.err(),
            Some(format!("package `{}`: {expected}", package.display()))
        );
    }
}

#[test]
fn a_zip_with_too_many_entries_is_refused_before_any_is_unpacked() {
    let scratch = scratch();
    let dir = scratch.path();
    let package = dir.join("crowded.zip");
    write_package(
        &package,
        true,
        &[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/module.wasm", b"\0asm"),
            ("demo/a", b"a"),
            ("demo/b", b"b"),
        ],
    );
    let few = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let (unpacked, staging) = unpack_fresh(&package, &few);
    let expected = format!("package `{}`: more than 3 entries", package.display());
    assert_eq!(unpacked.err(), Some(expected.clone()));
    assert!(
        !staging.join(".unpacking/demo").exists(),
        "nothing unpacked"
    );
    let manifest = read_manifest(&package, &few).map_err(|e| e.to_string());
    assert_eq!(manifest.err(), Some(expected));
}

#[test]
fn unpacking_refuses_what_reading_the_manifest_refuses() {
    let scratch = scratch();
    let dir = scratch.path();
    // A name without the UTF-8 flag that is not ASCII: a zip reader decodes it as CP437
    // and would take it; reading the manifest refuses it.
    let cp437 = dir.join("cp437.zip");
    write_package(
        &cp437,
        true,
        &[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/cafX.txt", b"menu"),
        ],
    );
    edit_headers(&cp437, |header, central| {
        let name = if central { 46 } else { 30 };
        if header.get(name..name + 13) == Some(b"demo/cafX.txt") {
            header[name + 8] = 0x82;
        }
    });
    // A link named `./`: the root, passed over as a directory would be, is still a link.
    let dot = dir.join("dot.zip");
    write_zip(
        &dot,
        &[Z::Symlink("./"), Z::File("demo/module.xml", XML.as_bytes())],
    );
    for (package, expected) in [
        (
            &cp437,
            "entry `demo/caf\\x82.txt` has a name that is not UTF-8",
        ),
        (&dot, "entry `./` is a symlink"),
    ] {
        let (unpacked, _) = unpack_fresh(package, &Limits::default());
        let manifest = read_manifest(package, &Limits::default()).map_err(|e| e.to_string());
        for refused in [unpacked.err(), manifest.err()] {
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(expected)),
                "{}: {refused:?}",
                package.display()
            );
        }
    }
}

/// Drops the central directory's record of `name` from the zip at `path`: its entry stays
/// in the file, listed nowhere.
fn unlist(path: &std::path::Path, name: &[u8]) {
    let mut bytes = fs_err::read(path).unwrap_or_default();
    let end = bytes.len() - 22;
    let u16_at = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let (mut at, size) = (u32_at(&bytes, end + 16) as usize, u32_at(&bytes, end + 12));
    loop {
        assert_eq!(&bytes[at..at + 4], b"PK\x01\x02", "no record of {name:?}");
        let named = u16_at(&bytes, at + 28);
        let length = 46 + named + u16_at(&bytes, at + 30) + u16_at(&bytes, at + 32);
        if &bytes[at + 46..at + 46 + named] == name {
            bytes.drain(at..at + length);
            let end = bytes.len() - 22;
            for count in [end + 8, end + 10] {
                let fewer = (u16_at(&bytes, count) - 1) as u16;
                bytes[count..count + 2].copy_from_slice(&fewer.to_le_bytes());
            }
            let smaller = size - length as u32;
            bytes[end + 12..end + 16].copy_from_slice(&smaller.to_le_bytes());
            break;
        }
        at += length;
    }
    assert!(fs_err::write(path, bytes).is_ok());
}

#[test]
fn bytes_no_listed_entry_covers_are_refused_and_data_descriptors_are_not() {
    let scratch = scratch();
    let dir = scratch.path();
    // `bsdtar` and `jar`, streaming from the start, would unpack the unlisted component.
    for (file, hidden) in [("last.zip", 2), ("between.zip", 1)] {
        let package = dir.join(file);
        let mut files: Vec<(&str, &[u8])> = vec![
            ("demo/module.xml", XML.as_bytes()),
            ("demo/module.wasm", b"\0asm listed"),
        ];
        files.insert(hidden, ("demo/hidden.wasm", b"\0asm hidden"));
        write_package(&package, true, &files);
        unlist(&package, b"demo/hidden.wasm");
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
        for message in [unpacked.err(), manifest.err()] {
            let message = message.unwrap_or_default();
            assert!(
                message.contains("of the zip belong to no entry its central directory lists"),
                "{file}: {message}"
            );
        }
    }

    // Written to a stream, each entry's sizes follow its data in a descriptor.
    let streamed = dir.join("streamed.zip");
    let mut zip = zip::ZipWriter::new_stream(Vec::new());
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", b"\0asm"),
    ] {
        let written = zip
            .start_file(name, options)
            .and_then(|()| Ok(std::io::Write::write_all(&mut zip, data)?));
        assert!(written.is_ok(), "{written:?}");
    }
    let bytes = zip.finish().map(|stream| stream.into_inner());
    assert!(
        bytes
            .as_ref()
            .is_ok_and(|b| fs_err::write(&streamed, b).is_ok())
    );
    let (unpacked, _) = unpack_fresh(&streamed, &Limits::default());
    assert_eq!(unpacked.map(|u| u.manifest.rawname), Ok("demo".to_owned()));
}
