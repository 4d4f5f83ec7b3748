//! [`Txn`], one write transaction: how it begins and ends, its savepoints, and the size
//! cap it holds modules' writes to (`state.rs` says how). Its reads and writes of each
//! table live with that table's code (`modules.rs`, `kv.rs`, …).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::sqlite;
use crate::gate::Turn;
use crate::module_sql::Writes;
use crate::quota::Quotas;
use crate::schema;
use crate::signal::Signal;
use crate::state::{self, Pooled, Room};
use crate::{Error, Result};

/// Where a module's statement starts: the bytes the file's used pages take, whether the
/// module is at its quota, so that the statement may free room but not grow what it
/// keeps, and how far the statement may grow what is used when free pages let it grow
/// that without growing the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    /// The bytes the used pages take before the statement.
    pub(crate) used: u64,
    /// Whether the module is at (or past) its quota.
    pub(crate) at_quota: bool,
    /// The bytes the statement may add to the used pages: the module's room left and the
    /// slack, within the cap's. The page ceiling holds this for the file's growth, but a
    /// statement that fills free pages first grows what is used without growing the
    /// file: with free pages about, the statement is checked against it after it ran.
    /// At the cap, nothing: a statement then runs only if it grows nothing.
    pub(crate) room: Option<u64>,
    /// What the statement may change: at the cap, it may only delete.
    pub(crate) writes: Writes,
}

/// An open transaction. Dropping it without [`Txn::commit`] rolls everything back.
pub struct Txn {
    pub(crate) conn: Pooled,
    pub(crate) path: Arc<Path>,
    room: Room,
    signal: Arc<Signal>,
    open: bool,
    /// Whether the set of modules or their states changed, so the generation must move.
    pub(crate) changed_modules: bool,
    /// Whether a module's data or a backup was dropped, so the commit gives the pages
    /// back to the disk.
    pub(crate) freed: bool,
    /// The writer's turn at the gate, given back after the transaction ends.
    _turn: Option<Turn>,
    /// What each module may keep.
    pub(crate) quotas: Arc<Quotas>,
    /// What each module's tables take, as measured at its first write and grown since
    /// (its key-value entries are read as they are, see `quota.rs`).
    pub(crate) quota_used: Mutex<BTreeMap<String, u64>>,
    /// Why the last statement a module made failed (none when it succeeded, or was a
    /// key-value write): when SQLite rolled the whole transaction back for it, what the
    /// rollback is put down to.
    pub(crate) last_failure: Option<String>,
}

/// How the database's pages are used, as a transaction sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    /// The pages of the file.
    pub(crate) pages: u64,
    /// Free pages: reused before the file grows, and counted for nothing.
    pub(crate) free: u64,
    /// The pages the backups kept by upgrades hold.
    pub(crate) backups: u64,
}

impl Usage {
    /// The pages counted against the cap: everything in use but backups.
    pub(crate) fn modules(&self) -> u64 {
        self.pages
            .saturating_sub(self.free)
            .saturating_sub(self.backups)
    }
}

