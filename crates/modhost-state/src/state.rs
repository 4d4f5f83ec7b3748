//! [`State`], the handle on a root's database: opening it, the pool of connections it
//! reuses, the start of every transaction, and the generation that tells caches of the
//! installed modules when to refresh. What it reads of each table lives with that table's
//! code (`modules.rs`, `kv.rs`, …).
//!
//! # How big the database may grow
//!
//! `[state] max_size_mb` (the cap) bounds what modules write; SQLite itself holds every
//! bound, within a statement as between statements:
//!
//! - Modules' pages — everything in use but the backups an upgrade keeps: their stores,
//!   their tables, and modhost's records with them — are checked against the cap before
//!   each module write ([`Txn::check_room_for`]): at the cap, the write is refused with
//!   [`Error::Full`], an error the module can handle. Free pages count for nothing, and
//!   are reused.
//! - A module's statement runs under `PRAGMA max_page_count` = cap + [`slack`](Room) +
//!   backups, so that no statement (an `INSERT … SELECT zeroblob(…)`, an `INSERT …
//!   RETURNING` through `db.query`) grows the file past it: SQLite stops it with
//!   SQLITE_FULL, also reported as [`Error::Full`]. Free pages (a `DELETE` leaves them
//!   until the next reclaim) let a statement grow what is used without growing the
//!   file, which no ceiling can stop: with free pages about, a module's statement runs
//!   in a savepoint and is undone, refused the same way, if it grew what is used past
//!   its room. The slack, a quarter of the cap and
//!   at most [`SLACK_MAX`], lets the one write that began below the cap finish (a
//!   key-value entry, a row) rather than meet the ceiling: SQLite may answer that by
//!   rolling back the whole transaction rather than the statement alone.
//! - modhost's own writes (records, schemas, grants, sources, and the copies of a
//!   module's store and tables that an upgrade keeps as its backup) run under a higher
//!   ceiling, twice the cap plus [`RESERVE`]: modules that fill the cap never starve
//!   them. Backups are not modules' pages, so keeping one never stops modules writing;
//!   together they may fill a cap's worth, which is what one upgrade of everything keeps.
//! - So the file never exceeds twice the cap plus the reserve, and modules alone never
//!   grow it past the cap plus the slack plus the backups kept.
//! - The WAL: a transaction appends each page it changes once, so it adds at most the
//!   file's ceiling; SQLite checkpoints every 1000 pages, and truncates the WAL to
//!   [`JOURNAL_SIZE_LIMIT`] once a checkpoint has emptied it (a reader's old snapshot
//!   may delay that; the last connection to close removes it).
//! - Sorts, `GROUP BY`, `DISTINCT`, recursive CTEs' queues, temporary b-trees and
//!   statement journals stay in memory (`temp_store = MEMORY`), which SQLite's hard heap
//!   limit ([`HEAP_LIMIT`]) bounds: no statement writes temporary files; one that needs
//!   more memory fails with SQLITE_NOMEM (which, like SQLITE_FULL, may roll back the
//!   whole transaction). One module statement is stopped once SQLite's memory grew by a
//!   quarter of that while it ran (`module_sql/memory.rs`, counted for the process, so
//!   others' statements at once move it too): SQLite sorts what it gathered in memory in
//!   one step that no deadline interrupts, and the rest of the heap is the other
//!   modules'.
//! - Databases are in incremental auto-vacuum mode: what a removal frees goes back to the
//!   disk at the commit (see [`State::reclaim`]). A database made before is converted
//!   when opened, if it is small enough for the one `VACUUM` that takes
//!   ([`CONVERT_AT_OPEN_MAX`]); a bigger one keeps its free pages, which are reused and
//!   never counted.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::sqlite;
use crate::gate::{Gate, Turn};
use crate::migrations::{self, Survey};
use crate::process::Process;
use crate::quota::{self, Quotas};
use crate::setup::{configure, convert_to_incremental, create_private};
use crate::signal::Signal;
use crate::{Error, Result, Stop, Txn};

