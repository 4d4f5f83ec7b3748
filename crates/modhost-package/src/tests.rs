//! Unit tests of packing and reading, of both formats and both layouts, and of hostile
//! zips; hostile archives are also tested end to end in `tests/cli/archives.rs`, where a
//! refusal must also leave the root as it was.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use modhost_test_support::hostile::{Entry, write_repeated_after};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::*;

const XML: &str = "<module><rawname>demo</rawname><name>Demo</name><version>1.0</version></module>";

fn scratch() -> tempfile::TempDir {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    dir
}

fn module_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = scratch();
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
    write_tgz(&empty, &[("demo/module.wasm", b"\0asm")]);
    let message = read_manifest(&empty, &Limits::default())
        .err()
        .map(|e| e.to_string());
    assert!(
        message.is_some_and(|m| m.contains("no `module.xml` or `<rawname>/module.xml` in the package"))
    );

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
    let latin1 = dir.path().join("latin1.tgz");
    let xml =
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<module><name>Caf\xe9</name></module>";
    write_tgz(&latin1, &[("demo/module.xml", xml)]);
    let message = read_manifest(&latin1, &Limits::default()).map_err(|e| e.to_string());
    assert!(
        message
            .as_ref()
            .is_err_and(|m| m.contains("2:18: byte 0xE9 is not UTF-8") && m.contains("ISO-8859-1")),
        "{message:?}"
    );
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

/// One entry of a test zip.
enum Z<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str),
    /// A file entry whose unix file type is the given `S_IF*` value.
    Special(&'a str, u32),
}

/// Writes a zip of `entries`, every one asking for mode 0777.
fn write_zip(path: &Path, entries: &[Z<'_>]) {
    let Ok(file) = fs_err::File::create(path) else {
        panic!("create {path:?}")
    };
    let mut zip = ZipWriter::new(file);
    let options = SimpleFileOptions::default().unix_permissions(0o777);
    for entry in entries {
        let written = match entry {
            Z::File(name, data) => zip
                .start_file(*name, options)
                .and_then(|()| Ok(zip.write_all(data)?)),
            Z::Dir(name) => zip.add_directory(*name, options),
            Z::Symlink(name) => zip.add_symlink(*name, "/etc/passwd", options),
            Z::Special(name, kind) => {
                zip.start_file(*name, options.external_attributes((kind | 0o644) << 16))
            }
        };
        assert!(written.is_ok(), "{written:?}");
    }
    assert!(zip.finish().is_ok());
}

/// Writes a gzip tar of regular files.
fn write_tgz(path: &Path, files: &[(&str, &[u8])]) {
    let Ok(file) = fs_err::File::create(path) else {
        panic!("create {path:?}")
    };
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o777);
        assert!(builder.append_data(&mut header, name, *data).is_ok());
    }
    let finished = builder.into_inner().and_then(GzEncoder::finish);
    assert!(finished.is_ok(), "{finished:?}");
}

/// Writes regular `files` as a gzip tar or as a zip.
fn write_package(path: &Path, zip: bool, files: &[(&str, &[u8])]) {
    if zip {
        let entries: Vec<Z<'_>> = files.iter().map(|(n, d)| Z::File(n, d)).collect();
        write_zip(path, &entries);
    } else {
        write_tgz(path, files);
    }
}

/// Rewrites every local and central header of the zip at `path` with `edit`, which gets
/// the bytes from the header's signature on and whether it is a central one: how tests
/// write what the zip writer will not.
fn edit_headers(path: &Path, edit: impl Fn(&mut [u8], bool)) {
    let Ok(mut bytes) = fs_err::read(path) else {
        panic!("read {path:?}")
    };
    let headers: Vec<(usize, bool)> = bytes
        .windows(4)
        .enumerate()
        .filter_map(|(at, magic)| match magic {
            b"PK\x03\x04" => Some((at, false)),
            b"PK\x01\x02" => Some((at, true)),
            _ => None,
        })
        .collect();
    for (at, central) in headers {
        edit(&mut bytes[at..], central);
    }
    assert!(fs_err::write(path, bytes).is_ok());
}

/// What `unpack` says about `package`, and what it left in the staging directory.
fn unpack_fresh(package: &Path, limits: &Limits) -> (Result<Unpacked, String>, PathBuf) {
    let staging = package.with_extension("staging");
    assert!(fs_err::create_dir(&staging).is_ok());
    let result = unpack(package, &staging, limits).map_err(|e| e.to_string());
    (result, staging)
}