/// Whether SQLite refused to grow the database: the connection's `max_page_count` was
/// reached. (A disk that is really full is reported the same way: SQLite cannot tell.)
pub(crate) fn is_full(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull)
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
        room: Room,
        signal: Arc<Signal>,
        turn: Option<Turn>,
        quotas: Arc<Quotas>,
    ) -> Txn {
        Txn {
            conn,
            path,
            room,
            signal,
            open: true,
            changed_modules: false,
            freed: false,
            _turn: turn,
            quotas,
            quota_used: Mutex::new(BTreeMap::new()),
            last_failure: None,
        }
    }

    /// Maps SQLite's errors to [`Error::Sqlite`] naming this transaction's database, and
    /// SQLite's refusal to grow it past its ceiling to [`Error::Full`].
    pub(crate) fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| {
            // The database's cap, unless it is the disk that is full.
            if is_full(&source) && !crate::error::disk_is_full(&self.path) {
                self.full(None)
            } else {
                sqlite(&self.path)(source)
            }
        }
    }

    /// The error of a write refused at the cap, naming `module` if given.
    pub(crate) fn full(&self, module: Option<&str>) -> Error {
        Error::Full {
            path: self.path.to_path_buf(),
            max_size: self.room.max_size,
            module: module.map(str::to_owned),
            keeps_most: crate::quota::keeps_most(&self.conn).ok().flatten(),
        }
    }

    /// Runs `f` with foreign keys checked at the commit rather than after each statement:
    /// a module's tables are dropped and refilled in name order, which need not be the
    /// order of their foreign keys.
    pub(crate) fn deferring_foreign_keys<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        // Nested (a restore applies a schema, which may rebuild tables): the outer keeps
        // them deferred until its own end.
        let was: bool = self
            .conn
            .pragma_query_value(None, "defer_foreign_keys", |row| row.get(0))
            .map_err(self.err())?;
        self.conn
            .pragma_update(None, "defer_foreign_keys", true)
            .map_err(self.err())?;
        let result = f(self);
        let restored = self
            .conn
            .pragma_update(None, "defer_foreign_keys", was)
            .map_err(self.err());
        let value = result?;
        restored?;
        Ok(value)
    }

    /// How the database's pages are used, as this transaction sees them.
    pub(crate) fn usage(&self) -> Result<Usage> {
        let err = sqlite(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT (SELECT page_count FROM pragma_page_count()),
                        (SELECT freelist_count FROM pragma_freelist_count()),
                        (SELECT coalesce(sum(pages), 0) FROM modhost_backups)",
            )
            .map_err(&err)?;
        let (pages, free, backups): (i64, i64, i64) = stmt
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(&err)?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Usage {
            pages: count(pages),
            free: count(free),
            backups: count(backups),
        })
    }

    /// Sets the connection's `max_page_count` to `pages` unless it is already.
    fn set_ceiling(&self, pages: u64) -> Result<()> {
        if self.conn.ceiling() != pages {
            let set = state::ceiling(&self.conn, &self.path, pages)?;
            self.conn.set_ceiling(set);
        }
        Ok(())
    }

    /// Lowers the ceiling to the modules' for what follows: a module's statements, which
    /// then cannot grow the file past the cap (plus the backups kept), whatever they do.
    /// Called before each module write ([`Txn::check_room_for`]), before each module
    /// query (which may write: `INSERT … RETURNING`), when a dispatch's transaction
    /// begins, and when a handler's scope opens ([`Txn::savepoint`]). A module's write is
    /// also checked before it runs, because SQLite's SQLITE_FULL may roll back the whole
    /// transaction: every handler of the dispatch.
    pub(crate) fn module_ceiling(&self) -> Result<()> {
        let usage = self.usage()?;
        self.set_ceiling(self.room.module_ceiling(usage.backups))
    }

    /// Raises the ceiling back to modhost's own, for modhost's writes: records, schemas,
    /// backups. Called by each of them that follows a module's statements in a
    /// transaction (and when a transaction begins).
    pub(crate) fn host_ceiling(&self) -> Result<()> {
        self.set_ceiling(self.room.host)
    }

    /// Refuses a write of `module`'s of about `bytes` (a key-value entry, a statement's
    /// parameters) with [`Error::OverQuota`] when it would take the module past its quota,
    /// and with [`Error::Full`] naming it once modules fill the cap or when the write would
    /// not fit under the modules' ceiling — so that a write too big for what is left is
    /// refused before it runs rather than stopped by SQLite, which may then roll back the
    /// whole transaction. Then lowers the ceiling for it: to the modules', and to no more
    /// than the module's own room left. Returns the bytes the file's used pages take
    /// before the write, for the caller to count what it grew.
    pub fn check_room_for(&self, module: &str, bytes: u64) -> Result<u64> {
        self.check_room(module, bytes, false)
            .map(|start| start.used)
    }

    /// [`Txn::check_room_for`] for a statement of `module`'s SQL, which may free room: a
    /// module at or past its quota may still run one that carries little of its own (a
    /// `DELETE`); [`Start::at_quota`] says that the statement must not grow what it keeps.
    pub(crate) fn check_room_for_statement(&self, module: &str, bytes: u64) -> Result<Start> {
        self.check_room(module, bytes, true)
    }

    fn check_room(&self, module: &str, bytes: u64, may_shrink: bool) -> Result<Start> {
        let room = self.check_quota(module, bytes, may_shrink)?;
        let usage = self.usage()?;
        // The pages `bytes` take, with room for the b-tree's own: an eighth more, and a
        // few pages for the leaf and any split above it.
        let page = self.room.page_size;
        let needed = match bytes {
            0 => 0,
            bytes => bytes.div_ceil(page) + bytes.div_ceil(page) / 8 + 4,
        };
        let used = usage.modules();
        let most = self.room.cap.saturating_add(self.room.slack);
        let full = used >= self.room.cap || used.saturating_add(needed) > most;
        // At the cap, a statement that may free room still runs if it only deletes, and
        // is undone if it grew what is used at all: else nothing a module runs could make
        // room again, and every module's writes would stay refused until an uninstall.
        if full && !may_shrink {
            return Err(self.full(Some(module)));
        }
        // A module past its quota may still free room. Its statement runs with the slack
        // all the same, and is undone alone if it grew what the module keeps (see
        // `Txn::within_quota`): stopped by the ceiling, a one-row write would take the
        // whole transaction with it, the module's earlier writes included.
        let left = room.map_or(0, |left| left.div_ceil(page));
        let own = usage
            .pages
            .saturating_add(left)
            .saturating_add(self.room.slack);
        self.set_ceiling(self.room.module_ceiling(usage.backups).min(own))?;
        Ok(self.start(&usage, room.is_none(), left, full))
    }

    /// [`Start::room`] for a module with `left` pages of its quota, when free pages
    /// could let a statement grow what is used past the page ceiling's reach.
    fn free_room(&self, usage: &Usage, left: u64) -> Option<u64> {
        if usage.free == 0 {
            return None;
        }
        let quota = left.saturating_add(self.room.slack);
        let cap = self
            .room
            .cap
            .saturating_add(self.room.slack)
            .saturating_sub(usage.modules());
        Some(quota.min(cap).saturating_mul(self.room.page_size))
    }

    /// Lowers the ceiling, refusing nothing, for a query of `module`'s (which may write:
    /// `INSERT … RETURNING`): to the modules' and to the module's own room left and the
    /// slack. At its quota, the query may free room but not grow what the module keeps
    /// ([`Start::at_quota`]).
    pub(crate) fn module_ceiling_for(&self, module: &str) -> Result<Start> {
        let left = self.quota_left(module)?;
        let usage = self.usage()?;
        let pages = left.div_ceil(self.room.page_size);
        let own = usage
            .pages
            .saturating_add(pages)
            .saturating_add(self.room.slack);
        self.set_ceiling(self.room.module_ceiling(usage.backups).min(own))?;
        let full = usage.modules() >= self.room.cap;
        Ok(self.start(&usage, left == 0, pages, full))
    }

    /// What a module's statement starts from, with `left` pages of its quota; `full`
    /// when modules have reached the cap.
    fn start(&self, usage: &Usage, at_quota: bool, left: u64, full: bool) -> Start {
        Start {
            used: self.used_of(usage),
            at_quota,
            room: match full {
                true => Some(0),
                false => self.free_room(usage, left),
            },
            writes: match full {
                true => Writes::DeletesOnly,
                false => Writes::Any,
            },
        }
    }

    /// The bytes the used pages of `usage` take.
    fn used_of(&self, usage: &Usage) -> u64 {
        usage
            .pages
            .saturating_sub(usage.free)
            .saturating_mul(self.room.page_size)
    }

    /// The bytes modules may still add before the shared cap.
    pub(crate) fn cap_left(&self) -> u64 {
        self.usage().map_or(0, |u| {
            self.room
                .cap
                .saturating_sub(u.modules())
                .saturating_mul(self.room.page_size)
        })
    }

    /// The bytes the file's used pages take now: what a module's statement grew is the
    /// difference before and after it.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.usage().map_or(0, |u| self.used_of(&u))
    }

    /// Marks a savepoint that [`Txn::rollback_to`] can return to. A savepoint opens a
    /// module's scope (a hook handler's, see `Session`), so what follows runs under the
    /// modules' ceiling until modhost writes again.
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.conn
            .execute_batch(&format!("SAVEPOINT {}", schema::quote(name)))
            .map_err(self.err())?;
        self.module_ceiling()
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
        self.recount();
        self.conn
            .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
            .map_err(self.err())
    }

    /// Makes every change of the transaction durable. When it removed a module's data or
    /// a backup, then gives the pages that freed back to the disk (as
    /// [`State::reclaim`](crate::State::reclaim)), best effort: the commit stands whatever
    /// happens to that, and free pages count for nothing until the next time.
    pub fn commit(mut self) -> Result<()> {
        if !self.changed_modules {
            self.finish("COMMIT")?;
        } else {
            let signal = Arc::clone(&self.signal);
            signal.publish(|| {
                self.finish(
                    "UPDATE modhost_meta SET value = value + 1 WHERE key = 'generation'; COMMIT",
                )
            })?;
        }
        if self.freed {
            let _ = state::incremental_vacuum(&self.conn);
        }
        Ok(())
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
