//! Tar entries GNU tar would read otherwise than modhost (sparse files), entry types in
//! words, and names: escaped, not UTF-8, too long, clashing as file and directory or
//! differing only in case.

mod common;

use std::path::Path;

use common::{
    WASM, XML, demo_tar, gzip, manifest, refused_with, scratch, tar_bytes, unpacked, write,
};
use tar::EntryType;

const ONLY: &str = "; only regular files and directories are allowed";

/// One PAX record, `LEN key=value\n`, LEN counting the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// The demo module with `name` after a per-entry PAX header of `records`.
fn with_pax_entry(records: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |kind: EntryType, name: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        assert!(builder.append_data(&mut header, name, data).is_ok());
    };
    append(EntryType::Regular, "demo/module.xml", XML.as_bytes());
    append(EntryType::XHeader, "demo/PaxHeaders/x", records);
    append(EntryType::Regular, name, data);
    let Ok(bytes) = builder.into_inner() else {
        panic!("tar")
    };
    bytes
}

#[test]
fn a_per_entry_pax_sparse_header_is_refused_saying_how_to_repack() {
    let scratch = scratch();
    // GNU tar would extract this entry as `demo/module.wasm`, the tar crate as `demo/x`.
    let records = [
        pax_record("GNU.sparse.name", "demo/module.wasm"),
        pax_record("GNU.sparse.realsize", "8"),
    ]
    .concat();
    let renamed = write(
        scratch.path(),
        "renamed.tgz",
        &gzip(&with_pax_entry(&records, "demo/x", WASM)),
    );
    let expected = [
        "entry `demo/x` (`demo/module.wasm` to GNU tar and bsdtar) holds a sparse file",
        "`GNU.sparse.name`",
        "repack the module without sparse files: GNU tar without `--sparse`, bsdtar with \
         `--no-read-sparse`",
    ];
    refused_with(&unpacked(&renamed), &expected);
    refused_with(&manifest(&renamed), &expected);
    // Sparse format 0.0 sets only `GNU.sparse.size`, `numblocks`, `offset`, `numbytes`.
    let old = write(
        scratch.path(),
        "old.tgz",
        &gzip(&with_pax_entry(
            &pax_record("GNU.sparse.size", "8"),
            "demo/module.wasm",
            WASM,
        )),
    );
    refused_with(
        &unpacked(&old),
        &["holds a sparse file", "`GNU.sparse.size`"],
    );
    // Any other per-entry record is read as before.
    let plain = write(
        scratch.path(),
        "plain.tgz",
        &gzip(&with_pax_entry(
            &pax_record("mtime", "0"),
            "demo/module.wasm",
            WASM,
        )),
    );
    assert_eq!(unpacked(&plain), Ok("demo".into()));
}

#[test]
fn sparse_files_made_by_gnu_tar_are_refused() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let scratch = scratch();
    for (name, expected) in [
        (
            "sparse-pax.tgz",
            "holds a sparse file (its PAX header sets `GNU.sparse.",
        ),
        (
            "sparse-gnu.tgz",
            "entry `demo/sparse.dat` is a sparse file (repack the module without sparse \
             files: GNU tar without `--sparse`, bsdtar with `--no-read-sparse`)",
        ),
    ] {
        let package = scratch.path().join(name);
        assert!(fs_err::copy(fixtures.join(name), &package).is_ok());
        refused_with(&unpacked(&package), &[expected]);
    }
}

#[test]
fn entry_types_are_named_in_words() {
    let scratch = scratch();
    for (kind, data, what) in [
        (
            EntryType::Link,
            &b"demo/module.xml"[..],
            "is a hard link to `demo/module.xml` (repack with `tar --hard-dereference`)",
        ),
        (
            EntryType::Symlink,
            b"/etc/passwd",
            "is a symlink to `/etc/passwd`",
        ),
        (EntryType::Char, b"", "is a character device"),
        (EntryType::Block, b"", "is a block device"),
        (EntryType::Fifo, b"", "is a FIFO"),
        (EntryType::Continuous, b"x", "is a contiguous file"),
    ] {
        let package = write(
            scratch.path(),
            &format!("{kind:?}.tgz"),
            &gzip(&demo_tar(&[("demo/x", kind, data)])),
        );
        let result = unpacked(&package);
        refused_with(&result, &[&format!("entry `demo/x` {what}{ONLY}")]);
        let message = result.err().unwrap_or_default();
        assert!(!message.contains(&format!("{kind:?};")), "{message}");
    }
}

