//! Gzip tars as `git archive` writes them: the PAX global header is skipped, counted, and
//! refused when it would change how other readers see the entries.

use std::io;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::fixtures::{XML, scratch, unpack_fresh};
use crate::{Limits, read_manifest, unpack};

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
