//! [`State`], the handle on a root's database: opening it, the pool of connections it
//! reuses, the start of every transaction, and the generation that tells caches of the
//! installed modules when to refresh. What it reads of each table lives with that table's
//! code (`modules.rs`, `kv.rs`, …).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::sqlite;
use crate::gate::{Gate, Turn};
use crate::migrations;
use crate::signal::Signal;
use crate::{Error, Result, Txn};

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections kept for reuse: opening one costs far more than a hook call.
const POOL_SIZE: usize = 16;

type Pool = Arc<Mutex<Vec<Connection>>>;

/// A connection borrowed from the pool, returned when dropped.
pub(crate) struct Pooled {
    conn: Option<Connection>,
    pool: Pool,
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
                pool.push(conn);
            }
        }
    }
}

/// A modhost root's state database. Cloning shares its connection pool.
#[derive(Clone)]
pub struct State {
    /// Shared, so that cloning a state (a session per dispatch) allocates nothing.
    path: Arc<Path>,
    /// The most bytes the database may grow to.
    max_size: u64,
    pool: Pool,
    signal: Arc<Signal>,
    gate: Arc<Gate>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

/// Creates `path` empty with mode 0600 unless it exists (an empty file is an empty
/// SQLite database); SQLite itself would create it 0644 less the umask.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::Io {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The default cap on the database's size: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024 * 1024;

impl State {
    /// Opens the database at `path`, creating it and bringing its schema up to date.
    /// A new database is readable by its owner only: it holds the download keys of
    /// update sources, and SQLite gives its journal files the database's mode.
    pub fn open(path: &Path) -> Result<Self> {
        State::open_capped(path, DEFAULT_MAX_SIZE)
    }

    /// Opens the database at `path` like [`State::open`], where modules may not grow it
    /// past `max_size` bytes: one filling its tables or store in a loop fills the cap, not
    /// the PBX's disk. A module's write once the database is at its cap fails with
    /// [`Error::Full`], an error the module can handle; modhost's own writes (installs,
    /// records) still go through, and everything stays readable.
    pub fn open_capped(path: &Path, max_size: u64) -> Result<Self> {
        create_private(path)?;
        let state = State {
            path: Arc::from(path),
            max_size,
            pool: Pool::default(),
            signal: Arc::new(Signal::open(path)?),
            gate: Arc::default(),
        };
        let mut conn = state.connect()?;
        migrations::apply(&mut conn, path)?;
        Ok(state)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection from the pool, or a new one when the pool is empty.
    pub(crate) fn connect(&self) -> Result<Pooled> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open_connection()?,
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: Arc::clone(&self.pool),
        })
    }

    fn open_connection(&self) -> Result<Connection> {
        let err = sqlite(&self.path);
        let conn = Connection::open(&self.path).map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&err)?;
        Ok(conn)
    }

    /// Starts a write transaction; it takes SQLite's write lock at once.
    pub fn begin(&self) -> Result<Txn> {
        self.start("BEGIN IMMEDIATE")
    }

    /// Starts the write transaction of a hook dispatch, waiting no later than `deadline`
    /// for this process's other dispatches (see `gate.rs`) and for other processes'
    /// writers; past it, [`Error::Busy`].
    pub fn begin_by(&self, deadline: Instant) -> Result<Txn> {
        let busy = || Error::Busy {
            path: self.path.to_path_buf(),
        };
        let turn = Gate::enter(&self.gate, deadline).ok_or_else(busy)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(busy());
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
                Err(busy())
            }
            other => other.map_err(&err),
        }?;
        Ok(self.txn(conn, Some(turn)))
    }

    fn start(&self, begin: &str) -> Result<Txn> {
        let conn = self.connect()?;
        conn.execute_batch(begin).map_err(sqlite(&self.path))?;
        Ok(self.txn(conn, None))
    }

    fn txn(&self, conn: Pooled, turn: Option<Turn>) -> Txn {
        Txn::new(
            conn,
            Arc::clone(&self.path),
            self.max_size,
            Arc::clone(&self.signal),
            turn,
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
