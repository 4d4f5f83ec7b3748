//! Installing and upgrading a batch of packages as one unit: unpack and check every
//! package, plan the batch, compile every component, then apply the plan in one
//! transaction, dependencies first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modhost_manifest::Manifest;
use modhost_package::Unpacked;
use modhost_runtime::{Call, LoadedComponent};
use modhost_state::{ModuleRecord, Status};

use super::Transaction;
use crate::depends::{self, Outcome};
use crate::host::Host;
use crate::layout::{self, io};
use crate::lock::RootLock;
use crate::packages;
use crate::plan::{self, Mode, Step};
use crate::{Action, Change, Error, Event, Options, Result, fault};

/// Installs or upgrades (as `mode` allows) `packages` as one unit; `origin` names the
/// update source each module came from, if any; `dir` is the package directory they were
/// chosen from, where a refusal looks for what they require (else the configured one).
pub(crate) fn apply(
    host: &Host,
    packages: &[PathBuf],
    mode: Mode,
    options: Options,
    origin: &BTreeMap<String, String>,
    dir: Option<&Path>,
) -> Result<Vec<Change>> {
    let lock = host.lock()?;
    apply_locked(host, &lock, packages, mode, options, origin, dir)
}

/// The version each installed module of `batch` would return to on a rollback, for those
/// the batch would downgrade: what their refusal names.
fn kept_for_rollback(
    host: &Host,
    batch: &[&Manifest],
    installed: &[ModuleRecord],
) -> Result<BTreeMap<String, String>> {
    let mut kept = BTreeMap::new();
    for manifest in batch {
        let downgraded = installed.iter().any(|r| {
            r.rawname == manifest.rawname
                && modhost_manifest::Version::parse(&r.version)
                    .is_ok_and(|current| current > manifest.version)
        });
        if let Some(backup) = downgraded
            .then(|| host.state.backup(&manifest.rawname))
            .transpose()?
            .flatten()
        {
            kept.insert(manifest.rawname.clone(), backup.record.version);
        }
    }
    Ok(kept)
}

/// [`apply`] for a caller that already holds the root's lock.
pub(crate) fn apply_locked(
    host: &Host,
    lock: &RootLock,
    packages: &[PathBuf],
    mode: Mode,
    options: Options,
    origin: &BTreeMap<String, String>,
    dir: Option<&Path>,
) -> Result<Vec<Change>> {
    let mut staged = Vec::new();
    for package in packages {
        host.report(Event::Unpacking {
            package: package.clone(),
        });
        staged.push(stage(host, package, modhost_package::unpack)?);
    }
    let manifests: Vec<&Manifest> = staged.iter().map(|s| &s.unpacked.manifest).collect();
    let installed = host.state.modules()?;
    let plan = plan::plan(
        &manifests,
        &installed,
        &kept_for_rollback(host, &manifests, &installed)?,
        &host.packaged_in(&manifests, &installed, dir.or(host.packages.as_deref())),
        &host.platform,
        mode,
        options.force,
        options.reinstall,
    )?;
    let mut left = Vec::with_capacity(plan.unchanged.len());
    for index in &plan.unchanged {
        let unpacked = &staged[*index].unpacked;
        let recorded = installed
            .iter()
            .find(|r| r.rawname == unpacked.manifest.rawname);
        let component = modhost_runtime::sha256_of(&unpacked.component).is_ok_and(|digest| {
            recorded.is_some_and(|recorded| recorded.component_sha256 != digest)
        });
        let xml = module_xml_text(&unpacked.dir.join("module.xml"))
            .is_ok_and(|xml| recorded.is_some_and(|recorded| recorded.manifest != xml));
        let differs = match (component, xml) {
            (true, true) => Some("component and module.xml"),
            (true, false) => Some("component"),
            (false, true) => Some("module.xml"),
            (false, false) => None,
        };
        let (rawname, version) = (
            &unpacked.manifest.rawname,
            unpacked.manifest.version.to_string(),
        );
        left.push(unchanged(rawname, &version, differs));
        host.report(Event::Unchanged {
            rawname: rawname.clone(),
            version,
            differs,
        });
    }
    let plan = plan.steps;
    // A change that fails leaves no trace, not even the code it compiled.
    let mut tx = Transaction::new(host, lock, "apply");
    // A module left as it is still takes the grants asked for with it: what its installed
    // module.xml asks, as granting it would.
    if options.grant {
        for change in &mut left {
            let manifest = host.installed(&change.rawname)?.parse_manifest()?;
            change.requests = super::requests(host, tx.state()?, &manifest, true)?;
        }
    }
    let mut components = Vec::with_capacity(plan.len());
    let mut warned = Vec::with_capacity(plan.len());
    // An import that needs a grant nobody gives, or that this host does not provide, is
    // refused before anything is compiled: what the components import is read from their
    // bytes, so a batch's bad package is named in milliseconds, not after the others
    // compiled.
    for (index, _) in &plan {
        let unpacked = &staged[*index].unpacked;
        check_before_compiling(host, &packages[*index], unpacked, options.grant)?;
    }
    // A `framework` dependency is a module's when one is installed or comes with this
    // batch, and the platform's only otherwise: only then can it go unchecked.
    let none = BTreeMap::new();
    let available = depends::with_planned(&installed, &none, &manifests);
    for (index, _) in &plan {
        let unpacked = &staged[*index].unpacked;
        warned.push(warn_about(host, &unpacked.manifest, &available));
        // A batch's compiles take seconds each: Ctrl-C is looked at between them.
        host.check_interrupted()?;
        let component = load_unpacked(host, &packages[*index], unpacked)?;
        tx.loaded(&component);
        components.push(component);
    }
    for (_, step) in &plan {
        if let Step::Upgrade(previous) = step {
            tx.superseding(&previous.rawname)?;
        }
    }
    let mut changes = Vec::new();
    for (((index, step), component), warnings) in plan.into_iter().zip(&components).zip(warned) {
        let unpacked = &staged[index].unpacked;
        let source = origin.get(&unpacked.manifest.rawname).map(String::as_str);
        let change = apply_one(host, &mut tx, step, unpacked, component, options, source)?;
        changes.push(Change { warnings, ..change });
    }
    tx.commit()?;
    changes.extend(left);
    Ok(changes)
}

