//! A module call's view of the database: a transaction opened on first use, with one
//! savepoint per handler scope so a failing handler's changes are undone alone.

use std::time::Instant;

use crate::{Error, Result, State, Txn};

/// The transaction a call (and the calls it fires) reads and writes through.
///
/// A lifecycle call gets a session over a transaction that is already open. A hook
/// dispatch gets a lazy one: handlers that never touch their store cost no database
/// work at all, and the transaction, once opened, is shared by every handler of the
/// dispatch and committed once at its end. It holds the write lock from its first
/// statement, even one that only reads: a handler that reads and then writes must not
/// find its snapshot overtaken by another writer, which SQLite could only refuse.
#[derive(Debug)]
pub struct Session {
    state: Option<State>,
    txn: Option<Txn>,
    /// One entry per open scope: whether its savepoint exists yet.
    scopes: Vec<bool>,
    /// Whether SQLite rolled the transaction back under the session (a write statement
    /// interrupted at a deadline): nothing more may run in it, or it would run in
    /// autocommit mode, outside every scope.
    lost: bool,
}

impl Session {
    /// A session over an open transaction.
    pub fn over(txn: Txn) -> Self {
        Session {
            state: None,
            txn: Some(txn),
            scopes: Vec::new(),
            lost: false,
        }
    }

    /// A session that opens a write transaction on `state` when first used.
    pub fn lazy(state: State) -> Self {
        Session {
            state: Some(state),
            txn: None,
            scopes: Vec::new(),
            lost: false,
        }
    }

    /// The transaction, opened now if needed (waiting for the write lock no later than
    /// `deadline`), with the savepoints of the open scopes.
    pub fn txn(&mut self, deadline: Instant) -> Result<&mut Txn> {
        if self.lost() {
            return Err(Error::RolledBack);
        }
        if self.txn.is_none()
            && let Some(state) = &self.state
        {
            self.txn = Some(state.begin_by(deadline)?);
        }
        let Some(txn) = self.txn.as_mut() else {
            unreachable!("a session has either a transaction or the state to open one")
        };
        for (depth, created) in self.scopes.iter_mut().enumerate() {
            if !*created {
                txn.savepoint(&format!("scope{depth}"))?;
                *created = true;
            }
        }
        Ok(txn)
    }

    /// Whether SQLite rolled the transaction back under the session; see
    /// [`Session::checkpoint`].
    pub fn lost(&mut self) -> bool {
        if let Some(txn) = &self.txn
            && txn.conn.is_autocommit()
        {
            self.lost = true;
        }
        self.lost
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
        match self.txn.take() {
            Some(txn) if !lost => txn.commit(),
            _ => Ok(()),
        }
    }

    /// Opens a scope (one handler's call); its savepoint is made when the transaction is.
    pub fn enter(&mut self) -> Result<()> {
        if self.lost() {
            return Err(Error::RolledBack);
        }
        let created = match self.txn.as_mut() {
            Some(txn) => {
                txn.savepoint(&format!("scope{}", self.scopes.len()))?;
                true
            }
            None => false,
        };
        self.scopes.push(created);
        Ok(())
    }

    /// Closes the innermost scope, keeping its changes if `keep`, else undoing them.
    pub fn leave(&mut self, keep: bool) -> Result<()> {
        let depth = self.scopes.len().saturating_sub(1);
        let created = self.scopes.pop().unwrap_or(false);
        if self.lost() {
            // The savepoints went with the transaction: there is nothing to keep or undo.
            return Ok(());
        }
        match (created, self.txn.as_mut()) {
            (true, Some(txn)) if keep => txn.release(&format!("scope{depth}")),
            (true, Some(txn)) => txn.rollback_to(&format!("scope{depth}")),
            _ => Ok(()),
        }
    }

    /// Commits the transaction, if one was opened.
    pub fn commit(mut self) -> Result<()> {
        if self.lost() {
            return Err(Error::RolledBack);
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
