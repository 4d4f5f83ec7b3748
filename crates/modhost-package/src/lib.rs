//! Module packages: a gzip tar or a zip holding `module.xml` and the module's component,
//! either at the archive's root or in one top-level directory named after the rawname.
//!
//! [`unpack`] extracts a package into a fresh staging directory and checks it before the
//! host touches anything else: only regular files and directories (a PAX global header,
//! such as `git archive` writes, is metadata and skipped), relative paths, at
//! most one top-level directory (named after the rawname), bounded sizes, no duplicates,
//! modes never taken from the archive (files 0644, directories 0755, less what the umask
//! removes). The staging directory is opened with cap-std, so even a path that slipped
//! past the checks could not land outside it. The format is told by the file's first
//! bytes, never by its name, and both formats' entries go through the same checks.
//!
//! Every byte of a gzip tar's decompressed stream counts against the size and
//! compression-ratio limits, [`read_manifest`]'s reading included: headers, GNU long
//! names, PAX records and the content of entries that are skipped, not only the files
//! written. A zip's entries count by their content: each is refused before it is read
//! when its declared size would pass the limits, and stopped while it is read should it
//! produce more.
//!
//! The ratio holds over the whole package and over every stretch of it too: every
//! mebibyte a gzip stream unpacks to must come from its share of compressed bytes, and
//! every zip entry from its own. Incompressible bytes early on (a real component) earn no
//! credit that a run of zeros could spend later, so a bomb is refused after a mebibyte or
//! two of it, wherever it sits in the package. An entry whose declared size is more than
//! the whole package could ever unpack to ([`Limits::most_unpacked`]) is refused before a
//! byte of it is read.
//!
//! [`pack`] writes a gzip tar reproducibly (fixed order, times, owners and modes).

use std::borrow::BorrowMut;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt};
use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use modhost_manifest::Manifest;
use zip::read::{ArchiveOffset, Config, ZipFileEntry};
use zip::result::ZipError;
use zip::{ZipArchive, ZipReadOptions};

/// Limits on what a package may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most entries (files and directories).
    pub max_entries: usize,
    /// The most bytes unpacked, in total: for a gzip tar, the whole decompressed stream
    /// (headers and everything else); for a zip, the entries' contents.
    pub max_total_size: u64,
    /// The longest entry path, in bytes.
    pub max_path_len: usize,
    /// The highest ratio of unpacked bytes to compressed bytes.
    pub max_ratio: u64,
}

impl Limits {
    /// The most bytes a package of `compressed` bytes may unpack to: the size limit, and
    /// the ratio limit times its length (never less than the grace allowance small
    /// packages get).
    pub fn most_unpacked(&self, compressed: u64) -> u64 {
        self.max_total_size
            .min(compressed.saturating_mul(self.max_ratio).max(RATIO_GRACE))
    }
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
    /// The module's directory inside the staging directory: `<staging>/<rawname>`.
    pub dir: PathBuf,
    /// The parsed module.xml.
    pub manifest: Manifest,
    /// The component file inside `dir`.
    pub component: PathBuf,
}

/// Unpacks `package` (a gzip tar or a zip) into `staging`, an empty directory the caller
/// owns, and validates it. The module's files end up in `<staging>/<rawname>` whichever
/// layout the archive has.
pub fn unpack(package: &Path, staging: &Path, limits: &Limits) -> Result<Unpacked, Error> {
    let (file, format) = open(package)?;
    let mut stage = Stage::new(package, staging, limits)?;
    match format {
        Format::GzipTar => unpack_tar(file, &mut stage)?,
        Format::Zip => unpack_zip(file, &mut stage)?,
    }
    stage.finish(staging)
}

/// Reads and parses a package's module.xml without unpacking the rest, within the same
/// limits as [`unpack`] and choosing the module.xml it would: the one at the root if
/// there is one, else the one in a top-level directory.
pub fn read_manifest(package: &Path, limits: &Limits) -> Result<Manifest, Error> {
    let (file, format) = open(package)?;
    let found = match format {
        Format::GzipTar => tar_manifest(package, file, limits)?,
        Format::Zip => zip_manifest(package, file, limits)?,
    };
    let (shown, source) = found.ok_or_else(|| {
        refused(
            package,
            "no `module.xml` or `<rawname>/module.xml` in the package".into(),
        )
    })?;
    let manifest = parse_manifest(package, &source, &shown)?;
    match shown.split_once('/') {
        Some((top, _)) if top != manifest.rawname => Err(misnamed(package, &manifest, top)),
        _ => Ok(manifest),
    }
}

