//! A zip's bytes, each belonging to an entry its central directory lists. Readers that
//! stream a zip from its start (`bsdtar`, `jar`, Python's streaming readers) take every
//! local header they meet as an entry; the zip crate, like `unzip`, reads only what the
//! central directory lists. Bytes between listed entries could hold an entry one sees
//! and the other not, so a package is refused unless the listed entries tile the file
//! from its first byte to the central directory.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use zip::ZipArchive;

use crate::error::{Error, classify, refused};
use crate::escape::shown;
use crate::format::{ZIP_END, zip_tail};

/// The signature that starts a local file header.
const LOCAL_HEADER: [u8; 4] = *b"PK\x03\x04";

/// The lengths a data descriptor may have: with or without its signature, with 32- or
/// 64-bit sizes.
const DESCRIPTOR_LENGTHS: [u64; 4] = [12, 16, 20, 24];

/// Where one listed entry lies: from its local header to the end of its data.
struct Span {
    start: u64,
    end: u64,
    /// Whether a data descriptor follows the data.
    descriptor: bool,
    /// The entry's name, shown.
    name: String,
}

/// Refuses `archive` (read again through `file`, a handle on the same file) unless its
/// listed entries, each a local header and its data (and its data descriptor), follow
/// one another from the file's first byte to its central directory.
pub(crate) fn check_layout<R: Read + Seek>(
    package: &Path,
    file: &mut std::fs::File,
    archive: &mut ZipArchive<R>,
) -> Result<(), Error> {
    let damaged = |name: &str| {
        refused(
            package,
            format!(
                "entry `{name}` has no local header where the zip's central directory says; \
                 the zip is damaged: zip the module again (`zip -r NAME.zip DIR`)"
            ),
        )
    };
    let mut spans = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| classify(package, "cannot read the archive".into(), e.into()))?;
        let name = shown(entry.name_raw());
        let start = entry.header_start();
        let mut header = [0u8; 30];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut header))
            .map_err(|_| damaged(&name))?;
        if header[..4] != LOCAL_HEADER {
            return Err(damaged(&name));
        }
        let field = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let end = start
            .checked_add(30 + field(26) + field(28))
            .and_then(|data| data.checked_add(entry.compressed_size()))
            .ok_or_else(|| damaged(&name))?;
        spans.push(Span {
            start,
            end,
            descriptor: entry.flags().is_using_data_descriptor(),
            name,
        });
    }
    spans.sort_by_key(|span| span.start);
    let (mut at, mut before) = (0, None::<&Span>);
    let central = archive.central_directory_start();
    let starts = spans
        .iter()
        .map(|s| (s.start, Some(s)))
        .chain([(central, None)]);
    for (start, span) in starts {
        let Some(gap) = start.checked_sub(at) else {
            let (first, second) = (
                before.map_or("", |b| b.name.as_str()),
                span.map_or("the central directory", |s| s.name.as_str()),
            );
            return Err(refused(
                package,
                format!(
                    "entries `{first}` and `{second}` overlap in the zip, as no zip tool \
                     writes them (a zip bomb is made so): zip the module again"
                ),
            ));
        };
        let descriptor = before.is_some_and(|b| b.descriptor) && DESCRIPTOR_LENGTHS.contains(&gap);
        if gap != 0 && !descriptor {
            return Err(refused(
                package,
                format!(
                    "bytes {at} to {start} of the zip belong to no entry its central directory \
                     lists; tools that read a zip from its start would take them for entries \
                     that others never see: zip the module again (`zip -r NAME.zip DIR`)"
                ),
            ));
        }
        if let Some(span) = span {
            at = span.end;
            before = Some(span);
        }
    }
    check_end(package, file, central)
}

/// Refuses a zip unless its central directory, which starts at `central`, runs to its
/// end record (a zip64's end record and locator between them), and that record closes
/// the file: a second zip appended, or anything after the end record, is read by `unzip`
/// and Python as the zip, by others not.
fn check_end(package: &Path, file: &mut std::fs::File, central: u64) -> Result<(), Error> {
    let appended = || {
        refused(
            package,
            "bytes follow the zip's end (another zip appended to it, or junk), and zip \
             tools differ on which part they read: zip the module again (`zip -r NAME.zip DIR`)"
                .into(),
        )
    };
    let io_err = |e| classify(package, "cannot read the archive".into(), e);
    let tail = zip_tail(file).map_err(io_err)?;
    let end = tail.closing.ok_or_else(appended)?;
    if tail.last != Some(end) {
        return Err(refused(
            package,
            "the zip's comment holds another end record, which `unzip` and Python read \
             instead of the real one, and so another package: zip the module again \
             (`zip -r NAME.zip DIR`)"
                .into(),
        ));
    }
    let record = read_at::<{ ZIP_END as usize }>(file, end).map_err(io_err)?;
    let u32_at = |bytes: &[u8], at: usize| {
        u64::from(u32::from_le_bytes([
            bytes[at],
            bytes[at + 1],
            bytes[at + 2],
            bytes[at + 3],
        ]))
    };
    let u64_at = |bytes: &[u8], at: usize| {
        let mut le = [0u8; 8];
        le.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(le)
    };
    // Where the central directory starts, how long it is and what must follow it: as the
    // end record says, and as a zip64 end record does when a locator points at one. The
    // bytes before the end record may spell a locator by chance (a name in the central
    // directory): either reading that fits is the zip's.
    let mut readings = vec![(u32_at(&record, 16), u32_at(&record, 12), end)];
    const LOCATOR: u64 = 20;
    if let Some(locator_at) = end.checked_sub(LOCATOR) {
        let locator = read_at::<{ LOCATOR as usize }>(file, locator_at).map_err(io_err)?;
        let zip64_at = u64_at(&locator, 8);
        if locator.starts_with(b"PK\x06\x07")
            && let Ok(zip64) = read_at::<56>(file, zip64_at)
        {
            let closes = zip64_at
                .checked_add(12)
                .and_then(|at| at.checked_add(u64_at(&zip64, 4)));
            if zip64.starts_with(b"PK\x06\x06") && closes == Some(locator_at) {
                readings.push((u64_at(&zip64, 48), u64_at(&zip64, 40), zip64_at));
            }
        }
    }
    let fits = |&(start, size, next): &(u64, u64, u64)| {
        start == central && start.checked_add(size) == Some(next)
    };
    match readings.iter().any(fits) {
        true => Ok(()),
        false => Err(appended()),
    }
}

/// The `N` bytes of `file` from `at`.
fn read_at<const N: usize>(file: &mut std::fs::File, at: u64) -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}
