//! The one sequence every change to a root follows, written once.
//!
//! The root's lock is held (a [`Transaction`] cannot be made without it); the SQLite
//! transaction begins at the first write, so that compiling, which takes seconds, never
//! holds SQLite's write lock; every directory the change creates is listed in its
//! [`Intent`] (flushed) before it exists, and every one it replaces before the commit;
//! lifecycle calls run inside the SQLite transaction; the commit is the one atomic step;
//! only after it are the directories the change replaced swept, and the compiled code
//! nobody uses any more trimmed to the cache's bound (`[cache] keep_mb`: an uninstalled
//! module installed again, as an author does, is not compiled again). Dropped without a
//! commit, the transaction
//! rolls back and removes what it created: a failure leaves no trace in the root, as
//! cargo's install `Transaction` guard removes what a failed install wrote. What it
//! compiled stays in the cache within its bound (`[cache] keep_mb`), as what a scan
//! compiles does: trying the same package again (with the grant it lacked, after its
//! dependency) does not compile it again. A crash leaves the intent, from which recovery
//! sweeps what no record names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modhost_runtime::{Call, CallContext, LoadedComponent, Origin};
use modhost_state::{ModuleRecord, Txn};

use crate::host::Host;
use crate::intent::{Intent, Role};
use crate::lock::RootLock;
use crate::{Error, Result, StagedCall, fault, layout};

/// A change to a root in progress; see the module documentation.
pub(crate) struct Transaction<'h> {
    host: &'h Host,
    /// The root's lock, borrowed for as long as the change runs: a lock dropped before
    /// the transaction is (a temporary's) does not compile.
    lock: &'h RootLock,
    /// What fault points of the commit and the cleanup are named after.
    operation: &'static str,
    /// The SQLite transaction, from the first write on.
    txn: Option<Txn>,
    /// What the change creates and replaces, for recovery after a crash.
    intent: Intent,
    /// Directories created so far: removed unless the change commits.
    created: Vec<PathBuf>,
    /// Directories the change replaces: removed once it has committed.
    replaced: Vec<PathBuf>,
    /// Whether compiled code may be unused once the change has committed (a version
    /// replaced or removed): the cache is trimmed then.
    superseded: bool,
    /// Whether this change compiled a component: the cache is trimmed at its end, kept
    /// within its bound after a failure.
    compiled: bool,
    /// Whether the host's interruption stops it: not for keeping what a check read,
    /// which stays true whatever the administrator stops.
    interruptible: bool,
}

impl<'h> Transaction<'h> {
    /// Starts a change of `host` under its `lock`, held until the change ends;
    /// `operation` names the fault points of its commit and cleanup.
    pub(crate) fn new(host: &'h Host, lock: &'h RootLock, operation: &'static str) -> Self {
        Transaction {
            host,
            lock,
            operation,
            txn: None,
            intent: Intent::new(&host.layout),
            created: Vec::new(),
            replaced: Vec::new(),
            superseded: false,
            compiled: false,
            interruptible: true,
        }
    }

    /// [`Transaction::new`] for keeping what reading the root learnt (a channel's
    /// serial), which the host's interruption does not stop.
    pub(crate) fn bookkeeping(host: &'h Host, lock: &'h RootLock, operation: &'static str) -> Self {
        let mut tx = Transaction::new(host, lock, operation);
        tx.interruptible = false;
        tx
    }

    /// The SQLite transaction, begun at the first call.
    pub(crate) fn state(&mut self) -> Result<&mut Txn> {
        let txn = self.take_txn()?;
        Ok(self.txn.insert(txn))
    }

    /// The SQLite transaction, taken out (begun now if it was not yet).
    fn take_txn(&mut self) -> Result<Txn> {
        match self.txn.take() {
            Some(txn) => Ok(txn),
            None => Ok(self.host.state.begin()?),
        }
    }

    /// Aborts the process here if a fault is injected at `step` of this operation.
    pub(crate) fn fault(&self, step: &str) {
        fault::point(self.operation, step);
    }

