//! A module call's view of the database: a transaction opened on first use, with one
//! savepoint per handler scope so a failing handler's changes are undone alone.

use crate::{Error, Found, ModuleRecord, Result, State, Stop, Txn};

/// The transaction a call (and the calls it fires) reads and writes through.
///
/// A lifecycle call gets a session over a transaction that is already open. A hook
/// dispatch gets a lazy one: handlers that never touch their store cost no database
/// work at all, and the transaction, once opened, serves the handler (and the hooks it
/// fires) and is committed when the handler returns ([`Session::checkpoint`]); the next
/// handler's first statement opens the next one. It holds the write lock from its first
/// statement, even one that only reads: a handler that reads and then writes must not
/// find its snapshot overtaken by another writer, which SQLite could only refuse.
#[derive(Debug)]
pub struct Session {
    state: Option<State>,
    txn: Option<Txn>,
    /// The open scopes, innermost last.
    scopes: Vec<Scope>,
    /// The generation a dispatch found its modules at; see [`Session::as_of`].
    as_of: Option<i64>,
    /// Whether the generation had moved past `as_of` when the transaction opened: the
    /// modules of scopes entered from then on are checked as they enter.
    moved: bool,
    /// Whether SQLite rolled the transaction back under the session (a write statement
    /// interrupted at a deadline): nothing more may run in it, or it would run in
    /// autocommit mode, outside every scope.
    lost: bool,
    /// The module of the innermost scope when the loss was first seen: the one whose
    /// statement SQLite interrupted.
    lost_by: Option<String>,
    /// Why that statement failed, as it was told.
    lost_cause: Option<String>,
    /// Whether a handler's scope (an outermost one) kept its changes since the
    /// transaction opened: a transaction in which every handler's changes were undone (a
    /// call that failed, or was cancelled) is rolled back, not committed, which would
    /// write a commit record and wait for the disk to sync it for nothing.
    kept: bool,
}

/// One handler's scope of a session.
#[derive(Debug)]
struct Scope {
    /// Whether its savepoint exists yet.
    created: bool,
    /// The module whose call it is, as the dispatch found it.
    module: Option<Found>,
    /// What happened to that module since, once checked and found changed.
    changed: Option<&'static str>,
}

impl Scope {
    fn new(created: bool, module: Option<Found>) -> Self {
        Scope {
            created,
            module,
            changed: None,
        }
    }
}

impl Session {
    /// A session over an open transaction.
    pub fn over(txn: Txn) -> Self {
        Session {
            state: None,
            txn: Some(txn),
            scopes: Vec::new(),
            as_of: None,
            moved: false,
            lost: false,
            lost_by: None,
            lost_cause: None,
            kept: false,
        }
    }

    /// A session that opens a write transaction on `state` when first used.
    pub fn lazy(state: State) -> Self {
        Session {
            state: Some(state),
            txn: None,
            scopes: Vec::new(),
            as_of: None,
            moved: false,
            lost: false,
            lost_by: None,
            lost_cause: None,
            kept: false,
        }
    }

    /// Makes this (lazy) session check, when its transaction opens, that the modules of
    /// the scopes entered with [`Session::enter_module`] are still installed, running and
    /// at the version the dispatch found at `generation`. A module uninstalled, disabled or
    /// upgraded between the two must not run against the state it left behind (its tables
    /// gone, or migrated): its scope gets [`Error::ModuleChanged`] from every statement.
    /// Costs one indexed read per transaction while nothing changed.
    pub fn as_of(mut self, generation: i64) -> Self {
        self.as_of = Some(generation);
        self
    }

    /// The transaction, opened now if needed (waiting for the write lock no later than
    /// `stop`), with the savepoints of the open scopes.
    pub fn txn(&mut self, stop: impl Into<Stop>) -> Result<&mut Txn> {
        if self.lost() {
            return Err(self.rolled_back());
        }
        if self.txn.is_none()
            && let Some(state) = &self.state
        {
            let holder = self
                .scopes
                .iter()
                .rev()
                .find_map(|s| s.module.as_ref().map(|found| found.rawname.as_str()));
            let txn = state.begin_by(stop, holder)?;
            self.moved = match self.as_of {
                Some(as_of) => generation(&txn)? != as_of,
                None => false,
            };
            if self.moved {
                for scope in &mut self.scopes {
                    scope.changed = changed(&txn, scope.module.as_ref())?;
                }
            }
            self.txn = Some(txn);
        }
        if let Some(scope) = self.scopes.iter().find(|s| s.changed.is_some())
            && let (Some(found), Some(now)) = (&scope.module, scope.changed)
        {
            return Err(Error::ModuleChanged {
                module: found.rawname.clone(),
                now,
            });
        }
        let Some(txn) = self.txn.as_mut() else {
            unreachable!("a session has either a transaction or the state to open one")
        };
        for (depth, scope) in self.scopes.iter_mut().enumerate() {
            if !scope.created {
                txn.savepoint(&format!("scope{depth}"))?;
                scope.created = true;
            }
        }
        Ok(txn)
    }

    /// Whether the innermost scope's module changed while its call ran (see
    /// [`Session::as_of`]): what the call did is to be set aside, as if it had not run.
    pub fn scope_changed(&self) -> bool {
        self.scopes.last().is_some_and(|s| s.changed.is_some())
    }

