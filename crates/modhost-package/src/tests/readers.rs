//! Packages other readers would read otherwise: a tar whose headers GNU tar and the tar
//! crate disagree on (which module.xml a reviewer's `tar -x` shows, and which one
//! modhost installs), and a package with a module.xml at its root and in its directory.
//! Each is refused by `unpack` and by `read_manifest` alike.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::fixtures::{XML, scratch, unpack_fresh, write_package};
use crate::{Limits, read_manifest};

/// A module.xml that is not [`XML`]: what the second story of a package would install.
fn evil_xml() -> String {
    XML.replace("<version>1.0</version>", "<version>6.6.6</version>")
}

/// One raw tar block for an entry `name` of type `kind` and `size` bytes, edited by
/// `edit` before its checksum is set.
fn block(name: &str, kind: tar::EntryType, size: u64, edit: impl Fn(&mut [u8; 512])) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    assert!(header.set_path(name).is_ok());
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    edit(header.as_mut_bytes());
    header.set_cksum();
    header.as_bytes().to_vec()
}

/// An entry `name` holding the demo module.xml, its header block edited by `edit`.
fn module_xml(name: &str, edit: impl Fn(&mut [u8; 512])) -> Vec<u8> {
    let mut entry = block(name, tar::EntryType::Regular, XML.len() as u64, edit);
    entry.extend(padded(XML.as_bytes()));
    entry
}

/// The component entry beside `demo/module.xml`.
fn wasm() -> Vec<u8> {
    entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm")
}

/// `data` padded to whole blocks.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    data.resize(data.len().div_ceil(512) * 512, 0);
    data
}

/// An entry: its header block and its content.
fn entry(name: &str, kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
    let mut bytes = block(name, kind, data.len() as u64, |_| {});
    bytes.extend(padded(data));
    bytes
}

/// One PAX record, `LEN key=value\n`, LEN counting the whole record.
fn record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while (len.to_string().len() + body.len()) != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// A per-entry PAX header holding `records`.
fn pax(records: &[Vec<u8>]) -> Vec<u8> {
    entry("PaxHeader/x", tar::EntryType::XHeader, &records.concat())
}

/// A GNU long name entry naming the next entry `name`.
fn long_name(name: &str) -> Vec<u8> {
    let mut data = name.as_bytes().to_vec();
    data.push(0);
    entry("././@LongLink", tar::EntryType::GNULongName, &data)
}