/// The record of a module left as it is, its package being of the installed version;
/// `differs` says what of the package is not what is installed.
pub(crate) fn unchanged(rawname: &str, version: &str, differs: Option<&str>) -> Change {
    let mut change = Change::plain(
        rawname,
        Action::Unchanged,
        Some(version.to_owned()),
        Some(version.to_owned()),
    );
    if let Some(what) = differs {
        change.warnings.push(format!(
            "the package's {what} differs from the installed one of the same version: \
             raise <version> to upgrade to it, or reinstall it"
        ));
    }
    change
}

/// Installs or upgrades one module of the plan inside `tx`: a new data directory (a copy,
/// for an upgrade), its schema, its `install()` or `upgrade()`, its files beside the old
/// ones, and its record switched (bound to update source `source`, if it came from one).
fn apply_one(
    host: &Host,
    tx: &mut Transaction<'_>,
    step: Step,
    unpacked: &Unpacked,
    component: &LoadedComponent,
    options: Options,
    source: Option<&str>,
) -> Result<Change> {
    let manifest = &unpacked.manifest;
    let rawname = manifest.rawname.as_str();
    let version = manifest.version.to_string();
    let operation = match step {
        Step::Install => "install",
        Step::Upgrade(_) => "upgrade",
    };
    fault::point(operation, "begin");
    host.layout.owned(rawname)?;
    let data_dir = layout::unique_name("data");
    let data_path = host.layout.data_dir(rawname, &data_dir);
    tx.creating(&data_path)?;
    let call = match &step {
        Step::Install => {
            layout::create_dirs(&data_path, layout::PUBLIC_DIR)?;
            super::running(host, "Installing", rawname, &version);
            Call::Install
        }
        Step::Upgrade(previous) => {
            layout::copy_tree(
                rawname,
                &host.layout.data_dir(rawname, &previous.data_dir),
                &data_path,
            )?;
            if previous.status == Status::Broken || previous.version == version {
                // Nothing to roll back to in a broken version, nor in the same version
                // reinstalled: the kept backup (if any) stays the version before it, which
                // a rollback still returns to.
                tx.replacing(host.layout.module_dir(rawname, &previous.module_dir));
                tx.replacing(host.layout.data_dir(rawname, &previous.data_dir));
            } else {
                if let Some(old) = tx.state()?.backup(rawname)? {
                    tx.replacing(host.layout.module_dir(rawname, &old.record.module_dir));
                    tx.replacing(host.layout.data_dir(rawname, &old.record.data_dir));
                }
                tx.state()?.keep_backup(previous)?;
            }
            super::running(
                host,
                if previous.version == version {
                    "Reinstalling"
                } else {
                    "Upgrading"
                },
                rawname,
                &format!("{} -> {version}", previous.version),
            );
            crate::online::warn_if_unpinned(previous, manifest);
            Call::Upgrade {
                from: &previous.version,
            }
        }
    };
    fault::point(operation, "data-staged");
    let requests = super::requests(host, tx.state()?, manifest, options.grant)?;
    let granted = tx.state()?.grants(rawname)?;
    let imports = component.imports(host.runtime.engine());
    super::check_imports_granted(host, manifest, &imports, &granted)?;
    tx.state()?.apply_schema(rawname, &manifest.database)?;
    fault::point(operation, "schema-applied");
    tx.call(component, rawname, &version, &data_path, &call)?;
    fault::point(operation, "lifecycle-called");
    let module_dir = layout::unique_name(&version);
    let target = host.layout.module_dir(rawname, &module_dir);
    tx.creating(&target)?;
    layout::move_into_place(&unpacked.dir, &target)?;
    fault::point(operation, "files-moved");
    let xml = target.join("module.xml");
    // A module disabled on purpose stays disabled through an upgrade, as a WordPress
    // plugin keeps its activation; anything else comes out enabled.
    let (status, reason) = match &step {
        Step::Upgrade(previous) if previous.status == Status::Disabled => {
            (Status::Disabled, previous.reason.clone())
        }
        _ => (Status::Enabled, None),
    };
    tx.state()?.put_module(&ModuleRecord {
        rawname: rawname.to_owned(),
        name: manifest.name.clone(),
        version: version.clone(),
        status,
        reason,
        module_dir,
        data_dir,
        component_sha256: component.sha256().to_owned(),
        manifest: module_xml_text(&xml)?,
        installed_at: now(),
    })?;
    if let Some(source) = source {
        tx.state()?.set_module_source(rawname, source)?;
    }
    fault::point(operation, "recorded");
    let (action, from) = match step {
        Step::Install => (Action::Installed, None),
        Step::Upgrade(previous) if previous.version == version => {
            (Action::Reinstalled, Some(previous.version.clone()))
        }
        Step::Upgrade(previous) => (Action::Upgraded, Some(previous.version.clone())),
    };
    Ok(Change {
        requests,
        ..Change::plain(rawname, action, from, Some(version))
    })
}

