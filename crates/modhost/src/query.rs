//! Read-only questions about a root: what is installed, what the package directory
//! offers, a module's details, its stores and tables, who depends on whom. None of them
//! takes the root's lock: readers never wait for a change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modhost_manifest::Manifest;
use modhost_state::{ModuleRecord, Rows, Status};

use crate::depends::{self, DependencyReport};
use crate::host::Host;
use crate::{Error, Result, packages, plan};

/// A module the package directory holds a package of, that is not installed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotInstalled {
    /// The module's rawname.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The package's version.
    pub version: String,
    /// Always [`Status::NotInstalled`]: there so that every line of `list` has one.
    pub status: Status,
    /// Where the package is.
    pub reason: String,
    /// The package file.
    #[serde(serialize_with = "crate::serialize::path")]
    pub package: PathBuf,
}

/// One line of `list`: an installed module, or one the package directory offers.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Listed {
    /// A module with a record.
    Installed(ModuleRecord),
    /// A package nobody installed.
    NotInstalled(NotInstalled),
}

impl Listed {
    /// The module's rawname, name, version, status and the reason for the status.
    pub fn summary(&self) -> (&str, &str, &str, Status, Option<&str>) {
        match self {
            Listed::Installed(r) => (
                &r.rawname,
                &r.name,
                &r.version,
                r.status,
                r.reason.as_deref(),
            ),
            Listed::NotInstalled(n) => (
                &n.rawname,
                &n.name,
                &n.version,
                n.status,
                Some(n.reason.as_str()),
            ),
        }
    }
}

/// Everything known about an installed module.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModuleInfo {
    /// Its record.
    #[serde(flatten)]
    pub record: ModuleRecord,
    /// Its module.xml.
    pub manifest: Manifest,
    /// The version a rollback returns to, if one is kept.
    pub backup_version: Option<String>,
    /// Why that backup cannot be rolled back to (its files are gone), if it cannot. Only
    /// their presence is looked at here; a rollback also checks its component's digest.
    pub backup_unusable: Option<String>,
    /// The tables it owns.
    pub tables: Vec<String>,
    /// The running modules that depend on it.
    pub dependents: Vec<String>,
    /// Its requirements that what is installed no longer meets (a dependency disabled or
    /// removed with `force`), each said in full.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<String>,
    /// The host directories it was granted (its `<capabilities>` say what it asks for).
    pub grants: Vec<Grant>,
    /// The update source it was installed from, which alone updates it.
    pub source: Option<String>,
    /// What it keeps in the state (its key-value store and tables), in bytes.
    pub state_used: u64,
    /// What it may keep there: its quota, in bytes.
    pub state_quota: u64,
    /// What it keeps in `/data` and the granted directories it may write, in bytes.
    pub data_used: u64,
    /// Files, directories and links it keeps there.
    pub data_entries: u64,
    /// What it may keep there, in bytes.
    pub data_quota: u64,
    /// How many files, directories and links it may keep there.
    pub data_entry_quota: u64,
    /// The interfaces its component imports (WASI, `modhost:module`, the application's),
    /// read from the component without compiling it; empty when its files are gone.
    pub imports: Vec<String>,
    /// The functions its component exports (`lifecycle.install`, `hooks.handle`…), read
    /// without compiling it; empty when its component cannot be read.
    pub exports: Vec<String>,
    /// Why this host would not run its component (an import it does not provide, a
    /// `modhost:module` version it does not run), when it would not: a root shared with
    /// an application that gives modules an API this one does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// What its imports and exports mean for it, for an administrator or author who would
    /// wonder (sockets linked with the network off, componentize-py's `exports.init`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a component's `imports` and `exports` mean for it, where a newcomer would wonder.
pub(crate) fn surface_notes(imports: &[String], exports: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    if imports.iter().any(|i| i.starts_with("wasi:sockets/")) {
        notes.push(
            "wasi:sockets is linked with every network switched off: a module cannot open a \
             connection",
        );
    }
    if imports.iter().any(|i| i.starts_with("wasi:filesystem/")) {
        notes.push("its only directories are /data and those it was granted");
    }
    if exports.iter().any(|e| e == "exports.init") {
        notes.push(
            "`exports.init` is componentize-py's own: it ran once, when the component was \
             built, to start Python; modhost never calls it",
        );
    }
    notes.into_iter().map(str::to_owned).collect()
}

