//! The packages a build publishes: read from its input directory and checked against each
//! other before anything is written, then copied into the part each belongs in.

use std::path::{Path, PathBuf};

use modhost_manifest::Manifest;
use modhost_update::Entry;

use crate::error::{Error, Result, file_error};
use sha2::{Digest, Sha256};

use crate::build::Parts;

/// A package file of the input directory, read and identified.
pub(crate) struct Package {
    /// Its file.
    path: PathBuf,
    /// Its manifest.
    manifest: Manifest,
    /// Its format's extension: `tgz` or `zip`.
    extension: &'static str,
    /// Its SHA-256, in hex.
    sha256: String,
}

/// What [`scan`] found: one package per module and version.
pub(crate) struct Scanned {
    /// The packages, by rawname and newest first.
    pub(crate) packages: Vec<Package>,
    /// Byte-identical copies of a package, each published once, as a publisher should hear.
    pub(crate) warnings: Vec<String>,
}

/// The file name of `path`, as a message shows it.
fn name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// `names` as a list in a sentence: `a`, `a` and `b`, `a`, `b` and `c`.
fn listed(names: &[String]) -> String {
    joined(&names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>())
}

/// `a`, `a and b`, `a, b and c`.
fn joined(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Reads every package (`*.tgz`, `*.zip`) in `dir`, writing nothing. Files holding the
/// same module and version (in FreePBX's order, so `1.0` is `1.0.0`) are one package
/// published once when byte-identical, with a warning; otherwise which one to publish
/// cannot be told, and the build is refused, naming every such set of files at once.
pub(crate) fn scan(dir: &Path) -> Result<Scanned> {
    let paths = modhost_package::package_files(dir).map_err(file_error(dir))?;
    // A stray archive of another kind is no package to publish: left out, and said.
    let others = modhost_package::other_archives(dir).map_err(file_error(dir))?;
    let mut warnings: Vec<String> = others
        .iter()
        .map(|other| match modhost_package::format(other) {
            Err(e) => format!("{e}: left out"),
            Ok(_) => format!(
                "`{}` is not named as a package is: left out",
                other.display()
            ),
        })
        .collect();
    // A module directory (which a host's package directory offers) is no package: a
    // repository publishes packages, with their checksums.
    let module_dirs = modhost_package::module_dirs(dir).map_err(file_error(dir))?;
    warnings.extend(module_dirs.iter().map(|path| {
        format!(
            "`{}` is a module directory, not a package: left out (pack it into a package to \
             publish it)",
            path.display()
        )
    }));
    let mut found = Vec::new();
    for path in paths {
        let refused = |e: modhost_package::Error| Error::File {
            path: path.clone(),
            message: e.to_string(),
        };
        let manifest =
            modhost_package::read_manifest(&path, &Default::default()).map_err(refused)?;
        let extension = modhost_package::format(&path).map_err(refused)?.extension();
        let bytes = fs_err::read(&path).map_err(file_error(&path))?;
        found.push(Package {
            sha256: hex::encode(Sha256::digest(&bytes)),
            path,
            manifest,
            extension,
        });
    }
    // Stable: within a module and version, the files stay in name order.
    found.sort_by(|a, b| {
        let (a, b) = (&a.manifest, &b.manifest);
        a.rawname.cmp(&b.rawname).then(b.version.cmp(&a.version))
    });
    let mut scanned = Scanned {
        packages: Vec::new(),
        warnings,
    };
    let mut clashes = Vec::new();
    let mut rest = found.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut same = Vec::new();
        while let Some(next) = rest.next_if(|p| {
            p.manifest.rawname == first.manifest.rawname
                && p.manifest.version == first.manifest.version
        }) {
            same.push(next);
        }
        if !same.is_empty() {
            let names: Vec<String> = std::iter::once(&first)
                .chain(&same)
                .map(|p| name(&p.path))
                .collect();
            let what = format!("`{}` {}", first.manifest.rawname, first.manifest.version);
            if same.iter().all(|p| p.sha256 == first.sha256) {
                scanned.warnings.push(format!(
                    "{} are the same package, {what}: it is published once",
                    listed(&names)
                ));
            } else {
                // Byte-identical copies are named with the file they copy, so that the
                // files that differ are the ones listed.
                let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
                for package in std::iter::once(&first).chain(&same) {
                    match groups.iter_mut().find(|(sha, _)| *sha == package.sha256) {
                        Some((_, names)) => names.push(name(&package.path)),
                        None => groups.push((&package.sha256, vec![name(&package.path)])),
                    }
                }
                let shown: Vec<String> = groups
                    .iter()
                    .map(|(_, names)| match names.split_first() {
                        Some((one, [])) => format!("`{one}`"),
                        Some((one, copies)) => format!(
                            "`{one}` (and its cop{} {})",
                            if copies.len() == 1 { "y" } else { "ies" },
                            listed(copies)
                        ),
                        None => String::new(),
                    })
                    .collect();
                let all = if shown.len() == 2 { "both" } else { "all" };
                clashes.push(format!(
                    "{} {all} hold {what} but are not the same file: which one to publish \
                     cannot be told; remove all but one",
                    joined(&shown)
                ));
            }
        }
        scanned.packages.push(first);
    }
    if clashes.is_empty() {
        Ok(scanned)
    } else {
        Err(Error::Input {
            dir: dir.to_owned(),
            message: clashes.join("; "),
        })
    }
}

