//! Rolling back: a module returns to the version its last upgrade replaced — files, data,
//! key-value store and tables as they were.

use modhost_manifest::Version;
use modhost_state::{ModuleRecord, Status};

use super::Transaction;
use crate::host::Host;
use crate::{Action, Change, Error, Result, plan, recover};

/// Returns `rawname` to its backup. Refused when running modules need the current
/// version, or the version returned to does not fit what is installed (unless `force`).
pub(crate) fn rollback(host: &Host, rawname: &str, force: bool) -> Result<Change> {
    let lock = host.lock()?;
    let current = host.installed(rawname)?;
    let backup = host.state.backup(rawname)?.ok_or_else(|| {
        Error::Refused(vec![format!(
            "`{rawname}` has no previous version to roll back to"
        )])
    })?;
    // Its files are looked at, not only its compiled code (which the cache may still
    // hold): a backup whose files were removed by hand would roll back to a broken module.
    if let Some(problem) =
        recover::backup_unusable(&host.layout, &backup.record, recover::Check::Digest)
    {
        return Err(Error::Refused(vec![format!(
            "the backup of `{rawname}` ({0}) cannot be used: {problem}; {1} stays installed, \
             and the only way back to {0} without the backup is to uninstall `{rawname}` \
             (its data and tables go with it) and install {0} again",
            backup.record.version, current.version
        )]));
    }
    let previous = backup.record.parse_manifest()?;
    super::component(host, &backup.record)?;
    let returning_to =
        Version::parse(&backup.record.version).map_err(|e| Error::Refused(vec![e.to_string()]))?;
    let mut broken = Vec::new();
    for record in host
        .state
        .modules()?
        .iter()
        .filter(|r| r.status.runs() && r.rawname != rawname)
    {
        let dependent = record.parse_manifest()?;
        for dependency in plan::required_modules(&dependent).filter(|d| d.name == rawname) {
            if dependency
                .requirement
                .as_ref()
                .is_some_and(|r| !r.matches(&returning_to))
            {
                broken.push(format!(
                    "`{}` requires `{dependency}`, but the rollback returns `{rawname}` to {returning_to}",
                    record.rawname
                ));
            }
        }
    }
    // The version returned to must itself still fit what is installed now.
    let report = host.check_depends(&previous)?;
    broken.extend(report.failures());
    if !broken.is_empty() && !force {
        return Err(Error::Unmet {
            reasons: broken,
            mends: report.mends().collect(),
        });
    }
    for reason in &broken {
        tracing::warn!("forced: ignoring: {reason}");
    }
    super::running(
        host,
        "Rolling back",
        rawname,
        &format!("{} -> {}", current.version, backup.record.version),
    );
    // The version rolled back from keeps its compiled code, within the cache's bound for
    // code nothing installed uses: upgrading to it again, once fixed elsewhere, need not
    // compile it again (minutes, for a Python or JavaScript module).
    let mut tx = Transaction::new(host, &lock, "rollback");
    let txn = tx.state()?;
    txn.restore_backup(rawname, &previous.database)?;
    // The backup's status is the one it had when the upgrade replaced it; since then the
    // administrator may have disabled or enabled the module, with the checks and calls
    // that go with it, and a rollback must not undo that behind their back. Only a broken
    // module takes the backup's: the backup is what still works.
    if current.status != Status::Broken {
        txn.put_module(&ModuleRecord {
            status: current.status,
            reason: current.reason.clone(),
            ..backup.record.clone()
        })?;
    }
    super::narrow_grants(host, txn, &previous)?;
    tx.fault("restored");
    tx.replacing(host.layout.module_dir(rawname, &current.module_dir));
    tx.replacing(host.layout.data_dir(rawname, &current.data_dir));
    tx.superseding(rawname)?;
    tx.commit()?;
    Ok(Change::plain(
        rawname,
        Action::RolledBack,
        Some(current.version),
        Some(backup.record.version),
    ))
}