/// Writes `entries` and the end of the archive as a gzip tar at `path`.
fn write_raw(path: &Path, entries: &[Vec<u8>]) {
    let mut tar = entries.concat();
    tar.extend([0; 1024]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    assert!(gz.write_all(&tar).is_ok());
    let written = gz.finish().and_then(|bytes| fs_err::write(path, bytes));
    assert!(written.is_ok(), "{written:?}");
}

/// Asserts that both `unpack` and `read_manifest` refuse `package` with `words`.
fn refused_by_both(package: &Path, words: &str) {
    let (unpacked, _) = unpack_fresh(package, &Limits::default());
    assert!(
        unpacked.as_ref().is_err_and(|e| e.contains(words)),
        "unpack: {unpacked:?}"
    );
    let read = read_manifest(package, &Limits::default()).map_err(|e| e.to_string());
    assert!(
        read.as_ref().is_err_and(|e| e.contains(words)),
        "read_manifest: {read:?}"
    );
}

#[test]
fn a_pax_header_setting_a_key_twice_is_refused() {
    let scratch = scratch();
    let evil = evil_xml();
    let package = scratch.path().join("twice.tgz");
    // The tar crate takes the first `path`, GNU tar the last: two module.xml files.
    write_raw(
        &package,
        &[
            entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
            pax(&[
                record("path", "demo/module.xml"),
                record("path", "demo/other.xml"),
            ]),
            entry("demo/other.xml", tar::EntryType::Regular, evil.as_bytes()),
        ],
    );
    refused_by_both(&package, "sets it twice (`path`)");
}

#[test]
fn a_pax_path_beside_a_gnu_long_name_that_differs_is_refused_in_either_order() {
    let scratch = scratch();
    let evil = evil_xml();
    for (order, headers) in [
        (
            "long name first",
            vec![
                long_name("demo/module.xml"),
                pax(&[record("path", "demo/x.xml")]),
            ],
        ),
        (
            "PAX header first",
            vec![
                pax(&[record("path", "demo/x.xml")]),
                long_name("demo/module.xml"),
            ],
        ),
    ] {
        let package = scratch.path().join(format!("{order}.tgz"));
        let mut entries = vec![entry(
            "demo/module.xml",
            tar::EntryType::Regular,
            XML.as_bytes(),
        )];
        entries.extend(headers);
        entries.push(entry(
            "demo/y.xml",
            tar::EntryType::Regular,
            evil.as_bytes(),
        ));
        write_raw(&package, &entries);
        let (unpacked, _) = unpack_fresh(&package, &Limits::default());
        assert!(
            unpacked
                .as_ref()
                .is_err_and(|e| e
                    .contains("names the entry otherwise than its GNU long name does (`path`)")),
            "{order}: {unpacked:?}"
        );
    }
    // Agreeing, they are one name: what GNU tar writes for a long name in PAX format.
    let agreeing = scratch.path().join("agreeing.tgz");
    write_raw(
        &agreeing,
        &[
            long_name("demo/module.xml"),
            pax(&[record("path", "demo/module.xml")]),
            entry("demo/ignored", tar::EntryType::Regular, XML.as_bytes()),
            entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm"),
        ],
    );
    let read = read_manifest(&agreeing, &Limits::default());
    assert!(read.is_ok_and(|m| m.rawname == "demo"));
}

#[test]
fn a_pax_size_that_is_no_decimal_number_is_refused() {
    let scratch = scratch();
    for size in ["-5", "", "+5", "0x10"] {
        let package = scratch.path().join(format!("size{size}.tgz"));
        write_raw(
            &package,
            &[
                pax(&[record("size", size)]),
                entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
            ],
        );
        refused_by_both(&package, "sets it to no decimal number (`size`)");
    }
    // Digits past 64 bits: GNU tar and bsdtar refuse it; the tar crate would read the
    // header's own size instead.
    let package = scratch.path().join("huge.tgz");
    write_raw(
        &package,
        &[
            pax(&[record("size", "18446744073709551616")]),
            entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
        ],
    );
    refused_by_both(
        &package,
        "sets it to a number too large for any file (`size`)",
    );
}

#[test]
fn a_tar_the_reader_finds_damaged_is_said_to_be_damaged_in_words() {
    let scratch = scratch();
    let mut bad_checksum = entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes());
    bad_checksum[148..156].copy_from_slice(b"0000000\0");
    let mut bad_size = entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes());
    bad_size[124..135].copy_from_slice(b"zzzzzzzzzzz");
    // Each after a good entry: a bad first header is no tar at all.
    let good = || entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm");
    for (name, entries) in [
        ("checksum.tgz", vec![good(), bad_checksum]),
        ("size.tgz", vec![good(), bad_size]),
        // A PAX header describing an entry that never comes.
        (
            "orphan.tgz",
            vec![pax(&[record("path", "demo/module.xml")])],
        ),
    ] {
        let package = scratch.path().join(name);
        write_raw(&package, &entries);
        refused_by_both(&package, "the archive is damaged (");
        let read = read_manifest(&package, &Limits::default()).map_err(|e| e.to_string());
        assert!(
            read.as_ref()
                .is_err_and(|e| e.ends_with("); download or copy it again, or repack the module")),
            "{name}: {read:?}"
        );
    }
}

