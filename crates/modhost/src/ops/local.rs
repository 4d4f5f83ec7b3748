//! Choosing from a package directory: the packages named modules resolve to, with the
//! modules they require that the directory holds; and everything it holds that can be
//! installed or upgraded (`installlocal`, `upgradeall`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use modhost_manifest::Manifest;

use super::apply;
use crate::depends;
use crate::host::Host;
use crate::packages::{self, Available, Found};
use crate::plan::{self, Mode};
use crate::{Change, Error, Event, Options, Result};

/// Installs or upgrades (as `mode` allows) the packages `names` resolve to in the package
/// directory `from` (else the configured one), as one unit. An install brings along the
/// modules they require that are not installed and that directory holds, as apt takes a
/// package's dependencies from its repository; an upgrade changes only what is installed
/// (a requirement nobody installed is said, as online upgrades say it), and
/// [`Options::force`], which sets dependencies aside, brings none either.
pub(crate) fn apply_named(
    host: &Host,
    names: &[impl AsRef<OsStr>],
    from: Option<&Path>,
    mode: Mode,
    options: Options,
) -> Result<Vec<Change>> {
    let dir = from.or(host.packages.as_deref());
    let mut selected = packages::resolve(names, dir, &host.skipped)?;
    if let Some(dir) = dir.filter(|_| mode == Mode::Install && !options.force) {
        let required = required_from(host, &selected, dir)?;
        selected.extend(required);
    }
    apply(host, &selected, mode, options, &Default::default(), dir)
}

/// The packages in `dir` of the modules `selected` require, directly or through each
/// other, that are neither installed nor selected. A package whose module.xml cannot be
/// read brings nothing: installing it says why.
fn required_from(host: &Host, selected: &[PathBuf], dir: &Path) -> Result<Vec<PathBuf>> {
    let installed = host.state.modules()?;
    let mut manifests: Vec<Manifest> = selected
        .iter()
        .filter_map(|path| packages::read_manifest(path).ok())
        .collect();
    let mut index = None;
    let mut added = Vec::new();
    loop {
        let missing = depends::missing(&manifests.iter().collect::<Vec<_>>(), &installed);
        if missing.is_empty() {
            return Ok(added);
        }
        let (index, unreadable) = match &mut index {
            Some(read) => read,
            None => index.insert(packages::read_warned(dir, &host.skipped)?),
        };
        let mut found: Vec<Manifest> = Vec::new();
        for name in missing {
            let Some((path, manifest)) = index.remove(&name) else {
                continue;
            };
            // Not brought while a package that may hold a newer version cannot be read,
            // as installing it by name is not.
            let by = manifests
                .iter()
                .find(|m| plan::required_modules(m).any(|d| d.name == name));
            if let Some(cut) = packages::shadowing(unreadable, &name, Some(&manifest.version)) {
                let by = by.map(|m| format!("`{}` requires it; ", m.rawname));
                return Err(Error::Refused(vec![format!(
                    "`{name}` is not brought from `{}` ({}{cut})",
                    dir.display(),
                    by.unwrap_or_default()
                )]));
            }
            host.report(Event::Requires {
                rawname: by.map(|m| m.rawname.clone()).unwrap_or_default(),
                dependency: name,
                source: format!("`{}`", dir.display()),
            });
            added.push(path);
            found.push(manifest);
        }
        if found.is_empty() {
            return Ok(added);
        }
        manifests.extend(found);
    }
}

/// Upgrades every installed module for which the package directory holds a newer
/// version, as one unit; see [`install_local`] for those that cannot be.
pub(crate) fn upgrade_all(
    host: &Host,
    from: Option<&Path>,
    options: Options,
) -> Result<Vec<Change>> {
    apply_local(host, from, &[Available::Upgrade], Mode::Upgrade, options)
}

/// Installs every module of the package directory that is not installed, and upgrades
/// those it holds newer versions of, as one unit. Those this host would refuse for
/// themselves (a component importing what it does not offer), and those whose
/// requirements cannot be met by what is installed and the rest of the directory, are
/// left out, as FreePBX's `installlocal` goes on past them, and named with why in
/// [`Error::LeftOut`] after the others are applied.
pub(crate) fn install_local(
    host: &Host,
    from: Option<&Path>,
    options: Options,
) -> Result<Vec<Change>> {
    apply_local(
        host,
        from,
        &[Available::New, Available::Upgrade],
        Mode::Install,
        options,
    )
}

