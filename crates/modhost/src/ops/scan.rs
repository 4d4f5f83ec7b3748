//! Scanning a directory of packages and module directories: each described against what
//! is installed, and installed modules it holds newer versions of marked `needs-upgrade`.

use std::collections::BTreeMap;
use std::path::Path;

use modhost_state::{ModuleRecord, Status};

use super::Transaction;
use super::install::{load_unpacked, stage};
use crate::Result;
use crate::host::Host;
use crate::packages::{self, Available, Scan, ScanEntry};

/// Describes every module in `dir` and updates the `needs-upgrade` marks; see
/// [`Host::scan`]. What the scan compiles stays in the cache, within its bound (`[cache]
/// keep_mb`), so that installing a scanned package compiles nothing.
pub(crate) fn scan(host: &Host, dir: &Path) -> Result<Scan> {
    let lock = host.lock()?;
    let mut tx = Transaction::new(host, &lock, "scan");
    let installed = host.state.modules()?;
    let mut entries = Vec::new();
    let suffix = format!(" is available in `{}`", dir.display());
    let marked_here = |r: &ModuleRecord| {
        r.status == Status::NeedsUpgrade
            && r.reason.as_deref().is_some_and(|x| x.ends_with(&suffix))
    };
    let mut statuses: BTreeMap<String, (Status, Option<String>)> = installed
        .iter()
        .filter(|r| marked_here(r))
        .map(|r| (r.rawname.clone(), (Status::Enabled, None)))
        .collect();
    let (newest, mut unreadable) = packages::read_packages(dir)?;
    let (module_dirs, unreadable_dirs) = packages::read_module_dirs(dir)?;
    unreadable.extend(unreadable_dirs);
    unreadable.sort_by(|a, b| a.package.cmp(&b.package));
    if !unreadable.is_empty() {
        // What could not be read may be the newer version a mark stands for: without
        // knowing, a mark is kept rather than taken back.
        statuses.clear();
    }
    for (path, manifest) in newest.into_values().chain(module_dirs) {
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
        let report = host.check_depends(&manifest)?;
        let loaded =
            stage(host, &path).and_then(|staged| load_unpacked(host, &path, &staged.unpacked));
        let engine = host.runtime.engine();
        let (exports, imports, problem) = match loaded {
            Ok(component) => (component.exports(engine), component.imports(engine), None),
            Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
        };
        let newer = matches!(available, Available::New | Available::Upgrade);
        entries.push(ScanEntry {
            package: path,
            rawname: manifest.rawname.clone(),
            version: manifest.version.to_string(),
            installed: current.map(|r| r.version.clone()),
            available,
            installable: newer && report.satisfied && problem.is_none(),
            unmet: report.failures(),
            problem,
            exports,
            imports,
        });
    }
    for (rawname, (status, reason)) in &statuses {
        tx.state()?
            .set_status(rawname, *status, reason.as_deref())?;
    }
    tx.commit()?;
    super::transaction::trim_cache(host);
    Ok(Scan {
        entries,
        unreadable,
    })
}