#[test]
fn a_directory_declaring_content_is_refused_as_the_entries_it_would_hide() {
    let scratch = scratch();
    let package = scratch.path().join("twostories.tgz");
    // GNU tar reads what follows `demo/` as the next entry: the module.xml a reviewer
    // sees. The tar crate skips the directory's "content": the one before.
    let hidden = entry(
        "demo/module.xml",
        tar::EntryType::Regular,
        evil_xml().as_bytes(),
    );
    let mut directory = block(
        "demo/",
        tar::EntryType::Directory,
        hidden.len() as u64,
        |_| {},
    );
    directory.extend(hidden);
    write_raw(
        &package,
        &[
            entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
            entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm"),
            directory,
        ],
    );
    refused_by_both(
        &package,
        "entry `demo/` is a directory that declares 1024 bytes of content, which tar tools \
         read as the entries after it",
    );

    // An old tar's directory, a file whose name ends in `/`, alike: GNU tar lists its
    // content as skipped but unpacks it as entries.
    let v7 = scratch.path().join("v7.tgz");
    let hidden = entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm other");
    write_raw(
        &v7,
        &[
            entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
            entry("demo/x/", tar::EntryType::Regular, &hidden),
            entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm"),
        ],
    );
    refused_by_both(
        &v7,
        "entry `demo/x/` is a directory that declares 1024 bytes of content",
    );
    let empty = scratch.path().join("v7-empty.tgz");
    write_raw(
        &empty,
        &[
            entry("demo/", tar::EntryType::Regular, b""),
            entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
            entry("demo/module.wasm", tar::EntryType::Regular, b"\0asm"),
        ],
    );
    let read = read_manifest(&empty, &Limits::default());
    assert!(read.is_ok_and(|m| m.rawname == "demo"));
}

#[test]
fn a_gnu_header_with_bytes_where_ustar_keeps_a_prefix_is_refused() {
    let scratch = scratch();
    let package = scratch.path().join("gnu-prefix.tgz");
    // Python's tarfile would read `../../outside/demo/module.xml`; GNU tar and bsdtar
    // ignore the bytes, as the tar crate does.
    let module = module_xml("demo/module.xml", |raw| {
        raw[257..265].copy_from_slice(b"ustar  \0");
        raw[345..358].copy_from_slice(b"../../outside");
    });
    write_raw(&package, &[module]);
    refused_by_both(
        &package,
        "entry `demo/module.xml` has a GNU header whose name-prefix bytes are not empty",
    );
}

#[test]
fn a_ustar_header_of_another_version_than_00_is_refused() {
    let scratch = scratch();
    let package = scratch.path().join("version.tgz");
    // `demo/` in the prefix field: GNU tar and bsdtar join it whatever the version, the
    // tar crate only for version 00, and would find module.xml at the root.
    let split = |version: &'static [u8]| {
        move |raw: &mut [u8; 512]| {
            raw[..100].fill(0);
            raw[..10].copy_from_slice(b"module.xml");
            raw[345..349].copy_from_slice(b"demo");
            raw[263..265].copy_from_slice(version);
        }
    };
    let module = module_xml("module.xml", split(b" 0"));
    write_raw(&package, &[module]);
    refused_by_both(&package, "has a ustar header of version ` 0`, not `00`");

    // Without a prefix, every reader reads the name alike, whatever the version says.
    let unprefixed = scratch.path().join("unprefixed.tgz");
    let module = module_xml("demo/module.xml", |raw| {
        raw[263..265].copy_from_slice(b"\0\0");
    });
    write_raw(&unprefixed, &[module, wasm()]);
    let read = read_manifest(&unprefixed, &Limits::default());
    assert!(read.is_ok_and(|m| m.rawname == "demo"));

    // Version 00 with the prefix is plain ustar, read alike everywhere.
    let plain = scratch.path().join("plain.tgz");
    let module = module_xml("module.xml", split(b"00"));
    write_raw(&plain, &[module, wasm()]);
    let read = read_manifest(&plain, &Limits::default());
    assert!(read.is_ok_and(|m| m.rawname == "demo"));
}

#[test]
fn a_module_xml_at_the_root_and_in_the_modules_directory_is_refused_in_both_formats() {
    let scratch = scratch();
    let evil = evil_xml();
    for zip in [false, true] {
        let package = scratch.path().join(format!("both-{zip}.pkg"));
        write_package(
            &package,
            zip,
            &[
                ("module.xml", evil.as_bytes()),
                ("demo/module.xml", XML.as_bytes()),
                ("module.wasm", b"\0asm"),
            ],
        );
        refused_by_both(
            &package,
            "it holds `module.xml` at its root and `demo/module.xml` too",
        );
    }
}

/// A package's files, by name.
type Files<'a> = [(&'a str, &'a [u8])];