/// What [`Host::describe`] finds of a module: installed, or offered by the package
/// directory.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Described {
    /// Installed: everything known about it.
    Installed(Box<ModuleInfo>),
    /// Not installed, but a package of the package directory holds it.
    Offered(Box<Offered>),
}

/// A module the package directory offers, as `info` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Offered {
    /// The package and its module.
    #[serde(flatten)]
    pub module: NotInstalled,
    /// Its component's imports, and why this host would refuse it, if it would.
    #[serde(flatten)]
    pub component: ComponentImports,
    /// Its module.xml, as modhost reads it.
    pub manifest: Manifest,
    /// Its requirements that what is installed does not meet, each said in full.
    pub unmet: Vec<String>,
    /// Why installing it by name is refused, when a package of the directory that cannot
    /// be read may hold a newer version of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// A host directory a module was granted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The directory, as its module.xml names it (and as the module sees it).
    pub path: String,
    /// Whether the module may only read it.
    pub read_only: bool,
    /// Whether a granted directory is no longer there (removed after it was granted): the
    /// module runs without it. Said in JSON only when it is so.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

/// What a package's or module directory's component imports, read without compiling it,
/// and why this host would refuse it, if it would.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComponentImports {
    /// The interfaces it imports (WASI, `modhost:module`, an application's).
    pub imports: Vec<String>,
    /// Why installing it here would be refused: a `modhost:module` version this host does
    /// not run, or an import nobody provides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Whether every host would refuse it so, whatever capabilities its application
    /// gives ([`RuntimeError::refused_by_any_host`](crate::RuntimeError::refused_by_any_host)).
    #[serde(skip)]
    pub by_any_host: bool,
}

