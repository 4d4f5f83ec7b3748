//! A local package directory: where `install NAME`, `upgradeall` and `installlocal` find
//! packages, and what `scan` reports about it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use modhost_manifest::{Manifest, Version};
use serde::Serialize;

use crate::layout::io;
use crate::{Error, Result};

/// What the directory holds for one module, compared with what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Available {
    /// Not installed: `installlocal` would install it.
    New,
    /// Newer than the installed version: `upgradeall` would upgrade it.
    Upgrade,
    /// The installed version.
    Installed,
    /// Older than the installed version: never installed automatically.
    Older,
}

/// An upgrade a package directory holds: an installed module with a newer package there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalUpgrade {
    /// The module.
    pub rawname: String,
    /// The version installed.
    pub installed: String,
    /// The newer version the directory holds.
    pub version: String,
    /// Its package file (or module directory).
    #[serde(serialize_with = "crate::serialize::path")]
    pub package: PathBuf,
}

impl crate::Host {
    /// The upgrades the package directory `from` (default: the configured one) holds, by
    /// rawname: what `upgradeall` would apply from it, read from the packages' module.xml
    /// alone (nothing is unpacked further, compiled or changed). A package that cannot
    /// be read is warned about, as `upgradeall` warns.
    pub fn local_upgrades(&self, from: Option<&Path>) -> Result<Vec<LocalUpgrade>> {
        let dir = self.package_dir_or(from)?;
        let installed = self.state.modules()?;
        let (newest, _) = read_warned(&dir, &self.skipped)?;
        Ok(newest
            .into_values()
            .filter_map(|(package, manifest)| {
                let record = installed.iter().find(|r| r.rawname == manifest.rawname)?;
                (compare(&manifest.version, Some(&record.version)) == Available::Upgrade).then(
                    || LocalUpgrade {
                        rawname: manifest.rawname.clone(),
                        installed: record.version.clone(),
                        version: manifest.version.to_string(),
                        package,
                    },
                )
            })
            .collect())
    }
}

/// One package found in a directory.
#[derive(Debug, Clone, Serialize)]
pub struct ScanEntry {
    /// The package file, or the module directory.
    #[serde(serialize_with = "crate::serialize::path")]
    pub package: PathBuf,
    /// The module's rawname.
    pub rawname: String,
    /// The package's version.
    pub version: String,
    /// The installed version, if any.
    pub installed: Option<String>,
    /// How the package compares with what is installed.
    pub available: Available,
    /// Whether installing (or upgrading to) it would be accepted: it is newer than what is
    /// installed, sound, and its dependencies are met (ignoring other packages in the
    /// directory).
    pub installable: bool,
    /// The unmet dependencies.
    pub unmet: Vec<String>,
    /// When it cannot be installed alone but can with other modules of the same directory
    /// (`install` given them all resolves them together): those modules, as `rawname
    /// version`. Empty otherwise.
    pub installable_with: Vec<String>,
    /// What its module.xml says that modhost warns about (an unknown element, a
    /// placeholder checksum, …), each with its position.
    pub warnings: Vec<String>,
    /// Why the package itself cannot be installed (it does not unpack, or its component
    /// does not load), if it cannot.
    pub problem: Option<String>,
    /// The component's exported functions, such as `lifecycle.install` or `hooks.handle`.
    pub exports: Vec<String>,
    /// The interfaces the component imports (WASI, `modhost:module`, the application's).
    pub imports: Vec<String>,
    /// What its imports and exports mean for it, as [`ModuleInfo::notes`](crate::ModuleInfo::notes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A package or module directory whose module.xml could not be read: `scan` reports it
/// beside the others.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The package file, or the module directory.
    #[serde(serialize_with = "crate::serialize::path")]
    pub package: PathBuf,
    /// Why it could not be read.
    pub error: String,
    /// The module it holds, when it was read but cannot be told from another package of
    /// the same module and version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rawname: Option<String>,
    /// And its version, then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What `scan` found in a directory: every package and module directory in it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scan {
    /// The newest readable package of each module, then the module directories.
    pub entries: Vec<ScanEntry>,
    /// The packages and module directories that could not be read, by path.
    pub unreadable: Vec<Unreadable>,
}

