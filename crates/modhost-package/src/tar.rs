//! Gzip tars, read as GNU tar reads them: every gzip member, every byte of the
//! decompressed stream through the budget, a PAX global header (`git archive` writes one)
//! read as metadata and never unpacked, and nothing but zero padding after the tar's end.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use crate::budget::{Bounded, Budget, Exceeded, Limits};
use crate::error::{Error, classify, classify_at, refused, too_many_entries};
use crate::escape::{shown, shown_str};
use crate::fault::{Fault, find};
use crate::gzip::{Counting, Members};
use crate::headers::{check_entry_headers, check_pax_global};
use crate::manifest::{Manifests, Place, manifest_place, read_xml};
use crate::sniff::TarStart;
use crate::staging::{Kind, Stage, entry_parts, name_refusal};

/// A gzip tar's decompressed stream, bounded by the budget.
type Stream = Bounded<TarStart<Members>, Budget>;

/// A gzip tar's entries, its decompressed stream bounded by `limits`, and what tells a
/// read error of the tar crate's that came from the stream's end: a truncated archive.
fn gzip_tar(file: std::fs::File, limits: &Limits) -> (tar::Archive<Stream>, Truncation) {
    let budget = Budget::new(limits);
    let members = Members::new(Counting {
        inner: io::BufReader::with_capacity(32 * 1024, file),
        consumed: Rc::clone(&budget.compressed),
    });
    let ended = Rc::new(Cell::new(false));
    let archive = tar::Archive::new(Bounded {
        inner: TarStart::new(members, Rc::clone(&ended)),
        budget,
    });
    (archive, Truncation(ended))
}

/// Whether a gzip tar's decompressed stream has ended.
struct Truncation(Rc<Cell<bool>>);

impl Truncation {
    /// `error`, as the tar crate raised it reading entries: the archive cut short when the
    /// (whole) stream had ended under it, which the tar crate words as a read that came up
    /// short ("failed to read entire block").
    fn explain(&self, error: io::Error) -> io::Error {
        if self.0.get() && find::<Fault>(&error).is_none() && find::<Exceeded>(&error).is_none() {
            Fault::TarTruncated.into_io()
        } else {
            error
        }
    }
}

/// What a tar entry is to the checks, its type in words when it is refused.
fn tar_kind<R: Read>(entry: &tar::Entry<'_, R>) -> Kind {
    use tar::EntryType as T;
    let kind = entry.header().entry_type();
    // Old tars (V7, `pax -x tar`) had no directory type: a file whose name ends in `/`
    // is one, as GNU tar and Python's tarfile read it.
    if kind.is_dir() || (kind.is_file() && entry.path_bytes().ends_with(b"/")) {
        return Kind::Dir;
    }
    if kind.is_file() {
        return Kind::File;
    }
    let target = || {
        entry
            .link_name_bytes()
            .map(|name| shown(&name))
            .unwrap_or_default()
    };
    Kind::Other(match kind {
        T::Link => format!(
            "a hard link to `{}` (repack with `tar --hard-dereference`)",
            target()
        ),
        T::Symlink => format!("a symlink to `{}`", target()),
        T::Char => "a character device".into(),
        T::Block => "a block device".into(),
        T::Fifo => "a FIFO".into(),
        T::Continuous => "a contiguous file".into(),
        T::GNUSparse => format!("a sparse file ({})", crate::headers::NOT_SPARSE),
        other => format!(
            "of a tar type modhost does not know (`{}`)",
            shown(&[other.as_byte()])
        ),
    })
}

/// What the budget ran out on while the archive was read on from `last`, the entry read
/// before: its content (skipped) or the header of the entry after it.
fn after(last: &Option<String>) -> String {
    match last {
        Some(last) => format!("`{last}` or the entry after it"),
        None => "the archive's first entry".into(),
    }
}

/// Unpacks a gzip tar's entries into `stage`, then checks that the gzip stream holds
/// nothing after the tar's end but zero padding and that it ends intact.
pub(crate) fn unpack_tar(file: std::fs::File, stage: &mut Stage<'_>) -> Result<(), Error> {
    let (mut archive, truncation) = gzip_tar(file, stage.limits);
    let mut last: Option<String> = None;
    let entries = archive
        .entries()
        .map_err(stage.io_err("cannot read the archive".into()))?;
    let mut broken = None;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                broken = Some(truncation.explain(error));
                break;
            }
        };
        let raw = entry.path_bytes().into_owned();
        let shown = shown(&raw);
        if entry.header().entry_type().is_pax_global_extensions() {
            stage.count()?;
            check_pax_global(stage.package, &shown, &mut entry)?;
            last = Some(shown);
            continue;
        }
        check_entry_headers(stage.package, &shown, &mut entry)?;
        let path = entry
            .path()
            .map_err(stage.io_err(format!("cannot read the path of `{shown}`")))?
            .into_owned();
        let kind = tar_kind(&entry);
        if let Some(target) = stage.admit(&raw, Some(&path), kind, entry.size())? {
            stage.write(&target, &mut entry)?;
        }
        last = Some(shown);
    }
    if let Some(error) = broken {
        let error = damaged_stream_first(error, archive.into_inner());
        let context = "cannot read the archive".into();
        return Err(classify_at(stage.package, context, &after(&last), error));
    }
    drain_after(stage.package, archive.into_inner(), last)
}

