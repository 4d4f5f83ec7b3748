//! Module packages: a gzip tar holding `<rawname>/module.xml` and the module's component.
//!
//! [`unpack`] extracts a package into a fresh staging directory and checks it before the
//! host touches anything else: only regular files and directories, relative paths inside
//! one top-level directory named after the rawname, bounded sizes, no duplicates, modes
//! never taken from the archive (files 0644, directories 0755, less what the umask
//! removes). The staging directory is opened with cap-std, so even a path that slipped
//! past the checks could not land outside it.
//!
//! Every byte of the decompressed archive counts against the size and compression-ratio
//! limits, [`read_manifest`]'s reading included: headers, GNU long names, PAX records
//! and the content of entries that are skipped, not only the files written.
//!
//! [`pack`] writes a package reproducibly (fixed order, times, owners and modes).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use modhost_manifest::Manifest;

/// Limits on what a package may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most entries (files and directories).
    pub max_entries: usize,
    /// The most bytes of the decompressed archive, in total: file contents, headers and
    /// everything else.
    pub max_total_size: u64,
    /// The longest entry path, in bytes.
    pub max_path_len: usize,
    /// The highest ratio of unpacked bytes to compressed bytes.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_total_size: 256 * 1024 * 1024,
            max_path_len: 255,
            max_ratio: 200,
        }
    }
}

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The package could not be read or the staging directory written.
    #[error("package `{package}`: {context}: {source}")]
    Io {
        /// The package file.
        package: PathBuf,
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The package's content breaks a rule.
    #[error("package `{package}`: {problem}")]
    Refused {
        /// The package file.
        package: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The package's module.xml is invalid.
    #[error("package `{package}`: {source}")]
    Manifest {
        /// The package file.
        package: PathBuf,
        /// The manifest's problems.
        source: modhost_manifest::Error,
    },
}

/// A package unpacked into a staging directory.
#[derive(Debug)]
pub struct Unpacked {
    /// The module's directory inside the staging directory.
    pub dir: PathBuf,
    /// The parsed module.xml.
    pub manifest: Manifest,
    /// The component file inside `dir`.
    pub component: PathBuf,
}

/// Unpacks `package` into `staging`, an empty directory the caller owns, and validates it.
pub fn unpack(package: &Path, staging: &Path, limits: &Limits) -> Result<Unpacked, Error> {
    let io_err = |context: &str| {
        let context = context.to_owned();
        move |source| classify(package, context, source)
    };
    let refuse = |problem: String| Error::Refused {
        package: package.to_owned(),
        problem,
    };
    let dir = Dir::open_ambient_dir(staging, ambient_authority())
        .map_err(io_err("cannot open the staging directory"))?;
    let mut dirs = DirBuilder::new();
    dirs.recursive(true).mode(DIR_MODE);
    let mut archive = tar::Archive::new(Bounded::open(package, limits)?);
    let mut seen = BTreeSet::new();
    let mut top: Option<String> = None;
    for (count, entry) in archive
        .entries()
        .map_err(io_err("cannot read the archive"))?
        .enumerate()
    {
        let mut entry = entry.map_err(io_err("cannot read the archive"))?;
        if count >= limits.max_entries {
            return Err(refuse(format!("more than {} entries", limits.max_entries)));
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        if raw.len() > limits.max_path_len {
            return Err(refuse(format!(
                "entry path longer than {} bytes",
                limits.max_path_len
            )));
        }
        let path = entry
            .path()
            .map_err(io_err("cannot read an entry path"))?
            .into_owned();
        let parts = relative_parts(&path).ok_or_else(|| {
            refuse(format!(
                "entry `{shown}` is not a relative path inside the package"
            ))
        })?;
        let Some(first) = parts.first() else { continue };
        match &top {
            None => top = Some(first.clone()),
            Some(t) if t != first => {
                return Err(refuse(format!(
                    "more than one top-level directory (`{t}` and `{first}`)"
                )));
            }
            Some(_) => {}
        }
        let relative: PathBuf = parts.iter().collect();
        if !seen.insert(relative.clone()) {
            return Err(refuse(format!("duplicate entry `{shown}`")));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            dir.create_dir_with(&relative, &dirs)
                .map_err(io_err(&format!("cannot create `{shown}`")))?;
        } else if kind.is_file() {
            if parts.len() == 1 {
                return Err(refuse(format!(
                    "file `{shown}` is not inside the module's directory"
                )));
            }
            if is_manifest(&parts) && entry.size() > MAX_MANIFEST {
                return Err(refuse(format!(
                    "`{shown}` is larger than {MAX_MANIFEST} bytes"
                )));
            }
            if let Some(parent) = relative.parent() {
                dir.create_dir_with(parent, &dirs)
                    .map_err(io_err(&format!("cannot create `{shown}`")))?;
            }
            let mut out = dir
                .open_with(
                    &relative,
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(FILE_MODE),
                )
                .map_err(io_err(&format!("cannot create `{shown}`")))?;
            io::copy(&mut entry, &mut out).map_err(io_err(&format!("cannot unpack `{shown}`")))?;
            out.sync_all()
                .map_err(io_err(&format!("cannot unpack `{shown}`")))?;
        } else {
            return Err(refuse(format!(
                "entry `{shown}` is a {:?}; only regular files and directories are allowed",
                kind
            )));
        }
    }
    let rawname = top.ok_or_else(|| refuse("the archive is empty".into()))?;
    let module_dir = staging.join(&rawname);
    let xml_path = module_dir.join("module.xml");
    if !seen.contains(&PathBuf::from(&rawname).join("module.xml")) || !xml_path.is_file() {
        return Err(refuse(format!(
            "`{rawname}/module.xml` is missing or not a file"
        )));
    }
    let source = fs_err::read_to_string(&xml_path).map_err(io_err("cannot read module.xml"))?;
    let manifest =
        Manifest::parse(&source, &format!("{rawname}/module.xml")).map_err(|source| {
            Error::Manifest {
                package: package.to_owned(),
                source,
            }
        })?;
    if manifest.rawname != rawname {
        return Err(refuse(format!(
            "module.xml names rawname `{}` but the package's directory is `{rawname}`",
            manifest.rawname
        )));
    }
    let component_parts = relative_parts(Path::new(&manifest.component))
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| {
            refuse(format!(
                "<component> `{}` is not a relative path",
                manifest.component
            ))
        })?;
    let component = component_parts
        .iter()
        .fold(module_dir.clone(), |p, c| p.join(c));
    if !component.is_file() {
        return Err(refuse(format!(
            "component `{rawname}/{}` is missing",
            manifest.component
        )));
    }
    Ok(Unpacked {
        dir: module_dir,
        manifest,
        component,
    })
}

/// The mode of unpacked files and directories, whatever the archive says.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Output allowed before the compression ratio is enforced: small files compress well.
const RATIO_GRACE: u64 = 1024 * 1024;

/// The largest module.xml a package may hold: the parser's own limit, enforced before
/// the file is read.
const MAX_MANIFEST: u64 = modhost_manifest::MAX_SIZE as u64;

/// Whether `parts` name the package's `<rawname>/module.xml`.
fn is_manifest(parts: &[String]) -> bool {
    parts.len() == 2 && parts[1] == "module.xml"
}

/// The decompressed stream has grown past what the limits allow.
#[derive(Debug, thiserror::Error)]
#[error(
    "unpacks to more than {allowed} bytes (size limit {max_total_size} bytes, compression-ratio limit {max_ratio}:1)"
)]
struct Exceeded {
    allowed: u64,
    max_total_size: u64,
    max_ratio: u64,
}