    /// Whether SQLite rolled the transaction back under the session; see
    /// [`Session::checkpoint`].
    pub fn lost(&mut self) -> bool {
        if !self.lost
            && let Some(txn) = &self.txn
            && txn.conn.is_autocommit()
        {
            self.lost = true;
            self.lost_cause = txn.last_failure.clone();
            self.lost_by = self
                .scopes
                .iter()
                .rev()
                .find_map(|s| s.module.as_ref().map(|found| found.rawname.clone()));
        }
        self.lost
    }

    /// Why the statement that made SQLite roll the transaction back failed, if it is lost
    /// and that is known.
    pub fn lost_cause(&self) -> Option<&str> {
        self.lost_cause.as_deref().filter(|_| self.lost)
    }

    /// The module whose statement made SQLite roll the transaction back, if it is lost
    /// and the statement ran in a module's scope.
    pub fn lost_by(&self) -> Option<&str> {
        self.lost_by.as_deref().filter(|_| self.lost)
    }

    /// The error of every statement once the transaction is lost: the module whose
    /// statement lost it, and why that statement failed.
    pub fn rolled_back(&self) -> Error {
        Error::RolledBack {
            by: self.lost_by.clone(),
            cause: self.lost_cause.clone(),
        }
    }

    /// Between two handlers of a dispatch (no scope open), makes what the last one kept
    /// durable, so that a later handler's runaway statement, whose interruption makes
    /// SQLite roll back the whole transaction, undoes nothing but its own; a lost
    /// transaction is let go. The next statement begins a new transaction. Only a lazy
    /// session (a dispatch's) does this: a lifecycle call's transaction is its change's.
    pub fn checkpoint(&mut self) -> Result<()> {
        if self.state.is_none() || !self.scopes.is_empty() {
            return Ok(());
        }
        let lost = self.lost();
        self.lost = false;
        self.lost_by = None;
        self.lost_cause = None;
        let kept = std::mem::take(&mut self.kept);
        match self.txn.take() {
            Some(txn) if !lost && kept => txn.commit(),
            // Dropped, it rolls back: nothing of it was kept.
            _ => Ok(()),
        }
    }

    /// Opens a scope (one handler's call); its savepoint is made when the transaction is.
    pub fn enter(&mut self) -> Result<()> {
        self.open_scope(None)
    }

    /// Opens the scope of a call of a module as the dispatch `found` it; see
    /// [`Session::as_of`].
    pub fn enter_module(&mut self, found: &Found) -> Result<()> {
        self.open_scope(Some(found.clone()))
    }

    fn open_scope(&mut self, module: Option<Found>) -> Result<()> {
        if self.lost() {
            return Err(self.rolled_back());
        }
        let mut scope = Scope::new(false, module);
        if let Some(txn) = self.txn.as_mut() {
            if self.moved {
                scope.changed = changed(txn, scope.module.as_ref())?;
            }
            txn.savepoint(&format!("scope{}", self.scopes.len()))?;
            scope.created = true;
        }
        self.scopes.push(scope);
        Ok(())
    }

    /// Closes the innermost scope, keeping its changes if `keep`, else undoing them.
    pub fn leave(&mut self, keep: bool) -> Result<()> {
        let depth = self.scopes.len().saturating_sub(1);
        // Looked at before the scope goes, so that a loss its statement caused names it.
        let lost = self.lost();
        let created = self.scopes.pop().is_some_and(|s| s.created);
        if lost {
            // The savepoints went with the transaction: there is nothing to keep or undo.
            return Ok(());
        }
        match (created, self.txn.as_mut()) {
            (true, Some(txn)) if keep => {
                txn.release(&format!("scope{depth}"))?;
                self.kept |= depth == 0;
                Ok(())
            }
            (true, Some(txn)) => txn.rollback_to(&format!("scope{depth}")),
            _ => Ok(()),
        }
    }

    /// Commits the transaction, if one was opened.
    pub fn commit(mut self) -> Result<()> {
        if self.lost() {
            return Err(self.rolled_back());
        }
        match self.txn {
            Some(txn) => txn.commit(),
            None => Ok(()),
        }
    }

    /// The transaction, if one was opened and SQLite did not roll it back, for the caller
    /// to commit or drop.
    pub fn into_txn(mut self) -> Option<Txn> {
        if self.lost() {
            return None;
        }
        self.txn
    }
}

/// The generation as `txn` sees it.
fn generation(txn: &Txn) -> Result<i64> {
    let mut stmt = txn
        .conn
        .prepare_cached("SELECT value FROM modhost_meta WHERE key = 'generation'")
        .map_err(crate::error::sqlite(&txn.path))?;
    stmt.query_row([], |row| row.get(0))
        .map_err(crate::error::sqlite(&txn.path))
}

/// What happened to `module` (as a dispatch found it) by the time `txn` began, if
/// anything did.
fn changed(txn: &Txn, module: Option<&Found>) -> Result<Option<&'static str>> {
    let Some(found) = module else {
        return Ok(None);
    };
    Ok(ModuleRecord::change_since(
        txn.module(&found.rawname)?.as_ref(),
        found,
    ))
}