/// The refusal of a package whose directory is not named after its module.
fn misnamed(package: &Path, manifest: &Manifest, top: &str) -> Error {
    refused(
        package,
        format!(
            "module.xml names rawname `{}` but the package's directory is `{top}`",
            manifest.rawname
        ),
    )
}

/// The mode of unpacked files and directories, whatever the archive says.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Output allowed before the compression ratio is enforced: small files compress well.
/// It is also the stretch over which the ratio is checked again and again (a gzip
/// stream's every mebibyte, a zip entry's content), so a bomb writes at most about this
/// much past what honest bytes before it unpacked to.
const RATIO_GRACE: u64 = 1024 * 1024;

/// The largest module.xml a package may hold: the parser's own limit, enforced before
/// the file is read.
const MAX_MANIFEST: u64 = modhost_manifest::MAX_SIZE as u64;

/// Where entries are unpacked before the module's directory is known (it is named after
/// the rawname, which only module.xml tells when it is at the root). The leading dot
/// makes it no valid rawname, so it never clashes with the final directory.
const UNPACKING: &str = ".unpacking";

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
}

/// The archive format of `package`, told by its first bytes; refused when it is neither.
pub fn format(package: &Path) -> Result<Format, Error> {
    open(package).map(|(_, format)| format)
}

/// Opens `package` and tells its format by its first bytes.
fn open(package: &Path) -> Result<(fs_err::File, Format), Error> {
    let io_err = |source| Error::Io {
        package: package.to_owned(),
        context: "cannot open".into(),
        source,
    };
    let mut file = fs_err::File::open(package).map_err(io_err)?;
    let mut magic = Vec::with_capacity(4);
    Read::by_ref(&mut file)
        .take(4)
        .read_to_end(&mut magic)
        .and_then(|_| file.rewind())
        .map_err(io_err)?;
    let format = if magic.starts_with(&[0x1f, 0x8b]) {
        Format::GzipTar
    } else if magic == b"PK\x03\x04" {
        Format::Zip
    } else {
        return Err(refused(
            package,
            "is neither a gzip tar nor a zip archive".into(),
        ));
    };
    Ok((file, format))
}

/// Where a module.xml entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `module.xml`, at the archive's root.
    Root,
    /// `<top>/module.xml`, in a top-level directory.
    Top,
}

/// Where the path `parts` puts a module.xml, if it names one.
fn manifest_place(parts: &[String]) -> Option<Place> {
    match parts {
        [name] if name == "module.xml" => Some(Place::Root),
        [_, name] if name == "module.xml" => Some(Place::Top),
        _ => None,
    }
}

/// Refuses a module.xml (`shown`) of `size` bytes the parser would not accept.
fn check_manifest_size(package: &Path, shown: &str, size: u64) -> Result<(), Error> {
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
fn read_xml(package: &Path, shown: &str, size: u64, content: impl Read) -> Result<Vec<u8>, Error> {
    check_manifest_size(package, shown, size)?;
    let mut source = Vec::new();
    content
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut source)
        .map_err(|e| classify(package, "cannot read the archive".into(), e))?;
    check_manifest_size(package, shown, source.len() as u64)?;
    Ok(source)
}

/// Parses a module.xml from its bytes: one that is not UTF-8 is refused at its first bad
/// byte, naming the encoding it declares.
fn parse_manifest(package: &Path, source: &[u8], shown: &str) -> Result<Manifest, Error> {
    Manifest::parse_bytes(source, shown).map_err(|source| Error::Manifest {
        package: package.to_owned(),
        source,
    })
}

fn refused(package: &Path, problem: String) -> Error {
    Error::Refused {
        package: package.to_owned(),
        problem,
    }
}

fn too_many_entries(package: &Path, limits: &Limits) -> Error {
    refused(package, format!("more than {} entries", limits.max_entries))
}

/// What an archive entry is, as far as the checks care.
enum Kind {
    Dir,
    File,
    /// Anything else, described (`a symlink`): always refused.
    Other(String),
}

/// A file entry that passed the checks, to be written.
struct Target {
    /// Its path inside the unpacking directory.
    relative: PathBuf,
    /// Its name as the archive gives it, for messages.
    shown: String,
}

