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
        ("text.tgz", &b"module: yaml"[..]),
        ("gzip-only-one-byte.tgz", b"\x1f"),
        ("zip-spanned.zip", b"PK\x07\x08"),
    ] {
        let package = dir.join(name);
        assert!(fs_err::write(&package, bytes).is_ok());
        let expected = format!(
            "package `{}`: it is neither a gzip tar nor a zip archive",
            package.display()
        );
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        assert_eq!(unpacked.err(), Some(expected.clone()), "{name}");
        let manifest = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
        assert_eq!(manifest.err(), Some(expected), "{name}");
    }
    // A module's own files, given for its package, are named as what they are.
    for (name, bytes, said) in [
        (
            "given.xml",
            &b"\xEF\xBB\xBF <?xml version=\"1.0\"?><module/>"[..],
            "it is XML (a module.xml?), not a package: give the module's directory",
        ),
        (
            "bare.xml",
            b"<module><rawname>x</rawname></module>",
            "it is XML (a module.xml?)",
        ),
        (
            "component.wasm",
            b"\0asm\x0d\0\x01\0",
            "it is a WebAssembly file, not a package: give the module's directory",
        ),
        // What a download that failed leaves.
        (
            "empty.zip",
            b"",
            "it is empty (a download or a copy that failed?)",
        ),
        (
            "error.tgz",
            b"\n<!DOCTYPE html>\n<html><body>404 Not Found</body></html>",
            "it is an HTML page, not a package (a web server's error or login page",
        ),
        (
            "login.tgz",
            b"<HTML><form>Sign in</form></HTML>",
            "it is an HTML page",
        ),
    ] {
        let package = dir.join(name);
        assert!(fs_err::write(&package, bytes).is_ok());
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(message.contains(said), "{name}: {message}");
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
            message
                .contains("more than one entry at the archive's top level (`README` and `demo`)"),
            "zip {zip}: {message}"
        );
    }
}

#[test]
fn a_finder_zip_installs_without_its_desktop_metadata() {
    let scratch = scratch();
    for zip in [true, false] {
        let package = scratch
            .path()
            .join(if zip { "finder.zip" } else { "mac.tgz" });
        write_package(
            &package,
            zip,
            &[
                // A copy of module.xml in the metadata tree, ahead of the module's own:
                // reading the manifest skips it as unpacking does.
                ("__MACOSX/module.xml", XML.as_bytes()),
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", b"\0asm"),
                ("demo/.DS_Store", b"Bud1"),
                ("demo/._module.xml", b"\0\x05\x16\x07"),
                ("__MACOSX/demo/._module.xml", b"\0\x05\x16\x07"),
                ("__MACOSX/._demo", b"\0\x05\x16\x07"),
            ],
        );
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        let unpacked = unpacked.unwrap_or_else(|e| panic!("zip {zip}: {e}"));
        assert_eq!(unpacked.manifest.rawname, "demo");
        assert!(!unpacked.dir.join(".DS_Store").exists());
        assert!(!unpacked.dir.join("._module.xml").exists());
        let read = read_manifest(&package, &Limits::default());
        assert_eq!(
            read.map(|manifest| manifest.rawname)
                .map_err(|e| e.to_string()),
            Ok("demo".to_owned()),
            "zip {zip}"
        );
    }
}

#[test]
fn backslash_names_are_refused_by_both_formats_with_a_hint() {
    let scratch = scratch();
    for zip in [true, false] {
        for name in ["demo\\module.wasm", "..\\..\\evil.txt"] {
            let package = scratch.path().join(format!("{zip}-{}.pkg", name.len()));
            write_package(
                &package,
                zip,
                &[("demo/module.xml", XML.as_bytes()), (name, b"\0asm")],
            );
            let (unpacked, _) = unpack_fresh(&package, &Limits::default());
            // Reading the package's manifest (`manifest`, `scan`) says the same.
            let read = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
            for error in [
                unpacked.err().unwrap_or_default(),
                read.err().unwrap_or_default(),
            ] {
                assert!(
                    error.contains(&format!("entry `{name}` separates its path with `\\`"))
                        && error.contains("modhost pack"),
                    "zip {zip}, {name}: {error}"
                );
            }
        }
    }
}

#[test]
fn windows_drive_names_are_refused_by_both_formats_and_other_colons_kept() {
    let refused = |name: &'static str, drive: &str| {
        (
            name,
            format!(
                "entry `{name}` names a Windows drive (`{drive}`) in its path; rename the \
                 file and repack the module"
            ),
        )
    };
    let cases = [
        refused("demo/x/c:file.wav", "c:"),
        refused("demo/c:evil", "c:"),
        refused("demo/D:/x", "D:"),
        refused("C:/evil", "C:"),
    ];
    names_refused("drive", &cases);
    let scratch = scratch();
    for zip in [true, false] {
        let package = scratch.path().join(format!("colons-{zip}.pkg"));
        write_package(
            &package,
            zip,
            &[
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", b"\0asm"),
                ("demo/ab:c", b"x"),
                ("demo/at-12:30.txt", b"x"),
            ],
        );
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        let unpacked = unpacked.unwrap_or_else(|e| panic!("zip {zip}: {e}"));
        assert!(unpacked.dir.join("at-12:30.txt").is_file() && unpacked.dir.join("ab:c").is_file());
    }
}

