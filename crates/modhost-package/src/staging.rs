//! The staging directory: the checks every entry passes whatever the archive format, the
//! writing of files with fixed modes through cap-std, and the move of the module's files
//! into place once module.xml has named the module.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt, Permissions};
use modhost_manifest::Manifest;

use crate::budget::Limits;
use crate::entries::{Admitted, Entries};
use crate::error::{Error, classify, classify_at, refused, too_many_entries};
use crate::escape::{shown, shown_str};
use crate::format::{Format, open};
use crate::manifest::{Place, check_one_manifest, manifest_place, misnamed, parse_manifest};
use crate::tar::unpack_tar;
use crate::zip::unpack_zip;

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
    unpack_synced(package, staging, limits, true)
}

/// [`unpack`] for a package only read and thrown away (describing it, reading its
/// component's imports): the same checks, without syncing every file to disk, which
/// for a package of 10,000 files takes seconds of disk work for nothing.
pub fn unpack_to_read(package: &Path, staging: &Path, limits: &Limits) -> Result<Unpacked, Error> {
    unpack_synced(package, staging, limits, false)
}

/// [`unpack`], syncing what it wrote to disk when `sync` says so.
fn unpack_synced(
    package: &Path,
    staging: &Path,
    limits: &Limits,
    sync: bool,
) -> Result<Unpacked, Error> {
    let (file, format) = open(package)?;
    let mut stage = Stage::new(package, staging, limits, sync)?;
    match format {
        Format::GzipTar => unpack_tar(file, &mut stage)?,
        Format::Zip => unpack_zip(file, &mut stage)?,
    }
    stage.finish(staging)
}

/// The mode of unpacked files and directories, whatever the archive says and whatever the
/// umask: the PBX, running as another user, reads what a module ships.
pub(crate) const FILE_MODE: u32 = 0o644;
/// The mode of unpacked directories (see [`FILE_MODE`]).
pub(crate) const DIR_MODE: u32 = 0o755;

/// `bits` as cap-std's permissions.
fn mode(bits: u32) -> Permissions {
    Permissions::from_std(std::fs::Permissions::from_mode(bits))
}

/// Where entries are unpacked before the module's directory is known (it is named after
/// the rawname, which only module.xml tells when it is at the root). The leading dot
/// makes it no valid rawname, so it never clashes with the final directory.
pub(crate) const UNPACKING: &str = ".unpacking";

/// What an archive entry is, as far as the checks care.
pub(crate) enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// Anything else, described (`a symlink`): always refused.
    Other(String),
}

/// A file entry that passed the checks, to be written.
pub(crate) struct Target {
    /// Its path inside the unpacking directory.
    relative: PathBuf,
    /// Its name as the archive gives it, escaped for messages.
    pub(crate) shown: String,
}

/// A package being unpacked into [`UNPACKING`] inside the staging directory: the checks
/// every entry passes and the writing of files, whatever the archive format.
pub(crate) struct Stage<'a> {
    /// The package file, for messages.
    pub(crate) package: &'a Path,
    /// The limits it is held to.
    pub(crate) limits: &'a Limits,
    staging: Dir,
    /// [`UNPACKING`], opened.
    dir: Dir,
    dirs: DirBuilder,
    /// Every entry so far, held to the rules of [`Entries`].
    checked: Entries,
    entries: usize,
    /// Whether `module.xml` is a file at the archive's root.
    root_manifest: bool,
    /// The top-level directories holding a module.xml file, by their raw names.
    top_manifests: BTreeSet<String>,
    /// The directories made so far, each given [`DIR_MODE`] once.
    made: BTreeSet<PathBuf>,
    /// The files written, synced to disk once the archive is accepted; `None` when
    /// nothing is synced ([`unpack_to_read`]).
    written: Option<Vec<PathBuf>>,
}