/// How long a writer waits for another writer's transaction before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections kept for reuse: opening one costs far more than a hook call.
const POOL_SIZE: usize = 16;

/// Room beyond twice the cap for modhost's own records: module records (each with its
/// module.xml), schemas, grants and sources, written when modules and backups fill theirs.
pub(crate) const RESERVE: u64 = 16 * 1024 * 1024;

/// The most a modules' write that began below the cap may finish past it (see the
/// module documentation); a quarter of the cap when that is less.
pub(crate) const SLACK_MAX: u64 = 2 * 1024 * 1024;

/// The most memory SQLite may allocate in this process, all connections together
/// (`sqlite3_hard_heap_limit64`): page caches, and what a statement sorts, groups or
/// keeps in temporary b-trees, which stay in memory. A statement that needs more fails
/// with SQLITE_NOMEM. The limit is the process's: `PRAGMA hard_heap_limit` only ever
/// lowers it, so an embedding application that set a lower one keeps its own.
pub(crate) const HEAP_LIMIT: i64 = 256 * 1024 * 1024;

/// What the WAL is truncated to once checkpointed (`PRAGMA journal_size_limit`).
pub(crate) const JOURNAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// The largest database converted to incremental auto-vacuum when opened: the `VACUUM`
/// that converts rewrites the whole file, needing as much again in a temporary file and
/// in the WAL, once.
pub(crate) const CONVERT_AT_OPEN_MAX: u64 = 256 * 1024 * 1024;

/// The largest `max_page_count` SQLite accepts.
const MAX_PAGES: u64 = 4_294_967_294;

/// What bounds the database's growth, in pages (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Room {
    /// The database's page size, in bytes.
    pub(crate) page_size: u64,
    /// The cap, in bytes, as configured.
    pub(crate) max_size: u64,
    /// The pages modules may use: the cap.
    pub(crate) cap: u64,
    /// The pages the write that began below the cap may finish past it.
    pub(crate) slack: u64,
    /// The ceiling of modhost's own writes: twice the cap plus the reserve.
    pub(crate) host: u64,
}

impl Room {
    fn new(max_size: u64, page_size: u64) -> Room {
        let page_size = page_size.max(512);
        let cap = (max_size / page_size).clamp(1, MAX_PAGES);
        let host = cap
            .saturating_mul(2)
            .saturating_add(RESERVE / page_size)
            .min(MAX_PAGES);
        Room {
            page_size,
            max_size,
            cap,
            slack: (cap / 4).min(SLACK_MAX / page_size),
            host,
        }
    }

    /// The ceiling of a module's statement, with `backups` pages kept by upgrades.
    pub(crate) fn module_ceiling(&self, backups: u64) -> u64 {
        self.cap
            .saturating_add(self.slack)
            .saturating_add(backups)
            .min(self.host)
    }
}

/// An idle connection of the pool, with its `max_page_count` as last set.
struct Idle {
    conn: Connection,
    ceiling: u64,
}

type Pool = Arc<Mutex<Vec<Idle>>>;

/// A connection borrowed from the pool, returned when dropped.
pub(crate) struct Pooled {
    conn: Option<Connection>,
    /// The connection's `max_page_count` as last set, so that setting it again to the
    /// same value costs nothing.
    ceiling: AtomicU64,
    pool: Pool,
}

impl Pooled {
    /// The connection's `max_page_count` as last set.
    pub(crate) fn ceiling(&self) -> u64 {
        self.ceiling.load(Ordering::Relaxed)
    }

    /// Notes the connection's `max_page_count` as just set.
    pub(crate) fn set_ceiling(&self, pages: u64) {
        self.ceiling.store(pages, Ordering::Relaxed);
    }
}

