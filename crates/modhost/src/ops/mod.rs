//! The operations that change a root, one file per verb, as cargo's `ops/cargo_*.rs` sit
//! under its thin commands. Each runs inside one [`Transaction`], which owns the sequence
//! every change follows; an operation says only what differs.

mod grants;
mod install;
mod local;
mod reload;
mod remove;
mod rollback;
mod scan;
mod toggle;
mod transaction;

pub(crate) use grants::{check_imports_granted, grant, mounts, narrow_grants, requests, revoke};
pub(crate) use install::{apply, apply_locked, unchanged};
pub(crate) use local::{apply_named, install_local, upgrade_all};
pub(crate) use reload::reload;
pub use reload::{Reload, ReloadHandler};
pub(crate) use remove::{remove, remove_all};
pub(crate) use rollback::rollback;
pub(crate) use scan::scan;
pub(crate) use toggle::{disable, disable_all, enable, enable_all};
pub(crate) use transaction::Transaction;

use modhost_runtime::{Call, LoadedComponent};
use modhost_state::ModuleRecord;

use crate::host::Host;
use crate::{Error, Event, Result};

/// Loads the component of an installed version (mapped from the cache, or compiled).
fn component(host: &Host, record: &ModuleRecord) -> Result<LoadedComponent> {
    let manifest = record.parse_manifest()?;
    let path = host
        .layout
        .module_dir(&record.rawname, &record.module_dir)
        .join(&manifest.component);
    let component = host.runtime.load(&path, Some(&record.component_sha256))?;
    host.report(Event::Loaded {
        rawname: record.rawname.clone(),
        origin: component.origin(),
    });
    Ok(component)
}

/// Loads the component of an installed version to make lifecycle call `call` of it; one
/// that cannot be loaded is [`Error::CannotRun`], which a change skipping its code avoids.
fn component_for(host: &Host, record: &ModuleRecord, call: &Call<'_>) -> Result<LoadedComponent> {
    use modhost_runtime::Error as Runtime;
    component(host, record).map_err(|e| match e {
        // What this host cannot run (not an I/O error, nor a cache's trouble, which the
        // next try may not meet): skipping the module's code is then the way out.
        // So is a module.xml it took once and this modhost no longer reads.
        Error::Runtime(
            Runtime::Load { .. }
            | Runtime::ApiVersion { .. }
            | Runtime::Imports { .. }
            | Runtime::MissingFunctions { .. }
            | Runtime::Unlinked { .. }
            | Runtime::MissingExports { .. },
        )
        | Error::Manifest { .. } => Error::CannotRun {
            rawname: record.rawname.clone(),
            version: record.version.clone(),
            call: call.to_string(),
            source: Box::new(e),
        },
        e => e,
    })
}

/// Tells the reporter a lifecycle call is about to run.
fn running(host: &Host, verb: &'static str, rawname: &str, version: &str) {
    host.report(Event::Running {
        verb,
        rawname: rawname.to_owned(),
        version: version.to_owned(),
    });
}

/// Refuses to change `rawname`, whose module.xml says it cannot be `what` (its
/// `<element>no</element>`), unless `force`, which is said.
fn refuse_if_protected(
    rawname: &str,
    force: bool,
    what: &'static str,
    element: &'static str,
) -> Result<()> {
    if force {
        tracing::warn!("forced: `{rawname}` says it cannot be {what} (<{element}>no</{element}>)");
        return Ok(());
    }
    Err(Error::Protected {
        rawname: rawname.to_owned(),
        what,
        element,
    })
}

/// Refuses to take `rawname` away while running modules of `installed` depend on it
/// (unless `force`, which warns instead), but for those of `batch`, which go with it.
fn refuse_if_others_require(
    rawname: &str,
    installed: &[ModuleRecord],
    batch: &[ModuleRecord],
    force: bool,
) -> Result<()> {
    let dependents: Vec<String> = crate::plan::dependents(rawname, installed)?
        .into_iter()
        .filter(|d| !batch.iter().any(|r| &r.rawname == d))
        .collect();
    if dependents.is_empty() {
        return Ok(());
    }
    if force {
        tracing::warn!(
            "forced: `{rawname}` is required by {}",
            dependents.join(", ")
        );
        return Ok(());
    }
    Err(Error::InUse {
        rawname: rawname.to_owned(),
        dependents,
    })
}

/// `records` in the order they are taken away: dependents first (enabling's order turned
/// round), when `manifests` holds every one's module.xml to tell; otherwise as given.
fn dependents_first<'a>(
    records: &'a [ModuleRecord],
    manifests: &[modhost_manifest::Manifest],
) -> Result<Vec<&'a ModuleRecord>> {
    if manifests.len() != records.len() {
        return Ok(records.iter().collect());
    }
    let references: Vec<&modhost_manifest::Manifest> = manifests.iter().collect();
    Ok(crate::plan::dependencies_first(&references)?
        .into_iter()
        .rev()
        .map(|i| &records[i])
        .collect())
}