/// Asserts that a package holding an entry of each `(name, message)`, zipped and tarred,
/// is refused by unpacking and by reading its manifest alone (`manifest`, `scan`,
/// `checkdepends`) with `message`.
fn names_refused(label: &str, cases: &[(&str, String)]) {
    let scratch = scratch();
    for zip in [true, false] {
        for (index, (name, message)) in cases.iter().enumerate() {
            let package = scratch.path().join(format!("{label}-{zip}-{index}.pkg"));
            write_package(
                &package,
                zip,
                &[
                    ("demo/module.xml", XML.as_bytes()),
                    ("demo/module.wasm", b"\0asm"),
                    (name, b"x"),
                ],
            );
            let (unpacked, _) = unpack_fresh(&package, &Limits::default());
            let read = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
            for error in [
                unpacked.err().unwrap_or_default(),
                read.err().unwrap_or_default(),
            ] {
                assert!(error.contains(message), "zip {zip}, {name:?}: {error}");
            }
        }
    }
}

#[test]
fn control_characters_in_names_are_refused_by_both_formats() {
    let cases = [
        ("demo/evil\x1b[2Jname.txt", "demo/evil\x1b[2Jname.txt"),
        ("demo/two\nlines.txt", "demo/two\\nlines.txt"),
        ("demo/c1\u{9b}31m.txt", "demo/c1\u{9b}31m.txt"),
        ("demo/del\x7f/x.txt", "demo/del\x7f/x.txt"),
    ]
    .map(|(name, shown)| {
        let message =
            format!("entry `{shown}` has a control character in its name; rename the file");
        (name, message)
    });
    names_refused("control", &cases);
}

#[test]
fn bidirectional_controls_in_names_are_refused_by_both_formats() {
    let cases = [
        ("demo/invoice\u{202E}txt.wasm", "202E"),
        ("demo/\u{2066}x\u{2069}.txt", "2066"),
        ("demo/rtl\u{200F}mark.txt", "200F"),
    ]
    .map(|(name, code)| {
        let message =
            format!("entry `{name}` has a bidirectional-text control (U+{code}) in its name");
        (name, message)
    });
    names_refused("bidi", &cases);
    let scratch = scratch();
    // Right-to-left letters themselves are names like any other.
    let package = scratch.path().join("hebrew.tgz");
    write_package(
        &package,
        false,
        &[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/module.wasm", b"\0asm"),
            ("demo/\u{05e9}\u{05dc}\u{05d5}\u{05dd}.txt", b"x"),
        ],
    );
    assert!(unpack_fresh(&package, &Limits::default()).0.is_ok());
}

#[test]
fn names_in_two_unicode_forms_are_refused_by_both_formats() {
    let scratch = scratch();
    let composed = "demo/caf\u{e9}.txt";
    let decomposed = "demo/cafe\u{301}.txt";
    let cases: [(&[&str], &str); 1] = [(
        &[composed, decomposed],
        "are one name in two Unicode forms (composed and decomposed)",
    )];
    for zip in [true, false] {
        for (index, (names, expected)) in cases.iter().enumerate() {
            let package = scratch.path().join(format!("{zip}-{index}.pkg"));
            let mut entries = vec![
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", &b"\0asm"[..]),
            ];
            entries.extend(names.iter().map(|n| (*n, &b"x"[..])));
            write_package(&package, zip, &entries);
            let (unpacked, _) = unpack_fresh(&package, &Limits::default());
            let error = unpacked.err().unwrap_or_default();
            assert!(error.contains(expected), "zip {zip}, {names:?}: {error}");
        }
    }
    // One accented name in one form is a name like any other.
    let package = scratch.path().join("accented.pkg");
    write_package(
        &package,
        false,
        &[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/module.wasm", b"\0asm"),
            (composed, b"x"),
        ],
    );
    let (unpacked, _) = unpack_fresh(&package, &Limits::default());
    let error = unpacked.err().unwrap_or_default();
    assert!(
        !error.contains("Unicode") && !error.contains("control"),
        "{error}"
    );
}

