//! Zips: the central directory is checked up front, each entry is admitted to the budget
//! by its declared sizes before it is read and bounded while it is, and its local header
//! must agree with the central directory.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use zip::CompressionMethod;
use zip::read::{ArchiveOffset, Config, ZipFileEntry};
use zip::result::ZipError;
use zip::{ZipArchive, ZipReadOptions};

use crate::budget::{Bounded, Budget, Limits};
use crate::error::{Error, classify, refused, too_many_entries};
use crate::escape::{shown, shown_str};
use crate::manifest::{Manifests, Place, manifest_place, read_xml};
use crate::staging::{Kind, Stage, entry_parts, name_refusal, relative_parts};
use crate::zip_layout::check_layout;

/// A zip's central directory, refused up front when it lists too many entries, the same
/// name twice (the zip crate keeps one entry of a name, so the other is never seen), or
/// leaves bytes between its entries (see [`check_layout`]).
fn zip_archive(
    package: &Path,
    file: std::fs::File,
    limits: &Limits,
) -> Result<ZipArchive<std::fs::File>, Error> {
    // The archive starts at the file's first byte: that is how its format was told.
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let mut again = file
        .try_clone()
        .map_err(|e| classify(package, "cannot read the archive".into(), e))?;
    let mut archive = ZipArchive::with_config(config, file).map_err(|error| match error {
        ZipError::Io(source) => classify(package, "cannot read the archive".into(), source),
        _ => refused(
            package,
            "the zip's central directory (its list of entries, at the end of the file) is \
             damaged, so the zip cannot be read; zip the module again (`zip -r NAME.zip DIR`)"
                .into(),
        ),
    })?;
    if archive.len() > limits.max_entries {
        return Err(too_many_entries(package, limits));
    }
    if archive.has_duplicate_names() {
        let named = repeated_name(&mut again, archive.central_directory_start(), limits)
            .map(|name| format!(": `{name}`"))
            .unwrap_or_default();
        return Err(refused(
            package,
            format!("duplicate entry names in the zip's central directory{named}"),
        ));
    }
    check_layout(package, &mut again, &mut archive)?;
    Ok(archive)
}

/// The first name the central directory at `central` lists twice, read from its records
/// (the zip crate keeps one entry of a name, so it cannot say which): at most as many
/// records as a package may have entries, and one more.
fn repeated_name(file: &mut std::fs::File, central: u64, limits: &Limits) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(central)).ok()?;
    let mut reader = std::io::BufReader::new(file);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..=limits.max_entries {
        let mut record = [0u8; 46];
        reader.read_exact(&mut record).ok()?;
        if record[..4] != *b"PK\x01\x02" {
            return None;
        }
        let length = |at: usize| usize::from(u16::from_le_bytes([record[at], record[at + 1]]));
        let mut name = vec![0u8; length(28)];
        reader.read_exact(&mut name).ok()?;
        let rest = (length(30) + length(32)) as i64;
        reader.seek_relative(rest).ok()?;
        if !seen.insert(name.clone()) {
            return Some(crate::escape::shown(&name));
        }
    }
    None
}

/// Opens entry `index`'s content, checking its local header against the central
/// directory so the two cannot tell different stories.
fn zip_content<'a>(
    archive: &'a mut ZipArchive<std::fs::File>,
    index: usize,
    package: &Path,
    context: &str,
) -> Result<zip::read::ZipFile<'a, std::fs::File>, Error> {
    archive
        .by_index_with_options(
            index,
            ZipReadOptions::new().enforce_header_consistency(true),
        )
        .map_err(zip_err(package, context))
}