impl<'a> Stage<'a> {
    /// Creates [`UNPACKING`] in `staging` and opens both.
    fn new(
        package: &'a Path,
        staging: &Path,
        limits: &'a Limits,
        sync: bool,
    ) -> Result<Self, Error> {
        let io_err = |source| classify(package, "cannot open the staging directory".into(), source);
        let staging = Dir::open_ambient_dir(staging, ambient_authority()).map_err(io_err)?;
        let mut dirs = DirBuilder::new();
        dirs.recursive(true).mode(DIR_MODE);
        staging.create_dir_with(UNPACKING, &dirs).map_err(io_err)?;
        staging
            .set_permissions(UNPACKING, mode(DIR_MODE))
            .map_err(io_err)?;
        let dir = staging.open_dir(UNPACKING).map_err(io_err)?;
        let length = std::fs::metadata(package)
            .map_err(|source| classify(package, "cannot read the archive".into(), source))?
            .len();
        Ok(Stage {
            package,
            limits,
            staging,
            dir,
            dirs,
            checked: Entries::new(limits, length),
            entries: 0,
            root_manifest: false,
            top_manifests: BTreeSet::new(),
            made: BTreeSet::new(),
            written: sync.then(Vec::new),
        })
    }

    /// The refusal of the package for `problem`.
    pub(crate) fn refuse(&self, problem: String) -> Error {
        refused(self.package, problem)
    }

    /// The package's error for an I/O error while doing `context` (see [`classify`]).
    pub(crate) fn io_err(&self, context: String) -> impl FnOnce(io::Error) -> Error + use<'a> {
        let package = self.package;
        move |source| classify(package, context, source)
    }

    /// Counts one more entry against the entry limit.
    pub(crate) fn count(&mut self) -> Result<(), Error> {
        if self.entries >= self.limits.max_entries {
            return Err(too_many_entries(self.package, self.limits));
        }
        self.entries += 1;
        Ok(())
    }

    /// The package's error for an I/O error while reading `shown` (see [`classify_at`]).
    pub(crate) fn io_err_at(
        &self,
        context: String,
        shown: &str,
    ) -> impl FnOnce(io::Error) -> Error + use<'a> {
        let package = self.package;
        let what = format!("`{shown}`");
        move |source| classify_at(package, context, &what, source)
    }

    /// Checks the entry named `raw` (read as `path`, or `None` when the archive's reading
    /// of the name is unsafe) of kind `kind` and declared `size`; creates it when it is a
    /// directory, and returns it when it is a file to write.
    pub(crate) fn admit(
        &mut self,
        raw: &[u8],
        path: Option<&Path>,
        kind: Kind,
        size: u64,
    ) -> Result<Option<Target>, Error> {
        self.count()?;
        // As reading only the manifest refuses it: `scan` and `install` agree. (A zip
        // reader would decode a name without its UTF-8 flag as CP437 and take it.)
        if let Some(refusal) = name_refusal(raw) {
            return Err(self.refuse(refusal));
        }
        let parts = entry_parts(raw, path).map_err(|why| self.refuse(why))?;
        let shown = shown(raw);
        match self
            .checked
            .admit(self.package, raw, &parts, (&kind, size))?
        {
            Admitted::Skipped => Ok(None),
            Admitted::Dir => {
                let relative: PathBuf = parts.iter().collect();
                self.make_dirs(&relative, &shown)?;
                Ok(None)
            }
            Admitted::File => {
                match manifest_place(&parts) {
                    Some(Place::Root) => self.root_manifest = true,
                    Some(Place::Top) => {
                        self.top_manifests.insert(parts[0].clone());
                    }
                    None => {}
                }
                let relative: PathBuf = parts.iter().collect();
                Ok(Some(Target { relative, shown }))
            }
        }
    }

    /// Writes `target` from `content`, with [`FILE_MODE`] and its parents with
    /// [`DIR_MODE`].
    pub(crate) fn write(&mut self, target: &Target, mut content: impl Read) -> Result<(), Error> {
        let Target { relative, shown } = target;
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.make_dirs(parent, shown)?;
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
        // The umask may have taken bits from the mode the file was created with.
        out.set_permissions(mode(FILE_MODE))
            .map_err(self.io_err(format!("cannot create `{shown}`")))?;
        io::copy(&mut content, &mut out)
            .map_err(self.io_err_at(format!("cannot unpack `{shown}`"), shown))?;
        if let Some(written) = &mut self.written {
            written.push(relative.clone());
        }
        Ok(())
    }

    /// Creates `relative` and its missing parents, each with exactly [`DIR_MODE`]: the
    /// umask may have taken bits from the mode they were created with.
    fn make_dirs(&mut self, relative: &Path, shown: &str) -> Result<(), Error> {
        self.dir
            .create_dir_with(relative, &self.dirs)
            .map_err(self.io_err(format!("cannot create `{shown}`")))?;
        let new: Vec<PathBuf> = relative
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty() && !self.made.contains(*a))
            .map(Path::to_path_buf)
            .collect();
        for made in new {
            self.dir
                .set_permissions(&made, mode(DIR_MODE))
                .map_err(self.io_err(format!("cannot create `{shown}`")))?;
            self.made.insert(made);
        }
        Ok(())
    }

    /// Makes the files written durable, once the whole archive was accepted: a package
    /// refused at its 10,000th entry cost 10,000 syncs, 14 s of disk work, before.
    fn sync_written(&self) -> Result<(), Error> {
        for relative in self.written.iter().flatten() {
            self.dir
                .open(relative)
                .and_then(|file| file.sync_all())
                .map_err(self.io_err(format!("cannot write `{}` to disk", relative.display())))?;
        }
        Ok(())
    }

    /// Reads module.xml, checks the layout against it and moves the module's files to
    /// `<staging>/<rawname>`.
    fn finish(self, staging: &Path) -> Result<Unpacked, Error> {
        // With module.xml at the root, the whole archive is the module's directory;
        // otherwise its one top-level directory is.
        let top = self
            .checked
            .layout
            .module_dir(self.root_manifest)
            .map_err(|problem| self.refuse(problem))?;
        let xml: PathBuf = top
            .iter()
            .map(String::as_str)
            .chain(["module.xml"])
            .collect();
        let shown = shown_str(&xml.display().to_string());
        let joined: Vec<&str> = top
            .iter()
            .map(String::as_str)
            .chain(["module.xml"])
            .collect();
        let is_file = self.dir.metadata(&xml).is_ok_and(|m| m.is_file());
        if !self.checked.layout.is_file_entry(&joined.join("/")) || !is_file {
            return Err(self.refuse(self.checked.layout.missing_manifest()));
        }
        let source = self
            .dir
            .read(&xml)
            .map_err(self.io_err("cannot read module.xml".into()))?;
        let manifest = parse_manifest(self.package, &source, &shown)?;
        if top.is_none() {
            check_one_manifest(self.package, &manifest, &self.top_manifests)?;
        }
        let rawname = manifest.rawname.clone();
        if let Some(top) = &top
            && *top != rawname
        {
            return Err(misnamed(self.package, &manifest, top));
        }
        self.sync_written()?;
        let moved = match &top {
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
            let dir = std::fs::symlink_metadata(&component).is_ok_and(|m| m.is_dir());
            let php = std::fs::read_dir(&module_dir).ok().and_then(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                    .filter(|name| is_php(name))
                    .min()
                    .map(|name| format!("{rawname}/{name}"))
            });
            return Err(self.refuse(missing_component(
                &rawname,
                &manifest.component,
                dir,
                php.as_deref(),
            )));
        }
        Ok(Unpacked {
            dir: module_dir,
            manifest,
            component,
        })
    }
}

