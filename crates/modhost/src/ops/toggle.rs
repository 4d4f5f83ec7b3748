//! Enabling and disabling: the module's `enable()` or `disable()` runs and its status
//! changes, in one transaction.

use modhost_manifest::Manifest;
use modhost_runtime::Call;
use modhost_state::{ModuleRecord, Status};

use super::Transaction;
use crate::host::Host;
use crate::{Action, Change, DisableOptions, Error, Event, Result, StagedCall, depends, plan};

/// Enables one disabled module: [`enable_all`] of one.
pub(crate) fn enable(host: &Host, rawname: &str, force: bool) -> Result<Change> {
    let mut changes = enable_all(host, &[rawname.to_owned()], force)?;
    changes
        .pop()
        .ok_or_else(|| Error::Refused(vec![format!("`{rawname}` was not enabled")]))
}

/// Enables several disabled modules as one change: dependencies among them count as
/// enabled, their `enable()` calls run dependencies first, and either all of them end up
/// enabled or none does.
pub(crate) fn enable_all(host: &Host, rawnames: &[String], force: bool) -> Result<Vec<Change>> {
    let lock = host.lock()?;
    let mut refusals = Vec::new();
    let mut wanted: Vec<ModuleRecord> = Vec::new();
    let mut left = Vec::new();
    for rawname in rawnames {
        if wanted.iter().any(|r| &r.rawname == rawname) {
            continue;
        }
        let record = host.installed(rawname)?;
        match record.status {
            Status::Disabled => wanted.push(record),
            Status::Broken => refusals.push(format!(
                "`{rawname}` is broken ({}); reinstall or delete it",
                record.reason.as_deref().unwrap_or("no reason recorded")
            )),
            // Running (one a scan marked needs-upgrade too): enabled already.
            status if status.runs() => {
                if !left.iter().any(|c: &Change| c.rawname == *rawname) {
                    left.push(already(record));
                }
            }
            status => refusals.push(format!("`{rawname}` is {status} and cannot be enabled")),
        }
    }
    if !refusals.is_empty() {
        return Err(Error::Refused(refusals));
    }
    for change in &left {
        host.report(Event::AlreadyIn {
            rawname: change.rawname.clone(),
            status: Status::Enabled,
        });
    }
    if wanted.is_empty() {
        return Ok(left);
    }
    // Check each against the modules as they will be: the others enabled too.
    let after: Vec<ModuleRecord> = host
        .state
        .modules()?
        .into_iter()
        .map(|r| match wanted.iter().any(|w| w.rawname == r.rawname) {
            true => ModuleRecord {
                status: Status::Enabled,
                ..r
            },
            false => r,
        })
        .collect();
    let manifests = wanted
        .iter()
        .map(|r| Ok(r.parse_manifest()?))
        .collect::<Result<Vec<_>>>()?;
    let references: Vec<&Manifest> = manifests.iter().collect();
    let packaged = host.packaged(&references, &after);
    let available = depends::available(&after, &packaged);
    let reports: Vec<_> = manifests
        .iter()
        .map(|m| depends::check(m, &available, &host.platform))
        .collect();
    let failures: Vec<String> = reports.iter().flat_map(|r| r.failures()).collect();
    if !failures.is_empty() && !force {
        return Err(Error::Unmet {
            reasons: failures,
            mends: reports.iter().flat_map(|r| r.mends()).collect(),
        });
    }
    // Set aside, as an install forced does it: said, not silent.
    for reason in &failures {
        tracing::warn!("forced: ignoring: {reason}");
    }
    let order = plan::dependencies_first(&references)?;
    let ordered: Vec<ModuleRecord> = order.into_iter().map(|i| wanted[i].clone()).collect();
    let tx = Transaction::new(host, &lock, "enable");
    let mut changes = toggle(
        host,
        tx,
        &ordered,
        Some(Call::Enable),
        Status::Enabled,
        None,
    )?;
    changes.extend(left);
    Ok(changes)
}

/// The record of a module already in the status asked for, left as it is.
fn already(record: ModuleRecord) -> Change {
    Change::plain(
        &record.rawname,
        Action::Unchanged,
        Some(record.version.clone()),
        Some(record.version),
    )
}