/// A package being unpacked into [`UNPACKING`] inside the staging directory: the checks
/// every entry passes and the writing of files, whatever the archive format.
struct Stage<'a> {
    package: &'a Path,
    limits: &'a Limits,
    staging: Dir,
    /// [`UNPACKING`], opened.
    dir: Dir,
    dirs: DirBuilder,
    seen: BTreeSet<PathBuf>,
    entries: usize,
    /// The first two distinct first components of the entries' paths: two are enough to
    /// know there is more than one top-level directory, and to name them.
    tops: Vec<String>,
    /// Whether `module.xml` is a file at the archive's root.
    root_manifest: bool,
    /// The sizes the entries so far declared, in total.
    declared: u64,
    /// What the whole package may unpack to ([`Limits::most_unpacked`]).
    most: u64,
}

impl<'a> Stage<'a> {
    fn new(package: &'a Path, staging: &Path, limits: &'a Limits) -> Result<Self, Error> {
        let io_err = |source| classify(package, "cannot open the staging directory".into(), source);
        let staging = Dir::open_ambient_dir(staging, ambient_authority()).map_err(io_err)?;
        let mut dirs = DirBuilder::new();
        dirs.recursive(true).mode(DIR_MODE);
        staging.create_dir_with(UNPACKING, &dirs).map_err(io_err)?;
        let dir = staging.open_dir(UNPACKING).map_err(io_err)?;
        let length = fs_err::metadata(package)
            .map_err(|source| classify(package, "cannot read the archive".into(), source))?
            .len();
        Ok(Stage {
            package,
            limits,
            staging,
            dir,
            dirs,
            seen: BTreeSet::new(),
            entries: 0,
            tops: Vec::new(),
            root_manifest: false,
            declared: 0,
            most: limits.most_unpacked(length),
        })
    }

    fn refuse(&self, problem: String) -> Error {
        refused(self.package, problem)
    }

