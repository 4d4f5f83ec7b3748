//! [`Txn`], one write transaction: how it begins and ends, its savepoints, and the size
//! cap it holds modules' writes to. Its reads and writes of each table live with that
//! table's code (`modules.rs`, `kv.rs`, …).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::error::sqlite;
use crate::gate::Turn;
use crate::schema;
use crate::signal::Signal;
use crate::state::Pooled;
use crate::{Error, Result};

/// An open transaction. Dropping it without [`Txn::commit`] rolls everything back.
pub struct Txn {
    pub(crate) conn: Pooled,
    pub(crate) path: Arc<Path>,
    max_size: u64,
    signal: Arc<Signal>,
    open: bool,
    /// Whether the set of modules or their states changed, so the generation must move.
    pub(crate) changed_modules: bool,
    /// A dispatch's turn at the gate, given back after the transaction ends.
    _turn: Option<Turn>,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn").field("path", &self.path).finish()
    }
}

impl Txn {
    /// The transaction just begun on `conn`. Its commit moves the generation through
    /// `signal` when modules changed; `turn` is given back when it ends.
    pub(crate) fn new(
        conn: Pooled,
        path: Arc<Path>,
        max_size: u64,
        signal: Arc<Signal>,
        turn: Option<Turn>,
    ) -> Txn {
        Txn {
            conn,
            path,
            max_size,
            signal,
            open: true,
            changed_modules: false,
            _turn: turn,
        }
    }

    /// Maps SQLite's errors to [`Error::Sqlite`] naming this transaction's database.
    pub(crate) fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sqlite(&self.path)
    }

    /// Runs `f` with foreign keys checked at the commit rather than after each statement:
    /// a module's tables are dropped and refilled in name order, which need not be the
    /// order of their foreign keys.
    pub(crate) fn deferring_foreign_keys<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        self.conn
            .pragma_update(None, "defer_foreign_keys", true)
            .map_err(self.err())?;
        let result = f(self);
        let restored = self
            .conn
            .pragma_update(None, "defer_foreign_keys", false)
            .map_err(self.err());
        let value = result?;
        restored?;
        Ok(value)
    }

    /// Refuses a module's write once the database, as this transaction sees it, is at its
    /// cap. Checked before the write rather than left to SQLite's `max_page_count`, whose
    /// SQLITE_FULL may roll back the whole transaction: every handler of the dispatch.
    pub(crate) fn check_room(&self) -> Result<()> {
        let size: i64 = self
            .conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
            .map_err(self.err())?;
        if u64::try_from(size).unwrap_or(u64::MAX) >= self.max_size {
            return Err(Error::Full {
                path: self.path.to_path_buf(),
                max_size: self.max_size,
            });
        }
        Ok(())
    }

    /// Marks a savepoint that [`Txn::rollback_to`] can return to.
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.conn
            .execute_batch(&format!("SAVEPOINT {}", schema::quote(name)))
            .map_err(self.err())
    }

    /// Keeps the changes since savepoint `name` and forgets the savepoint.
    pub fn release(&mut self, name: &str) -> Result<()> {
        self.conn
            .execute_batch(&format!("RELEASE {}", schema::quote(name)))
            .map_err(self.err())
    }

    /// Undoes the changes since savepoint `name` and forgets the savepoint.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        let name = schema::quote(name);
        self.conn
            .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
            .map_err(self.err())
    }

    /// Makes every change of the transaction durable.
    pub fn commit(mut self) -> Result<()> {
        if !self.changed_modules {
            return self.finish("COMMIT");
        }
        let signal = Arc::clone(&self.signal);
        signal.publish(|| {
            self.finish(
                "UPDATE modhost_meta SET value = value + 1 WHERE key = 'generation'; COMMIT",
            )
        })
    }

    fn finish(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(sqlite(&self.path))?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the connection closes next, which also discards the
            // transaction, so a failed ROLLBACK loses nothing.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
