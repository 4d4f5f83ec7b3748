//! Gzip tars: every byte of the decompressed stream goes through the budget, and a PAX
//! global header (`git archive` writes one) is read as metadata, never unpacked.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::bufread::GzDecoder;

use crate::budget::{Bounded, Budget, Limits};
use crate::error::{Error, classify, refused, too_many_entries};
use crate::manifest::{Place, manifest_place, read_xml};
use crate::staging::{Kind, Stage, relative_parts};

/// Counts the compressed bytes the decoder has consumed: exactly those it inflated, not
/// those read ahead into the buffer, so a stretch's compressed bytes are its own.
struct Counting {
    inner: io::BufReader<fs_err::File>,
    consumed: Rc<Cell<u64>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

impl io::BufRead for Counting {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.consumed.set(self.consumed.get() + amount as u64);
        self.inner.consume(amount);
    }
}

/// A gzip tar's entries, its decompressed stream bounded by `limits`.
fn gzip_tar(
    file: fs_err::File,
    limits: &Limits,
) -> tar::Archive<Bounded<GzDecoder<Counting>, Budget>> {
    let budget = Budget::new(limits);
    let decoder = GzDecoder::new(Counting {
        inner: io::BufReader::with_capacity(32 * 1024, file),
        consumed: Rc::clone(&budget.compressed),
    });
    tar::Archive::new(Bounded {
        inner: decoder,
        budget,
    })
}

/// What a tar entry type is to the checks.
fn tar_kind(kind: tar::EntryType) -> Kind {
    if kind.is_dir() {
        Kind::Dir
    } else if kind.is_file() {
        Kind::File
    } else {
        Kind::Other(format!("a {kind:?}"))
    }
}

/// Unpacks a gzip tar's entries into `stage`.
pub(crate) fn unpack_tar(file: fs_err::File, stage: &mut Stage<'_>) -> Result<(), Error> {
    let mut archive = gzip_tar(file, stage.limits);
    let entries = archive
        .entries()
        .map_err(stage.io_err("cannot read the archive".into()))?;
    for entry in entries {
        let mut entry = entry.map_err(stage.io_err("cannot read the archive".into()))?;
        if entry.header().entry_type().is_pax_global_extensions() {
            stage.count()?;
            let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            check_pax_global(stage.package, &shown, &mut entry)?;
            continue;
        }
        let path = entry
            .path()
            .map_err(stage.io_err("cannot read an entry path".into()))?
            .into_owned();
        let raw = entry.path_bytes().into_owned();
        let kind = tar_kind(entry.header().entry_type());
        if let Some(target) = stage.admit(&raw, Some(&path), kind, entry.size())? {
            stage.write(&target, &mut entry)?;
        }
    }
    Ok(())
}

/// The largest PAX global header accepted: `git archive` writes one of about 50 bytes
/// (the commit id as a `comment`).
const MAX_PAX_GLOBAL: u64 = 64 * 1024;

/// PAX records that, in a global header, would change which entries other readers see:
/// GNU tar applies them to every entry that follows, the tar crate ignores them. A package
/// must not tell two stories, so a global header setting one is refused.
const PAX_GLOBAL_REFUSED: [&str; 3] = ["path", "linkpath", "size"];

/// Checks a PAX global header (`git archive` starts with one, `pax_global_header`):
/// metadata, not a file, so it is skipped unless it could change how others read the
/// archive. Its bytes are read through the budget like every other byte.
fn check_pax_global(package: &Path, shown: &str, entry: &mut impl Read) -> Result<(), Error> {
    let mut records = Vec::new();
    Read::by_ref(entry)
        .take(MAX_PAX_GLOBAL + 1)
        .read_to_end(&mut records)
        .map_err(|e| classify(package, "cannot read the archive".into(), e))?;
    if records.len() as u64 > MAX_PAX_GLOBAL {
        return Err(refused(
            package,
            format!("PAX global header `{shown}` is larger than {MAX_PAX_GLOBAL} bytes"),
        ));
    }
    for record in tar::PaxExtensions::new(&records) {
        let record = record
            .map_err(|_| refused(package, format!("PAX global header `{shown}` is malformed")))?;
        let key = String::from_utf8_lossy(record.key_bytes());
        if PAX_GLOBAL_REFUSED.contains(&key.as_ref()) || key.starts_with("GNU.sparse.") {
            return Err(refused(
                package,
                format!(
                    "PAX global header `{shown}` sets `{key}` for every entry; only a per-entry header may"
                ),
            ));
        }
    }
    Ok(())
}

/// The module.xml [`read_manifest`](crate::read_manifest) takes from a gzip tar, and its
/// name. A `<top>/module.xml` is kept while the rest is read, in case one at the root
/// follows.
pub(crate) fn tar_manifest(
    package: &Path,
    file: fs_err::File,
    limits: &Limits,
) -> Result<Option<(String, Vec<u8>)>, Error> {
    let io_err = |source| classify(package, "cannot read the archive".into(), source);
    let mut archive = gzip_tar(file, limits);
    let mut found = None;
    for (count, entry) in archive.entries().map_err(io_err)?.enumerate() {
        let mut entry = entry.map_err(io_err)?;
        if count >= limits.max_entries {
            return Err(too_many_entries(package, limits));
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(io_err)?.into_owned();
        let parts = relative_parts(&path).unwrap_or_default();
        let place = manifest_place(&parts);
        if place == Some(Place::Root) || (place.is_some() && found.is_none()) {
            let shown = parts.join("/");
            let source = read_xml(package, &shown, entry.size(), &mut entry)?;
            if place == Some(Place::Root) {
                return Ok(Some((shown, source)));
            }
            found = Some((shown, source));
        }
    }
    Ok(found)
}
