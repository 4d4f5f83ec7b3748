//! The state database of a modhost root: which modules are installed, in which state,
//! where their files are, their backups, their key-value stores and their own tables.
//!
//! The database is SQLite in WAL mode with full synchronisation, and it is the single
//! point of truth: a change prepares new files beside the old ones, then commits one
//! [`Txn`] that points the module at them. A crash before the commit leaves the old
//! state; after it, the new. Files that no record points at are leftovers that
//! [`State::referenced_dirs`] lets the host sweep away.
//!
//! ```
//! use modhost_state::State;
//!
//! let dir = tempfile::tempdir()?;
//! let state = State::open(&dir.path().join("modhost.db"))?;
//! let mut txn = state.begin()?;
//! txn.kv_set("core", "extension/100", "Reception")?;
//! txn.commit()?;
//! assert_eq!(state.kv_entries("core")?, vec![("extension/100".into(), "Reception".into())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gate::{Gate, Turn};
use modhost_manifest::Database;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use signal::Signal;

mod gate;
mod module_sql;
mod schema;
mod session;
mod signal;

pub use module_sql::{Rows, SqlValue};
pub use schema::RESERVED_PREFIXES;
pub use session::Session;

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE modhost_modules (
        rawname          TEXT PRIMARY KEY NOT NULL,
        name             TEXT NOT NULL,
        version          TEXT NOT NULL,
        status           TEXT NOT NULL,
        reason           TEXT,
        module_dir       TEXT NOT NULL,
        data_dir         TEXT NOT NULL,
        component_sha256 TEXT NOT NULL,
        manifest         TEXT NOT NULL,
        installed_at     INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE modhost_backups (
        rawname          TEXT PRIMARY KEY NOT NULL,
        name             TEXT NOT NULL,
        version          TEXT NOT NULL,
        status           TEXT NOT NULL,
        module_dir       TEXT NOT NULL,
        data_dir         TEXT NOT NULL,
        component_sha256 TEXT NOT NULL,
        manifest         TEXT NOT NULL,
        installed_at     INTEGER NOT NULL,
        kv               TEXT NOT NULL,
        tables           TEXT NOT NULL
    ) STRICT;
    CREATE TABLE modhost_kv (
        module TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (module, key)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE modhost_tables (
        name   TEXT PRIMARY KEY NOT NULL,
        module TEXT NOT NULL
    ) STRICT;
",
    "
    CREATE TABLE modhost_meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) STRICT;
    INSERT INTO modhost_meta (key, value) VALUES ('generation', 0);
    CREATE TABLE modhost_grants (
        module TEXT NOT NULL,
        path   TEXT NOT NULL,
        access TEXT NOT NULL,
        PRIMARY KEY (module, path)
    ) STRICT;
",
    "
    CREATE TABLE modhost_sources (
        name        TEXT PRIMARY KEY NOT NULL,
        url         TEXT NOT NULL,
        public_key  TEXT,
        extra_query TEXT
    ) STRICT;
    CREATE TABLE modhost_module_sources (
        rawname TEXT PRIMARY KEY NOT NULL,
        source  TEXT NOT NULL
    ) STRICT;
",
    "
    ALTER TABLE modhost_sources ADD COLUMN kind TEXT NOT NULL DEFAULT 'index';
    CREATE TABLE modhost_channel_keys (
        channel     TEXT PRIMARY KEY NOT NULL,
        extra_query TEXT NOT NULL
    ) STRICT;
",
    // A module channel's name (`phonebook/1`) is only a position in a module.xml, which
    // another module.xml of the same rawname may give to another server: the key is bound
    // to the URL it was stored for. Keys stored before have none, and are sent nowhere.
    "
    ALTER TABLE modhost_channel_keys ADD COLUMN url TEXT;
",
];

/// A download key stored for a module-declared channel. Its `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey {
    /// The query appended to the channel's package URLs.
    pub extra_query: String,
    /// The channel URL it was stored for; `None` for a key stored before keys were bound
    /// to URLs.
    pub url: Option<String>,
}

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelKey")
            .field("extra_query", &"<redacted>")
            .field("url", &self.url)
            .finish()
    }
}

