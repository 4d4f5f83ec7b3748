//! Dependency resolution: in what order a batch installs, and who depends on whom.

use std::collections::{BTreeMap, BTreeSet};

use modhost_manifest::Manifest;
use modhost_state::ModuleRecord;

use crate::depends::{self, Available};
use crate::platform::Platform;
use crate::{Error, Result};

/// The recorded module.xml of an installed module, parsed.
pub(crate) fn manifest_of(record: &ModuleRecord) -> Result<Manifest> {
    Manifest::parse(&record.manifest, &format!("{}/module.xml", record.rawname)).map_err(|source| {
        Error::Manifest {
            rawname: record.rawname.clone(),
            source,
        }
    })
}

/// The order in which `batch` can be installed on top of `installed`: each module after
/// the batch modules it depends on. Refuses, listing every reason, when a module is
/// already installed or given twice, when a constraint of any module fails against the
/// installed modules, the batch and the platform, or when the batch's dependencies form a
/// cycle.
pub(crate) fn install_order(
    batch: &[&Manifest],
    installed: &[ModuleRecord],
    platform: &Platform,
) -> Result<Vec<usize>> {
    let mut reasons = Vec::new();
    let mut in_batch: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, manifest) in batch.iter().enumerate() {
        if in_batch.insert(&manifest.rawname, index).is_some() {
            reasons.push(format!("`{}` is given more than once", manifest.rawname));
        }
    }
    let mut available: BTreeMap<&str, Available<'_>> = installed
        .iter()
        .map(|r| (r.rawname.as_str(), Available::Installed(r)))
        .collect();
    for manifest in batch {
        if let Some(Available::Installed(record)) = available.get(manifest.rawname.as_str()) {
            reasons.push(format!(
                "`{}` is already installed ({}); uninstall it first",
                manifest.rawname, record.version
            ));
        }
    }
    for manifest in batch {
        available.insert(&manifest.rawname, Available::Planned(manifest));
    }
    for manifest in batch {
        reasons.extend(depends::check(manifest, &available, platform).failures());
    }
    if !reasons.is_empty() {
        return Err(Error::Refused(reasons));
    }
    topological(batch, &in_batch)
}

/// Orders the batch dependencies-first (by rawname among equals, so runs are repeatable).
fn topological(batch: &[&Manifest], in_batch: &BTreeMap<&str, usize>) -> Result<Vec<usize>> {
    let mut order = Vec::with_capacity(batch.len());
    let mut done = BTreeSet::new();
    let mut visiting = Vec::new();
    for &start in in_batch.values() {
        visit(start, batch, in_batch, &mut done, &mut visiting, &mut order)?;
    }
    Ok(order)
}

fn visit(
    index: usize,
    batch: &[&Manifest],
    in_batch: &BTreeMap<&str, usize>,
    done: &mut BTreeSet<usize>,
    visiting: &mut Vec<usize>,
    order: &mut Vec<usize>,
) -> Result<()> {
    if done.contains(&index) {
        return Ok(());
    }
    if let Some(at) = visiting.iter().position(|&i| i == index) {
        let cycle: Vec<&str> = visiting[at..]
            .iter()
            .chain(std::iter::once(&index))
            .map(|&i| batch[i].rawname.as_str())
            .collect();
        return Err(Error::Refused(vec![format!(
            "dependency cycle: {}",
            cycle.join(" -> ")
        )]));
    }
    visiting.push(index);
    for dependency in &batch[index].depends.modules {
        if let Some(&next) = in_batch.get(dependency.name.as_str()) {
            visit(next, batch, in_batch, done, visiting, order)?;
        }
    }
    visiting.pop();
    done.insert(index);
    order.push(index);
    Ok(())
}

/// The installed modules whose module.xml depends on `rawname`.
pub(crate) fn dependents(rawname: &str, installed: &[ModuleRecord]) -> Result<Vec<String>> {
    let mut dependents = Vec::new();
    for record in installed {
        let manifest = manifest_of(record)?;
        if manifest.depends.modules.iter().any(|d| d.name == rawname) {
            dependents.push(record.rawname.clone());
        }
    }
    Ok(dependents)
}
