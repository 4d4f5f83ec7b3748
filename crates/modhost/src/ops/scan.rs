//! Scanning a directory of packages and module directories: each described against what
//! is installed, and installed modules it holds newer versions of marked `needs-upgrade`.

use std::collections::BTreeMap;
use std::path::Path;

use modhost_manifest::Manifest;
use modhost_state::{ModuleRecord, Status};

use super::Transaction;
use super::install::{in_package, load_unpacked, stage};
use crate::Result;
use crate::depends;
use crate::host::Host;
use crate::packages::{self, Available, Found, Scan, ScanEntry};
use crate::plan::required_modules;

/// Describes every module in `dir` and updates the `needs-upgrade` marks; see
/// [`Host::scan`]. What the scan compiles stays in the cache, within its bound (`[cache]
/// keep_mb`), so that installing a scanned package compiles nothing. With no root (a
/// throwaway host) nothing would be kept: each component is read, never compiled.
pub(crate) fn scan(host: &Host, dir: &Path) -> Result<Scan> {
    packages::package_dir(dir)?;
    let lock = host.lock()?;
    let mut tx = Transaction::new(host, &lock, "scan");
    let installed = host.state.modules()?;
    let mut entries = Vec::new();
    // The directory by its full path: a mark made scanning `pd` is this one's when the
    // next scan says `./pd/` or `/srv/pd`, from wherever it runs.
    let full = fs_err::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let suffix = format!(" is available in `{}`", full.display());
    let marked_here = |r: &ModuleRecord| {
        r.status == Status::NeedsUpgrade
            && r.reason.as_deref().is_some_and(|x| {
                // The same directory however the mark spelt it; and a mark of a directory
                // gone since says of nothing: taken back too.
                marked_in(x).is_some_and(|d| fs_err::canonicalize(d).map_or(true, |d| d == full))
            })
    };
    let mut statuses: BTreeMap<String, (Status, Option<String>)> = installed
        .iter()
        .filter(|r| marked_here(r))
        .map(|r| (r.rawname.clone(), (Status::Enabled, None)))
        .collect();
    let (newest, unreadable) = packages::read_packages(dir)?;
    if !unreadable.is_empty() {
        // What could not be read may be the newer version a mark stands for: without
        // knowing, a mark is kept rather than taken back.
        statuses.clear();
    }
    let found: Vec<Found> = newest.into_values().collect();
    for (path, manifest) in &found {
        let current = installed.iter().find(|r| r.rawname == manifest.rawname);
        let available = packages::compare(&manifest.version, current.map(|r| r.version.as_str()));
        if let (Available::Upgrade, Some(record)) = (available, current)
            && (record.status == Status::Enabled || marked_here(record))
        {
            statuses.insert(
                record.rawname.clone(),
                (
                    Status::NeedsUpgrade,
                    Some(format!("{}{suffix}", manifest.version)),
                ),
            );
        }
        let report = host.check_depends(manifest)?;
        let described = stage(host, path, modhost_package::unpack_to_read).and_then(|staged| {
            match host.is_scratch() {
                true => read_unpacked(path, &staged.unpacked, &host.runtime),
                false => load_unpacked(host, path, &staged.unpacked).map(|component| {
                    // Compiled now, the cache is trimmed at the end, however the scan ends.
                    tx.loaded(&component);
                    let engine = host.runtime.engine();
                    (component.exports(engine), component.imports(engine))
                }),
            }
        });
        let (exports, imports, mut problem) = match described {
            Ok((exports, imports)) => (exports, imports, None),
            Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
        };
        // Installing it by name is refused while a package that may be newer is unread.
        problem = problem.or_else(|| {
            packages::shadowing(&unreadable, &manifest.rawname, Some(&manifest.version))
        });
        let newer = matches!(available, Available::New | Available::Upgrade);
        entries.push(ScanEntry {
            package: path.clone(),
            rawname: manifest.rawname.clone(),
            version: manifest.version.to_string(),
            installed: current.map(|r| r.version.clone()),
            available,
            installable: newer && report.satisfied && problem.is_none(),
            unmet: report.failures(),
            installable_with: Vec::new(),
            warnings: manifest.warnings.iter().map(ToString::to_string).collect(),
            problem,
            notes: crate::query::surface_notes(&imports, &exports),
            exports,
            imports,
        });
    }
    together(host, &found, &installed, &mut entries);
    for (rawname, (status, reason)) in &statuses {
        tx.state()?
            .set_status(rawname, *status, reason.as_deref())?;
    }
    tx.commit()?;
    Ok(Scan {
        entries,
        unreadable,
    })
}