    /// Records `dir`, about to be created — with its parent when that does not exist
    /// yet either (a first install's `modules/RAWNAME`), so a failure leaves no trace
    /// and a crash leaves it listed.
    pub(crate) fn creating(&mut self, dir: &Path) -> Result<()> {
        match dir.parent() {
            Some(parent) if std::fs::symlink_metadata(parent).is_err() => {
                // Both listed: a record may name the module while its directory is gone
                // (a broken module's), and then only the one inside is a leftover.
                let made = [parent.to_owned(), dir.to_owned()];
                self.intent.record(Role::Made, &made, &self.host.state)?;
                self.created.push(parent.to_owned());
            }
            _ => {
                self.intent
                    .record(Role::Made, &[dir.to_owned()], &self.host.state)?;
                self.created.push(dir.to_owned());
            }
        }
        Ok(())
    }

    /// Sweeps `dir` once the change has committed: a version or data directory no record
    /// points at any more.
    pub(crate) fn replacing(&mut self, dir: PathBuf) {
        self.replaced.push(dir);
    }

    /// Notes that `rawname`'s installed version or backup is replaced or removed: after the
    /// commit, their compiled code goes within the cache's bound unless a record still uses
    /// it.
    pub(crate) fn superseding(&mut self, rawname: &str) -> Result<()> {
        self.host.layout.owned(rawname)?;
        self.superseded = true;
        Ok(())
    }

