//! What the tests share: a module to pack, and writers of gzip tars and zips, the zip
//! writer's output edited where it will not write what a hostile zip holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::{Limits, Unpacked, unpack};

/// The module.xml of `demo`, whose component is the default `module.wasm`.
pub(super) const XML: &str =
    "<module><rawname>demo</rawname><name>Demo</name><version>1.0</version></module>";

/// A temporary directory, removed when dropped.
pub(super) fn scratch() -> tempfile::TempDir {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    dir
}

/// A scratch directory holding module.xml and a component to pack, and their paths.
pub(super) fn module_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = scratch();
    let xml = dir.path().join("module.xml");
    let wasm = dir.path().join("c.wasm");
    assert!(fs_err::write(&xml, XML).is_ok() && fs_err::write(&wasm, b"\0asm").is_ok());
    (dir, xml, wasm)
}

/// One entry of a test zip.
pub(super) enum Z<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str),
    /// A file entry whose unix file type is the given `S_IF*` value.
    Special(&'a str, u32),
}

/// Writes a zip of `entries`, every one asking for mode 0777.
pub(super) fn write_zip(path: &Path, entries: &[Z<'_>]) {
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
pub(super) fn write_tgz(path: &Path, files: &[(&str, &[u8])]) {
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
pub(super) fn write_package(path: &Path, zip: bool, files: &[(&str, &[u8])]) {
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
pub(super) fn edit_headers(path: &Path, edit: impl Fn(&mut [u8], bool)) {
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
pub(super) fn unpack_fresh(package: &Path, limits: &Limits) -> (Result<Unpacked, String>, PathBuf) {
    let staging = package.with_extension("staging");
    assert!(fs_err::create_dir(&staging).is_ok());
    let result = unpack(package, &staging, limits).map_err(|e| e.to_string());
    (result, staging)
}