/// The tar reader's `error`, unless the gzip stream under it is damaged: what a damaged
/// member inflates to reads as a broken tar header (`numeric field was not a number`)
/// before the member's checksum is reached, so the stream is read on, within the budget,
/// and a fault of its own is the one said.
fn damaged_stream_first(error: io::Error, mut rest: Stream) -> io::Error {
    if find::<Fault>(&error).is_some() || find::<Exceeded>(&error).is_some() {
        return error;
    }
    match io::copy(&mut rest, &mut io::sink()) {
        Err(fault) if find::<Fault>(&fault).is_some() => fault,
        _ => error,
    }
}

/// [`drain`]s `rest`, what follows the tar's end, its fault placed after `last`, the
/// entry read last.
fn drain_after(package: &Path, rest: Stream, last: Option<String>) -> Result<(), Error> {
    let what = format!(
        "the end of the archive (after `{}`)",
        last.unwrap_or_default()
    );
    drain(rest).map_err(|e| classify_at(package, "cannot read the archive".into(), &what, e))
}

/// The size of a tar record: GNU tar pads its output with zeros to a whole number of
/// them (20 blocks).
const RECORD: u64 = 10 * 1024;

/// Reads what follows the tar's end to the end of the gzip stream, so that every
/// member's checksum and length are checked and nothing hides there: only zero padding
/// may follow. The first [`RECORD`] bytes of it (the rest of the end blocks and the
/// record's padding, which nothing unpacks to) are free; every byte past them counts
/// against the budget.
fn drain(mut rest: Stream) -> io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    let mut free = Read::by_ref(&mut rest.inner).take(RECORD);
    loop {
        let n = free.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(Fault::AfterTar.into_io());
        }
    }
    loop {
        let n = rest.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(Fault::AfterTar.into_io());
        }
    }
}

/// The module.xml files of a gzip tar, as [`Manifests`] tells them. A `<top>/module.xml`
/// is kept while the rest is read, in case one at the root follows.
pub(crate) fn tar_manifest(
    package: &Path,
    file: std::fs::File,
    limits: &Limits,
) -> Result<Manifests, Error> {
    let io_err = |source| classify(package, "cannot read the archive".into(), source);
    let (mut archive, truncation) = gzip_tar(file, limits);
    let (mut root, mut top, mut read) = (None, None, Manifests::new(package, limits)?);
    let mut last: Option<String> = None;
    let mut broken = None;
    for (count, entry) in archive.entries().map_err(io_err)?.enumerate() {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                broken = Some(truncation.explain(error));
                break;
            }
        };
        if count >= limits.max_entries {
            return Err(too_many_entries(package, limits));
        }
        let shown_name = shown(&entry.path_bytes());
        if let Some(refusal) = name_refusal(&entry.path_bytes()) {
            return Err(refused(package, refusal));
        }
        last = Some(shown_name.clone());
        // Read as unpacking reads them, so that what it refuses is refused here too.
        if entry.header().entry_type().is_pax_global_extensions() {
            check_pax_global(package, &shown_name, &mut entry)?;
            continue;
        }
        check_entry_headers(package, &shown_name, &mut entry)?;
        let kind = tar_kind(&entry);
        let path = entry.path().map_err(io_err)?.into_owned();
        let parts =
            entry_parts(&entry.path_bytes(), Some(&path)).map_err(|why| refused(package, why))?;
        let size = entry.size();
        if !read.admit(package, &entry.path_bytes(), &parts, (&kind, size))? {
            continue;
        }
        let found = match manifest_place(&parts) {
            Some(Place::Root) => &mut root,
            Some(Place::Top) => {
                read.tops.insert(parts[0].clone());
                match top.is_none() {
                    true => &mut top,
                    false => continue,
                }
            }
            None => continue,
        };
        let shown = shown_str(&parts.join("/"));
        let source = read_xml(package, &shown, entry.size(), &mut entry)?;
        *found = Some((shown, source));
    }
    if let Some(error) = broken {
        let error = damaged_stream_first(error, archive.into_inner());
        let context = "cannot read the archive".into();
        return Err(classify_at(package, context, &after(&last), error));
    }
    // To its end, as unpacking reads it: a package whose gzip checksum fails, or that
    // hides something after the tar, is unreadable here too, not listed as the newest.
    drain_after(package, archive.into_inner(), last)?;
    read.found = root.or(top);
    Ok(read)
}