/// A zip error as an [`Error::Io`] with `context`; a damaged archive is refused in words.
fn zip_err<'a>(package: &'a Path, context: &'a str) -> impl FnOnce(ZipError) -> Error + 'a {
    move |error| match error {
        ZipError::Io(source) => classify(package, context.into(), source),
        ZipError::InvalidArchive(why) if why.contains("inconsisten") => refused(
            package,
            format!(
                "{context}: the entry's local header does not match the zip's central \
                 directory, so zip tools would disagree about it; zip the module again"
            ),
        ),
        ZipError::InvalidArchive(_) => refused(
            package,
            format!("{context}: the zip is damaged; zip the module again (`zip -r NAME.zip DIR`)"),
        ),
        other => classify(package, context.into(), other.into()),
    }
}

/// Refuses an entry (`shown`) compressed with a method other than deflate or none, which
/// the zip reader does not decompress, naming the method.
fn check_method(package: &Path, shown: &str, method: CompressionMethod) -> Result<(), Error> {
    #[allow(deprecated)]
    let id = match method {
        CompressionMethod::Stored | CompressionMethod::Deflated => return Ok(()),
        CompressionMethod::Unsupported(id) => id,
        _ => 0xffff,
    };
    let name = match id {
        1 => "shrink",
        2..=5 => "reduce",
        6 => "implode",
        9 => "deflate64",
        12 => "bzip2",
        14 => "LZMA",
        93 => "zstd",
        95 => "xz",
        96 => "JPEG",
        97 => "WavPack",
        98 => "PPMd",
        99 => "AES encryption",
        _ => "an unknown method",
    };
    Err(refused(
        package,
        format!(
            "entry `{shown}` is compressed with {name} (zip method {id}), which modhost does not \
             read; zip the module again with deflate (`zip -Z deflate -r NAME.zip DIR`)"
        ),
    ))
}

/// What a zip entry is to the checks: its unix file type, when the archive gives one,
/// else whether its name ends with a slash.
fn zip_kind(entry: &ZipFileEntry<'_>) -> Kind {
    const TYPE: u32 = 0o170_000;
    const DIR: u32 = 0o040_000;
    const FILE: u32 = 0o100_000;
    match (
        entry.unix_mode().map_or(0, |mode| mode & TYPE),
        entry.is_dir(),
    ) {
        (0, true) | (DIR, _) => Kind::Dir,
        (0 | FILE, false) => Kind::File,
        (FILE, true) => Kind::Other("a regular file with a directory's name".into()),
        (kind, _) => Kind::Other(match kind {
            0o120_000 => "a symlink".into(),
            0o140_000 => "a socket".into(),
            0o060_000 => "a block device".into(),
            0o020_000 => "a character device".into(),
            0o010_000 => "a FIFO".into(),
            _ => format!("of unix file type {kind:o}"),
        }),
    }
}

/// The refusal of an encrypted entry: nothing could read it without its password.
fn encrypted(name: &str) -> String {
    format!("entry `{name}` is encrypted; zip the module again without a password")
}

/// Whether a zip entry is a symbolic link (its unix file type says so).
fn is_link(entry: &ZipFileEntry<'_>) -> bool {
    entry
        .unix_mode()
        .is_some_and(|mode| mode & 0o170_000 == 0o120_000)
}

/// A symlink's `kind` named with its target, as tar names it: a zip keeps the target as
/// the entry's content, of which at most the first KiB is read as text (never followed).
/// A target that cannot be read leaves the kind as it was: the entry is refused anyway.
fn named_link(
    kind: Kind,
    link: bool,
    archive: &mut ZipArchive<std::fs::File>,
    index: usize,
) -> Kind {
    const SHOWN: u64 = 1024;
    if !link {
        return kind;
    }
    let mut target = Vec::new();
    let read = archive
        .by_index(index)
        .ok()
        .and_then(|content| content.take(SHOWN).read_to_end(&mut target).ok());
    match read {
        Some(_) if !target.is_empty() => Kind::Other(format!("a symlink to `{}`", shown(&target))),
        _ => kind,
    }
}