impl Host {
    /// The imports of the component of the package or module directory at `path`, read
    /// without compiling it, checked against what this host provides; `None` for a
    /// module.xml alone, which names a component it does not hold, or a module directory
    /// not built yet.
    pub fn component_imports(&self, path: &Path) -> Result<Option<ComponentImports>> {
        let staging;
        let (component, bytes) = if path.is_dir() {
            let manifest = packages::read_manifest(path)?;
            let component = path.join(&manifest.component);
            // A module's source directory before its first build holds no component yet.
            if std::fs::symlink_metadata(&component).is_err() {
                return Ok(None);
            }
            let bytes = modhost_package::read_component(path, &manifest.component)?;
            (component, bytes)
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        {
            return Ok(None);
        } else {
            staging = self.layout.staging_dir()?;
            let unpacked =
                modhost_package::unpack_to_read(path, staging.path(), &Default::default())?;
            let bytes = std::fs::read(&unpacked.component).map_err(|source| Error::Io {
                path: unpacked.component.clone(),
                source,
            })?;
            (path.to_owned(), bytes)
        };
        // Read once; a component that cannot be read is refused in check_imports's words.
        let (imports, refused) = match modhost_runtime::top_level(&bytes) {
            Ok(names) => {
                let refused = self.runtime.check_read(&component, &bytes, &names).err();
                (names.imports, refused)
            }
            Err(_) => (
                Vec::new(),
                self.runtime.check_imports(&component, &bytes).err(),
            ),
        };
        Ok(Some(ComponentImports {
            imports,
            by_any_host: refused
                .as_ref()
                .is_some_and(modhost_runtime::Error::refused_by_any_host),
            refused: refused.map(|e| e.to_string()),
        }))
    }

    /// Every installed module, by rawname.
    pub fn list(&self) -> Result<Vec<ModuleRecord>> {
        Ok(self.state.modules()?)
    }

    /// Every installed module and, after them in rawname order, every module the package
    /// directory `from` (default: the configured one) offers that is not installed.
    /// A running module whose component this host would not run (it imports an
    /// application's API this host was not given, on a root shared with that application)
    /// has that for its reason.
    pub fn list_all(&self, from: Option<&Path>) -> Result<Vec<Listed>> {
        let mut installed = self.state.modules()?;
        self.give_list_reasons(&mut installed);
        let (offered, _) = self.offered(from, &installed)?;
        let mut listed: Vec<Listed> = installed.into_iter().map(Listed::Installed).collect();
        listed.extend(offered.into_iter().map(Listed::NotInstalled));
        Ok(listed)
    }

    /// The component file of installed module `record`, whose module.xml is `manifest`.
    pub(crate) fn installed_component(
        &self,
        record: &ModuleRecord,
        manifest: &Manifest,
    ) -> PathBuf {
        self.layout
            .module_dir(&record.rawname, &record.module_dir)
            .join(&manifest.component)
    }

    /// The modules package directory `from` (default: the configured one) holds packages
    /// of and that are not installed: their status is `not-installed`. Empty without a
    /// package directory.
    pub fn not_installed(&self, from: Option<&Path>) -> Result<Vec<NotInstalled>> {
        Ok(self.offered(from, &self.state.modules()?)?.0)
    }

    /// What [`Host::not_installed`] returns, given the installed modules, and the packages
    /// of the directory that cannot be read.
    fn offered(
        &self,
        from: Option<&Path>,
        installed: &[ModuleRecord],
    ) -> Result<(Vec<NotInstalled>, Vec<packages::Unreadable>)> {
        let dir = match (from, self.packages.as_deref()) {
            (Some(dir), _) => packages::package_dir(dir)?,
            // The configured directory not made yet (or on a drive not mounted) leaves the
            // installed modules to list, and is said.
            (None, Some(dir)) if !dir.is_dir() => {
                let what = match dir.exists() {
                    true => "is a file, not a directory",
                    false => "is not there",
                };
                tracing::warn!(
                    "the package directory `{}` (modhost.toml's `packages`) {what}; listing only what is installed",
                    dir.display()
                );
                return Ok(Default::default());
            }
            (None, Some(dir)) => dir,
            (None, None) => return Ok(Default::default()),
        };
        let (newest, unreadable) = packages::read_warned(dir, &self.skipped)?;
        let offered = newest
            .into_values()
            .filter(|(_, manifest)| !installed.iter().any(|r| r.rawname == manifest.rawname))
            .map(|(package, manifest)| NotInstalled {
                reason: format!("package `{}`", package.display()),
                rawname: manifest.rawname,
                name: manifest.name,
                version: manifest.version.to_string(),
                status: Status::NotInstalled,
                package,
            })
            .collect();
        Ok((offered, unreadable))
    }

    /// The installed module `rawname`, if any.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        Ok(self.state.module(rawname)?)
    }

    /// What `info` shows of `rawname`: the installed module in full, or else the module
    /// a package of the package directory (`from`, or the configured one) offers.
    pub fn describe(&self, rawname: &str, from: Option<&Path>) -> Result<Described> {
        // A directory named that is not there is a slip to say, even where an installed
        // module needs none.
        if let Some(dir) = from {
            packages::package_dir(dir)?;
        }
        match self.info(rawname) {
            Err(Error::NotInstalled(..)) if !modhost_manifest::is_valid_rawname(rawname) => {
                Err(Error::NotARawname(rawname.to_owned()))
            }
            Err(Error::NotInstalled(..)) => {
                let (offered, unreadable) = self.offered(from, &self.state.modules()?)?;
                let dir = from.or(self.packages.as_deref());
                let module = offered
                    .into_iter()
                    .find(|m| m.rawname == rawname)
                    .ok_or_else(|| match dir {
                        // Looked for in the package directory too: said, naming it, and
                        // why a package of it there is not used, when one is.
                        Some(dir) => Error::NotOffered {
                            rawname: rawname.to_owned(),
                            dir: dir.to_owned(),
                            unused: unreadable
                                .iter()
                                .find(|u| u.rawname.as_deref() == Some(rawname))
                                .map(|u| u.error.clone()),
                        },
                        None => {
                            Error::NotInstalled(rawname.to_owned(), self.installed_near(rawname))
                        }
                    })?;
                // A package that cannot be read says so where the imports would be.
                let component = match self.component_imports(&module.package) {
                    Ok(component) => component.unwrap_or_default(),
                    Err(e) => ComponentImports {
                        imports: Vec::new(),
                        refused: Some(e.to_string()),
                        by_any_host: true,
                    },
                };
                let manifest = packages::read_manifest(&module.package)?;
                let blocked = packages::shadowing(&unreadable, rawname, Some(&manifest.version));
                let unmet = self.check_depends_in(&manifest, dir)?.failures();
                Ok(Described::Offered(Box::new(Offered {
                    module,
                    component,
                    manifest,
                    unmet,
                    blocked,
                })))
            }
            info => info.map(|info| Described::Installed(Box::new(info))),
        }
    }

