//! Finding, bounding and parsing a package's module.xml: read alone ([`read_manifest`]) or
//! once unpacked, a package is held to the same rules.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use modhost_manifest::Manifest;

use crate::budget::Limits;
use crate::entries::{Admitted, Entries};
use crate::error::{Error, classify, refused};
use crate::escape::shown_str;
use crate::format::{Format, open};
use crate::staging::{Kind, is_desktop_metadata, is_php, missing_component, relative_parts};
use crate::tar::tar_manifest;
use crate::zip::zip_manifest;

/// Reads and parses a package's module.xml without unpacking the rest, within the same
/// limits as [`unpack`](crate::unpack) and choosing the module.xml it would: the one at
/// the root if there is one, else the one in a top-level directory.
pub fn read_manifest(package: &Path, limits: &Limits) -> Result<Manifest, Error> {
    let (file, format) = open(package)?;
    let Manifests {
        found,
        tops,
        entries,
    } = match format {
        Format::GzipTar => tar_manifest(package, file, limits)?,
        Format::Zip => zip_manifest(package, file, limits)?,
    };
    let layout = entries.layout;
    let (shown, source) = found.ok_or_else(|| refused(package, layout.missing_manifest()))?;
    let module_dir = layout
        .module_dir(!shown.contains('/'))
        .map_err(|problem| refused(package, problem))?;
    let manifest = parse_manifest(package, &source, &shown)?;
    match &module_dir {
        Some(top) if *top != manifest.rawname => return Err(misnamed(package, &manifest, top)),
        Some(_) => {}
        None => check_one_manifest(package, &manifest, &tops)?,
    }
    // The component is there, as unpacking finds it: a package listed is one that installs.
    let component = relative_parts(Path::new(&manifest.component))
        .filter(|parts| !parts.is_empty())
        .map(|parts| {
            module_dir
                .iter()
                .cloned()
                .chain(parts)
                .collect::<Vec<_>>()
                .join("/")
        });
    if !component
        .as_ref()
        .is_some_and(|component| layout.is_file_entry(component))
    {
        return Err(refused(
            package,
            missing_component(
                &manifest.rawname,
                &manifest.component,
                component.is_some_and(|component| layout.is_dir(&component)),
                layout.file_entries().find(|name| is_php(name)),
            ),
        ));
    }
    Ok(manifest)
}

/// The refusal of a package whose directory is not named after its module.
pub(crate) fn misnamed(package: &Path, manifest: &Manifest, top: &str) -> Error {
    refused(
        package,
        format!(
            "module.xml names rawname `{}` but the package's directory is `{}`: FreePBX \
             reads a module from the directory named after it, so pack it as `{0}/` (as \
             `tar -czf {0}.tgz {0}` or `git archive --prefix={0}/` make it)",
            manifest.rawname,
            shown_str(top)
        ),
    )
}

/// Refuses a package whose root module.xml names the module `manifest.rawname` when the
/// package also holds `RAWNAME/module.xml` (one of `tops`, the top-level directories
/// holding a module.xml): FreePBX reads that one, modhost the one at the root, so which
/// is the module's cannot be told. A module.xml in a directory of another name is only a
/// file of the module.
pub(crate) fn check_one_manifest(
    package: &Path,
    manifest: &Manifest,
    tops: &BTreeSet<String>,
) -> Result<(), Error> {
    if !tops.contains(&manifest.rawname) {
        return Ok(());
    }
    Err(refused(
        package,
        format!(
            "it holds `module.xml` at its root and `{}/module.xml` too: which one is the \
             module's cannot be told (FreePBX reads `RAWNAME/module.xml`, modhost the one at \
             the root); keep one",
            manifest.rawname
        ),
    ))
}

/// What reading an archive for its module.xml found.
pub(crate) struct Manifests {
    /// The module.xml [`read_manifest`] takes (at the root, else the first in a top-level
    /// directory): its name and bytes.
    pub(crate) found: Option<(String, Vec<u8>)>,
    /// The top-level directories holding a module.xml, by their raw names.
    pub(crate) tops: BTreeSet<String>,
    /// Every entry, checked as unpacking checks it.
    pub(crate) entries: Entries,
}

impl Manifests {
    /// Nothing found yet in `package`, read under `limits`.
    pub(crate) fn new(package: &Path, limits: &Limits) -> Result<Self, Error> {
        let length = std::fs::metadata(package)
            .map_err(|source| classify(package, "cannot read the archive".into(), source))?
            .len();
        Ok(Manifests {
            found: None,
            tops: BTreeSet::new(),
            entries: Entries::new(limits, length),
        })
    }

    /// Records the entry at `parts` (raw name `raw`) of `kind`, declaring `size` bytes,
    /// as unpacking admits it, so that `manifest` and `install` agree: refused for what it
    /// would refuse. Whether it is a file to look at.
    pub(crate) fn admit(
        &mut self,
        package: &Path,
        raw: &[u8],
        parts: &[String],
        kind_size: (&Kind, u64),
    ) -> Result<bool, Error> {
        Ok(self.entries.admit(package, raw, parts, kind_size)? == Admitted::File)
    }
}

/// The largest module.xml a package may hold: the parser's own limit, enforced before
/// the file is read.
const MAX_MANIFEST: u64 = modhost_manifest::MAX_SIZE as u64;

/// Where a module.xml entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `module.xml`, at the archive's root.
    Root,
    /// `<top>/module.xml`, in a top-level directory.
    Top,
}

/// Where the path `parts` puts a module.xml, if it names one: never in the desktop's
/// metadata (`__MACOSX/module.xml`), which unpacking skips, so that reading a package's
/// manifest and installing it take the same one.
pub(crate) fn manifest_place(parts: &[String]) -> Option<Place> {
    if is_desktop_metadata(parts) {
        return None;
    }
    match parts {
        [name] if name == "module.xml" => Some(Place::Root),
        [_, name] if name == "module.xml" => Some(Place::Top),
        _ => None,
    }
}

/// Refuses a module.xml (`shown`) of `size` bytes the parser would not accept.
pub(crate) fn check_manifest_size(package: &Path, shown: &str, size: u64) -> Result<(), Error> {
    if size > MAX_MANIFEST {
        return Err(refused(
            package,
            format!("`{shown}` is larger than {MAX_MANIFEST} bytes"),
        ));
    }
    Ok(())
}

/// Reads the module.xml entry `shown` of declared `size` from `content`; the read is
/// bounded too, should the declared size lie.
pub(crate) fn read_xml(
    package: &Path,
    shown: &str,
    size: u64,
    content: impl Read,
) -> Result<Vec<u8>, Error> {
    check_manifest_size(package, shown, size)?;
    let mut source = Vec::new();
    content
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut source)
        .map_err(|e| classify(package, "cannot read the archive".into(), e))?;
    check_manifest_size(package, shown, source.len() as u64)?;
    Ok(source)
}

/// Parses a module.xml from its bytes, decoded as it declares or marks itself (UTF-8,
/// UTF-16, Latin-1, windows-1252…): one that cannot be decoded so is refused at its
/// first bad byte, naming the encoding.
pub(crate) fn parse_manifest(
    package: &Path,
    source: &[u8],
    shown: &str,
) -> Result<Manifest, Error> {
    Manifest::parse_bytes(source, shown).map_err(|source| Error::Manifest {
        package: package.to_owned(),
        source,
    })
}