    fn io_err(&self, context: String) -> impl FnOnce(io::Error) -> Error + use<'a> {
        let package = self.package;
        move |source| classify(package, context, source)
    }

    /// Counts one more entry against the entry limit.
    fn count(&mut self) -> Result<(), Error> {
        if self.entries >= self.limits.max_entries {
            return Err(too_many_entries(self.package, self.limits));
        }
        self.entries += 1;
        Ok(())
    }

    /// Counts an entry's declared `size`: what the entries declare in all must fit what
    /// the whole package could ever unpack to, or the entry is refused before any of it is
    /// read.
    fn declare(&mut self, size: u64) -> Result<(), Error> {
        self.declared = self.declared.saturating_add(size);
        if self.declared > self.most {
            return Err(self.refuse(
                Exceeded {
                    allowed: self.most,
                    max_total_size: self.limits.max_total_size,
                    max_ratio: self.limits.max_ratio,
                }
                .to_string(),
            ));
        }
        Ok(())
    }

    /// Checks the entry named `raw` (read as `path`, or `None` when the archive's reading
    /// of the name is unsafe) of kind `kind` and declared `size`; creates it when it is a
    /// directory, and returns it when it is a file to write.
    fn admit(
        &mut self,
        raw: &[u8],
        path: Option<&Path>,
        kind: Kind,
        size: u64,
    ) -> Result<Option<Target>, Error> {
        self.count()?;
        let shown = String::from_utf8_lossy(raw).into_owned();
        if raw.len() > self.limits.max_path_len {
            return Err(self.refuse(format!(
                "entry path longer than {} bytes",
                self.limits.max_path_len
            )));
        }
        let parts = path.and_then(relative_parts).ok_or_else(|| {
            self.refuse(format!(
                "entry `{shown}` is not a relative path inside the package"
            ))
        })?;
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        if self.tops.len() < 2 && !self.tops.contains(first) {
            self.tops.push(first.clone());
        }
        let relative: PathBuf = parts.iter().collect();
        if !self.seen.insert(relative.clone()) {
            return Err(self.refuse(format!("duplicate entry `{shown}`")));
        }
        match kind {
            Kind::Dir => {
                self.declare(size)?;
                self.dir
                    .create_dir_with(&relative, &self.dirs)
                    .map_err(self.io_err(format!("cannot create `{shown}`")))?;
                Ok(None)
            }
            Kind::File => {
                if let Some(place) = manifest_place(&parts) {
                    check_manifest_size(self.package, &shown, size)?;
                    self.root_manifest |= place == Place::Root;
                }
                self.declare(size)?;
                Ok(Some(Target { relative, shown }))
            }
            Kind::Other(what) => Err(self.refuse(format!(
                "entry `{shown}` is {what}; only regular files and directories are allowed"
            ))),
        }
    }

    /// Writes `target` from `content`, with [`FILE_MODE`] and its parents with
    /// [`DIR_MODE`].
    fn write(&self, target: &Target, mut content: impl Read) -> Result<(), Error> {
        let Target { relative, shown } = target;
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dir
                .create_dir_with(parent, &self.dirs)
                .map_err(self.io_err(format!("cannot create `{shown}`")))?;
        }
        let mut out = self
            .dir
            .open_with(
                relative,
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(FILE_MODE),
            )
            .map_err(self.io_err(format!("cannot create `{shown}`")))?;
        io::copy(&mut content, &mut out)
            .and_then(|_| out.sync_all())
            .map_err(self.io_err(format!("cannot unpack `{shown}`")))
    }

    /// Reads module.xml, checks the layout against it and moves the module's files to
    /// `<staging>/<rawname>`.
    fn finish(self, staging: &Path) -> Result<Unpacked, Error> {
        // With module.xml at the root, the whole archive is the module's directory;
        // otherwise its one top-level directory is.
        let top = match self.tops.as_slice() {
            _ if self.root_manifest => None,
            [] => return Err(self.refuse("the archive is empty".into())),
            [top] => Some(top.clone()),
            [one, other, ..] => {
                return Err(self.refuse(format!(
                    "more than one top-level directory (`{one}` and `{other}`) and no \
                     `module.xml` at the root"
                )));
            }
        };
        let xml: PathBuf = top
            .iter()
            .map(String::as_str)
            .chain(["module.xml"])
            .collect();
        let shown = xml.display().to_string();
        let is_file = self.dir.metadata(&xml).is_ok_and(|m| m.is_file());
        if !self.seen.contains(&xml) || !is_file {
            return Err(self.refuse(format!("`{shown}` is missing or not a file")));
        }
        let source = self
            .dir
            .read(&xml)
            .map_err(self.io_err("cannot read module.xml".into()))?;
        let manifest = parse_manifest(self.package, &source, &shown)?;
        let rawname = manifest.rawname.clone();
        let moved = match &top {
            Some(top) if *top != rawname => {
                return Err(misnamed(self.package, &manifest, top));
            }
            Some(top) => self
                .staging
                .rename(Path::new(UNPACKING).join(top), &self.staging, &rawname)
                .and_then(|()| self.staging.remove_dir(UNPACKING)),
            None => self.staging.rename(UNPACKING, &self.staging, &rawname),
        };
        moved.map_err(self.io_err("cannot move the module's directory into place".into()))?;
        let module_dir = staging.join(&rawname);
        let component_parts = relative_parts(Path::new(&manifest.component))
            .filter(|parts| !parts.is_empty())
            .ok_or_else(|| {
                self.refuse(format!(
                    "<component> `{}` is not a relative path",
                    manifest.component
                ))
            })?;
        let component = component_parts
            .iter()
            .fold(module_dir.clone(), |p, c| p.join(c));
        if !component.is_file() {
            return Err(self.refuse(format!(
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
}

/// The decompressed bytes have grown past what the limits allow.
#[derive(Debug, thiserror::Error)]
#[error(
    "unpacks to more than {allowed} bytes (size limit {max_total_size} bytes, compression-ratio limit {max_ratio}:1)"
)]
struct Exceeded {
    allowed: u64,
    max_total_size: u64,
    max_ratio: u64,
}

/// An I/O error while reading `package`; the budget's refusal is a refusal.
fn classify(package: &Path, context: String, source: io::Error) -> Error {
    match source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Exceeded>())
    {
        Some(exceeded) => refused(package, exceeded.to_string()),
        None => Error::Io {
            package: package.to_owned(),
            context,
            source,
        },
    }
}

/// What a package may unpack to: at most the size limit, and at most the ratio limit
/// times the compressed bytes so far (past a grace allowance), so a bomb is refused
/// after about a megabyte, not after filling the size budget. The ratio holds over each
/// stretch too (see [`Window`]): compressed bytes that unpacked to little earlier leave
/// no credit for a run of zeros later.
struct Budget {
    limits: Limits,
    /// The compressed bytes the decoder consumed (gzip) or declared by the entries so far
    /// (zip).
    compressed: Rc<Cell<u64>>,
    produced: u64,
    /// Where the stretch being checked began.
    window: Window,
    /// Whether the stretch moves on by itself every [`RATIO_GRACE`] bytes (a gzip
    /// stream); a zip's stretch is the entry being read, started by [`Budget::admit`].
    rolling: bool,
}

/// The start of the stretch of a package over which the ratio is checked on its own: the
/// bytes produced and compressed bytes counted when it began. Within a stretch the ratio
/// applies past [`RATIO_GRACE`] bytes; a gzip stream's stretch moves on once it passes
/// that many, so every mebibyte it unpacks to needs its own compressed bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    produced: u64,
    compressed: u64,
}