impl Unreadable {
    /// Why it could not be read, without the package's name when the error starts with
    /// it: for a line that names the package itself.
    pub(crate) fn reason(&self) -> String {
        let named = format!("package `{}`: ", self.package.display());
        self.error
            .strip_prefix(&named)
            .unwrap_or(&self.error)
            .to_owned()
    }
}

/// A package or module directory, and the module.xml read from it.
pub(crate) type Found = (PathBuf, Manifest);

/// The newest package (or module directory) of each module in `dir` (`*.tgz` and `*.zip`;
/// either name may hold either format, which is told by the content), by rawname, and
/// the packages that cannot be read. Those are warned about, once each per host: one bad
/// file must not hide the others.
pub(crate) fn read_warned(
    dir: &Path,
    skipped: &Skipped,
) -> Result<(BTreeMap<String, Found>, Vec<Unreadable>)> {
    let read = read_packages(dir)?;
    skipped.warn(&read.1);
    Ok(read)
}

/// `dir` when it is a directory; else why it cannot be a directory of packages (it is
/// missing, or a file).
pub(crate) fn package_dir(dir: &Path) -> Result<&Path> {
    match fs_err::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        found => Err(crate::Error::NotAPackageDir {
            path: dir.to_owned(),
            is_file: found.is_ok(),
        }),
    }
}

/// [`read_warned`] without the warnings: the newest package of each module, and the
/// packages that could not be read, sorted by path.
pub(crate) fn read_packages(dir: &Path) -> Result<(BTreeMap<String, Found>, Vec<Unreadable>)> {
    let mut newest: BTreeMap<String, Found> = BTreeMap::new();
    // Packages of a module's newest version with other bytes than the one kept: which one
    // the administrator meant cannot be told, so neither is used.
    let mut rivals: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    package_dir(dir)?;
    // The other archives too, each refused in its format's words: a module released as
    // `.tar.xz` is named, not passed over.
    let mut files = modhost_package::package_files(dir).map_err(io(dir))?;
    files.extend(modhost_package::other_archives(dir).map_err(io(dir))?);
    for path in files {
        let manifest = match crate::read_manifest(&path) {
            Ok(manifest) => manifest,
            Err(e) => {
                unreadable.push(Unreadable {
                    package: path,
                    error: e.to_string(),
                    rawname: None,
                    version: None,
                });
                continue;
            }
        };
        match newest.get(&manifest.rawname) {
            Some((known_path, known)) if manifest.version == known.version => {
                if !same_bytes(known_path, &path) {
                    rivals
                        .entry(manifest.rawname.clone())
                        .or_default()
                        .push(path);
                }
            }
            Some((_, known)) if manifest.version < known.version => {}
            _ => {
                rivals.remove(&manifest.rawname);
                newest.insert(manifest.rawname.clone(), (path, manifest));
            }
        }
    }
    // Module directories are offered beside the packages, as FreePBX's modules directory
    // holds them (and as `scan` lists them); a package of the same version is taken over
    // the directory it was likely packed from.
    let (module_dirs, unreadable_dirs) = read_module_dirs(dir)?;
    unreadable.extend(unreadable_dirs);
    for (path, manifest) in module_dirs {
        match newest.get(&manifest.rawname) {
            // Two directories of one version: which one is meant cannot be told.
            Some((known_path, known))
                if manifest.version == known.version && known_path.is_dir() =>
            {
                rivals
                    .entry(manifest.rawname.clone())
                    .or_default()
                    .push(path);
            }
            Some((_, known)) if manifest.version <= known.version => {}
            _ => {
                rivals.remove(&manifest.rawname);
                newest.insert(manifest.rawname.clone(), (path, manifest));
            }
        }
    }
    for (rawname, others) in rivals {
        let Some((kept, manifest)) = newest.remove(&rawname) else {
            continue;
        };
        let all: Vec<PathBuf> = std::iter::once(kept).chain(others).collect();
        // Each rival's error names the others: a few of them, so that thirty rivals do
        // not make thirty errors of thirty names each.
        let mut names = all
            .iter()
            .take(if all.len() > 4 { 3 } else { 4 })
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ");
        if all.len() > 4 {
            names += &format!(" and {} more", all.len() - 3);
        }
        let all_of = if all.len() == 2 { "both" } else { "all" };
        for package in &all {
            unreadable.push(Unreadable {
                package: package.clone(),
                error: format!(
                    "{names} {all_of} hold `{rawname}` {} but are not the same package: which \
                     one is meant cannot be told, so none is used; remove all but one",
                    manifest.version
                ),
                rawname: Some(rawname.clone()),
                version: Some(manifest.version.to_string()),
            });
        }
    }
    unreadable.sort_by(|a, b| a.package.cmp(&b.package));
    Ok((newest, unreadable))
}