/// The bytes of every file under `dir`.
fn written(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        match fs_err::read_dir(&path) {
            Ok(entries) => pending.extend(entries.flatten().map(|e| e.path())),
            Err(_) => total += fs_err::metadata(&path).map(|m| m.len()).unwrap_or(0),
        }
    }
    total
}

/// The process's umask, which unpacked modes are subject to (022 when unknown).
fn umask() -> u32 {
    let status = fs_err::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .and_then(|mask| u32::from_str_radix(mask.trim(), 8).ok())
        .unwrap_or(0o022)
}

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
    let mask = umask();
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
        assert_eq!(found, Some(mode & !mask), "mode of `{path}`");
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

#[test]
fn every_class_of_hostile_zip_is_refused() {
    let scratch = scratch();
    let dir = scratch.path();
    let xml = XML.as_bytes();
    let long = format!("demo/{}", "a".repeat(300));
    let mut cases: Vec<(String, Vec<Z<'_>>, String)> = Vec::new();
    for (name, entry, what) in [
        ("symlink", Z::Symlink("demo/x"), "a symlink"),
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
        let expected = format!("entry `{path}` is not a relative path inside the package");
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
            "more than one top-level directory (`demo` and `other`)",
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
            "`demo/module.xml` is missing or not a file",
        ),
        (
            "no-component",
            vec![Z::File("demo/module.xml", xml)],
            "component `demo/module.wasm` is missing",
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
            "duplicate entry names in the zip's central directory",
        ),
        (&encrypted, "entry `demo/module.xml` is encrypted"),
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
fn zip_bombs_are_refused_quickly_writing_next_to_nothing() {
    let scratch = scratch();
    let dir = scratch.path();
    let zeros = vec![0u8; 64 << 20];
    // Honest: the declared size passes the ratio, so the entry is refused unread.
    let honest = dir.join("honest.zip");
    write_package(&honest, true, &[("demo/zeros", &zeros)]);
    // Lying: the declared size is small; the content is 64 MiB all the same.
    let lying = dir.join("lying.zip");
    write_package(&lying, true, &[("demo/zeros", &zeros)]);
    edit_headers(&lying, |header, central| {
        let size = if central { 24 } else { 22 };
        header[size..size + 4].copy_from_slice(&1024u32.to_le_bytes());
    });
    // Many small entries, each within the grace allowance: the budget is cumulative.
    let half = &zeros[..512 << 10];
    let names: Vec<String> = (0..8).map(|i| format!("demo/{i}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), half)).collect();
    let many = dir.join("many.zip");
    write_package(&many, true, &files);
    for (package, expected, most) in [
        (&honest, "compression-ratio limit 200:1", 0),
        (&lying, "cannot unpack `demo/zeros`", 1024),
        (&many, "unpacks to more than 1048576 bytes", RATIO_GRACE),
    ] {
        let started = Instant::now();
        let (unpacked, staging) = unpack_fresh(package, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(message.contains(expected), "{package:?}: {message}");
        assert!(started.elapsed() < Duration::from_secs(5), "{package:?}");
        assert!(
            written(&staging) <= most,
            "{package:?}: {} bytes written",
            written(&staging)
        );
    }
}

#[test]
fn a_zip_entry_cannot_produce_more_than_the_remaining_budget() {
    // The zip crate stops an entry at its declared size; the budget does not rely on it.
    let mut budget = Budget::new(&Limits::default());
    budget.compressed.set(1000);
    assert!(budget.charge(RATIO_GRACE - 10).is_ok());
    let mut entry = Bounded {
        inner: io::repeat(0).take(1 << 30),
        budget: &mut budget,
    };
    let copied = io::copy(&mut entry, &mut io::sink());
    let refusal = copied.map_err(|e| classify(Path::new("p.zip"), "reading".into(), e).to_string());
    assert_eq!(
        refusal,
        Err(
            "package `p.zip`: unpacks to more than 1048576 bytes (size limit 268435456 \
             bytes, compression-ratio limit 200:1)"
                .into()
        )
    );
}

#[test]
fn overlapping_zip_entries_count_the_compressed_bytes_once() {
    let mut budget = Budget::new(&Limits::default());
    let length = 10_000;
    // 10 kB compressed allow 2 MB; the second entry claims the same 10 kB again.
    assert!(budget.admit(length, RATIO_GRACE, length).is_ok());
    assert!(budget.charge(RATIO_GRACE).is_ok());
    let second = budget.admit(length, 1_000_000, length);
    assert_eq!(
        second.map_err(|e| e.to_string()),
        Err(
            "unpacks to more than 2000000 bytes (size limit 268435456 bytes, \
             compression-ratio limit 200:1)"
                .into()
        )
    );
}

/// Writes a gzip tar as `git archive --format=tar.gz --prefix=demo/` does: a PAX global
/// header carrying `records` first, then the module's directory and files.
fn write_git_archive(path: &Path, records: &[u8]) {
    let Ok(file) = fs_err::File::create(path) else {
        panic!("create {path:?}")
    };
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    let mut global = tar::Header::new_ustar();
    global.set_entry_type(tar::EntryType::XGlobalHeader);
    global.set_size(records.len() as u64);
    global.set_mode(0o666);
    assert!(
        builder
            .append_data(&mut global, "pax_global_header", records)
            .is_ok()
    );
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o775);
    assert!(builder.append_data(&mut dir, "demo/", io::empty()).is_ok());
    for (name, data) in [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/module.wasm", b"\0asm"),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o664);
        assert!(builder.append_data(&mut header, name, data).is_ok());
    }
    let finished = builder.into_inner().and_then(GzEncoder::finish);
    assert!(finished.is_ok(), "{finished:?}");
}

/// One PAX record, `LEN key=value\n`, LEN counting the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while (len.to_string().len() + body.len()) != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

#[test]
fn a_git_archive_unpacks_its_pax_global_header_skipped() {
    let scratch = scratch();
    let attempt = |package: &Path, limits: &Limits| {
        let staging = tempfile::tempdir_in(scratch.path()).ok();
        let staging = staging.as_ref().map_or(scratch.path(), |s| s.path());
        unpack(package, staging, limits).map_err(|e| e.to_string())
    };
    let package = scratch.path().join("git.tgz");
    // What git writes: the commit's 40-hex id as the one record.
    let commit = pax_record("comment", &"0123456789abcdef".repeat(3)[..40]);
    assert!(commit.starts_with(b"52 comment="));
    write_git_archive(&package, &commit);
    // Header, records, directory, module.xml and component in 512-byte blocks: 2.5 KiB
    // and four entries, the header counting as one.
    let tight = Limits {
        max_entries: 4,
        max_total_size: 4096,
        ..Limits::default()
    };
    let (unpacked, staging) = unpack_fresh(&package, &tight);
    let Ok(unpacked) = unpacked else {
        panic!("{unpacked:?}")
    };
    assert_eq!(unpacked.manifest.rawname, "demo");
    let mut files: Vec<_> = fs_err::read_dir(&unpacked.dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    files.sort();
    assert_eq!(files, ["module.wasm", "module.xml"]);
    let left: Vec<_> = fs_err::read_dir(&staging)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["demo"], "the header is not unpacked as a file");
    let manifest = read_manifest(&package, &tight).map_err(|e| e.to_string());
    assert_eq!(manifest.map(|m| m.rawname), Ok("demo".to_owned()));

    // The header is an entry, and its bytes are unpacked bytes, for the limits.
    let fewer = Limits {
        max_entries: 3,
        ..tight
    };
    let refused = attempt(&package, &fewer).map(drop);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("more than 3 entries")),
        "{refused:?}"
    );
    let padded = scratch.path().join("padded.tgz");
    write_git_archive(&padded, &pax_record("comment", &"x".repeat(8192)));
    let refused = attempt(&padded, &tight).map(drop);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("unpacks to more than 4096 bytes")),
        "{refused:?}"
    );
}