impl Budget {
    fn new(limits: &Limits) -> Self {
        Budget {
            limits: *limits,
            compressed: Rc::new(Cell::new(0)),
            produced: 0,
            window: Window::default(),
            rolling: true,
        }
    }

    /// What `compressed` bytes may unpack to under the ratio limit (at least the grace
    /// allowance).
    fn ratio_allows(&self, compressed: u64) -> u64 {
        compressed
            .saturating_mul(self.limits.max_ratio)
            .max(RATIO_GRACE)
    }

    /// Refuses `produced` bytes when the limits do not allow them, over the whole package
    /// or over the current stretch.
    fn check(&self, produced: u64) -> Result<(), Exceeded> {
        let compressed = self.compressed.get();
        let allowed = self
            .limits
            .max_total_size
            .min(self.ratio_allows(compressed));
        let stretch = produced.saturating_sub(self.window.produced);
        let stretch_allowed = self.ratio_allows(compressed.saturating_sub(self.window.compressed));
        if produced > allowed {
            return Err(Exceeded {
                allowed,
                max_total_size: self.limits.max_total_size,
                max_ratio: self.limits.max_ratio,
            });
        }
        if stretch > stretch_allowed {
            // Reported as the package's allowance: what it may unpack to, given what it
            // unpacked to before this stretch.
            return Err(Exceeded {
                allowed: self.window.produced.saturating_add(stretch_allowed),
                max_total_size: self.limits.max_total_size,
                max_ratio: self.limits.max_ratio,
            });
        }
        Ok(())
    }

    /// Admits, before it is read, a zip entry that declares `compressed` and `size` bytes,
    /// in a package of `length` bytes. Entries may share compressed bytes (a bomb made of
    /// overlapping entries): the file's length bounds what counts as compressed. The
    /// entry is a stretch of its own: its size must fit its own compressed bytes.
    fn admit(&mut self, compressed: u64, size: u64, length: u64) -> Result<(), Exceeded> {
        self.rolling = false;
        self.window = Window {
            produced: self.produced,
            compressed: self.compressed.get(),
        };
        let compressed = self.compressed.get().saturating_add(compressed);
        self.compressed.set(compressed.min(length));
        self.check(self.produced.saturating_add(size))
    }

    /// Counts `n` more bytes produced.
    fn charge(&mut self, n: u64) -> Result<(), Exceeded> {
        self.produced = self.produced.saturating_add(n);
        self.check(self.produced)?;
        if self.rolling && self.produced - self.window.produced > RATIO_GRACE {
            self.window = Window {
                produced: self.produced,
                compressed: self.compressed.get(),
            };
        }
        Ok(())
    }
}

/// A reader whose output is charged to a [`Budget`], failing with [`Exceeded`] once past
/// it. A gzip tar's whole decoder is wrapped, leaving nothing uncounted: the tar crate
/// reads long names and PAX records into memory whole, and skips the content of entries
/// it is not asked for by reading it. A zip's entries are wrapped one by one, sharing the
/// package's budget.
struct Bounded<R, B> {
    inner: R,
    budget: B,
}

impl<R: Read, B: BorrowMut<Budget>> Read for Bounded<R, B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget
            .borrow_mut()
            .charge(n as u64)
            .map_err(io::Error::other)?;
        Ok(n)
    }
}

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

