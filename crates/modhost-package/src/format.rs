//! A package's archive format, told by its first bytes, never by its name.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, refused};
use crate::sniff::{BLOCK, is_tar_header, magic};

/// A package's archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A gzip-compressed tar.
    GzipTar,
    /// A zip archive.
    Zip,
}

impl Format {
    /// The file extension packages of this format carry, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::GzipTar => "tgz",
            Format::Zip => "zip",
        }
    }

    /// The name a package of `rawname` at `version` in this format goes by:
    /// `RAWNAME-VERSION.EXT`, as package directories, downloads and repositories keep it.
    pub fn file_name(self, rawname: &str, version: &impl std::fmt::Display) -> String {
        format!("{rawname}-{version}.{}", self.extension())
    }

    /// Every format, in the order their extensions are listed.
    pub const ALL: [Format; 2] = [Format::GzipTar, Format::Zip];
}

/// Archives named as no package is, which a package directory may hold all the same (a
/// module released as `.tar.xz`): see [`other_archives`].
const OTHER_ARCHIVES: [&[u8]; 9] = [
    b".tar",
    b".tar.bz2",
    b".tbz2",
    b".tar.xz",
    b".txz",
    b".tar.zst",
    b".7z",
    b".rar",
    b".tbz",
];

/// The package files in `dir`, by name: every `*.tgz`, `*.tar.gz` (what `gzip NAME.tar`
/// and release pages make) and `*.zip`, in any case (any of them may hold either format, which
/// [`format`] tells by the content). Sorted, so that what a directory is found to hold
/// never depends on the file system's order.
pub fn package_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    files_named(dir, |name| {
        Format::ALL
            .iter()
            .any(|f| name.ends_with(format!(".{}", f.extension()).as_bytes()))
            || name.ends_with(b".tar.gz")
    })
}

/// The other archives in `dir` (`*.tar`, `*.tar.xz`, `*.7z`, …), which no package is named
/// as: a reader of a package directory names each with [`format`]'s words (what it is, how
/// to repack it) rather than passing over it. Sorted.
pub fn other_archives(dir: &Path) -> io::Result<Vec<PathBuf>> {
    files_named(dir, |name| {
        OTHER_ARCHIVES.iter().any(|other| name.ends_with(other))
    })
}

/// `name` without the ending a package or another archive is named with (`core-1.0.tgz` →
/// `core-1.0`, in any case); `None` when it has none.
pub fn archive_stem(name: &str) -> Option<&str> {
    let lower = name.to_ascii_lowercase();
    Format::ALL
        .iter()
        .map(|f| format!(".{}", f.extension()).into_bytes())
        .chain(std::iter::once(b".tar.gz".to_vec()))
        .chain(OTHER_ARCHIVES.iter().map(|other| other.to_vec()))
        .filter(|ending| lower.as_bytes().ends_with(ending))
        .map(|ending| &name[..name.len() - ending.len()])
        // The longest ending that matches, should two.
        .min_by_key(|stem| stem.len())
}

/// The module directories `dir` may hold: its subdirectories holding a module.xml, and
/// `dir` itself when it holds one (an author's module being written); sorted. A
/// module.xml that is a link, a directory or a FIFO counts, for reading it to refuse it
/// by name rather than pass over the directory in silence.
pub fn module_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = vec![dir.to_owned()];
    for entry in fs_err::read_dir(dir)? {
        dirs.push(entry?.path());
    }
    dirs.retain(|path| path.is_dir() && std::fs::symlink_metadata(path.join("module.xml")).is_ok());
    dirs.sort();
    Ok(dirs)
}

/// The files in `dir` whose names, in lower case (a package copied from Windows may be
/// `CORE.ZIP`), `named` takes; sorted.
fn files_named(dir: &Path, named: impl Fn(&[u8]) -> bool) -> io::Result<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    let mut paths = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        let lower = path
            .file_name()
            .map(|n| n.as_bytes().to_ascii_lowercase())
            .unwrap_or_default();
        if named(&lower) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// What a file of `kind` is, in words, when it is not a regular file: a directory, a
