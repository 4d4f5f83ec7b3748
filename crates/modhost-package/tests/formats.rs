//! Files that are not a gzip tar or a zip, named for what they are; zips the reader
//! cannot read, said in words; size and bomb refusals naming the entry with plain numbers.

mod common;

use std::io::Write;

use common::{
    WASM, XML, demo_tar, gzip, manifest, refused_with, scratch, unpacked, write, zip_bytes,
};

const REPACK: &str = "repack the module as a .tgz (`tar -czf NAME.tgz DIR`) or a .zip";

#[test]
fn other_compressions_and_archives_are_named_with_how_to_repack() {
    let scratch = scratch();
    let tar = demo_tar(&[]);
    let mut sfx = b"\x7fELF\x02\x01\x01\0 a self-extracting stub".to_vec();
    sfx.extend(zip_bytes(&[
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", WASM),
    ]));
    let empty_zip = zip_bytes(&[]);
    for (name, bytes, expected) in [
        (
            "bz2.tgz",
            b"BZh91AY&SY rest".to_vec(),
            "is a bzip2-compressed file, not a gzip tar or a zip",
        ),
        (
            "xz.tgz",
            b"\xfd7zXZ\0 rest".to_vec(),
            "is an xz-compressed file",
        ),
        (
            "zst.tgz",
            b"\x28\xb5\x2f\xfd rest".to_vec(),
            "is a zstd-compressed file",
        ),
        (
            "plain.tgz",
            tar.clone(),
            "is an uncompressed tar archive; compress it with gzip",
        ),
        (
            "empty.zip",
            empty_zip,
            "is an empty zip archive: it holds no files",
        ),
        ("sfx.zip", sfx, "is a self-extracting zip"),
    ] {
        let package = write(scratch.path(), name, &bytes);
        for result in [unpacked(&package), manifest(&package)] {
            refused_with(&result, &[expected]);
        }
        if !name.ends_with(".zip") || name == "sfx.zip" {
            refused_with(&unpacked(&package), &[REPACK]);
        }
    }
}

/// A zip of the demo module whose entries claim compression `method`.
fn zip_with_method(method: u16) -> Vec<u8> {
    let mut bytes = zip_bytes(&[
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", WASM),
    ]);
    let heads: Vec<(usize, usize)> = bytes
        .windows(4)
        .enumerate()
        .filter_map(|(at, magic)| match magic {
            b"PK\x03\x04" => Some((at, 8)),
            b"PK\x01\x02" => Some((at, 10)),
            _ => None,
        })
        .collect();
    for (at, field) in heads {
        bytes[at + field..at + field + 2].copy_from_slice(&method.to_le_bytes());
    }
    bytes
}

#[test]
fn zip_methods_modhost_does_not_read_are_named() {
    let scratch = scratch();
    for (method, name) in [(12, "bzip2"), (14, "LZMA"), (93, "zstd"), (95, "xz")] {
        let package = write(
            scratch.path(),
            &format!("{method}.zip"),
            &zip_with_method(method),
        );
        let expected = [
            &format!("entry `demo/module.xml` is compressed with {name} (zip method {method})")[..],
            "zip the module again with deflate (`zip -Z deflate",
        ];
        refused_with(&unpacked(&package), &expected);
        refused_with(&manifest(&package), &expected);
    }
}

#[test]
fn a_damaged_central_directory_is_said_in_words() {
    let scratch = scratch();
    let mut bytes = zip_bytes(&[
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", WASM),
    ]);
    // The end record's entry counts say 9 entries: the central directory ends first.
    let end = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .unwrap_or(0);
    bytes[end + 8..end + 12].copy_from_slice(&[9, 0, 9, 0]);
    let package = write(scratch.path(), "count.zip", &bytes);
    for result in [unpacked(&package), manifest(&package)] {
        refused_with(&result, &["the zip's central directory", "is damaged"]);
        let message = result.err().unwrap_or_default();
        assert!(!message.contains("::"), "{message}");
    }
}

#[test]
fn a_bomb_names_its_entry_and_says_the_numbers_plainly() {
    let scratch = scratch();
    let zeros = vec![0u8; 8 << 20];
    let tgz = write(
        scratch.path(),
        "bomb.tgz",
        &gzip(&demo_tar(&[(
            "demo/seed.sqlite",
            tar::EntryType::Regular,
            &zeros,
        )])),
    );
    let zip = write(
        scratch.path(),
        "bomb.zip",
        &zip_bytes(&[
            ("demo/module.xml", XML.as_bytes()),
            ("demo/seed.sqlite", &zeros),
        ]),
    );
    for package in [&tgz, &zip] {
        refused_with(
            &unpacked(package),
            &[
                "`demo/seed.sqlite` would unpack past ",
                " MiB",
                "KiB",
                "in the archive; packages may unpack to at most 200× their size and 256 MiB",
                "compression-ratio limit 200:1",
            ],
        );
    }
}

