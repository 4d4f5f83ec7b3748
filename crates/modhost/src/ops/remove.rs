//! Uninstalling (running the module's `uninstall()`) and deleting (running none of its
//! code): the record, tables, key-value store, backup, files and data all go.

use modhost_runtime::Call;
use modhost_state::Status;

use super::Transaction;
use crate::host::Host;
use crate::{Action, Change, Event, Result};

/// Removes `rawname`, running its `uninstall()` first if `call_uninstall`. Refused while
/// running modules depend on it, unless `force`.
pub(crate) fn remove(
    host: &Host,
    rawname: &str,
    force: bool,
    call_uninstall: bool,
) -> Result<Change> {
    let lock = host.lock()?;
    let record = host.installed(rawname)?;
    super::refuse_if_depended_on(host, rawname, force)?;
    // A module whose module.xml no longer parses can still be deleted: that is what
    // `delete` is for.
    let protected = record.parse_manifest().is_ok_and(|m| !m.canuninstall);
    if protected {
        super::refuse_if_protected(
            rawname,
            force,
            if call_uninstall {
                "uninstalled"
            } else {
                "deleted"
            },
            "canuninstall",
        )?;
    }
    let operation = if call_uninstall {
        "uninstall"
    } else {
        "delete"
    };
    // Disabled modules that require it do not stop it going, but enabling them will:
    // found before the change, so that a failure reading them cannot fail a removal made.
    let waiting = disabled_dependents(host, rawname)?;
    let mut tx = Transaction::new(host, &lock, operation);
    tx.superseding(rawname)?;
    if call_uninstall {
        let component = super::component_for(host, &record, &Call::Uninstall)?;
        super::running(host, "Uninstalling", rawname, &record.version);
        // `uninstall()` works on a copy of the data directory, so that one that damages
        // its data and then fails leaves the module as it was.
        let (_, copy) = tx.stage_data(&record, operation)?;
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
    // What its records name, and nothing else of its directories: what no record names
    // and no change made stays, as recovery keeps it.
    let backup = tx.state()?.backup(rawname)?.map(|b| b.record);
    tx.state()?.remove_module(rawname)?;
    tx.fault("recorded");
    for named in std::iter::once(&record).chain(&backup) {
        tx.replacing(host.layout.module_dir(rawname, &named.module_dir));
        tx.replacing(host.layout.data_dir(rawname, &named.data_dir));
    }
    tx.commit()?;
    let action = if call_uninstall {
        Action::Uninstalled
    } else {
        Action::Deleted
    };
    let mut change = Change::plain(rawname, action, Some(record.version), None);
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
    Ok(change)
}

/// The disabled modules that require `rawname`.
fn disabled_dependents(host: &Host, rawname: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for record in host.state.modules()? {
        let requires = record.status == Status::Disabled
            && record
                .parse_manifest()
                .is_ok_and(|m| crate::plan::required_modules(&m).any(|d| d.name == rawname));
        if requires {
            found.push(record.rawname);
        }
    }
    Ok(found)
}