/// A package unpacked into its own staging directory.
pub(crate) struct Staged {
    /// Holds the staging directory until the change ends; dropping it removes leftovers.
    _dir: tempfile::TempDir,
    /// The package's checked contents.
    pub(crate) unpacked: Unpacked,
}

/// How a package is unpacked: [`modhost_package::unpack`] for what is installed, synced
/// to disk; [`modhost_package::unpack_to_read`] for what is only described.
pub(crate) type Unpack = fn(
    &Path,
    &Path,
    &modhost_package::Limits,
) -> std::result::Result<Unpacked, modhost_package::Error>;

/// Unpacks `source` into a fresh staging directory with `unpack`. A module directory
/// (module.xml and its component) is packed first, as `modhost pack` would, so that it
/// passes exactly the checks a package passes.
pub(crate) fn stage(host: &Host, source: &Path, unpack: Unpack) -> Result<Staged> {
    if std::fs::symlink_metadata(source).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(crate::Error::NoSuchFile(source.to_owned()));
    }
    let dir = host.layout.staging_dir()?;
    let packed;
    let package = if source.is_dir() {
        let manifest = packages::read_manifest(source)?;
        // Checked before packing, which takes seconds for a large component: one this
        // host cannot run is refused in milliseconds.
        let component = modhost_package::read_component(source, &manifest.component)?;
        host.runtime
            .check_imports(&source.join(&manifest.component), &component)?;
        if let Some(stale) = crate::packing::stale_component(source, &manifest.component) {
            host.report(Event::Warning {
                rawname: manifest.rawname.clone(),
                message: stale,
            });
        }
        packed = host.layout.staging_dir()?;
        let package = packed.path().join(format!("{}.tgz", manifest.rawname));
        modhost_package::pack(
            &source.join("module.xml"),
            &source.join(&manifest.component),
            &package,
        )
        .map_err(|e| e.naming(source))?;
        package
    } else {
        source.to_owned()
    };
    // Whatever is refused is named as the user gave it, not as the packed copy.
    let unpacked =
        unpack(&package, dir.path(), &Default::default()).map_err(|e| e.naming(source))?;
    Ok(Staged {
        _dir: dir,
        unpacked,
    })
}