/// An I/O error while reading `package`; the bounded stream's refusal is a refusal.
fn classify(package: &Path, context: String, source: io::Error) -> Error {
    match source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Exceeded>())
    {
        Some(exceeded) => Error::Refused {
            package: package.to_owned(),
            problem: exceeded.to_string(),
        },
        None => Error::Io {
            package: package.to_owned(),
            context,
            source,
        },
    }
}

/// A package's decompressed bytes, failing with [`Exceeded`] once they pass the size limit
/// or the compression ratio. The ratio is checked against the compressed bytes read so
/// far, so a bomb is refused after about a megabyte, not after filling the size budget.
/// Wrapping the decoder rather than counting file contents leaves nothing uncounted: the
/// tar crate reads long names and PAX records into memory whole, and skips the content
/// of entries it is not asked for by reading it.
struct Bounded {
    decoder: GzDecoder<Counting>,
    compressed: Rc<Cell<u64>>,
    produced: u64,
    limits: Limits,
}

impl Bounded {
    fn open(package: &Path, limits: &Limits) -> Result<Self, Error> {
        let file = fs_err::File::open(package).map_err(|source| Error::Io {
            package: package.to_owned(),
            context: "cannot open".into(),
            source,
        })?;
        let compressed = Rc::new(Cell::new(0));
        Ok(Bounded {
            decoder: GzDecoder::new(Counting {
                inner: file,
                consumed: Rc::clone(&compressed),
            }),
            compressed,
            produced: 0,
            limits: *limits,
        })
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        self.produced += n as u64;
        let allowed = self.limits.max_total_size.min(
            self.compressed
                .get()
                .saturating_mul(self.limits.max_ratio)
                .max(RATIO_GRACE),
        );
        if self.produced > allowed {
            return Err(io::Error::other(Exceeded {
                allowed,
                max_total_size: self.limits.max_total_size,
                max_ratio: self.limits.max_ratio,
            }));
        }
        Ok(n)
    }
}

