//! Packages an attacker would write: raw tar headers the tar crate's safe setters refuse,
//! zips of the same entries, and compression bombs.

use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// One archive entry: its raw name, its type and its content.
pub type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);

/// A regular file.
pub const FILE: tar::EntryType = tar::EntryType::Regular;

pub use tar::EntryType;

/// Writes a gzip tar whose header names are set byte for byte (GNU long names for names
/// over 100 bytes), with every mode bit set, links pointing at `/etc/passwd`.
pub fn write_package(path: &Path, entries: &[Entry<'_>]) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        if name.len() < 100 {
            if let Some(gnu) = header.as_gnu_mut() {
                gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            }
        } else {
            let mut long = tar::Header::new_gnu();
            long.set_entry_type(tar::EntryType::GNULongName);
            long.set_size(name.len() as u64 + 1);
            long.set_cksum();
            let mut bytes = name.as_bytes().to_vec();
            bytes.push(0);
            assert!(builder.append(&long, bytes.as_slice()).is_ok());
        }
        header.set_entry_type(*kind);
        header.set_mode(0o7777);
        header.set_size(data.len() as u64);
        if kind.is_symlink() || kind.is_hard_link() {
            assert!(header.set_link_name("/etc/passwd").is_ok());
        }
        header.set_cksum();
        assert!(builder.append(&header, *data).is_ok());
    }
    assert!(
        builder
            .into_inner()
            .ok()
            .and_then(|gz| gz.finish().ok())
            .is_some()
    );
}

/// Writes a zip of the same entries as [`write_package`] would: names as given, every
/// mode bit asked for, symlinks to `/etc/passwd`, devices and FIFOs by their unix file
/// type. Zip has no hard links, nor GNU or PAX headers.
pub fn write_zip(path: &Path, entries: &[Entry<'_>]) {
    use std::io::Write;
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o777);
    for (name, kind, data) in entries {
        let special = |file_type: u32| options.external_attributes((file_type | 0o777) << 16);
        let written = match kind {
            tar::EntryType::Regular => zip
                .start_file(*name, options)
                .and_then(|()| Ok(zip.write_all(data)?)),
            tar::EntryType::Directory => zip.add_directory(*name, options),
            tar::EntryType::Symlink => zip.add_symlink(*name, "/etc/passwd", options),
            tar::EntryType::Char => zip.start_file(*name, special(0o020_000)),
            tar::EntryType::Block => zip.start_file(*name, special(0o060_000)),
            tar::EntryType::Fifo => zip.start_file(*name, special(0o010_000)),
            other => panic!("a zip cannot hold a {other:?}"),
        };
        assert!(written.is_ok(), "{name}: {written:?}");
    }
    assert!(zip.finish().is_ok());
}

/// Raw-deflates `input`, ending with a full flush so the output is self-contained.
fn deflate_flushed(compress: &mut flate2::Compress, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 100 + 1024);
    let mut consumed = 0;
    loop {
        out.reserve(64 * 1024);
        let before = compress.total_in();
        let status =
            compress.compress_vec(&input[consumed..], &mut out, flate2::FlushCompress::Full);
        assert!(status.is_ok(), "{status:?}");
        consumed += usize::try_from(compress.total_in() - before).unwrap_or(0);
        if consumed == input.len() && out.capacity() > out.len() {
            return out;
        }
    }
}

/// A package `RAWNAME/zeros` holding `gib` GiB of zeros. A full-flushed deflate block
/// does not refer to earlier data, so one compressed 16 MiB run repeats to any length:
/// the bomb is written in milliseconds, as an attacker would.
pub fn write_bomb(path: &Path, rawname: &str, gib: u64) {
    write_repeated(
        path,
        &format!("{rawname}/zeros"),
        FILE,
        &vec![0u8; 16 << 20],
        gib << 30,
    );
}

/// A package of one entry `name` (set byte for byte) of type `kind` that declares `size`
/// bytes of content, `run` repeated: as in [`write_bomb`], `run` is compressed once and
/// the compressed block repeated. `size` must be a multiple of `run`'s length. Nothing
/// follows the entry: a reader that honours its limits never gets there.
pub fn write_repeated(path: &Path, name: &str, kind: tar::EntryType, run: &[u8], size: u64) {
    write_repeated_after(path, &[], name, kind, run, size);
}

/// [`write_repeated`], the entry following `before` (regular files and directories,
/// written plainly): a bomb behind a real module.xml and component.
pub fn write_repeated_after(
    path: &Path,
    before: &[Entry<'_>],
    name: &str,
    kind: tar::EntryType,
    run: &[u8],
    size: u64,
) {
    let mut builder = tar::Builder::new(Vec::new());
    for (entry, entry_kind, data) in before {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*entry_kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        assert!(builder.append_data(&mut header, entry, *data).is_ok());
    }
    let mut stream = builder.get_ref().clone();
    let mut header = tar::Header::new_gnu();
    if let Some(gnu) = header.as_gnu_mut() {
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    stream.extend_from_slice(header.as_bytes());
    let mut compress = flate2::Compress::new(Compression::fast(), false);
    let head = deflate_flushed(&mut compress, &stream);
    let block = deflate_flushed(&mut compress, run);
    let mut bytes = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    bytes.extend(head);
    for _ in 0..size / run.len() as u64 {
        bytes.extend_from_slice(&block);
    }
    assert!(std::fs::write(path, bytes).is_ok());
}

/// `len` bytes of zeros with a pseudo-random byte every `every` bytes: content that
/// compresses well, but not like a bomb (about 70:1 for `every` = 256).
pub fn noise(len: usize, every: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|i| {
            if i % every != 0 {
                return 0;
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