/// The functions `unpacked`'s component exports and the interfaces it imports, read
/// without compiling it, and checked as installing it checks them before compiling.
fn read_unpacked(
    package: &Path,
    unpacked: &modhost_package::Unpacked,
    runtime: &modhost_runtime::Runtime,
) -> Result<(Vec<String>, Vec<String>)> {
    let component = &unpacked.component;
    let bytes = std::fs::read(component).map_err(|source| crate::Error::Io {
        path: component.clone(),
        source,
    })?;
    let read = runtime
        .read_component(component, &bytes)
        .map_err(|e| in_package(e, package, unpacked))?;
    if let Some(refused) = read.refused {
        return Err(in_package(refused, package, unpacked));
    }
    // Validated as compiling it would begin: what does not validate is no installable
    // component, though it was not compiled.
    let exports = read.exports.map_err(|message| {
        let load = modhost_runtime::Error::Load {
            path: component.clone(),
            message,
        };
        in_package(load, package, unpacked)
    })?;
    Ok((exports, read.imports))
}

/// Fills [`ScanEntry::installable_with`]: the entries that cannot be installed alone but
/// can with others of the directory, as one `install` of them all resolves them
/// ([`depends::satisfiable`]); and the unmet requirements of those that cannot be
/// installed even so. A candidate is newer than what is installed and sound.
fn together(host: &Host, found: &[Found], installed: &[ModuleRecord], entries: &mut [ScanEntry]) {
    let candidate = |e: &ScanEntry| {
        e.problem.is_none() && matches!(e.available, Available::New | Available::Upgrade)
    };
    let candidates: Vec<&Manifest> = found
        .iter()
        .zip(entries.iter())
        .filter(|(_, e)| candidate(e))
        .map(|((_, manifest), _)| manifest)
        .collect();
    let planned = depends::satisfiable(candidates, installed, &host.platform);
    // What the directory holds that cannot be installed with the rest: named by a
    // requirement on it as there (and to be looked at), not as absent.
    let aside: BTreeMap<String, depends::Packaged> = found
        .iter()
        .map(|(_, m)| m)
        .filter(|m| !planned.iter().any(|p| p.rawname == m.rawname))
        .filter(|m| !installed.iter().any(|r| r.rawname == m.rawname))
        .map(|m| {
            (
                m.rawname.clone(),
                depends::Packaged::Version(m.version.clone()),
            )
        })
        .collect();
    let unmeetable = depends::with_planned(installed, &aside, &planned);
    for ((_, manifest), entry) in found.iter().zip(entries.iter_mut()) {
        // A package refused for itself, or one that cannot be installed even with the
        // rest, is not offered to install with the others; its requirements that the
        // directory holds are said to be there, not absent.
        let planned_too = planned.iter().any(|m| m.rawname == manifest.rawname);
        if entry.problem.is_some() || (!entry.installable && !planned_too) {
            entry.unmet = depends::check(manifest, &unmeetable, &host.platform).failures();
            continue;
        }
        if entry.installable {
            continue;
        }
        // What its requirements require too, and so on: everything one `install` of
        // them must name.
        let mut with: Vec<&Manifest> = Vec::new();
        let mut asked: Vec<&Manifest> = vec![manifest];
        while let Some(next) = asked.pop() {
            // A requirement the installed module meets already asks for nothing more.
            let unmet = required_modules(next).filter(|d| {
                !installed.iter().any(|r| {
                    r.rawname == d.name
                        && r.status.runs()
                        && modhost_manifest::Version::parse(&r.version)
                            .is_ok_and(|v| d.requirement.as_ref().is_none_or(|q| q.matches(&v)))
                })
            });
            for needed in unmet.filter_map(|d| planned.iter().find(|m| m.rawname == d.name)) {
                if needed.rawname != manifest.rawname
                    && !with.iter().any(|w| w.rawname == needed.rawname)
                {
                    with.push(needed);
                    asked.push(needed);
                }
            }
        }
        with.sort_by(|a, b| a.rawname.cmp(&b.rawname));
        entry.installable_with = with
            .iter()
            .map(|m| format!("{} {}", m.rawname, m.version))
            .collect();
    }
}

/// The directory a `needs-upgrade` mark's reason names (`2.0.0 is available in `DIR``).
fn marked_in(reason: &str) -> Option<&str> {
    let (_, dir) = reason.split_once(" is available in `")?;
    dir.strip_suffix('`')
}