/// Why a package cannot be installed that lacks its component: one that is a directory
/// (`dir`) is said to be, and a FreePBX module as its mirror serves it (PHP, `php` one of
/// its files) is said as that, and what modhost runs.
pub(crate) fn missing_component(
    rawname: &str,
    component: &str,
    dir: bool,
    php: Option<&str>,
) -> String {
    if dir {
        return format!("component `{rawname}/{component}` is a directory, not a file");
    }
    match php {
        Some(php) => format!(
            "component `{rawname}/{component}` is missing: the package holds PHP (`{php}`), \
             as a FreePBX module does, and modhost runs a WebAssembly component built \
             against its WIT, not PHP"
        ),
        None => format!("component `{rawname}/{component}` is missing"),
    }
}

/// Whether the file `name` (its last part) is PHP source.
pub(crate) fn is_php(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("php"))
}

/// The refusal of an entry named `raw` longer than the limits allow, if it is.
pub(crate) fn path_len_refusal(raw: &[u8], limits: &Limits) -> Option<String> {
    (raw.len() > limits.max_path_len).then(|| {
        format!(
            "entry path longer than {} bytes: `{}` is {} bytes long; shorten it",
            limits.max_path_len,
            shown(raw),
            raw.len()
        )
    })
}

/// The refusal of an entry that is neither a regular file nor a directory (`what`
/// says what it is), worded once for unpacking and for reading a package's module.xml.
pub(crate) fn not_regular(shown: &str, what: &str) -> String {
    format!("entry `{shown}` is {what}; only regular files and directories are allowed")
}