fn unpack_tar(file: fs_err::File, stage: &mut Stage<'_>) -> Result<(), Error> {
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

/// The module.xml [`read_manifest`] takes from a gzip tar, and its name. A
/// `<top>/module.xml` is kept while the rest is read, in case one at the root follows.
fn tar_manifest(
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

/// A zip's central directory, refused up front when it lists too many entries or the
/// same name twice (the zip crate keeps one entry of a name, so the other is never seen).
fn zip_archive(
    package: &Path,
    file: fs_err::File,
    limits: &Limits,
) -> Result<ZipArchive<fs_err::File>, Error> {
    // The archive starts at the file's first byte: that is how its format was told.
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let archive = ZipArchive::with_config(config, file)
        .map_err(zip_err(package, "cannot read the archive"))?;
    if archive.len() > limits.max_entries {
        return Err(too_many_entries(package, limits));
    }
    if archive.has_duplicate_names() {
        return Err(refused(
            package,
            "duplicate entry names in the zip's central directory".into(),
        ));
    }
    Ok(archive)
}

/// Opens entry `index`'s content, checking its local header against the central
/// directory so the two cannot tell different stories.
fn zip_content<'a>(
    archive: &'a mut ZipArchive<fs_err::File>,
    index: usize,
    package: &Path,
    context: &str,
) -> Result<zip::read::ZipFile<'a, fs_err::File>, Error> {
    archive
        .by_index_with_options(
            index,
            ZipReadOptions::new().enforce_header_consistency(true),
        )
        .map_err(zip_err(package, context))
}

/// A zip error as an [`Error::Io`] with `context`.
fn zip_err<'a>(package: &'a Path, context: &'a str) -> impl FnOnce(ZipError) -> Error + 'a {
    move |error| {
        let source = match error {
            ZipError::Io(source) => source,
            other => other.into(),
        };
        classify(package, context.into(), source)
    }
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

/// A zip entry's path, when the zip crate's safe reading of its name (`enclosed_name`)
/// and ours agree: that refuses absolute paths, `..`, drive prefixes and backslashes
/// that one reading would take for separators and the other not.
fn zip_path(entry: &ZipFileEntry<'_>) -> Option<PathBuf> {
    let name = entry.name().ok()?;
    let ours: PathBuf = relative_parts(Path::new(name.as_ref()))?.iter().collect();
    (entry.enclosed_name()? == ours).then_some(ours)
}

fn unpack_zip(file: fs_err::File, stage: &mut Stage<'_>) -> Result<(), Error> {
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
        if entry.encrypted() {
            return Err(stage.refuse(format!(
                "entry `{}` is encrypted",
                String::from_utf8_lossy(entry.name_raw())
            )));
        }
        let (size, compressed) = (entry.size(), entry.compressed_size());
        let path = zip_path(&entry);
        let admitted = stage.admit(entry.name_raw(), path.as_deref(), zip_kind(&entry), size)?;
        let Some(target) = admitted else { continue };
        budget
            .admit(compressed, size, length)
            .map_err(|exceeded| stage.refuse(exceeded.to_string()))?;
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

/// The module.xml [`read_manifest`] takes from a zip, and its name: the central
/// directory tells where it is without reading any content.
fn zip_manifest(
    package: &Path,
    file: fs_err::File,
    limits: &Limits,
) -> Result<Option<(String, Vec<u8>)>, Error> {
    let mut archive = zip_archive(package, file, limits)?;
    let mut found = None;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(zip_err(package, "cannot read the archive"))?;
        if !matches!(zip_kind(&entry), Kind::File) {
            continue;
        }
        let parts = zip_path(&entry)
            .and_then(|path| relative_parts(&path))
            .unwrap_or_default();
        match manifest_place(&parts) {
            Some(Place::Root) => {
                found = Some(index);
                break;
            }
            Some(Place::Top) if found.is_none() => found = Some(index),
            _ => {}
        }
    }
    let Some(index) = found else {
        return Ok(None);
    };
    let entry = archive
        .by_index_data(index)
        .map_err(zip_err(package, "cannot read the archive"))?;
    let shown = String::from_utf8_lossy(entry.name_raw()).into_owned();
    if entry.encrypted() {
        return Err(refused(package, format!("entry `{shown}` is encrypted")));
    }
    let size = entry.size();
    let content = zip_content(&mut archive, index, package, "cannot read the archive")?;
    read_xml(package, &shown, size, content).map(|source| Some((shown, source)))
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
    let source = fs_err::read(module_xml).map_err(io_err("cannot read module.xml".into()))?;
    let manifest =
        Manifest::parse_bytes(&source, &module_xml.display().to_string()).map_err(|source| {
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
        (format!("{rawname}/module.xml"), source.as_slice()),
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