#[test]
fn a_package_past_the_size_limit_names_the_entry() {
    let scratch = scratch();
    let mut noise = Vec::with_capacity(3 << 20);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    while noise.len() < 3 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.write_all(&state.to_le_bytes()).unwrap_or_default();
    }
    let package = write(
        scratch.path(),
        "big.tgz",
        &gzip(&demo_tar(&[(
            "demo/big.bin",
            tar::EntryType::Regular,
            &noise,
        )])),
    );
    let staging = scratch.path().join("staging");
    assert!(fs_err::create_dir(&staging).is_ok());
    let limits = modhost_package::Limits {
        max_total_size: 2 << 20,
        ..Default::default()
    };
    let result = modhost_package::unpack(&package, &staging, &limits)
        .map(|u| u.manifest.rawname)
        .map_err(|e| e.to_string());
    refused_with(
        &result,
        &["`demo/big.bin` would take the package past 2 MiB, the most a package may unpack to"],
    );
}

#[test]
fn a_package_directory_lists_its_packages_and_apart_its_other_archives() {
    let scratch = scratch();
    for name in [
        "b.tar.gz",
        "a.tgz",
        "c.zip",
        "d.tar",
        "e.gz",
        "module.xml",
        "f.tar.gz.txt",
        "G.ZIP",
        "h.Tgz",
        "i.TAR.GZ",
        "j.tar.xz",
        "k.7z",
    ] {
        write(scratch.path(), name, b"");
    }
    let listed: Vec<String> = modhost_package::package_files(scratch.path())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert_eq!(
        listed,
        ["G.ZIP", "a.tgz", "b.tar.gz", "c.zip", "h.Tgz", "i.TAR.GZ"]
    );
    // Archives no package is named as, which a reader names rather than passes over.
    let others: Vec<String> = modhost_package::other_archives(scratch.path())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert_eq!(others, ["d.tar", "j.tar.xz", "k.7z"]);
}