/// FIFO, a socket or a device, none of which is opened as a package or a module.xml.
pub fn other_than_a_file(kind: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("a device")
    }
}

/// The archive format of `package`, told by its first bytes; refused when it is neither.
pub fn format(package: &Path) -> Result<Format, Error> {
    open(package).map(|(_, format)| format)
}

/// Opens `package` and tells its format by its first bytes.
pub(crate) fn open(package: &Path) -> Result<(std::fs::File, Format), Error> {
    let io_err = |source| Error::Io {
        package: package.to_owned(),
        context: "cannot open".into(),
        source,
    };
    // Never opened unless a regular file: opening a FIFO waits for a writer, for ever.
    let kind = fs_err::metadata(package).map_err(io_err)?.file_type();
    if let Some(what) = other_than_a_file(kind) {
        return Err(refused(
            package,
            format!("it is {what}, not a package file"),
        ));
    }
    // Read as the system's own file: an error reading it keeps its system error, which
    // tells a failing disk from a damaged archive (see `classify`).
    let mut file = fs_err::File::open(package).map_err(io_err)?.into_file();
    let mut head = Vec::with_capacity(BLOCK);
    Read::by_ref(&mut file)
        .take(BLOCK as u64)
        .read_to_end(&mut head)
        .and_then(|_| file.rewind())
        .map_err(io_err)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // A gzip member may carry any bytes in its header's extra field, a whole zip
        // included: zip tools would read that zip, and another module, from the file. A
        // record on disk 0 of 0, or with a central directory before it, is 64 bits no
        // compressed stream spells by chance.
        let tail = zip_tail(&mut file).map_err(io_err)?;
        if tail.closing.is_some() || tail.last_readable {
            return Err(refused(
                package,
                format!(
                    "it is a gzip tar and a zip at once (a zip's end record is in its last \
                     64 KiB), which zip tools and tar tools read as different packages; {REPACK}"
                ),
            ));
        }
        return Ok((file, Format::GzipTar));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok((file, Format::Zip));
    }
    let what = what_else(&mut file, &head).map_err(io_err)?;
    Err(refused(package, what))
}

/// How to repack a module as a package.
const REPACK: &str =
    "repack the module as a .tgz (`tar -czf NAME.tgz DIR`) or a .zip (`zip -r NAME.zip DIR`)";

/// What a file that is neither a gzip tar nor a zip is, when its bytes tell, and what to
/// do about it, as a sentence about it (`it is …`).
fn what_else(file: &mut std::fs::File, head: &[u8]) -> io::Result<String> {
    if head.starts_with(b"PK\x05\x06") {
        return Ok(format!(
            "it is an empty zip archive: it holds no files; {REPACK}"
        ));
    }
    if let Some(what) = magic(head) {
        return Ok(format!("it is {what}, not a gzip tar or a zip; {REPACK}"));
    }
    if is_tar_header(head) {
        return Ok(format!(
            "it is an uncompressed tar archive; compress it with gzip (`gzip -k NAME.tar` \
             and install NAME.tar.gz) or {REPACK}"
        ));
    }
    if has_zip_end(file)? {
        return Ok(format!(
            "it is a self-extracting zip (a program with a zip archive after it), and a package \
             must be the zip alone; {REPACK}"
        ));
    }
    // A module's own files, given where its package or directory belongs.
    if head.starts_with(b"\0asm") {
        return Ok(
            "it is a WebAssembly file, not a package: give the module's directory \
                   (its module.xml beside the component), or pack it (`modhost pack DIR`)"
                .into(),
        );
    }
    let text = head
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(head)
        .trim_ascii_start();
    if text.starts_with(b"<?xml") || text.starts_with(b"<module") {
        return Ok(
            "it is XML (a module.xml?), not a package: give the module's directory, \
                   which holds the module.xml and its component"
                .into(),
        );
    }
    // What a download that failed leaves: nothing, or the server's error page.
    if head.is_empty() {
        return Ok("it is empty (a download or a copy that failed?)".into());
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return Ok(
            "it is an HTML page, not a package (a web server's error or login page saved \
             in its place?)"
                .into(),
        );
    }
    Ok("it is neither a gzip tar nor a zip archive".into())
}