/// Refuses to publish anew, with other bytes, a version the last build published (in its
/// `public` directory): hosts that installed the first never take the second, and caches
/// keep serving the first under its name. A new version is the way; a build may be told
/// to publish again (when no host can have had the first), and then skips this.
pub(crate) fn check_republished(dir: &Path, scanned: &Scanned, public: &Path) -> Result<()> {
    let path = public.join("index.json");
    let Some(text) = crate::build::read_if_present(&path)? else {
        return Ok(());
    };
    // What the last build published cannot be told: not guessed to be nothing.
    let previous = modhost_update::Index::parse(text.as_bytes()).map_err(|why| Error::File {
        path: path.clone(),
        message: format!(
            "the last build's index cannot be read ({why}), so which versions it published \
             cannot be told"
        ),
    })?;
    let changed: Vec<String> = scanned
        .packages
        .iter()
        .filter_map(|package| {
            let (rawname, version) = (&package.manifest.rawname, package.manifest.version.as_str());
            let before = previous
                .modules
                .iter()
                .find(|e| e.rawname == *rawname && e.version == version)?;
            (!before.sha256.eq_ignore_ascii_case(&package.sha256)).then(|| {
                format!(
                    "`{rawname}` {version} (`{}`) is not the package the last build published \
                     as that version (SHA-256 {} then, {} now)",
                    name(&package.path),
                    before.sha256,
                    package.sha256
                )
            })
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::Republished {
        dir: dir.to_owned(),
        changed,
    })
}

/// Copies each package into `packages/` of its part, as `RAWNAME-VERSION.EXT`, keeping
/// its modification time: the packages with their manifests and what the index lists of
/// them, in [`scan`]'s order. A package that changed since it was scanned is refused.
pub(crate) fn copy(packages: Vec<Package>, parts: &Parts) -> Result<Vec<(Manifest, Entry)>> {
    let directory = parts.public.join("packages");
    fs_err::create_dir_all(&directory).map_err(file_error(&directory))?;
    let mut copied = Vec::new();
    for package in packages {
        let Package {
            path,
            manifest,
            extension,
            sha256,
        } = package;
        let bytes = fs_err::read(&path).map_err(file_error(&path))?;
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(Error::File {
                path,
                message: "it changed while the repository was being built; build again".into(),
            });
        }
        let file = format!("{}-{}.{extension}", manifest.rawname, manifest.version);
        parts.write_package(&manifest.rawname, &format!("packages/{file}"), &bytes)?;
        // The copy keeps the package's time: FreePBX's `packaged` and a server's
        // Last-Modified say when it was made, not when the repository was last built.
        let copy = parts.of(&manifest.rawname).join("packages").join(&file);
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .and_then(|modified| {
                std::fs::File::options()
                    .write(true)
                    .open(&copy)?
                    .set_modified(modified)
            })
            .map_err(file_error(&copy))?;
        let entry = Entry {
            rawname: manifest.rawname.clone(),
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            file,
            size: bytes.len() as u64,
            sha256,
            group: parts
                .groups
                .group_of(&manifest.rawname)
                .map(|(name, _)| name.to_owned()),
        };
        copied.push((manifest, entry));
    }
    Ok(copied)
}
