//! What the integration tests share: a module's files, writers of tar streams, gzip
//! members and zips, and a way to ask `unpack` and `read_manifest` about a package.

#![allow(dead_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use modhost_package::{Limits, read_manifest, unpack};

/// The module.xml of `demo`, whose component is the default `module.wasm`.
pub const XML: &str =
    "<module><rawname>demo</rawname><name>Demo</name><version>1.0</version></module>";

/// A minimal component's first bytes.
pub const WASM: &[u8] = b"\0asm\x0d\0\x01\0";

/// A temporary directory, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    dir
}

/// One tar entry: its name, its type and its content (or link target for links).
pub type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);

/// A tar stream of `entries`, ending with the two zero blocks `tar::Builder` writes.
pub fn tar_bytes(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        let appended = if matches!(kind, tar::EntryType::Link | tar::EntryType::Symlink) {
            header.set_size(0);
            let target = String::from_utf8_lossy(data).into_owned();
            builder.append_link(&mut header, name, target)
        } else {
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, *data)
        };
        assert!(appended.is_ok(), "{name}: {appended:?}");
    }
    let Ok(bytes) = builder.into_inner() else {
        panic!("tar")
    };
    bytes
}

/// The tar stream of the `demo` module, then `extra` entries.
pub fn demo_tar(extra: &[Entry<'_>]) -> Vec<u8> {
    let mut entries: Vec<Entry<'_>> = vec![
        ("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
        ("demo/module.wasm", tar::EntryType::Regular, WASM),
    ];
    entries.extend_from_slice(extra);
    tar_bytes(&entries)
}

/// `data` as one gzip member.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    assert!(encoder.write_all(data).is_ok());
    let Ok(bytes) = encoder.finish() else {
        panic!("gzip")
    };
    bytes
}

/// Writes `bytes` to `name` in `dir`, and returns its path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    assert!(fs_err::write(&path, bytes).is_ok());
    path
}

/// What `unpack` says about `package` (the rawname, or the error's text), in a fresh
/// staging directory.
pub fn unpacked(package: &Path) -> Result<String, String> {
    let parent = package.parent().unwrap_or(Path::new("."));
    let Ok(staging) = tempfile::tempdir_in(parent) else {
        panic!("staging in {parent:?}")
    };
    unpack(package, staging.path(), &Limits::default())
        .map(|u| u.manifest.rawname)
        .map_err(|e| e.to_string())
}

/// What `read_manifest` says about `package`.
pub fn manifest(package: &Path) -> Result<String, String> {
    read_manifest(package, &Limits::default())
        .map(|m| m.rawname)
        .map_err(|e| e.to_string())
}

/// Asserts `result` is a refusal holding every one of `parts`, on one line (a name's
/// other control characters are for the display to escape).
pub fn refused_with(result: &Result<String, String>, parts: &[&str]) {
    let Err(message) = result else {
        panic!("accepted, expected a refusal with {parts:?}")
    };
    for part in parts {
        assert!(message.contains(part), "`{part}` not in `{message}`");
    }
    assert!(
        !message.contains(['\n', '\r']),
        "a line break in `{message}`"
    );
}

/// A zip of `files`, deflated.
pub fn zip_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in files {
        let written = zip
            .start_file(*name, options)
            .and_then(|()| Ok(zip.write_all(data)?));
        assert!(written.is_ok(), "{written:?}");
    }
    let Ok(cursor) = zip.finish() else {
        panic!("zip")
    };
    cursor.into_inner()
}