impl Deref for Pooled {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("a pooled connection is only taken in drop"),
        }
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a pooled connection is only taken in drop"),
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.is_autocommit()
        {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_SIZE {
                pool.push(Idle {
                    conn,
                    ceiling: self.ceiling(),
                });
            }
        }
    }
}

/// A modhost root's state database. Cloning shares its connection pool.
#[derive(Clone)]
pub struct State {
    /// Shared, so that cloning a state (a session per dispatch) allocates nothing.
    path: Arc<Path>,
    /// The cap, and the ceilings derived from it.
    room: Room,
    pool: Pool,
    signal: Arc<Signal>,
    gate: Arc<Gate>,
    /// What each module may keep.
    quotas: Arc<Quotas>,
    /// The process that opened it; a forked child uses none of its connections.
    process: Process,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

/// The default cap on the database's size: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024 * 1024;

impl State {
    /// The state with `quotas` for what each module may keep in it (the default:
    /// [`DEFAULT_MODULE_QUOTA`](crate::DEFAULT_MODULE_QUOTA) each).
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Arc::new(quotas);
        self
    }

    /// The quota of `module`.
    pub fn quota_of(&self, module: &str) -> u64 {
        self.quotas.of(module)
    }

    /// The bytes `module` keeps in its key-value store and tables.
    pub fn module_usage(&self, module: &str) -> Result<u64> {
        quota::usage_of(&*self.connect()?, module).map_err(sqlite(self.path()))
    }