/// An update source as stored. Its `Debug` leaves the download key out.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Its name.
    pub name: String,
    /// The repository URL or local path.
    pub url: String,
    /// Its format: `index`, `a2`, `freepbx` or `joomla`.
    pub kind: String,
    /// The pinned publisher key, if any.
    pub public_key: Option<String>,
    /// The download key appended to package URLs, if any.
    pub extra_query: Option<String>,
}

impl std::fmt::Debug for SourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRecord")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("public_key", &self.public_key)
            .field(
                "extra_query",
                &self.extra_query.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Connections kept for reuse: opening one costs far more than a hook call.
const POOL_SIZE: usize = 16;

type Pool = Arc<Mutex<Vec<Connection>>>;

/// A connection borrowed from the pool, returned when dropped.
struct Pooled {
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

/// A state-database failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite reported an error.
    #[error("state database `{path}`: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database reached its size cap: modules can write no more until something is
    /// removed or the cap raised.
    #[error(
        "state database `{path}` is full: it reached its size cap of {} MiB ([state] max_size_mb in modhost.toml)",
        *.max_size as f64 / (1024.0 * 1024.0)
    )]
    Full {
        /// The database file.
        path: PathBuf,
        /// The cap, in bytes.
        max_size: u64,
    },
    /// The database file could not be created.
    #[error("state database `{path}`: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored value is not one modhost writes; the database was changed by hand.
    #[error("state database `{path}`: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The write lock stayed taken by other writers until the call's deadline.
    #[error("state database `{path}` stayed locked by other writers until the call's deadline")]
    Busy {
        /// The database file.
        path: PathBuf,
    },
    /// A module's `<database>` cannot be applied.
    #[error("module `{module}`: database schema: {message}")]
    Schema {
        /// The module.
        module: String,
        /// What is wrong.
        message: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The state of an installed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Not installed, though the package directory holds a package of it. Never stored:
    /// a module without a record has this status.
    NotInstalled,
    /// Installed and taking part in hook points.
    Enabled,
    /// Installed but switched off by an administrator.
    Disabled,
    /// A newer version is available locally and should be applied.
    NeedsUpgrade,
    /// Recorded, but its files are missing or cannot be loaded.
    Broken,
}

impl Status {
    /// The stored, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotInstalled => "not-installed",
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
            Status::NeedsUpgrade => "needs-upgrade",
            Status::Broken => "broken",
        }
    }

    /// Whether the module's handlers run.
    pub fn runs(self) -> bool {
        matches!(self, Status::Enabled | Status::NeedsUpgrade)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a stored status: `not-installed` is never stored, so it is refused.
impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enabled" => Ok(Status::Enabled),
            "disabled" => Ok(Status::Disabled),
            "needs-upgrade" => Ok(Status::NeedsUpgrade),
            "broken" => Ok(Status::Broken),
            other => Err(format!("unknown module status `{other}`")),
        }
    }
}

/// What the state database records about an installed module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleRecord {
    /// The module's unique id.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The installed version, as module.xml writes it.
    pub version: String,
    /// Its state.
    pub status: Status,
    /// Why it is in that state, when that needs saying.
    pub reason: Option<String>,
    /// The directory under `modules/RAWNAME/` holding this version's files.
    pub module_dir: String,
    /// The directory under `data/RAWNAME/` that is the module's `/data`.
    pub data_dir: String,
    /// SHA-256 of the component, hex: the key of its compiled artifact.
    pub component_sha256: String,
    /// The installed module.xml, verbatim.
    #[serde(skip)]
    pub manifest: String,
    /// When it was installed, in seconds since the Unix epoch.
    pub installed_at: i64,
}