#[test]
fn a_pax_global_header_that_would_rename_or_resize_entries_is_refused() {
    let scratch = scratch();
    for (key, value) in [
        ("path", "other/module.xml"),
        ("linkpath", "/etc/passwd"),
        ("size", "0"),
        ("GNU.sparse.size", "1"),
    ] {
        let package = scratch.path().join(format!("{key}.tgz"));
        write_git_archive(&package, &pax_record(key, value));
        let (refused, _) = unpack_fresh(&package, &Limits::default());
        assert_eq!(
            refused.err(),
            Some(format!(
                "package `{}`: PAX global header `pax_global_header` sets `{key}` for every \
                 entry; only a per-entry header may",
                package.display()
            ))
        );
    }
    let huge = scratch.path().join("huge.tgz");
    write_git_archive(&huge, &pax_record("comment", &"x".repeat(70_000)));
    let (refused, _) = unpack_fresh(&huge, &Limits::default());
    assert!(
        refused.as_ref().is_err_and(
            |e| e.contains("PAX global header `pax_global_header` is larger than 65536 bytes")
        ),
        "{refused:?}"
    );
    let garbled = scratch.path().join("garbled.tgz");
    write_git_archive(&garbled, b"not a record");
    let (refused, _) = unpack_fresh(&garbled, &Limits::default());
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("is malformed")),
        "{refused:?}"
    );
}