    /// What the database file at `path` holds ([`Survey`]), refused when it is not
    /// modhost's (see `migrations::survey`); a missing or empty file is
    /// [`Survey::Empty`], one this process cannot open [`Survey::NotLooked`]. Only reads.
    pub fn survey(path: &Path) -> Result<Survey> {
        if !std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Ok(Survey::Empty);
        }
        // Read-write if it may be written (SQLite opens a write-protected file read-only),
        // and never checkpointed on close: a refused file's WAL stays as it was.
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|conn| {
            conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            Ok(conn)
        });
        let surveyed = conn
            .map_err(sqlite(path))
            .and_then(|conn| migrations::survey(&conn, path));
        match surveyed {
            // Not even readable here (a WAL database whose shared memory this process may
            // not make, in a directory it may not write): opening it as a root's fails for
            // that, saying so.
            Err(Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            }) if matches!(
                e.code,
                rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly
            ) =>
            {
                Ok(Survey::NotLooked)
            }
            surveyed => surveyed,
        }
    }

    /// Opens the database at `path`, creating it and bringing its schema up to date.
    /// A new database is readable by its owner only: it holds the download keys of
    /// update sources, and SQLite gives its journal files the database's mode.
    pub fn open(path: &Path) -> Result<Self> {
        State::open_capped(path, DEFAULT_MAX_SIZE)
    }

    /// Opens the database at `path` like [`State::open`], where modules may not grow it
    /// past `max_size` bytes: one filling its tables or store in a loop, or in one
    /// statement, fills the cap, not the PBX's disk. A module's write once the database is
    /// at its cap fails with [`Error::Full`], an error the module can handle; modhost's
    /// own writes (installs, records, backups) still go through, and everything stays
    /// readable. See the module documentation for every bound.
    pub fn open_capped(path: &Path, max_size: u64) -> Result<Self> {
        // Another program's database is left as it was found: not made private, not even
        // put in WAL mode.
        State::survey(path)?;
        create_private(path)?;
        let err = sqlite(path);
        let mut conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        // A new database takes its vacuum mode before WAL and its first table. Setting it
        // takes the write lock, so it is never done on a database that has pages.
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .map_err(&err)?;
        if pages == 0 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(&err)?;
        }
        configure(&conn, path)?;
        // Process-wide, and only ever lowered.
        conn.pragma_update(None, "hard_heap_limit", HEAP_LIMIT)
            .map_err(&err)?;
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(&err)?;
        let room = Room::new(max_size, u64::try_from(page_size).unwrap_or(4096));
        migrations::apply(&mut conn, path)?;
        let (mode, pages): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT auto_vacuum FROM pragma_auto_vacuum()),
                        (SELECT page_count FROM pragma_page_count())",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(&err)?;
        // 0 is NONE; FULL gives freed pages back at every commit already.
        let size = u64::try_from(pages).unwrap_or(u64::MAX) * room.page_size;
        if mode == 0 && size <= CONVERT_AT_OPEN_MAX {
            convert_to_incremental(path);
        }
        crate::functions::install(&conn).map_err(&err)?;
        let ceiling = ceiling(&conn, path, room.host)?;
        let state = State {
            path: Arc::from(path),
            room,
            pool: Pool::default(),
            signal: Arc::new(Signal::open(path)?),
            gate: Arc::default(),
            quotas: Arc::default(),
            process: Process::current(),
        };
        state
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle { conn, ceiling });
        Ok(state)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection from the pool, or a new one when the pool is empty.
    pub(crate) fn connect(&self) -> Result<Pooled> {
        if !self.process.is_current() {
            return Err(Error::Forked {
                path: self.path.to_path_buf(),
                opened_by: self.process.id,
            });
        }
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let idle = match pooled {
            Some(idle) => idle,
            None => self.open_connection()?,
        };
        Ok(Pooled {
            conn: Some(idle.conn),
            ceiling: AtomicU64::new(idle.ceiling),
            pool: Arc::clone(&self.pool),
        })
    }

    fn open_connection(&self) -> Result<Idle> {
        let conn = Connection::open(&self.path).map_err(sqlite(&self.path))?;
        configure(&conn, &self.path)?;
        crate::functions::install(&conn).map_err(sqlite(&self.path))?;
        let ceiling = ceiling(&conn, &self.path, self.room.host)?;
        Ok(Idle { conn, ceiling })
    }

    /// Gives the pages that removals freed back to the disk (`PRAGMA incremental_vacuum`);
    /// returns how many bytes the file shrank by. Free pages never count against the cap,
    /// so this only matters to the disk: [`Txn::commit`] does it after every commit that
    /// removed a module's data, and recovery may do it for a database whose last removal
    /// was cut short. Does nothing in a database made before incremental auto-vacuum and
    /// too big to convert when opened.
    pub fn reclaim(&self) -> Result<u64> {
        let conn = self.connect()?;
        let err = sqlite(&self.path);
        let pages = |conn: &Connection| -> Result<u64> {
            let pages: i64 = conn
                .pragma_query_value(None, "page_count", |row| row.get(0))
                .map_err(&err)?;
            Ok(u64::try_from(pages).unwrap_or(0))
        };
        let before = pages(&conn)?;
        incremental_vacuum(&conn).map_err(&err)?;
        let after = pages(&conn)?;
        Ok(before.saturating_sub(after) * self.room.page_size)
    }

    /// Starts a write transaction; it takes SQLite's write lock at once.
    pub fn begin(&self) -> Result<Txn> {
        self.start("BEGIN IMMEDIATE")
    }

    /// Starts the write transaction of a hook dispatch, waiting for this process's other
    /// dispatches (see `gate.rs`) and for other processes' writers no later than `stop`'s
    /// deadline, or its cancellation; past it, [`Error::Busy`], naming the module whose
    /// call held the lock when it was one of this process's. `holder` is the module whose
    /// call this is.
    pub fn begin_by(&self, stop: impl Into<Stop>, holder: Option<&str>) -> Result<Txn> {
        let stop = stop.into();
        let busy = |held_by: Option<String>| Error::Busy {
            path: self.path.to_path_buf(),
            process: held_by
                .is_none()
                .then(|| crate::writer::elsewhere(&self.path))
                .flatten(),
            held_by,
        };
        let cancelled = |stop: &Stop| stop.is_cancelled().then_some(Error::Cancelled);
        let turn = Gate::enter(&self.gate, &stop, holder)
            .map_err(|held_by| cancelled(&stop).unwrap_or_else(|| busy(held_by)))?;
        let left = stop.deadline().saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(busy(None));
        }
        if let Some(cancelled) = cancelled(&stop) {
            return Err(cancelled);
        }
        let conn = self.connect()?;
        let err = sqlite(&self.path);
        conn.busy_timeout(left.min(BUSY_TIMEOUT)).map_err(&err)?;
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        match begun {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Err(busy(None))
            }
            other => other.map_err(&err),
        }?;
        // Only modules' handlers write in a dispatch's transaction: every statement of it,
        // queries included, runs under the modules' ceiling.
        let txn = self.txn(conn, Some(turn));
        txn.module_ceiling()?;
        Ok(txn)
    }

    fn start(&self, begin: &str) -> Result<Txn> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let turn = Gate::enter_change(&self.gate, deadline).ok_or_else(|| Error::Contended {
            path: self.path.to_path_buf(),
            waited_secs: BUSY_TIMEOUT.as_secs(),
            process: None,
        })?;
        let conn = self.connect()?;
        let err = sqlite(&self.path);
        // Other processes' writers are waited for in SQLite, within what is left.
        let left = deadline.saturating_duration_since(Instant::now());
        conn.busy_timeout(left.max(Duration::from_millis(1)))
            .map_err(&err)?;
        let begun = conn.execute_batch(begin);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        begun.map_err(|e| not_begun(&self.path, e))?;
        let txn = self.txn(conn, Some(turn));
        txn.host_ceiling()?;
        Ok(txn)
    }

    fn txn(&self, conn: Pooled, turn: Option<Turn>) -> Txn {
        Txn::new(
            conn,
            Arc::clone(&self.path),
            self.room,
            Arc::clone(&self.signal),
            turn,
            Arc::clone(&self.quotas),
        )
    }

    /// A number that changes whenever a module is installed, changed or removed, in any
    /// process: caches of what modules are installed are valid while it stays the same.
    ///
    /// Cheap to call on every dispatch: while no commit has moved it, it is answered from
    /// memory after reading an 8-byte counter file (see `signal.rs`).
    pub fn generation(&self) -> Result<i64> {
        self.signal.generation(|| {
            let conn = self.connect()?;
            let mut stmt = conn
                .prepare_cached("SELECT value FROM modhost_meta WHERE key = 'generation'")
                .map_err(sqlite(&self.path))?;
            stmt.query_row([], |row| row.get(0))
                .map_err(sqlite(&self.path))
        })
    }
}