/// Disables one module: [`disable_all`] of one.
pub(crate) fn disable(host: &Host, rawname: &str, options: DisableOptions) -> Result<Change> {
    let mut changes = disable_all(host, &[rawname.to_owned()], options)?;
    changes
        .pop()
        .ok_or_else(|| Error::Refused(vec![format!("`{rawname}` was not disabled")]))
}

/// Disables several modules as one change: each is refused while running modules other
/// than the ones given depend on it (unless `options.force`); their `disable()` calls run
/// (unless `options.skip_code`) dependents first, and either all of them end up disabled
/// or none does.
pub(crate) fn disable_all(
    host: &Host,
    rawnames: &[String],
    options: DisableOptions,
) -> Result<Vec<Change>> {
    let lock = host.lock()?;
    let mut wanted: Vec<ModuleRecord> = Vec::new();
    let mut left = Vec::new();
    for rawname in rawnames {
        if wanted.iter().chain(&left).any(|r| &r.rawname == rawname) {
            continue;
        }
        let record = host.installed(rawname)?;
        if record.status == Status::Disabled {
            host.report(Event::AlreadyIn {
                rawname: rawname.to_owned(),
                status: Status::Disabled,
            });
            left.push(record);
            continue;
        }
        if !record.status.runs() {
            return Err(Error::Refused(vec![format!(
                "`{rawname}` is {}, not enabled",
                record.status
            )]));
        }
        wanted.push(record);
    }
    let installed = host.state.modules()?;
    let mut manifests = Vec::with_capacity(wanted.len());
    for record in &wanted {
        let rawname = record.rawname.as_str();
        // Those given together may depend on each other: they go together.
        super::refuse_if_others_require(rawname, &installed, &wanted, options.force)?;
        // A module whose module.xml no longer parses can still be disabled by force: that
        // is how a broken module is put out of the way.
        match record.parse_manifest() {
            Ok(manifest) => {
                if !manifest.candisable {
                    super::refuse_if_protected(rawname, options.force, "disabled", "candisable")?;
                }
                manifests.push(manifest);
            }
            Err(e) if !options.force => return Err(e.into()),
            Err(_) => {}
        }
    }
    let mut changes = Vec::new();
    if !wanted.is_empty() {
        let ordered: Vec<ModuleRecord> = super::dependents_first(&wanted, &manifests)?
            .into_iter()
            .cloned()
            .collect();
        let tx = Transaction::new(host, &lock, "disable");
        let (call, reason) = if options.skip_code {
            (
                None,
                "disabled by an administrator without running its disable()",
            )
        } else {
            (Some(Call::Disable), "disabled by an administrator")
        };
        changes = toggle(host, tx, &ordered, call, Status::Disabled, Some(reason))?;
    }
    changes.extend(left.into_iter().map(already));
    Ok(changes)
}

/// Runs `call` on each of `records` in order and gives them `status`, in `tx`. Each call
/// works on a copy of its module's data directory that replaces the original only when
/// every call succeeds, as an upgrade's does. Without a call, no code of the modules runs
/// and their data stays where it is.
fn toggle(
    host: &Host,
    mut tx: Transaction<'_>,
    records: &[ModuleRecord],
    call: Option<Call<'_>>,
    status: Status,
    reason: Option<&str>,
) -> Result<Vec<Change>> {
    let (operation, verb, action) = match status {
        Status::Enabled => (StagedCall::Enable, "Enabling", Action::Enabled),
        _ => (StagedCall::Disable, "Disabling", Action::Disabled),
    };
    let mut changes = Vec::new();
    for record in records {
        let rawname = record.rawname.as_str();
        let mut data_dir = record.data_dir.clone();
        if let Some(call) = &call {
            let component = super::component_for(host, record, call)?;
            super::running(host, verb, rawname, &record.version);
            let (copy_dir, copy) = tx.stage_data(record, operation)?;
            tx.call(&component, rawname, &record.version, &copy, call)?;
            tx.replacing(host.layout.data_dir(rawname, &record.data_dir));
            data_dir = copy_dir;
        } else {
            super::running(host, verb, rawname, &record.version);
        }
        tx.fault("lifecycle-called");
        tx.state()?.put_module(&ModuleRecord {
            status,
            reason: reason.map(str::to_owned),
            data_dir,
            ..record.clone()
        })?;
        changes.push(Change::plain(
            rawname,
            action,
            Some(record.version.clone()),
            Some(record.version.clone()),
        ));
    }
    tx.commit()?;
    Ok(changes)
}