/// Loads the component of `package`, unpacked, telling the reporter: compiling a new
/// component takes seconds.
pub(crate) fn load_unpacked(
    host: &Host,
    package: &Path,
    unpacked: &Unpacked,
) -> Result<LoadedComponent> {
    let rawname = &unpacked.manifest.rawname;
    host.report(Event::Loading {
        rawname: rawname.clone(),
    });
    let component = host
        .runtime
        .load(&unpacked.component, None)
        .map_err(|e| in_package(e, package, unpacked))?;
    host.report(Event::Loaded {
        rawname: rawname.clone(),
        origin: component.origin(),
    });
    Ok(component)
}

/// Refuses `unpacked` when its component imports an application's API that needs a
/// grant its module.xml does not ask for, or that neither `grant` nor an earlier grant
/// gives it, or imports what this host does not provide at all. The checks when it is
/// compiled stay the ones that decide; these refuse nothing those would take (a grant
/// only narrows between the two), and a component that cannot be read is left to the
/// compiler to name.
fn check_before_compiling(
    host: &Host,
    package: &Path,
    unpacked: &Unpacked,
    grant: bool,
) -> Result<()> {
    let manifest = &unpacked.manifest;
    let Ok(bytes) = std::fs::read(&unpacked.component) else {
        return Ok(());
    };
    let Ok(imports) = modhost_runtime::component_imports(&bytes) else {
        return Ok(());
    };
    let granted: Vec<(String, bool)> = match grant {
        true => manifest
            .capabilities
            .iter()
            .map(|c| (c.grant_key().to_owned(), c.read_only()))
            .collect(),
        false => host.state.grants(&manifest.rawname)?,
    };
    super::check_imports_granted(host, manifest, &imports, &granted)?;
    host.runtime
        .check_imports(&unpacked.component, &bytes)
        .map_err(|e| in_package(e, package, unpacked))
}

/// Names a staged component by where it is inside its package, not by the staging
/// directory it was unpacked to, which is gone by the time anyone reads the error.
pub(crate) fn in_package(
    error: modhost_runtime::Error,
    package: &Path,
    unpacked: &Unpacked,
) -> Error {
    let inside = package
        .join(&unpacked.manifest.rawname)
        .join(&unpacked.manifest.component);
    Error::Runtime(error.naming_component(inside))
}

/// Reports what a change accepts but an administrator should know: module.xml warnings,
/// and dependencies on platform facts nobody declared, which therefore went unchecked.
/// Returns them too, for the change's record.
fn warn_about(
    host: &Host,
    manifest: &Manifest,
    available: &BTreeMap<&str, depends::Available<'_>>,
) -> Vec<String> {
    // What its publisher asks an administrator to read comes first, as FreePBX shows it.
    let mut warnings: Vec<String> = manifest
        .attention
        .iter()
        .map(|text| format!("its publisher asks you to read this: {text}"))
        .chain(
            manifest
                .warnings
                .iter()
                .map(|problem| format!("module.xml {problem}")),
        )
        .collect();
    // Only platform facts go unchecked (the plan has checked the modules already).
    for check in depends::check(manifest, available, &host.platform)
        .checks
        .into_iter()
        .filter(|c| c.outcome == Outcome::Unchecked)
    {
        warnings.push(format!(
            "{} `{}` was not checked: {} (declare it under [platform] in modhost.toml)",
            check.kind, check.constraint, check.detail
        ));
    }
    for message in &warnings {
        host.report(Event::Warning {
            rawname: manifest.rawname.clone(),
            message: message.clone(),
        });
    }
    warnings
}

/// Seconds since the epoch, for a record's `installed_at`.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The text of the module.xml at `path`, as the record keeps it: decoded from whatever
/// encoding the file is in (its declaration, which the record keeps, is not read again).
fn module_xml_text(path: &Path) -> Result<String> {
    let bytes = fs_err::read(path).map_err(io(path))?;
    let text = modhost_manifest::xml::decode(&bytes).map_err(|e| {
        Error::Refused(vec![format!(
            "`{}`:{}:{}: {}",
            path.display(),
            e.position.line,
            e.position.column,
            e.message
        )])
    })?;
    Ok(text.into_owned())
}