/// `len` pseudo-random bytes: content no compressor shrinks, like a real component's.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn what_a_package_may_unpack_to_is_bounded_by_its_length() {
    let limits = Limits::default();
    assert_eq!(
        limits.most_unpacked(0),
        RATIO_GRACE,
        "small packages get the grace"
    );
    assert_eq!(limits.most_unpacked(1000), RATIO_GRACE);
    assert_eq!(
        limits.most_unpacked(1 << 20),
        200 << 20,
        "the ratio, times the length"
    );
    assert_eq!(
        limits.most_unpacked(10 << 20),
        256 << 20,
        "never past the size limit"
    );
    assert_eq!(limits.most_unpacked(u64::MAX), 256 << 20);
}

#[test]
fn the_ratio_holds_over_every_stretch_so_early_honest_bytes_leave_no_credit() {
    // 750 KB compressed earned 150 MB of credit under a package-wide ratio alone.
    let mut budget = Budget::new(&Limits::default());
    budget.compressed.set(750_000);
    assert!(budget.charge(750_000).is_ok(), "incompressible: 1:1");
    budget.compressed.set(750_000 + 1_000);
    let zeros = (0..200).try_for_each(|_| budget.charge(64 << 10));
    assert!(zeros.is_err(), "a mebibyte of zeros from 1 kB is refused");
    assert!(
        budget.produced < 750_000 + 2 * RATIO_GRACE,
        "refused after {} bytes",
        budget.produced
    );
    // Honest content that compresses 10:1 goes on for as long as it lasts.
    let mut budget = Budget::new(&Limits::default());
    for _ in 0..1000 {
        budget.compressed.set(budget.compressed.get() + 6_554);
        assert!(budget.charge(64 << 10).is_ok(), "{}", budget.produced);
    }
}

#[test]
fn a_bomb_behind_a_real_component_is_refused_writing_next_to_nothing() {
    let scratch = scratch();
    let dir = scratch.path();
    let component = incompressible(750_000);
    let files: [(&str, &[u8]); 2] = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/c.wasm", &component),
    ];
    // An attacker's gzip: one compressed mebibyte of zeros, repeated.
    let entries: Vec<Entry<'_>> = files
        .iter()
        .map(|(name, data)| (*name, tar::EntryType::Regular, *data))
        .collect();
    let zeros_run = vec![0u8; 1 << 20];
    let bomb = |path: &Path, size: u64| {
        write_repeated_after(
            path,
            &entries,
            "demo/zeros",
            tar::EntryType::Regular,
            &zeros_run,
            size,
        );
    };
    // Declaring 2 GiB: more than the package could ever unpack to, refused unread.
    let declared = dir.join("declared.tgz");
    bomb(&declared, 2 << 30);
    // Declaring 100 MiB, within what 850 kB may unpack to: refused while streaming.
    let streamed = dir.join("streamed.tgz");
    bomb(&streamed, 100 << 20);
    // A zip: the component's compressed bytes earn the zeros entry no credit.
    let zip = dir.join("bomb.zip");
    let zeros = vec![0u8; 32 << 20];
    write_package(&zip, true, &[files[0], files[1], ("demo/zeros", &zeros)]);
    for package in [&declared, &streamed, &zip] {
        let started = Instant::now();
        let (unpacked, staging) = unpack_fresh(package, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(
            message.contains("compression-ratio limit 200:1"),
            "{package:?}: {message}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{package:?}");
        let most = component.len() as u64 + 2 * RATIO_GRACE;
        assert!(
            written(&staging) <= most,
            "{package:?}: {} bytes written",
            written(&staging)
        );
        let manifest = read_manifest(package, &Limits::default()).map_err(|e| e.to_string());
        assert!(
            manifest
                .as_ref()
                .err()
                .is_some_and(|m| m.contains("compression-ratio limit 200:1"))
                || package == &zip,
            "{package:?}: {manifest:?}"
        );
    }
}