#[test]
fn a_package_read_for_its_module_xml_is_refused_for_what_unpacking_refuses() {
    // `list --from` and `info --from` read only module.xml: a package they offer is one
    // `install` takes, in either format.
    let scratch = scratch();
    let wasm: &[u8] = b"\0asm";
    let cases: [(&str, &Files<'_>, &str); 5] = [
        (
            "beside",
            &[
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", wasm),
                ("LICENSE", b"MIT"),
            ],
            "more than one entry at the archive's top level (`demo` and `LICENSE`)",
        ),
        (
            "nowasm",
            &[("demo/module.xml", XML.as_bytes())],
            "component `demo/module.wasm` is missing",
        ),
        (
            "dirwasm",
            &[
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm/inner", b"x"),
            ],
            "component `demo/module.wasm` is a directory, not a file",
        ),
        // A FreePBX module as its mirror serves it: PHP, said as that.
        (
            "php",
            &[
                ("demo/module.xml", XML.as_bytes()),
                ("demo/Demo.class.php", b"<?php"),
                ("demo/install.php", b"<?php"),
            ],
            "component `demo/module.wasm` is missing: the package holds PHP (`demo/Demo.class.php`",
        ),
        (
            "case",
            &[
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", wasm),
                ("demo/Notes.txt", b"a"),
                ("demo/notes.txt", b"b"),
            ],
            "entries `demo/Notes.txt` and `demo/notes.txt` differ only in case",
        ),
    ];
    for (name, files, words) in cases {
        for zip in [false, true] {
            let package = scratch.path().join(format!("{name}-{zip}.pkg"));
            write_package(&package, zip, files);
            refused_by_both(&package, words);
        }
    }
    // A tar may name an entry twice, and GNU tar would unpack the later one.
    let twice = scratch.path().join("twice.tgz");
    write_package(
        &twice,
        false,
        &[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/module.wasm", wasm),
            ("demo/module.xml", XML.replace("1.0", "1.1").as_bytes()),
        ],
    );
    refused_by_both(&twice, "duplicate entry `demo/module.xml`");
    // The component at the root, beside a root module.xml, is found too.
    let flat = scratch.path().join("flat.tgz");
    write_package(
        &flat,
        false,
        &[("module.xml", XML.as_bytes()), ("module.wasm", wasm)],
    );
    assert!(read_manifest(&flat, &Limits::default()).is_ok_and(|m| m.rawname == "demo"));
}

#[test]
fn a_per_entry_pax_header_before_a_global_one_is_refused() {
    // The tar crate spends the per-entry header on the global one; GNU tar keeps it for
    // the entry after, which it then unpacks as `demo/module.xml`.
    let scratch = scratch();
    let package = scratch.path().join("global-after-x.tgz");
    write_raw(
        &package,
        &[
            entry("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
            wasm(),
            pax(&[record("path", "demo/module.xml")]),
            entry("pax_global_header", tar::EntryType::XGlobalHeader, b""),
            entry("demo/zz", tar::EntryType::Regular, b"junk"),
        ],
    );
    refused_by_both(
        &package,
        "a per-entry PAX header (naming `demo/module.xml`) comes before the PAX global header \
         `pax_global_header`",
    );
}

#[test]
fn sizes_declared_past_the_limit_are_refused_by_reading_the_manifest_too() {
    // A bomb's entry says how large it is before a byte is unpacked: `list --from` leaves
    // it out as `install` refuses it, in either format.
    let scratch = scratch();
    let limits = Limits {
        max_total_size: 1024 * 1024,
        ..Limits::default()
    };
    let zeros = vec![0_u8; 2 * 1024 * 1024];
    for zip in [false, true] {
        let package = scratch.path().join(format!("bomb-{zip}.pkg"));
        write_package(
            &package,
            zip,
            &[
                ("demo/module.xml", XML.as_bytes()),
                ("demo/module.wasm", b"\0asm"),
                ("demo/zeros", &zeros),
            ],
        );
        let words = "`demo/zeros`";
        let (unpacked, _) = unpack_fresh(&package, &limits);
        assert!(
            unpacked.as_ref().is_err_and(|e| e.contains(words)),
            "unpack: {unpacked:?}"
        );
        let read = read_manifest(&package, &limits).map_err(|e| e.to_string());
        assert!(
            read.as_ref()
                .is_err_and(|e| e.contains(words) && e.contains("1048576")),
            "read_manifest: {read:?}"
        );
    }
}