/// Whether `parts` name what a desktop adds to an archive beside a module: macOS Finder's
/// `__MACOSX/` tree, its `._NAME` AppleDouble files and `.DS_Store`. They are left out,
/// so that a zip made by right-clicking a folder installs.
pub(crate) fn is_desktop_metadata(parts: &[String]) -> bool {
    parts.first().is_some_and(|first| first == "__MACOSX")
        || parts
            .last()
            .is_some_and(|last| last == ".DS_Store" || last.starts_with("._"))
}

/// Why reading a package's manifest refuses the entry named `raw` without unpacking it,
/// as unpacking would: a `\\` ([`backslash_refusal`]), a Windows drive (`c:`), a name
/// that is not UTF-8, or a control character in it.
pub(crate) fn name_refusal(raw: &[u8]) -> Option<String> {
    if let Some(refusal) = backslash_refusal(raw) {
        return Some(refusal);
    }
    let shown = shown(raw);
    // `c:x` is a file's name on Unix, and on Windows the path `x` on drive C: which tar
    // and zip readers would each take their own way, so both refuse it. Other colons
    // (`at-12:30.txt`) name nothing but a file.
    let drive = raw
        .split(|&b| b == b'/')
        .find(|part| matches!(part, [letter, b':', ..] if letter.is_ascii_alphabetic()));
    if let Some(drive) = drive {
        return Some(format!(
            "entry `{shown}` names a Windows drive (`{}`) in its path; rename the file and \
             repack the module",
            String::from_utf8_lossy(&drive[..2])
        ));
    }
    match std::str::from_utf8(raw) {
        Err(_) => Some(format!(
            "entry `{shown}` has a name that is not UTF-8 (shown here with its bytes \
             escaped); give the file a UTF-8 name and repack the module"
        )),
        Ok(name) if name.chars().any(char::is_control) => Some(format!(
            "entry `{shown}` has a control character in its name; rename the file and \
             repack the module"
        )),
        Ok(name) => name.chars().find(|&c| is_bidi_control(c)).map(|c| {
            format!(
                "entry `{shown}` has a bidirectional-text control (U+{:04X}) in its name, \
                 which makes it display as another name; rename the file and repack the \
                 module",
                u32::from(c)
            )
        }),
    }
}

/// Whether `c` reorders the text around it (Unicode's bidirectional controls): a name
/// holding one shows as another, as "Trojan Source" showed of code.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Why the entry named `raw` is refused if its name holds a `\\`: tar would take
/// `..\\..\\evil.txt` for one odd file name and zip refuse it, so both refuse it, saying
/// what wrote it. Unpacking and reading a package's manifest refuse it alike.
pub(crate) fn backslash_refusal(raw: &[u8]) -> Option<String> {
    raw.contains(&b'\\').then(|| {
        format!(
            "entry `{}` separates its path with `\\`, as Windows tools write it; repack the \
             module with `/` separators (`modhost pack` does)",
            shown(raw)
        )
    })
}

/// The parts of the entry named `raw` (`path` as the archive's reader decodes it), or
/// why it has none: an absolute path or one with `..`, or a name that is not UTF-8.
/// Reading only the manifest refuses what unpacking refuses, so that `manifest`, `scan`
/// and `install` agree.
pub(crate) fn entry_parts(raw: &[u8], path: Option<&Path>) -> Result<Vec<String>, String> {
    path.and_then(relative_parts).ok_or_else(|| {
        let shown = shown(raw);
        let utf8 = std::str::from_utf8(raw).is_ok() && path.is_none_or(|p| p.to_str().is_some());
        if utf8 {
            format!("entry `{shown}` is not a relative path inside the package")
        } else {
            format!(
                "entry `{shown}` has a name that is not UTF-8 (shown here with its bytes \
                 escaped); give the file a UTF-8 name and repack the module"
            )
        }
    })
}

/// The normal components of a relative path, or `None` for absolute paths and `..`.
pub(crate) fn relative_parts(path: &Path) -> Option<Vec<String>> {
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