    /// Everything known about installed module `rawname`.
    pub fn info(&self, rawname: &str) -> Result<ModuleInfo> {
        let record = self.installed(rawname)?;
        let grants = self.state.grants(rawname)?;
        let mut writable = vec![self.layout.data_dir(rawname, &record.data_dir)];
        writable.extend(
            grants
                .iter()
                .filter(|(_, read_only)| !read_only)
                .map(|(path, _)| PathBuf::from(path)),
        );
        let data_used = modhost_runtime::disk_usage(&writable).map_err(|source| Error::Io {
            path: writable[0].clone(),
            source,
        })?;
        let data_quota = self.dispatcher.disk_quota(rawname);
        let manifest = record.parse_manifest()?;
        let component = self.installed_component(&record, &manifest);
        // Read, never compiled: a broken module's files may be gone, and its record is
        // still worth showing.
        let read = std::fs::read(&component).ok().and_then(|bytes| {
            let read = self.runtime.read_component(&component, &bytes).ok()?;
            Some((read.imports, read.exports.unwrap_or_default(), read.refused))
        });
        let (imports, exports, refused) = read.unwrap_or_default();
        let backup = self.state.backup(rawname)?;
        // Only a running module's: a disabled one is checked again when enabled.
        let unmet = match record.status.runs() {
            true => self.check_depends(&manifest)?.failures(),
            false => Vec::new(),
        };
        Ok(ModuleInfo {
            notes: surface_notes(&imports, &exports),
            imports,
            exports,
            refused: refused.map(|e| e.to_string()),
            manifest,
            backup_version: backup.as_ref().map(|b| b.record.version.clone()),
            backup_unusable: backup.and_then(|b| {
                crate::recover::backup_unusable(
                    &self.layout,
                    &b.record,
                    crate::recover::Check::Present,
                )
            }),
            tables: self.state.tables(rawname)?,
            dependents: plan::dependents(rawname, &self.state.modules()?)?,
            unmet,
            grants: grants
                .into_iter()
                .map(|(path, read_only)| Grant {
                    // A package an application gives is granted too, and is no directory.
                    missing: path.starts_with('/') && !Path::new(&path).is_dir(),
                    path,
                    read_only,
                })
                .collect(),
            source: self.state.module_source(rawname)?,
            state_used: self.state.module_usage(rawname)?,
            state_quota: self.state.quota_of(rawname),
            data_used: data_used.bytes,
            data_entries: data_used.entries,
            data_quota: data_quota.bytes,
            data_entry_quota: data_quota.entries,
            record,
        })
    }

    /// The entries of an installed module's key-value store.
    pub fn kv_entries(&self, rawname: &str) -> Result<Vec<(String, String)>> {
        self.installed(rawname)?;
        Ok(self.state.kv_entries(rawname)?)
    }

    /// The rows of a table an installed module owns.
    pub fn table_rows(&self, rawname: &str, table: &str) -> Result<Rows> {
        self.installed(rawname)?;
        Ok(self.state.table_rows(rawname, table)?)
    }

