//! Uninstalling (running the module's `uninstall()`) and deleting (running none of its
//! code): the record, tables, key-value store, backup, files and data all go.

use modhost_manifest::Manifest;
use modhost_runtime::Call;
use modhost_state::{ModuleRecord, Status};

use super::Transaction;
use crate::host::Host;
use crate::{Action, Change, Error, Event, Result, StagedCall, plan};

/// Removes `rawname`: [`remove_all`] of one.
pub(crate) fn remove(
    host: &Host,
    rawname: &str,
    force: bool,
    call_uninstall: bool,
) -> Result<Change> {
    let mut changes = remove_all(host, &[rawname.to_owned()], force, call_uninstall)?;
    changes
        .pop()
        .ok_or_else(|| Error::Refused(vec![format!("`{rawname}` was not removed")]))
}

/// Removes `rawnames` as one change, running each one's `uninstall()` first if
/// `call_uninstall`, dependents first; either all of them go or none does. Each is
/// refused while running modules other than the ones given depend on it, unless `force`.
pub(crate) fn remove_all(
    host: &Host,
    rawnames: &[String],
    force: bool,
    call_uninstall: bool,
) -> Result<Vec<Change>> {
    let lock = host.lock()?;
    let (operation, done) = match call_uninstall {
        true => ("uninstall", "uninstalled"),
        false => ("delete", "deleted"),
    };
    let mut records: Vec<ModuleRecord> = Vec::new();
    for rawname in rawnames {
        if !records.iter().any(|r| &r.rawname == rawname) {
            records.push(host.installed(rawname)?);
        }
    }
    let installed = host.state.modules()?;
    let given = |name: &str| records.iter().any(|r| r.rawname == name);
    let mut manifests: Vec<Manifest> = Vec::with_capacity(records.len());
    for record in &records {
        let rawname = record.rawname.as_str();
        super::refuse_if_others_require(rawname, &installed, &records, force)?;
        // A module whose module.xml no longer parses can still be deleted: that is what
        // `delete` is for.
        if let Ok(manifest) = record.parse_manifest() {
            if !manifest.canuninstall {
                super::refuse_if_protected(rawname, force, done, "canuninstall")?;
            }
            manifests.push(manifest);
        }
    }
    let ordered = super::dependents_first(&records, &manifests)?;
    // Disabled modules that require one of them do not stop it going, but enabling them
    // will: found before the change, so that a failure reading them cannot fail a
    // removal made.
    let mut waiting = Vec::with_capacity(ordered.len());
    for record in &ordered {
        let mut found = disabled_dependents(&installed, &record.rawname);
        found.retain(|d| !given(d));
        waiting.push(found);
    }
    let mut tx = Transaction::new(host, &lock, operation);
    for record in &ordered {
        let rawname = record.rawname.as_str();
        tx.superseding(rawname)?;
        if call_uninstall {
            let component = super::component_for(host, record, &Call::Uninstall)?;
            super::running(host, "Uninstalling", rawname, &record.version);
            // `uninstall()` works on a copy of the data directory, so that one that
            // damages its data and then fails leaves the module as it was.
            let (_, copy) = tx.stage_data(record, StagedCall::Uninstall)?;
            tx.call(
                &component,
                rawname,
                &record.version,
                &copy,
                &Call::Uninstall,
            )?;
            tx.replacing(copy);
        } else {
            super::running(host, "Deleting", rawname, &record.version);
        }
        tx.fault("lifecycle-called");
        // What its records name, and nothing else of its directories: what no record
        // names and no change made stays, as recovery keeps it.
        let backup = tx.state()?.backup(rawname)?.map(|b| b.record);
        tx.state()?.remove_module(rawname)?;
        tx.fault("recorded");
        for named in std::iter::once(*record).chain(&backup) {
            tx.replacing(host.layout.module_dir(rawname, &named.module_dir));
            tx.replacing(host.layout.data_dir(rawname, &named.data_dir));
        }
    }
    tx.commit()?;
    let action = match call_uninstall {
        true => Action::Uninstalled,
        false => Action::Deleted,
    };
    let mut changes = Vec::with_capacity(ordered.len());
    for (record, waiting) in ordered.into_iter().zip(waiting) {
        let rawname = record.rawname.as_str();
        let mut change = Change::plain(rawname, action, Some(record.version.clone()), None);
        if !waiting.is_empty() {
            let message = format!(
                "{} (disabled) require{} it: enabling {} needs `{rawname}` installed again",
                waiting.join(", "),
                if waiting.len() == 1 { "s" } else { "" },
                if waiting.len() == 1 { "it" } else { "them" },
            );
            host.report(Event::Warning {
                rawname: rawname.to_owned(),
                message: message.clone(),
            });
            change.warnings.push(message);
        }
        changes.push(change);
    }
    Ok(changes)
}

/// The disabled modules of `installed` that require `rawname`.
fn disabled_dependents(installed: &[ModuleRecord], rawname: &str) -> Vec<String> {
    installed
        .iter()
        .filter(|record| {
            record.status == Status::Disabled
                && record
                    .parse_manifest()
                    .is_ok_and(|m| plan::required_modules(&m).any(|d| d.name == rawname))
        })
        .map(|record| record.rawname.clone())
        .collect()
}