#[test]
fn control_characters_in_names_are_escaped_in_messages() {
    let scratch = scratch();
    let name = "demo/\x1b]0;pwned\x07\ninstalled demo 1.0\r";
    // Line breaks cannot forge a line; the rest is for the display to escape (the CLI's
    // text output does, its JSON stays exact).
    let shown = "demo/\x1b]0;pwned\x07\\ninstalled demo 1.0\\r";
    let tgz = write(
        scratch.path(),
        "ctrl.tgz",
        &gzip(&demo_tar(&[(name, EntryType::Symlink, b"x")])),
    );
    // The name refused before what it is, as reading only the manifest refuses it.
    refused_with(
        &unpacked(&tgz),
        &[&format!(
            "entry `{shown}` has a control character in its name"
        )],
    );
    let zip = write(
        scratch.path(),
        "ctrl.zip",
        &common::zip_bytes(&[("demo/module.xml", XML.as_bytes()), ("\x1b[2J\nx/y", b"x")]),
    );
    refused_with(
        &unpacked(&zip),
        &["entry `\x1b[2J\\nx/y` has a control character in its name"],
    );
    // A package's own file name may hold a line break too.
    let forged = write(
        scratch.path(),
        "a.tgz: ok\nvoicemail 16.0.12 can be installed\nx.tgz",
        b"not a package",
    );
    for read in [unpacked(&forged), common::manifest(&forged)] {
        let message = read.err().unwrap_or_default();
        assert!(
            !message.contains('\n') && message.contains("a.tgz: ok\\nvoicemail 16.0.12"),
            "{message}"
        );
    }
}

#[test]
fn long_and_non_utf8_names_are_named() {
    let scratch = scratch();
    let long = format!("demo/{}", "a".repeat(300));
    let package = write(
        scratch.path(),
        "long.tgz",
        &gzip(&demo_tar(&[(&long, EntryType::Regular, b"x")])),
    );
    refused_with(
        &unpacked(&package),
        &[
            "entry path longer than 255 bytes: `demo/aaaa",
            "…",
            "is 305 bytes long",
        ],
    );

    let mut tar = demo_tar(&[("demo/cafX", EntryType::Regular, b"x")]);
    let at = tar.windows(9).position(|w| w == b"demo/cafX").unwrap_or(0);
    tar[at + 8] = 0xe9;
    // The header's checksum covers the name: 'X' (0x58) became 0xe9.
    let header = at - at % 512;
    let sum: u32 = tar[header..header + 512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    tar[header + 148..header + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let package = write(scratch.path(), "latin1.tgz", &gzip(&tar));
    refused_with(
        &unpacked(&package),
        &["entry `demo/caf\\xe9` has a name that is not UTF-8"],
    );
}

#[test]
fn a_path_that_is_both_a_file_and_a_directory_is_refused() {
    let scratch = scratch();
    let cases: [&[(&str, EntryType)]; 4] = [
        &[
            ("demo/x", EntryType::Regular),
            ("demo/x/y", EntryType::Regular),
        ],
        &[
            ("demo/x/y", EntryType::Regular),
            ("demo/x", EntryType::Regular),
        ],
        &[
            ("demo/x/", EntryType::Directory),
            ("demo/x", EntryType::Regular),
        ],
        &[
            ("demo/x", EntryType::Regular),
            ("demo/x/", EntryType::Directory),
        ],
    ];
    for (index, case) in cases.iter().enumerate() {
        let entries: Vec<_> = case.iter().map(|(n, k)| (*n, *k, &b""[..])).collect();
        let package = write(
            scratch.path(),
            &format!("{index}.tgz"),
            &gzip(&demo_tar(&entries)),
        );
        refused_with(
            &unpacked(&package),
            &["`demo/x` is both a file and a directory in the package"],
        );
    }
}

#[test]
fn names_differing_only_in_case_are_refused_in_both_formats() {
    let scratch = scratch();
    let expected = [
        "entries `demo/module.xml` and `demo/Module.xml` differ only in case",
        "macOS or Windows",
    ];
    let tgz = write(
        scratch.path(),
        "case.tgz",
        &gzip(&demo_tar(&[(
            "demo/Module.xml",
            EntryType::Regular,
            XML.as_bytes(),
        )])),
    );
    refused_with(&unpacked(&tgz), &expected);
    let zip = write(
        scratch.path(),
        "case.zip",
        &common::zip_bytes(&[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/module.wasm", WASM),
            ("demo/Module.xml", XML.as_bytes()),
        ]),
    );
    refused_with(&unpacked(&zip), &expected);
    // A directory differing in case from another counts too.
    let dirs = write(
        scratch.path(),
        "dirs.tgz",
        &gzip(&tar_bytes(&[
            ("demo/module.xml", EntryType::Regular, XML.as_bytes()),
            ("demo/module.wasm", EntryType::Regular, WASM),
            ("demo/Assets/a", EntryType::Regular, b"a"),
            ("demo/assets/b", EntryType::Regular, b"b"),
        ])),
    );
    refused_with(
        &unpacked(&dirs),
        &["`demo/Assets` and `demo/assets` differ only in case"],
    );
}

#[test]
fn an_old_tars_directory_is_a_file_entry_whose_name_ends_in_a_slash() {
    let scratch = scratch();
    // As `pax -w -x tar` writes it: no directory type in the V7 format.
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("demo/", &b""[..]),
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", WASM),
    ] {
        let mut header = tar::Header::new_old();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        assert!(builder.append_data(&mut header, name, data).is_ok());
    }
    let Ok(bytes) = builder.into_inner() else {
        panic!("tar")
    };
    let package = write(scratch.path(), "v7.tgz", &gzip(&bytes));
    assert_eq!(unpacked(&package), Ok("demo".to_owned()));
}