/// Sets `conn`'s `max_page_count` to `pages`; returns what SQLite set, which is never
/// less than the pages the database already has.
pub(crate) fn ceiling(conn: &Connection, path: &Path, pages: u64) -> Result<u64> {
    let pages = i64::try_from(pages.min(MAX_PAGES)).unwrap_or(i64::MAX);
    let set: i64 = conn
        .pragma_update_and_check(None, "max_page_count", pages, |row| row.get(0))
        .map_err(sqlite(path))?;
    Ok(u64::try_from(set).unwrap_or(0))
}

/// Gives every free page back to the disk, in a database in incremental auto-vacuum mode
/// (in any other, does nothing). The pragma frees one page per step.
pub(crate) fn incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("PRAGMA incremental_vacuum")?;
    let mut steps = stmt.query([])?;
    while steps.next()?.is_some() {}
    Ok(())
}

/// Why a change's transaction did not begin: the write lock held past the wait
/// (`BUSY_TIMEOUT`) is said as what it is, not as SQLite's code 5.
pub(crate) fn not_begun(path: &Path, error: rusqlite::Error) -> Error {
    match error {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DatabaseBusy => {
            Error::Contended {
                path: path.to_path_buf(),
                waited_secs: BUSY_TIMEOUT.as_secs(),
                process: crate::writer::elsewhere(path),
            }
        }
        other => sqlite(path)(other),
    }
}