/// Counts the compressed bytes the decoder has read.
struct Counting {
    inner: fs_err::File,
    consumed: Rc<Cell<u64>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

/// Reads and parses `<rawname>/module.xml` from a package without unpacking the rest,
/// within the same limits as [`unpack`].
pub fn read_manifest(package: &Path, limits: &Limits) -> Result<Manifest, Error> {
    let io_err = |source| classify(package, "cannot read the archive".into(), source);
    let refuse = |problem: String| Error::Refused {
        package: package.to_owned(),
        problem,
    };
    let mut archive = tar::Archive::new(Bounded::open(package, limits)?);
    for (count, entry) in archive.entries().map_err(io_err)?.enumerate() {
        let mut entry = entry.map_err(io_err)?;
        if count >= limits.max_entries {
            return Err(refuse(format!("more than {} entries", limits.max_entries)));
        }
        let path = entry.path().map_err(io_err)?.into_owned();
        let parts = relative_parts(&path).unwrap_or_default();
        if is_manifest(&parts) && entry.header().entry_type().is_file() {
            let file = format!("{}/module.xml", parts[0]);
            if entry.size() > MAX_MANIFEST {
                return Err(refuse(format!(
                    "`{file}` is larger than {MAX_MANIFEST} bytes"
                )));
            }
            let mut source = String::new();
            entry.read_to_string(&mut source).map_err(io_err)?;
            return Manifest::parse(&source, &file).map_err(|source| Error::Manifest {
                package: package.to_owned(),
                source,
            });
        }
    }
    Err(refuse("no `<rawname>/module.xml` in the package".into()))
}

/// The normal components of a relative path, or `None` for absolute paths and `..`.
fn relative_parts(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

/// Writes a package for the module described by `module_xml`, with `component` stored
/// under the name its `<component>` element gives. Returns the parsed manifest.
pub fn pack(module_xml: &Path, component: &Path, out: &Path) -> Result<Manifest, Error> {
    let io_err = |context: String| {
        move |source| Error::Io {
            package: out.to_owned(),
            context,
            source,
        }
    };
    let source =
        fs_err::read_to_string(module_xml).map_err(io_err("cannot read module.xml".into()))?;
    let manifest =
        Manifest::parse(&source, &module_xml.display().to_string()).map_err(|source| {
            Error::Manifest {
                package: out.to_owned(),
                source,
            }
        })?;
    let wasm = fs_err::read(component).map_err(io_err("cannot read the component".into()))?;
    let rawname = &manifest.rawname;
    let file = fs_err::File::create(out).map_err(io_err("cannot create".into()))?;
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::best()));
    let entries: [(String, &[u8]); 2] = [
        (format!("{rawname}/module.xml"), source.as_bytes()),
        (format!("{rawname}/{}", manifest.component), &wasm),
    ];
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    builder
        .append_data(&mut dir, format!("{rawname}/"), io::empty())
        .map_err(io_err("cannot write".into()))?;
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &name, data)
            .map_err(io_err(format!("cannot write `{name}`")))?;
    }
    let mut gz = builder
        .into_inner()
        .map_err(io_err("cannot finish".into()))?;
    gz.flush().map_err(io_err("cannot finish".into()))?;
    gz.finish().map_err(io_err("cannot finish".into()))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests;