/// The demo module as a zip whose end has a zip64 end record and locator, as `zip -fz`
/// and large zips write it.
fn zip64_bytes() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.set_raw_zip64_extensible_data_sector(Box::new([]));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", WASM),
    ] {
        let written = zip
            .start_file(name, options)
            .and_then(|()| Ok(zip.write_all(data)?));
        assert!(written.is_ok(), "{written:?}");
    }
    match zip.finish() {
        Ok(cursor) => cursor.into_inner(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_zip_with_bytes_after_its_end_or_a_gzip_tar_that_is_a_zip_too_is_refused() {
    let scratch = scratch();
    let demo = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", WASM),
    ];
    let good = zip_bytes(&demo);
    let other = zip_bytes(&[
        ("demo/module.xml", XML.replace("Demo", "Other").as_bytes()),
        ("demo/module.wasm", WASM),
    ]);
    // What zip tools write is accepted: a comment, a zip64 end, and zeros padding the
    // file to a block's end (`bsdtar --format zip` writing to a pipe).
    let mut commented = good.clone();
    let length = commented.len();
    commented[length - 2..].copy_from_slice(&5u16.to_le_bytes());
    commented.extend(b"hello");
    let zip64 = zip64_bytes();
    assert!(zip64.windows(4).any(|w| w == b"PK\x06\x06"), "no zip64 end");
    let mut padded = good.clone();
    padded.resize(padded.len().next_multiple_of(10_240), 0);
    let mut padded_commented = commented.clone();
    padded_commented.resize(padded_commented.len() + 5_021, 0);
    for (name, bytes) in [
        ("commented.zip", &commented),
        ("zip64.zip", &zip64),
        ("padded.zip", &padded),
        ("padded-commented.zip", &padded_commented),
    ] {
        let package = write(scratch.path(), name, bytes);
        assert_eq!(unpacked(&package), Ok("demo".to_owned()), "{name}");
        assert_eq!(manifest(&package), Ok("demo".to_owned()), "{name}");
    }
    // `unzip` reads the last of two zips, the zip crate the first: which is the package?
    let appended = |first: &[u8], second: &[u8]| [first, second].concat();
    let mut junk = good.clone();
    junk.extend(b"GARBAGE");
    let mut zip64_junk = zip64.clone();
    zip64_junk.extend(b"GARBAGE");
    let mut padded_junk = padded.clone();
    padded_junk.extend(b"GARBAGE");
    for (name, bytes) in [
        ("junk.zip", junk),
        ("padded-junk.zip", padded_junk),
        ("zip64-junk.zip", zip64_junk),
        ("good-then-other.zip", appended(&good, &other)),
        ("other-then-good.zip", appended(&other, &good)),
    ] {
        let package = write(scratch.path(), name, &bytes);
        for result in [unpacked(&package), manifest(&package)] {
            refused_with(
                &result,
                &["bytes follow the zip's end", "zip the module again"],
            );
        }
    }
    // A gzip member's extra field holding a zip whose comment runs over the deflated
    // tar to the file's end: gzip reads a tar from it, `unzip` the zip.
    let tar = gzip(&demo_tar(&[]));
    let carrying = |zip: &[u8]| {
        let mut bytes = tar[..10].to_vec();
        bytes[3] |= 0x04;
        let extra = u16::try_from(zip.len()).unwrap_or_else(|e| panic!("{e}"));
        bytes.extend(extra.to_le_bytes());
        bytes.extend(zip);
        bytes.extend(&tar[10..]);
        bytes
    };
    let mut closing = other.clone();
    let rest = u16::try_from(tar.len() - 10).unwrap_or_else(|e| panic!("{e}"));
    let length = closing.len();
    closing[length - 2..].copy_from_slice(&rest.to_le_bytes());
    // Its comment's length running past the file's end, as `unzip` and Python read it all
    // the same (the comment cut short): no careful reader's fit, refused just as well.
    let mut overshooting = other.clone();
    let length = overshooting.len();
    overshooting[length - 2..].copy_from_slice(&u16::MAX.to_le_bytes());
    for (name, zip) in [("polyglot.tgz", &closing), ("overshoot.tgz", &overshooting)] {
        let package = write(scratch.path(), name, &carrying(zip));
        for result in [unpacked(&package), manifest(&package)] {
            refused_with(&result, &["it is a gzip tar and a zip at once"]);
        }
    }
    // A zip whose comment holds another zip's end record (its comment long enough to run
    // past the file): Python and `unzip` take that one, and read another package.
    let mut hiding = good.clone();
    let mut inner = other[other.len() - 22..].to_vec();
    inner[20..22].copy_from_slice(&u16::MAX.to_le_bytes());
    let length = hiding.len();
    let comment = u16::try_from(inner.len()).unwrap_or_else(|e| panic!("{e}"));
    hiding[length - 2..].copy_from_slice(&comment.to_le_bytes());
    hiding.extend(&inner);
    let package = write(scratch.path(), "hiding.zip", &hiding);
    for result in [unpacked(&package), manifest(&package)] {
        refused_with(&result, &["the zip's comment holds another end record"]);
    }
    // The same with the hidden record's comment empty and zeros after it, as padding
    // looks: the record whose comment runs to the end is still the zip's.
    let mut padded_hiding = good.clone();
    let mut inner = other[other.len() - 22..].to_vec();
    inner[20..22].copy_from_slice(&0u16.to_le_bytes());
    inner.extend([0; 64]);
    let length = padded_hiding.len();
    let comment = u16::try_from(inner.len()).unwrap_or_else(|e| panic!("{e}"));
    padded_hiding[length - 2..].copy_from_slice(&comment.to_le_bytes());
    padded_hiding.extend(&inner);
    let package = write(scratch.path(), "padded-hiding.zip", &padded_hiding);
    for result in [unpacked(&package), manifest(&package)] {
        refused_with(&result, &["the zip's comment holds another end record"]);
    }
    // A zip whose comment is shorter than the rest of the file: Python reads it too, and
    // so it does when the record claims another disk, its central directory before it.
    let mut other_disk = other.clone();
    let length = other_disk.len();
    other_disk[length - 18..length - 14].copy_from_slice(&[1, 0, 1, 0]);
    for (name, zip) in [("extra.tgz", &other), ("disk.tgz", &other_disk)] {
        let package = write(scratch.path(), name, &carrying(zip));
        refused_with(&unpacked(&package), &["it is a gzip tar and a zip at once"]);
    }
    // What gzip and tar tools write is never taken for one.
    let package = write(scratch.path(), "plain.tgz", &tar);
    assert_eq!(unpacked(&package), Ok("demo".to_owned()));
}