/// The previous version of a module, kept by an upgrade so it can be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The module as it was before the upgrade.
    pub record: ModuleRecord,
    /// Its key-value store as it was.
    pub kv: BTreeMap<String, String>,
    /// Its tables as they were: table → the copy holding its rows.
    pub tables: BTreeMap<String, String>,
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

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite {
        path: path.to_owned(),
        source,
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
        let err = sqlite(path);
        let applied: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(&err)?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied < MIGRATIONS.len() {
            let tx = conn.transaction().map_err(&err)?;
            for migration in &MIGRATIONS[applied..] {
                tx.execute_batch(migration).map_err(&err)?;
            }
            tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
        Ok(state)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Pooled> {
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
        Txn {
            conn,
            path: Arc::clone(&self.path),
            max_size: self.max_size,
            signal: Arc::clone(&self.signal),
            open: true,
            changed_modules: false,
            _turn: turn,
        }
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

    /// Every update source, by name.
    pub fn sources(&self) -> Result<Vec<SourceRecord>> {
        let conn = self.connect()?;
        let mut stmt = conn
            .prepare(
                "SELECT name, url, public_key, extra_query, kind FROM modhost_sources ORDER BY name",
            )
            .map_err(sqlite(&self.path))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(SourceRecord {
                    name: row.get(0)?,
                    url: row.get(1)?,
                    public_key: row.get(2)?,
                    extra_query: row.get(3)?,
                    kind: row.get(4)?,
                })
            })
            .map_err(sqlite(&self.path))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(sqlite(&self.path))
    }

    /// The download key stored for a module-declared channel (`phonebook/updateurl`), with
    /// the channel URL it was stored for.
    pub fn channel_key(&self, channel: &str) -> Result<Option<ChannelKey>> {
        self.connect()?
            .query_row(
                "SELECT extra_query, url FROM modhost_channel_keys WHERE channel = ?1",
                [channel],
                |r| {
                    Ok(ChannelKey {
                        extra_query: r.get(0)?,
                        url: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(sqlite(&self.path))
    }

    /// The source `rawname` was installed from; `None` for a module installed from a file.
    pub fn module_source(&self, rawname: &str) -> Result<Option<String>> {
        self.connect()?
            .query_row(
                "SELECT source FROM modhost_module_sources WHERE rawname = ?1",
                [rawname],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite(&self.path))
    }

    /// The directories granted to `module`, as `(path, read_only)`.
    pub fn grants(&self, module: &str) -> Result<Vec<(String, bool)>> {
        queries::grants(&*self.connect()?, module).map_err(sqlite(&self.path))
    }

    /// Every installed module, by rawname.
    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        queries::modules(&*self.connect()?, &self.path)
    }

    /// The record of `rawname`, if installed.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        queries::module(&*self.connect()?, &self.path, rawname)
    }

    /// The backup of `rawname`, if an upgrade kept one.
    pub fn backup(&self, rawname: &str) -> Result<Option<Backup>> {
        queries::backup(&*self.connect()?, &self.path, rawname)
    }

    /// Every entry of `module`'s key-value store, by key.
    pub fn kv_entries(&self, module: &str) -> Result<Vec<(String, String)>> {
        queries::kv_entries(&*self.connect()?, module).map_err(sqlite(&self.path))
    }

    /// The tables `module` owns, by name.
    pub fn tables(&self, module: &str) -> Result<Vec<String>> {
        queries::tables(&*self.connect()?, module).map_err(sqlite(&self.path))
    }

    /// The rows of a table, for inspection (`SELECT *`); the table must be owned by a module.
    pub fn table_rows(&self, module: &str, table: &str) -> Result<Rows> {
        let mut conn = self.connect()?;
        let owned: BTreeSet<String> = queries::tables(&conn, module)
            .map_err(sqlite(&self.path))?
            .into_iter()
            .collect();
        let sql = format!("SELECT * FROM {}", schema::quote(table));
        let deadline = Instant::now() + Duration::from_secs(10);
        module_sql::query(&mut conn, owned, deadline, &sql, &[]).map_err(|message| Error::Schema {
            module: module.to_owned(),
            message,
        })
    }

    /// Every directory a record points at, as `(rawname, "modules" | "data", dir)`;
    /// anything else under `modules/` and `data/` is a leftover.
    pub fn referenced_dirs(&self) -> Result<BTreeSet<(String, &'static str, String)>> {
        let conn = self.connect()?;
        let mut dirs = BTreeSet::new();
        for record in queries::modules(&conn, &self.path)? {
            dirs.insert((record.rawname.clone(), "modules", record.module_dir.clone()));
            dirs.insert((record.rawname.clone(), "data", record.data_dir.clone()));
            if let Some(backup) = queries::backup(&conn, &self.path, &record.rawname)? {
                dirs.insert((record.rawname.clone(), "modules", backup.record.module_dir));
                dirs.insert((record.rawname, "data", backup.record.data_dir));
            }
        }
        Ok(dirs)
    }
}

/// An open transaction. Dropping it without [`Txn::commit`] rolls everything back.
pub struct Txn {
    conn: Pooled,
    path: Arc<Path>,
    max_size: u64,
    signal: Arc<Signal>,
    open: bool,
    /// Whether the set of modules or their states changed, so the generation must move.
    changed_modules: bool,
    /// A dispatch's turn at the gate, given back after the transaction ends.
    _turn: Option<Turn>,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn").field("path", &self.path).finish()
    }
}

impl Txn {
    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sqlite(&self.path)
    }

    /// The record of `rawname`, as this transaction sees it.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        queries::module(&self.conn, &self.path, rawname)
    }

    /// Every module, as this transaction sees them.
    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        queries::modules(&self.conn, &self.path)
    }

    /// The backup of `rawname`, as this transaction sees it.
    pub fn backup(&self, rawname: &str) -> Result<Option<Backup>> {
        queries::backup(&self.conn, &self.path, rawname)
    }

    /// Inserts or replaces a module's record.
    pub fn put_module(&mut self, r: &ModuleRecord) -> Result<()> {
        self.changed_modules = true;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_modules
                 (rawname, name, version, status, reason, module_dir, data_dir, component_sha256, manifest, installed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.rawname,
                    r.name,
                    r.version,
                    r.status.as_str(),
                    r.reason,
                    r.module_dir,
                    r.data_dir,
                    r.component_sha256,
                    r.manifest,
                    r.installed_at
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Sets a module's status and its reason.
    pub fn set_status(
        &mut self,
        rawname: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<()> {
        self.changed_modules = true;
        self.conn
            .execute(
                "UPDATE modhost_modules SET status = ?2, reason = ?3 WHERE rawname = ?1",
                params![rawname, status.as_str(), reason],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Runs `f` with foreign keys checked at the commit rather than after each statement:
    /// a module's tables are dropped and refilled in name order, which need not be the
    /// order of their foreign keys.
    fn deferring_foreign_keys<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
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

    /// Removes a module entirely: its record, backup, key-value store and tables.
    pub fn remove_module(&mut self, rawname: &str) -> Result<()> {
        self.deferring_foreign_keys(|txn| txn.remove_module_now(rawname))
    }

    fn remove_module_now(&mut self, rawname: &str) -> Result<()> {
        self.changed_modules = true;
        self.revoke(rawname)?;
        self.conn
            .execute(
                "DELETE FROM modhost_module_sources WHERE rawname = ?1",
                [rawname],
            )
            .map_err(self.err())?;
        self.drop_backup(rawname)?;
        for table in queries::tables(&self.conn, rawname).map_err(self.err())? {
            self.conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {}", schema::quote(&table)))
                .map_err(self.err())?;
        }
        for sql in [
            "DELETE FROM modhost_tables WHERE module = ?1",
            "DELETE FROM modhost_kv WHERE module = ?1",
            "DELETE FROM modhost_modules WHERE rawname = ?1",
        ] {
            self.conn.execute(sql, [rawname]).map_err(self.err())?;
        }
        Ok(())
    }

    /// Creates and alters `module`'s tables to match `database`; never drops. Refuses
    /// reserved names, tables another module owns, and foreign keys to tables `database`
    /// does not declare.
    pub fn apply_schema(&mut self, module: &str, database: &Database) -> Result<()> {
        let schema_err = |message: String| Error::Schema {
            module: module.to_owned(),
            message,
        };
        for table in &database.tables {
            let lower = table.name.to_ascii_lowercase();
            if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
                return Err(schema_err(format!(
                    "table name `{}` is reserved",
                    table.name
                )));
            }
            let owner: Option<String> = self
                .conn
                .query_row(
                    "SELECT module FROM modhost_tables WHERE name = ?1 COLLATE NOCASE",
                    [&table.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.err())?;
            match owner {
                Some(owner) if owner != module => {
                    return Err(schema_err(format!(
                        "table `{}` belongs to module `{owner}`",
                        table.name
                    )));
                }
                None if schema::table_exists(&self.conn, &table.name).map_err(self.err())? => {
                    return Err(schema_err(format!(
                        "table `{}` already exists and is not the module's",
                        table.name
                    )));
                }
                _ => {}
            }
        }
        schema::check_foreign_targets(database).map_err(&schema_err)?;
        for statement in schema::migration(&self.conn, database).map_err(&schema_err)? {
            self.conn
                .execute_batch(&statement)
                .map_err(|e| schema_err(format!("{e} (in `{statement}`)")))?;
        }
        schema::check_foreign_keys(&self.conn, database).map_err(&schema_err)?;
        for table in &database.tables {
            self.conn
                .execute(
                    "INSERT OR IGNORE INTO modhost_tables (name, module) VALUES (?1, ?2)",
                    [&table.name, module],
                )
                .map_err(self.err())?;
        }
        Ok(())
    }

    /// Keeps `record` (the version about to be replaced) as `rawname`'s backup, with a copy
    /// of its key-value store and its tables. Replaces any older backup.
    pub fn keep_backup(&mut self, record: &ModuleRecord) -> Result<()> {
        let rawname = &record.rawname;
        self.drop_backup(rawname)?;
        let kv: BTreeMap<String, String> = queries::kv_entries(&self.conn, rawname)
            .map_err(self.err())?
            .into_iter()
            .collect();
        let mut tables = BTreeMap::new();
        for table in queries::tables(&self.conn, rawname).map_err(self.err())? {
            let copy = format!("modhost_bak__{table}");
            self.conn
                .execute_batch(&format!(
                    "CREATE TABLE {} AS SELECT * FROM {}",
                    schema::quote(&copy),
                    schema::quote(&table)
                ))
                .map_err(self.err())?;
            tables.insert(table, copy);
        }
        let json =
            |value: &BTreeMap<String, String>| serde_json::to_string(value).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO modhost_backups
                 (rawname, name, version, status, module_dir, data_dir, component_sha256, manifest, installed_at, kv, tables)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    rawname,
                    record.name,
                    record.version,
                    record.status.as_str(),
                    record.module_dir,
                    record.data_dir,
                    record.component_sha256,
                    record.manifest,
                    record.installed_at,
                    json(&kv),
                    json(&tables)
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Discards `rawname`'s backup and the copies of its tables; returns what it was.
    pub fn drop_backup(&mut self, rawname: &str) -> Result<Option<Backup>> {
        let backup = queries::backup(&self.conn, &self.path, rawname)?;
        if let Some(backup) = &backup {
            for copy in backup.tables.values() {
                self.conn
                    .execute_batch(&format!("DROP TABLE IF EXISTS {}", schema::quote(copy)))
                    .map_err(self.err())?;
            }
            self.conn
                .execute("DELETE FROM modhost_backups WHERE rawname = ?1", [rawname])
                .map_err(self.err())?;
        }
        Ok(backup)
    }

    /// Makes the backup of `rawname` current again: its record, key-value store and table
    /// contents; tables created since are dropped. `old_schema` is the backup's
    /// `<database>`, used to recreate its tables. Returns the backup's record.
    pub fn restore_backup(
        &mut self,
        rawname: &str,
        old_schema: &Database,
    ) -> Result<Option<ModuleRecord>> {
        self.deferring_foreign_keys(|txn| txn.restore_backup_now(rawname, old_schema))
    }

    fn restore_backup_now(
        &mut self,
        rawname: &str,
        old_schema: &Database,
    ) -> Result<Option<ModuleRecord>> {
        let Some(backup) = queries::backup(&self.conn, &self.path, rawname)? else {
            return Ok(None);
        };
        for table in queries::tables(&self.conn, rawname).map_err(self.err())? {
            self.conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {}", schema::quote(&table)))
                .map_err(self.err())?;
        }
        self.conn
            .execute("DELETE FROM modhost_tables WHERE module = ?1", [rawname])
            .map_err(self.err())?;
        self.apply_schema(rawname, old_schema)?;
        for (table, copy) in &backup.tables {
            let columns = schema::existing_columns(&self.conn, copy).map_err(self.err())?;
            let list = columns
                .iter()
                .map(|c| schema::quote(&c.name))
                .collect::<Vec<_>>()
                .join(", ");
            self.conn
                .execute_batch(&format!(
                    "INSERT INTO {} ({list}) SELECT {list} FROM {}",
                    schema::quote(table),
                    schema::quote(copy)
                ))
                .map_err(self.err())?;
        }
        self.conn
            .execute("DELETE FROM modhost_kv WHERE module = ?1", [rawname])
            .map_err(self.err())?;
        for (key, value) in &backup.kv {
            self.kv_set(rawname, key, value)?;
        }
        self.drop_backup(rawname)?;
        self.put_module(&backup.record)?;
        Ok(Some(backup.record))
    }

    /// The value of `key` in `module`'s store.
    pub fn kv_get(&self, module: &str, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM modhost_kv WHERE module = ?1 AND key = ?2",
                [module, key],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Sets `key` in `module`'s store.
    pub fn kv_set(&mut self, module: &str, key: &str, value: &str) -> Result<()> {
        self.check_room()?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_kv (module, key, value) VALUES (?1, ?2, ?3)",
                [module, key, value],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes `key` from `module`'s store; returns whether it was there.
    pub fn kv_delete(&mut self, module: &str, key: &str) -> Result<bool> {
        let removed = self
            .conn
            .execute(
                "DELETE FROM modhost_kv WHERE module = ?1 AND key = ?2",
                [module, key],
            )
            .map_err(self.err())?;
        Ok(removed > 0)
    }

    /// The keys of `module`'s store that start with `prefix`, in byte order.
    pub fn kv_keys(&self, module: &str, prefix: &str) -> Result<Vec<String>> {
        let entries = queries::kv_entries(&self.conn, module).map_err(self.err())?;
        Ok(entries
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(prefix))
            .collect())
    }

    /// Executes one statement of `module`'s against its own tables, stopped at `deadline`.
    /// The error is for the module: it says what SQLite refused.
    pub fn module_execute(
        &mut self,
        module: &str,
        sql: &str,
        params: &[SqlValue],
        deadline: Instant,
    ) -> Result<u64, String> {
        self.check_room().map_err(|e| e.to_string())?;
        let owned = queries::tables(&self.conn, module)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        module_sql::execute(&mut self.conn, owned, deadline, sql, params)
    }

    /// Refuses a module's write once the database, as this transaction sees it, is at its
    /// cap. Checked before the write rather than left to SQLite's `max_page_count`, whose
    /// SQLITE_FULL may roll back the whole transaction: every handler of the dispatch.
    fn check_room(&self) -> Result<()> {
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

    /// Runs one query of `module`'s against its own tables, stopped at `deadline`.
    pub fn module_query(
        &mut self,
        module: &str,
        sql: &str,
        params: &[SqlValue],
        deadline: Instant,
    ) -> Result<Rows, String> {
        let owned = queries::tables(&self.conn, module)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        module_sql::query(&mut self.conn, owned, deadline, sql, params)
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

    /// Grants `module` access to the host directory `path`.
    pub fn grant(&mut self, module: &str, path: &str, read_only: bool) -> Result<()> {
        self.changed_modules = true;
        let access = if read_only { "read-only" } else { "read-write" };
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_grants (module, path, access) VALUES (?1, ?2, ?3)",
                [module, path, access],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The directories granted to `module`, as this transaction sees them.
    pub fn grants(&self, module: &str) -> Result<Vec<(String, bool)>> {
        queries::grants(&self.conn, module).map_err(self.err())
    }

    /// Adds or replaces an update source.
    pub fn put_source(&mut self, source: &SourceRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_sources (name, url, public_key, extra_query, kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    source.name,
                    source.url,
                    source.public_key,
                    source.extra_query,
                    source.kind
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes an update source; returns whether it existed.
    pub fn remove_source(&mut self, name: &str) -> Result<bool> {
        let removed = self
            .conn
            .execute("DELETE FROM modhost_sources WHERE name = ?1", [name])
            .map_err(self.err())?;
        Ok(removed > 0)
    }

    /// Stores the download key of a module-declared channel, for the channel URL `url`
    /// alone: it is sent to no other.
    pub fn set_channel_key(&mut self, channel: &str, url: &str, extra_query: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_channel_keys (channel, extra_query, url) \
                 VALUES (?1, ?2, ?3)",
                [channel, extra_query, url],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Records that `rawname` came from `source`.
    pub fn set_module_source(&mut self, rawname: &str, source: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_module_sources (rawname, source) VALUES (?1, ?2)",
                [rawname, source],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Withdraws every grant of `module`.
    pub fn revoke(&mut self, module: &str) -> Result<()> {
        self.changed_modules = true;
        self.conn
            .execute("DELETE FROM modhost_grants WHERE module = ?1", [module])
            .map_err(self.err())?;
        Ok(())
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

/// Queries shared by [`State`]'s read methods and [`Txn`].
mod queries {
    use super::*;

    const COLUMNS: &str = "rawname, name, version, status, reason, module_dir, data_dir, component_sha256, manifest, installed_at";

    fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ModuleRecord, String)> {
        Ok((
            ModuleRecord {
                rawname: row.get(0)?,
                name: row.get(1)?,
                version: row.get(2)?,
                status: Status::Broken,
                reason: row.get(4)?,
                module_dir: row.get(5)?,
                data_dir: row.get(6)?,
                component_sha256: row.get(7)?,
                manifest: row.get(8)?,
                installed_at: row.get(9)?,
            },
            row.get(3)?,
        ))
    }

    fn with_status(
        path: &Path,
        (mut record, status): (ModuleRecord, String),
    ) -> Result<ModuleRecord> {
        record.status = status.parse().map_err(|message| Error::Corrupt {
            path: path.to_owned(),
            message,
        })?;
        Ok(record)
    }

    pub(super) fn modules(conn: &Connection, path: &Path) -> Result<Vec<ModuleRecord>> {
        let err = sqlite(path);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM modhost_modules ORDER BY rawname"
            ))
            .map_err(&err)?;
        let rows = stmt.query_map([], record).map_err(&err)?;
        rows.map(|row| with_status(path, row.map_err(&err)?))
            .collect()
    }

    pub(super) fn module(
        conn: &Connection,
        path: &Path,
        rawname: &str,
    ) -> Result<Option<ModuleRecord>> {
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM modhost_modules WHERE rawname = ?1"),
                [rawname],
                record,
            )
            .optional()
            .map_err(sqlite(path))?;
        row.map(|row| with_status(path, row)).transpose()
    }

    pub(super) fn backup(conn: &Connection, path: &Path, rawname: &str) -> Result<Option<Backup>> {
        let row = conn
            .query_row(
                "SELECT rawname, name, version, status, NULL, module_dir, data_dir, component_sha256, manifest,
                        installed_at, kv, tables
                 FROM modhost_backups WHERE rawname = ?1",
                [rawname],
                |row| Ok((record(row)?, row.get::<_, String>(10)?, row.get::<_, String>(11)?)),
            )
            .optional()
            .map_err(sqlite(path))?;
        let Some((row, kv, tables)) = row else {
            return Ok(None);
        };
        let corrupt = |e: serde_json::Error| Error::Corrupt {
            path: path.to_owned(),
            message: format!("backup of `{rawname}`: {e}"),
        };
        Ok(Some(Backup {
            record: with_status(path, row)?,
            kv: serde_json::from_str(&kv).map_err(corrupt)?,
            tables: serde_json::from_str(&tables).map_err(corrupt)?,
        }))
    }

    pub(super) fn kv_entries(
        conn: &Connection,
        module: &str,
    ) -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt =
            conn.prepare("SELECT key, value FROM modhost_kv WHERE module = ?1 ORDER BY key")?;
        let rows = stmt.query_map([module], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    }

    pub(super) fn grants(conn: &Connection, module: &str) -> rusqlite::Result<Vec<(String, bool)>> {
        let mut stmt = conn.prepare_cached(
            "SELECT path, access FROM modhost_grants WHERE module = ?1 ORDER BY path",
        )?;
        let rows = stmt.query_map([module], |row| {
            Ok((row.get(0)?, row.get::<_, String>(1)? == "read-only"))
        })?;
        rows.collect()
    }

    pub(super) fn tables(conn: &Connection, module: &str) -> rusqlite::Result<Vec<String>> {
        let mut stmt =
            conn.prepare("SELECT name FROM modhost_tables WHERE module = ?1 ORDER BY name")?;
        let rows = stmt.query_map([module], |row| row.get(0))?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests;