/// A zip entry's path, when the zip crate's safe reading of its name (`enclosed_name`)
/// and ours agree: that refuses absolute paths, `..`, drive prefixes and backslashes
/// that one reading would take for separators and the other not.
fn zip_path(entry: &ZipFileEntry<'_>) -> Option<PathBuf> {
    let name = entry.name().ok()?;
    let ours: PathBuf = relative_parts(Path::new(name.as_ref()))?.iter().collect();
    (entry.enclosed_name()? == ours).then_some(ours)
}

/// Unpacks a zip's entries into `stage`.
pub(crate) fn unpack_zip(file: std::fs::File, stage: &mut Stage<'_>) -> Result<(), Error> {
    let package = stage.package;
    let length = file
        .metadata()
        .map_err(stage.io_err("cannot read the archive".into()))?
        .len();
    let mut archive = zip_archive(package, file, stage.limits)?;
    let mut budget = Budget::new(stage.limits);
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(zip_err(package, "cannot read the archive"))?;
        let name = shown(entry.name_raw());
        if entry.encrypted() {
            return Err(stage.refuse(encrypted(&name)));
        }
        let (size, compressed) = (entry.size(), entry.compressed_size());
        let path = zip_path(&entry);
        let method = entry.compression();
        let (raw, kind, link) = (entry.name_raw().to_vec(), zip_kind(&entry), is_link(&entry));
        let kind = named_link(kind, link, &mut archive, index);
        let admitted = stage.admit(&raw, path.as_deref(), kind, size)?;
        let Some(target) = admitted else { continue };
        check_method(package, &name, method)?;
        budget
            .admit(compressed, size, length)
            .map_err(|exceeded| stage.refuse(exceeded.explain(&format!("`{name}`"))))?;
        let context = format!("cannot unpack `{}`", target.shown);
        let content = zip_content(&mut archive, index, package, &context)?;
        stage.write(
            &target,
            Bounded {
                inner: content,
                budget: &mut budget,
            },
        )?;
    }
    Ok(())
}

/// The module.xml files of a zip, as [`Manifests`] tells them: the central directory
/// tells where they are without reading any content.
pub(crate) fn zip_manifest(
    package: &Path,
    file: std::fs::File,
    limits: &Limits,
) -> Result<Manifests, Error> {
    let mut archive = zip_archive(package, file, limits)?;
    let (mut root, mut top, mut read) = (None, None, Manifests::new(package, limits)?);
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(zip_err(package, "cannot read the archive"))?;
        if let Some(refusal) = name_refusal(entry.name_raw()) {
            return Err(refused(package, refusal));
        }
        let parts = entry_parts(entry.name_raw(), zip_path(&entry).as_deref())
            .map_err(|why| refused(package, why))?;
        let (raw, size, link) = (entry.name_raw().to_vec(), entry.size(), is_link(&entry));
        let kind = named_link(zip_kind(&entry), link, &mut archive, index);
        if !read.admit(package, &raw, &parts, (&kind, size))? {
            continue;
        }
        match manifest_place(&parts) {
            Some(Place::Root) => root = root.or(Some((index, parts))),
            Some(Place::Top) => {
                read.tops.insert(parts[0].clone());
                top = top.or(Some((index, parts)));
            }
            None => {}
        }
    }
    let Some((index, parts)) = root.or(top) else {
        return Ok(read);
    };
    let entry = archive
        .by_index_data(index)
        .map_err(zip_err(package, "cannot read the archive"))?;
    // The name as unpacking reads it (`./core/module.xml` is `core/module.xml`), as the
    // tar side names it: the caller takes the module's directory from it.
    let shown = shown_str(&parts.join("/"));
    if entry.encrypted() {
        return Err(refused(package, encrypted(&shown)));
    }
    check_method(package, &shown, entry.compression())?;
    let size = entry.size();
    let content = zip_content(&mut archive, index, package, "cannot read the archive")?;
    read.found = Some((shown.clone(), read_xml(package, &shown, size, content)?));
    Ok(read)
}