    /// Notes a component this change loaded: if it was compiled now, the cache is trimmed
    /// at the end, and the host keeps a root it made for it (see
    /// [`Host::discard_if_unused`](crate::Host::discard_if_unused)).
    pub(crate) fn loaded(&mut self, component: &LoadedComponent) {
        if component.origin() == Origin::Compiled {
            self.compiled = true;
            self.host
                .compiled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Copies `record`'s data directory to a fresh one for a lifecycle call to work on, so
    /// that a call that fails leaves the original as it was. Returns the copy's name and
    /// path; the copy goes unless the change commits.
    pub(crate) fn stage_data(
        &mut self,
        record: &ModuleRecord,
        operation: StagedCall,
    ) -> Result<(String, PathBuf)> {
        let layout = &self.host.layout;
        layout.owned(&record.rawname)?;
        let name = layout::unique_name("data");
        let copy = layout.data_dir(&record.rawname, &name);
        self.creating(&copy)?;
        let original = layout.data_dir(&record.rawname, &record.data_dir);
        layout::copy_tree(&record.rawname, &original, &copy).map_err(|e| match e {
            Error::Io { path, ref source }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) =>
            {
                let usage = modhost_runtime::disk_usage(&[original]).unwrap_or_default();
                Error::NoRoomForData {
                    rawname: record.rawname.clone(),
                    operation,
                    bytes: usage.bytes,
                    path,
                }
            }
            e => e,
        })?;
        fault::point(operation.as_str(), "data-staged");
        Ok((name, copy))
    }

    /// Runs one lifecycle call of `rawname` `version` inside the SQLite transaction, with
    /// `data_dir` as its `/data` and the directories it was granted; its writes stay only
    /// if the change commits. A `data_dir` this change made (a staged copy, a first
    /// install's) is made durable after the call, before the commit can record it.
    pub(crate) fn call(
        &mut self,
        component: &LoadedComponent,
        rawname: &str,
        version: &str,
        data_dir: &Path,
        call: &Call,
    ) -> Result<()> {
        let txn = self.take_txn()?;
        let mounts = super::mounts(txn.grants(rawname)?);
        let dispatcher = &self.host.dispatcher;
        let context = CallContext {
            rawname,
            version,
            data_dir,
            mounts: &mounts,
            session: modhost_state::Session::over(txn),
            limits: dispatcher.limits(),
            deadline: None,
            fire: dispatcher.as_fire(),
            depth: 0,
            disk_quota: dispatcher.disk_quota(rawname),
            data: None,
            // The administrator's Ctrl-C stops a lifecycle call at once.
            cancel: self.interruptible.then(|| self.host.interrupted.clone()),
            logs: None,
        };
        let (result, mut session) = self.host.runtime.call(component, context, call);
        let lost = session.lost().then(|| session.rolled_back().to_string());
        self.txn = session.into_txn();
        if result.is_err() && self.interruptible {
            self.host.check_interrupted()?;
        }
        result?;
        if self.txn.is_none() {
            let why = lost.unwrap_or_else(|| "its transaction ended under it".to_owned());
            return Err(Error::Refused(vec![format!(
                "`{rawname}`: the call's writes were rolled back: {why}"
            )]));
        }
        if self.created.iter().any(|made| data_dir.starts_with(made)) {
            layout::make_durable(data_dir)?;
        }
        Ok(())
    }

    /// Commits the change — the one atomic step — then sweeps what it replaced and trims
    /// the compiled code nothing installed uses to the cache's bound.
    pub(crate) fn commit(mut self) -> Result<()> {
        if self.interruptible {
            self.host.check_interrupted()?;
        }
        let lock = self.host.layout.lock();
        if !self.lock.still_guards(&lock)? {
            return Err(Error::LockLost { lock });
        }
        // Listed before the commit makes them nobody's, so a crash after it leaves them
        // for recovery to sweep.
        self.intent
            .record(Role::Replaced, &self.replaced, &self.host.state)?;
        if let Some(mut txn) = self.txn.take() {
            if let Some(id) = self.intent.id() {
                txn.note_intent(id)?;
            }
            txn.commit()?;
        }
        self.fault("db-committed");
        // Unsaid (a crash right here), recovery tells it from the intent the database
        // noted.
        if let Err(e) = self.intent.committed() {
            tracing::warn!("{e}");
        }
        self.fault("committed");
        self.host.keep_made();
        self.created.clear();
        let left = sweep(&self.host.layout, &std::mem::take(&mut self.replaced));
        self.intent.finish(&left);
        let superseded = std::mem::take(&mut self.superseded);
        if std::mem::take(&mut self.compiled) || superseded {
            trim_cache(self.host);
        }
        self.fault("cleaned");
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Rolled back first, so that what it compiled is judged by the records as they
        // stay.
        drop(self.txn.take());
        let left = sweep(&self.host.layout, &std::mem::take(&mut self.created));
        self.intent.finish(&left);
        if std::mem::take(&mut self.compiled) {
            trim_cache(self.host);
        }
    }
}

/// Removes directories no record points at any more, then the module directories they
/// leave empty, and makes their removal durable; returns those that could not be
/// removed. A failure only leaves a leftover that the next recovery removes (its intent
/// kept), so it is logged rather than returned.
fn sweep(layout: &layout::Layout, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for dir in dirs {
        if let Err(e) = layout::remove_dir(dir) {
            tracing::warn!(
                "cannot remove `{}`: {e}; no module uses it, and recovery tries again",
                dir.display()
            );
            left.push(dir.clone());
        }
    }
    let removed: Vec<PathBuf> = dirs.iter().filter(|d| !left.contains(d)).cloned().collect();
    // A module's directory that holds nothing more goes (its last version uninstalled);
    // one that holds anything stays, whatever it holds.
    let emptied: Vec<PathBuf> = removed
        .iter()
        .filter_map(|dir| dir.parent())
        .filter(|module| {
            module
                .parent()
                .is_some_and(|top| *top == layout.modules() || *top == layout.data())
                && std::fs::remove_dir(module).is_ok()
        })
        .map(Path::to_path_buf)
        .collect();
    layout::sync_parents(removed.iter().chain(&emptied));
    left
}

/// Bounds the compiled code kept of components nothing installed uses (what a scan
/// compiled) to the configured size. A failure only leaves files in the cache, so it is
/// logged.
fn trim_cache(host: &Host) {
    let trimmed =
        in_use(host).and_then(|in_use| Ok(host.runtime.trim(&in_use, host.cache_keep)?));
    if let Err(e) = trimmed {
        tracing::warn!("cannot trim the compiled-code cache: {e}");
    }
}

/// The components installed versions and backups use.
fn in_use(host: &Host) -> Result<BTreeSet<String>> {
    let state = &host.state;
    let mut in_use = BTreeSet::new();
    for record in state.modules()? {
        if let Some(backup) = state.backup(&record.rawname)? {
            in_use.insert(backup.record.component_sha256);
        }
        in_use.insert(record.component_sha256);
    }
    Ok(in_use)
}