/// Whether the file ends with a zip's end-of-central-directory record, with bytes before
/// the zip: how a self-extracting zip looks.
fn has_zip_end(file: &mut std::fs::File) -> io::Result<bool> {
    zip_tail(file).map(|tail| tail.closing.is_some())
}

/// The length of a zip's end-of-central-directory record without its comment.
pub(crate) const ZIP_END: u64 = 22;

/// The zip end-of-central-directory records in a file's last 64 KiB and 22 bytes, where
/// zip readers look for one (its comment may be up to 64 KiB).
#[derive(Debug, Default)]
pub(crate) struct ZipTail {
    /// Where the record whose comment runs exactly to the file's last byte starts, or to
    /// zero bytes that pad the file to the end (`bsdtar --format zip` writing to a pipe
    /// pads to its 10 KiB block): the one a careful reader takes.
    pub(crate) closing: Option<u64>,
    /// Where the last whole record starts, whatever its comment's length says: the one
    /// Python's `zipfile` takes (`unzip` too, the comment cut short). A crafted file puts
    /// one in another record's comment, or in a gzip header, for those to read another
    /// package than the careful reader does.
    pub(crate) last: Option<u64>,
    /// Whether that last record is one a zip reader would take: it says it is on disk 0
    /// of 0, as every real one does, or a central directory lies right before it.
    pub(crate) last_readable: bool,
}

/// The zip end records at the end of `file` (see [`ZipTail`]).
pub(crate) fn zip_tail(file: &mut std::fs::File) -> io::Result<ZipTail> {
    const TAIL: u64 = ZIP_END + 65_535;
    let length = file.metadata()?.len();
    if length < ZIP_END {
        return Ok(ZipTail::default());
    }
    let from = length.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    Read::by_ref(file).take(TAIL).read_to_end(&mut tail)?;
    // A file cut short since its length was read has no whole record to look at.
    if tail.len() < ZIP_END as usize {
        file.rewind()?;
        return Ok(ZipTail::default());
    }
    let last = tail.len() - ZIP_END as usize;
    let records: Vec<usize> = (0..=last)
        .filter(|&at| tail[at..].starts_with(b"PK\x05\x06"))
        .collect();
    // The bytes after the record and its comment, when it has them all.
    let after = |at: usize| {
        let comment = usize::from(u16::from_le_bytes([tail[at + 20], tail[at + 21]]));
        tail.get(at + ZIP_END as usize + comment..)
    };
    // A record whose comment runs to the end comes first: zeros padding a file are taken
    // only where none does, so that one hidden in another's comment is never the one.
    let closing = records
        .iter()
        .rev()
        .copied()
        .find(|&at| after(at).is_some_and(<[u8]>::is_empty))
        .or_else(|| {
            records
                .iter()
                .rev()
                .copied()
                .find(|&at| after(at).is_some_and(|padding| padding.iter().all(|&b| b == 0)))
        });
    let last_record = records.last().copied();
    // A reader finds the central directory right before the record, as long as the
    // record says it is: a real one is there whatever the disk fields claim.
    let mut readable = false;
    if let Some(at) = last_record {
        let size = u64::from(u32::from_le_bytes([
            tail[at + 12],
            tail[at + 13],
            tail[at + 14],
            tail[at + 15],
        ]));
        if let Some(directory) = (from + at as u64).checked_sub(size) {
            let mut signature = [0u8; 4];
            file.seek(SeekFrom::Start(directory))?;
            readable = file.read_exact(&mut signature).is_ok() && signature == *b"PK\x01\x02";
        }
    }
    file.rewind()?;
    Ok(ZipTail {
        closing: closing.map(|at| from + at as u64),
        last: last_record.map(|at| from + at as u64),
        last_readable: last_record.is_some_and(|at| readable || tail[at + 4..at + 8] == [0; 4]),
    })
}