/// Why module `name` is not taken (at `version`, the newest readable, if any) from its
/// package directory: a package there that cannot be read, named as the module's packages
/// are (`NAME-VERSION…`), may hold a newer version, and the older one readable is not
/// taken for it. One whose name says an older version (or the same) does not stand in the
/// way.
pub(crate) fn shadowing(
    unreadable: &[Unreadable],
    name: &str,
    version: Option<&Version>,
) -> Option<String> {
    let cut = named_as(unreadable, name, version)?;
    Some(format!(
        "`{}` cannot be read, and may hold a newer `{name}`: {}",
        cut.package.display(),
        cut.reason()
    ))
}

/// The first of `unreadable` named as a package of module `name` newer than `version`
/// (than any version, when `None`, or when its name says no version).
pub(crate) fn named_as<'a>(
    unreadable: &'a [Unreadable],
    name: &str,
    version: Option<&Version>,
) -> Option<&'a Unreadable> {
    unreadable.iter().find(|u| {
        u.rawname.is_none()
            && name_and_version(&u.package)
                .filter(|(named, _)| *named == name)
                .is_some_and(|(_, rest)| match (named_version(rest), version) {
                    (Some(named), Some(version)) => named > *version,
                    _ => true,
                })
    })
}

/// A package file's name as `NAME` and what follows `NAME-` (`2.0.0.tgz`), when it is
/// named as packages are: a version starts with a digit, where a hyphenated rawname goes on
/// with a letter.
fn name_and_version(path: &Path) -> Option<(&str, &str)> {
    let name = path.file_name()?.to_str()?;
    let at = name
        .char_indices()
        .find(|&(i, c)| c == '-' && name[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?
        .0;
    Some((&name[..at], &name[at + 1..]))
}

/// The module `unreadable` would hold, as far as can be told: the one it was read as, the
/// rawname its module directory's module.xml gives, or the `NAME` its file name starts with
/// (`NAME-VERSION…`).
pub(crate) fn module_of(unreadable: &Unreadable) -> Option<String> {
    if let Some(rawname) = &unreadable.rawname {
        return Some(rawname.clone());
    }
    if unreadable.package.is_dir() {
        return read_manifest(&unreadable.package).ok().map(|m| m.rawname);
    }
    name_and_version(&unreadable.package)
        .map(|(name, _)| name)
        .filter(|name| modhost_manifest::is_valid_rawname(name))
        .map(str::to_owned)
}

/// The version a package file's name after `NAME-` says (`2.0.0.tgz` → 2.0.0), if its
/// name ends as a package's or an archive's does and the rest parses.
fn named_version(rest: &str) -> Option<Version> {
    Version::parse(modhost_package::archive_stem(rest)?).ok()
}

/// Whether files `a` and `b` hold the same bytes (unreadable ones never do).
fn same_bytes(a: &Path, b: &Path) -> bool {
    match (fs_err::read(a), fs_err::read(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The module directories in `dir` (its subdirectories holding a module.xml, and `dir`
/// itself when it holds one: an author scanning the module being written), and those
/// whose module.xml could not be read, each sorted by path.
fn read_module_dirs(dir: &Path) -> Result<(Vec<Found>, Vec<Unreadable>)> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for path in modhost_package::module_dirs(dir).map_err(io(dir))? {
        match crate::read_manifest(&path) {
            // Not built yet (a module's sources): nothing to install, so not offered in
            // place of a package of it, and said.
            Ok(manifest) if !path.join(&manifest.component).is_file() => {
                unreadable.push(Unreadable {
                    error: format!(
                        "module directory `{}`: its component `{}` is not built yet, so it \
                         offers nothing to install",
                        path.display(),
                        manifest.component
                    ),
                    package: path,
                    rawname: None,
                    version: None,
                });
            }
            Ok(manifest) => found.push((path, manifest)),
            Err(e) => unreadable.push(Unreadable {
                package: path,
                error: e.to_string(),
                rawname: None,
                version: None,
            }),
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    unreadable.sort_by(|a, b| a.package.cmp(&b.package));
    Ok((found, unreadable))
}

/// The unreadable packages a host has warned about: a command reads its package directory
/// more than once (the module, then what it requires), and says each once.
#[derive(Debug, Default)]
pub(crate) struct Skipped(Mutex<BTreeSet<(PathBuf, String)>>);

impl Skipped {
    /// Logs each of `unreadable` as skipped, unless already said with the same reason,
    /// for the commands that only look for packages to install in a directory.
    pub(crate) fn warn(&self, unreadable: &[Unreadable]) {
        let mut said = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for skipped in unreadable {
            if said.insert((skipped.package.clone(), skipped.error.clone())) {
                tracing::warn!(
                    "skipping `{}`: {}",
                    skipped.package.display(),
                    skipped.reason()
                );
            }
        }
    }
}

/// The package for each of `names`: the newest package of module `name` in `dir` when
/// `name` is a bare module name that `dir` holds, else the path itself when it is a
/// package file or a module directory. A bare name goes to the package directory first,
/// so that a stray file called `core` (say, a core dump) does not stand in for module
/// `core`; `./core` names the file.
pub(crate) fn resolve(
    names: &[impl AsRef<std::ffi::OsStr>],
    dir: Option<&Path>,
    skipped: &Skipped,
) -> Result<Vec<PathBuf>> {
    // A name that is not UTF-8 can only be a path; it is shown with its bytes replaced.
    let text = |name: &std::ffi::OsStr| name.to_str().map(str::to_owned);
    let bare =
        |name: &std::ffi::OsStr| text(name).is_some_and(|n| modhost_manifest::is_valid_rawname(&n));
    let (index, unreadable) = match dir {
        Some(dir) if names.iter().any(|n| bare(n.as_ref())) => read_warned(dir, skipped)?,
        _ => (BTreeMap::new(), Vec::new()),
    };
    names
        .iter()
        .map(|name| {
            let raw = name.as_ref();
            let path = Path::new(raw);
            let name = raw.to_string_lossy();
            let bare = bare(raw);
            let found = index.get(name.as_ref()).filter(|_| bare);
            let version = found.map(|(_, manifest)| &manifest.version);
            if let Some(cut) = bare
                .then(|| shadowing(&unreadable, &name, version))
                .flatten()
            {
                return Err(Error::Refused(vec![cut]));
            }
            if let Some((path, _)) = found {
                return Ok(path.clone());
            }
            if let Some(rival) = unreadable
                .iter()
                .find(|u| bare && u.rawname.as_deref() == Some(name.as_ref()))
            {
                return Err(Error::Refused(vec![rival.error.clone()]));
            }
            // A module.xml that is no file is the module directory's to refuse, by what it is.
            if path.is_file() || std::fs::symlink_metadata(path.join("module.xml")).is_ok() {
                return Ok(path.to_owned());
            }
            if let Some(kind) = not_a_package_file(path) {
                return Err(Error::Refused(vec![format!(
                    "`{name}` is {kind}, not a package file"
                )]));
            }
            Err(Error::Refused(vec![match dir {
                _ if path.is_dir() => format!(
                    "`{name}` is a directory without a module.xml, so it is not a module directory"
                ),
                Some(dir) if bare => {
                    format!("no package of `{name}` in `{}`", dir.display())
                }
                _ if bare => format!(
                    "no package directory was given or is configured (`packages` in \
                     modhost.toml) to find module `{name}` in, and there is no file `{name}`"
                ),
                _ if name.contains("://") => format!(
                    "there is no file `{name}`: a URL is not read as a package; download the \
                     package with its checksum first, or add the server it is on as an update \
                     source"
                ),
                _ => format!("there is no file `{name}`"),
            }]))
        })
        .collect()
}

/// What `path` is when it exists but is neither a file nor a directory (a FIFO, a
/// device, a socket): never opened, as reading one could block or never end.
fn not_a_package_file(path: &Path) -> Option<&'static str> {
    let kind = std::fs::metadata(path).ok()?.file_type();
    modhost_package::other_than_a_file(kind).filter(|_| !kind.is_dir())
}

/// Whether `arg`, given where an installed module or a package may be named, names a
/// package, module directory or module.xml rather than an installed module. A rawname
/// never does, even where a directory of that name exists: standing in a modules
/// directory, `core` means the installed module.
pub fn names_a_file(arg: &std::ffi::OsStr) -> bool {
    let Some(text) = arg.to_str() else {
        // Not UTF-8: no rawname, so a path.
        return true;
    };
    let lower = text.to_ascii_lowercase();
    !modhost_manifest::is_valid_rawname(text)
        && (text.contains('/')
            || [".tgz", ".tar.gz", ".zip", ".xml"]
                .iter()
                .any(|ext| lower.ends_with(ext))
            || Path::new(arg).exists())
}

/// How `version` compares with `installed`.
pub(crate) fn compare(version: &Version, installed: Option<&str>) -> Available {
    match installed.map(Version::parse) {
        None | Some(Err(_)) => Available::New,
        Some(Ok(current)) if *version > current => Available::Upgrade,
        Some(Ok(current)) if *version == current => Available::Installed,
        Some(Ok(_)) => Available::Older,
    }
}

/// Reads and parses a module.xml without installing anything: `path` is a package, a
/// module directory, or the module.xml itself.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    if path.is_dir() {
        let xml = path.join("module.xml");
        match std::fs::symlink_metadata(&xml) {
            Err(_) => return Err(Error::NoModuleXml(path.to_owned())),
            // As packing it would be: a module directory's files are never followed.
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::NotAModuleXml(format!(
                    "`{}` is a symbolic link, and modhost never follows links in a module \
                     directory; copy the file itself into `{}`",
                    xml.display(),
                    path.display()
                )));
            }
            Ok(meta) => {
                if let Some(kind) = modhost_package::other_than_a_file(meta.file_type()) {
                    return Err(Error::NotAModuleXml(format!(
                        "`{}` is {kind}, not a module.xml",
                        xml.display()
                    )));
                }
            }
        }
        return read_manifest(&xml);
    }
    if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(Error::NoSuchFile(path.to_owned()));
    }
    let is_xml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    if !is_xml {
        return Ok(modhost_package::read_manifest(path, &Default::default())?);
    }
    // No more than the parser accepts, so a huge file is refused without being read whole.
    // Bytes, not a string: a file that is not UTF-8 gets the line and column of its first
    // bad byte, and the encoding it declares, from the parser.
    if let Some(kind) = not_a_package_file(path) {
        return Err(Error::NotAModuleXml(format!(
            "`{}` is {kind}, not a module.xml",
            path.display()
        )));
    }
    let mut source = Vec::new();
    fs_err::File::open(path)
        .and_then(|file| {
            use std::io::Read as _;
            file.take(modhost_manifest::MAX_SIZE as u64 + 1)
                .read_to_end(&mut source)
        })
        .map_err(io(path))?;
    Ok(Manifest::parse_bytes(&source, &path.display().to_string())?)
}