    /// The module.xml of installed module `rawname`.
    pub fn installed_manifest(&self, rawname: &str) -> Result<Manifest> {
        Ok(self.installed(rawname)?.parse_manifest()?)
    }

    /// The running modules that depend on `rawname`: also when it is not installed (deleted
    /// with `force`), for an administrator to see whom that left unmet; a module neither
    /// installed nor depended on is not installed.
    pub fn reverse_dependencies(&self, rawname: &str) -> Result<Vec<String>> {
        let installed = self.installed(rawname);
        let dependents = plan::dependents(rawname, &self.state.modules()?)?;
        match installed {
            Err(Error::NotInstalled(..)) if !dependents.is_empty() => Ok(dependents),
            Err(e) => Err(e),
            Ok(_) => Ok(dependents),
        }
    }

    /// Checks every constraint of `manifest` against the installed modules and the
    /// platform, without changing anything.
    pub fn check_depends(&self, manifest: &Manifest) -> Result<DependencyReport> {
        self.check_depends_in(manifest, self.packages.as_deref())
    }

    /// [`Host::check_depends`], telling what is missing but in the package directory
    /// `dir` from what is nowhere.
    fn check_depends_in(
        &self,
        manifest: &Manifest,
        dir: Option<&Path>,
    ) -> Result<DependencyReport> {
        let installed = self.state.modules()?;
        let packaged = self.packaged_in(&[manifest], &installed, dir);
        let available = depends::available(&installed, &packaged);
        Ok(depends::check(manifest, &available, &self.platform))
    }

    /// What the package directory holds of the modules `manifests` require but nobody
    /// installed, so that a refusal can tell "not installed" from "not present at all".
    /// Empty without a package directory; the directory is read only when something is
    /// missing.
    pub(crate) fn packaged(
        &self,
        manifests: &[&Manifest],
        installed: &[ModuleRecord],
    ) -> BTreeMap<String, depends::Packaged> {
        self.packaged_in(manifests, installed, self.packages.as_deref())
    }

    /// [`Host::packaged`], of the package directory `dir`.
    pub(crate) fn packaged_in(
        &self,
        manifests: &[&Manifest],
        installed: &[ModuleRecord],
        dir: Option<&Path>,
    ) -> BTreeMap<String, depends::Packaged> {
        let missing = depends::missing(manifests, installed);
        let Some(dir) = dir.filter(|_| !missing.is_empty()) else {
            return BTreeMap::new();
        };
        let (mut found, unreadable) = match packages::read_warned(dir, &self.skipped) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!("cannot read the package directory: {e}");
                return BTreeMap::new();
            }
        };
        missing
            .into_iter()
            .map(|name| {
                let packaged = match found.remove(&name) {
                    Some((_, manifest)) => depends::Packaged::Version(manifest.version),
                    None => match packages::named_as(&unreadable, &name, None) {
                        Some(cut) => depends::Packaged::Unreadable(format!(
                            "`{}` may hold it but cannot be read: {}",
                            cut.package.display(),
                            cut.reason()
                        )),
                        None => depends::Packaged::Nothing,
                    },
                };
                (name, packaged)
            })
            .collect()
    }

    /// The package for each of `names`: a package file as given, or the newest package of
    /// that module in `from` (else the configured package directory).
    pub fn resolve_packages(
        &self,
        names: &[impl AsRef<std::ffi::OsStr>],
        from: Option<&Path>,
    ) -> Result<Vec<PathBuf>> {
        packages::resolve(names, from.or(self.packages.as_deref()), &self.skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::surface_notes;

    #[test]
    fn the_notes_explain_sockets_and_componentize_pys_init() {
        let imports = vec!["wasi:sockets/tcp@0.2.9".to_owned()];
        let exports = vec!["hooks.handle".to_owned(), "exports.init".to_owned()];
        let found = surface_notes(&imports, &exports);
        assert!(found.iter().any(|n| n.contains("network switched off")));
        assert!(found.iter().any(|n| n.contains("componentize-py's own")));
        assert!(surface_notes(&[], &["hooks.handle".to_owned()]).is_empty());
    }
}