#[test]
fn names_starting_with_dot_slash_read_alike_in_both_formats() {
    // bsdtar writes `./demo/module.xml` when given `.` or `./demo`.
    let scratch = scratch();
    for zip in [true, false] {
        let package = scratch.path().join(format!("dot-{zip}.pkg"));
        write_package(
            &package,
            zip,
            &[
                ("./demo/module.xml", XML.as_bytes()),
                ("./demo/module.wasm", b"\0asm"),
            ],
        );
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        let unpacked = unpacked.unwrap_or_else(|e| panic!("zip {zip}: {e}"));
        assert_eq!(unpacked.manifest.rawname, "demo");
        let read = read_manifest(&package, &Limits::default());
        assert!(
            read.as_ref().is_ok_and(|m| m.rawname == "demo"),
            "zip {zip}: {read:?}"
        );
    }
}

#[test]
fn a_module_xml_that_is_a_link_is_refused_alike_when_read_and_unpacked() {
    let scratch = scratch();
    // GNU tar stores a second name of a hard-linked file as a link entry.
    let tgz = scratch.path().join("linked-tar.tgz");
    let built = fs_err::File::create(&tgz).map(|file| {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        let mut xml = tar::Header::new_gnu();
        xml.set_size(XML.len() as u64);
        xml.set_mode(0o644);
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Link);
        link.set_size(0);
        let appended = builder
            .append_data(&mut xml, "demo/orig.xml", XML.as_bytes())
            .and_then(|()| builder.append_link(&mut link, "demo/module.xml", "demo/orig.xml"))
            .and_then(|()| builder.into_inner()?.finish().map(drop));
        assert!(appended.is_ok(), "{appended:?}");
    });
    assert!(built.is_ok());
    let zip = scratch.path().join("linked-zip.zip");
    super::fixtures::write_zip(
        &zip,
        &[
            super::fixtures::Z::File("demo/orig.xml", XML.as_bytes()),
            super::fixtures::Z::Symlink("demo/module.xml"),
        ],
    );
    for (package, what) in [(&tgz, "a hard link"), (&zip, "a symlink")] {
        let (unpacked, _) = unpack_fresh(package, &Limits::default());
        let unpacked = unpacked.err().unwrap_or_default();
        let read = read_manifest(package, &Limits::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            read.contains(&format!("entry `demo/module.xml` is {what}")),
            "{read}"
        );
        assert_eq!(read, unpacked);
    }
}

#[test]
fn unpacking_to_read_checks_and_writes_what_unpacking_to_install_does() {
    let scratch = scratch();
    let good: [(&str, &[u8]); 3] = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", b"\0asm"),
        ("demo/assets/a.txt", b"a"),
    ];
    let bad: [(&str, &[u8]); 3] = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", b"\0asm"),
        ("other/x", b"x"),
    ];
    for zip in [true, false] {
        for (label, files) in [("good", &good), ("bad", &bad)] {
            let package = scratch.path().join(format!("{label}-{zip}.pkg"));
            write_package(&package, zip, files);
            let outcomes = [crate::unpack, crate::unpack_to_read].map(|unpack| {
                let staging =
                    tempfile::tempdir_in(scratch.path()).unwrap_or_else(|e| panic!("{e}"));
                unpack(&package, staging.path(), &Limits::default())
                    .map(|u| {
                        let read = |name: &str| fs_err::read(u.dir.join(name)).ok();
                        let files = (read("module.wasm"), read("assets/a.txt"));
                        (
                            u.manifest.rawname,
                            u.dir
                                .strip_prefix(staging.path())
                                .map(std::path::Path::to_path_buf),
                            files,
                        )
                    })
                    .map_err(|e| e.to_string())
            });
            assert_eq!(outcomes[0], outcomes[1], "{label}, zip {zip}");
            assert_eq!(outcomes[0].is_ok(), label == "good", "{:?}", outcomes[0]);
        }
    }
}

#[test]
fn reading_the_manifest_and_unpacking_say_the_same_of_a_package_without_one() {
    let scratch = scratch();
    let dir = scratch.path();
    type Files<'a> = &'a [(&'a str, &'a [u8])];
    let cases: [(&str, Files<'_>, &str); 3] = [
        ("empty", &[], "empty"),
        (
            "component-only",
            &[("core/module.wasm", b"\0asm")],
            "no `module.xml` at the package's root or in its top-level directory `core/`",
        ),
        (
            "capitals",
            &[("core/Module.xml", XML.as_bytes())],
            "(the package holds `core/Module.xml`",
        ),
    ];
    for (name, files, expected) in cases {
        for zip in [false, true] {
            let kind = if zip { "zip" } else { "tgz" };
            let package = dir.join(format!("{name}-{kind}.{kind}"));
            write_package(&package, zip, files);
            let (unpacked, _) = unpack_fresh(&package, &Limits::default());
            let unpacked = unpacked.err().unwrap_or_default();
            let read = read_manifest(&package, &Limits::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(unpacked.contains(expected), "{package:?}: {unpacked}");
            assert_eq!(read, unpacked, "{package:?}");
        }
    }
}
