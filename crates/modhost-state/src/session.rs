//! A module call's view of the database: a transaction opened on first use, with one
//! savepoint per handler scope so a failing handler's changes are undone alone.

use std::time::Instant;

use crate::{Result, State, Txn};

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
}

impl Session {
    /// A session over an open transaction.
    pub fn over(txn: Txn) -> Self {
        Session {
            state: None,
            txn: Some(txn),
            scopes: Vec::new(),
        }
    }

    /// A session that opens a write transaction on `state` when first used.
    pub fn lazy(state: State) -> Self {
        Session {
            state: Some(state),
            txn: None,
            scopes: Vec::new(),
        }
    }

    /// The transaction, opened now if needed (waiting for the write lock no later than
    /// `deadline`), with the savepoints of the open scopes.
    pub fn txn(&mut self, deadline: Instant) -> Result<&mut Txn> {
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

    /// Opens a scope (one handler's call); its savepoint is made when the transaction is.
    pub fn enter(&mut self) -> Result<()> {
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
        match (created, self.txn.as_mut()) {
            (true, Some(txn)) if keep => txn.release(&format!("scope{depth}")),
            (true, Some(txn)) => txn.rollback_to(&format!("scope{depth}")),
            _ => Ok(()),
        }
    }

    /// Commits the transaction, if one was opened.
    pub fn commit(self) -> Result<()> {
        match self.txn {
            Some(txn) => txn.commit(),
            None => Ok(()),
        }
    }

    /// The transaction, if one was opened, for the caller to commit or drop.
    pub fn into_txn(self) -> Option<Txn> {
        self.txn
    }
}