/// Applies, as `mode`, the newest package of each module in the package directory that
/// compares with what is installed as one of `wanted`, leaving out those this host would
/// refuse for themselves and those that cannot be installed together with the rest.
fn apply_local(
    host: &Host,
    from: Option<&Path>,
    wanted: &[Available],
    mode: Mode,
    options: Options,
) -> Result<Vec<Change>> {
    let dir = host.package_dir_or(from)?;
    let installed = host.state.modules()?;
    let (newest, unreadable) = packages::read_packages(&dir)?;
    // As installing it by name is, a module is left out while a package that may hold a
    // newer version of it cannot be read.
    let shadowed: Vec<(String, String)> = newest
        .values()
        .filter_map(|(_, manifest)| {
            packages::shadowing(&unreadable, &manifest.rawname, Some(&manifest.version))
                .map(|why| (manifest.rawname.clone(), why))
        })
        .collect();
    let wanted_version = |rawname: &str, version: &modhost_manifest::Version| {
        let current = installed.iter().find(|r| r.rawname == rawname);
        wanted.contains(&packages::compare(
            version,
            current.map(|r| r.version.as_str()),
        ))
    };
    // A package that cannot be read is left out too, by its path: what it would have
    // installed or upgraded is not known, and a script must see that something was not.
    // Two packages of one version that differ are, when that version would be applied.
    // An upgrade leaves alone what holds a module nobody installed, as far as can be told.
    let concerns = |u: &packages::Unreadable| {
        wanted.contains(&Available::New)
            || packages::module_of(u).is_none_or(|m| installed.iter().any(|r| r.rawname == m))
    };
    let mut left_out: Vec<String> = unreadable
        .into_iter()
        .filter(|u| match (&u.rawname, &u.version) {
            (Some(rawname), Some(version)) => modhost_manifest::Version::parse(version)
                .map_or(true, |version| wanted_version(rawname, &version)),
            _ => concerns(u),
        })
        .map(|u| format!("`{}`: {}", u.package.display(), u.reason()))
        .collect();
    let candidates: Vec<Found> = newest
        .into_values()
        .filter(|(_, manifest)| wanted_version(&manifest.rawname, &manifest.version))
        .filter(|(_, manifest)| {
            let Some((_, why)) = shadowed.iter().find(|(r, _)| *r == manifest.rawname) else {
                return true;
            };
            left_out.push(format!(
                "`{}` {}: {why}",
                manifest.rawname, manifest.version
            ));
            false
        })
        .collect();
    // A package this host would refuse for itself (a component importing what it does not
    // offer) is left out, and with it what requires it.
    let candidates: Vec<Found> = candidates
        .into_iter()
        .filter(|(path, manifest)| {
            let refused = match host.component_imports(path) {
                Ok(component) => component.and_then(|c| c.refused),
                Err(e) => Some(e.to_string()),
            };
            let Some(why) = refused else {
                return true;
            };
            left_out.push(format!(
                "`{}` {}: {why}",
                manifest.rawname, manifest.version
            ));
            false
        })
        .collect();
    let manifests: Vec<&Manifest> = candidates.iter().map(|(_, m)| m).collect();
    let kept = match options.force {
        true => manifests.clone(),
        false => depends::satisfiable(manifests.clone(), &installed, &host.platform),
    };
    let none = Default::default();
    let modules = depends::with_planned(&installed, &none, &kept);
    left_out.extend(
        manifests
            .iter()
            .filter(|m| !kept.iter().any(|k| k.rawname == m.rawname))
            .map(|m| {
                // Each failure names the module and its version.
                let failures = depends::check(m, &modules, &host.platform).failures();
                failures.join("; ")
            }),
    );
    let selected: Vec<PathBuf> = candidates
        .iter()
        .filter(|(_, m)| kept.iter().any(|k| k.rawname == m.rawname))
        .map(|(path, _)| path.clone())
        .collect();
    let done = match selected.is_empty() {
        true => Vec::new(),
        false => apply(
            host,
            &selected,
            mode,
            options,
            &Default::default(),
            Some(&dir),
        )?,
    };
    match left_out.is_empty() {
        true => Ok(done),
        false => Err(Error::LeftOut { done, left_out }),
    }
}
