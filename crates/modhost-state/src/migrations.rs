//! modhost's own tables, created and brought up to date when a database is opened.

use std::path::Path;

use rusqlite::Connection;

use crate::error::sqlite;
use crate::{Result, backups, sources};

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
    // The pages each backup holds, which do not count against the modules' cap; measured
    // for the backups kept before, right after this migration (see `apply`).
    "
    ALTER TABLE modhost_backups ADD COLUMN pages INTEGER NOT NULL DEFAULT 0;
",
    // A source may pin several keys, and a release may announce the publisher's next key:
    // pinned beside the one that announced it (its `successor`), which is dropped once the
    // next key has signed. The one key `modhost_sources.public_key` held moves here (see
    // `apply`). What was last accepted from each channel (a release serial, a signing
    // time) is kept for the URL it came from, so that an older copy is refused.
    "
    CREATE TABLE IF NOT EXISTS modhost_source_keys (
        source     TEXT NOT NULL,
        public_key TEXT NOT NULL,
        successor  TEXT,
        PRIMARY KEY (source, public_key)
    ) STRICT;
    CREATE TABLE IF NOT EXISTS modhost_source_seen (
        source    TEXT PRIMARY KEY NOT NULL,
        url       TEXT NOT NULL,
        serial    INTEGER,
        signed_at INTEGER
    ) STRICT;
",
    // A backup's copy of its module's key-value store, row by row: copied and put back
    // by SQL, never held in memory whole (a JSON copy of a store near its quota outgrew
    // SQLite's heap). `modhost_backups.kv` stays for backups made before.
    "
    CREATE TABLE IF NOT EXISTS modhost_backup_kv (
        module TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (module, key)
    ) STRICT, WITHOUT ROWID;
",
    // Which key announced each key pinned by announcement (`NULL` for the keys an
    // administrator pinned): a key its announcer stops announcing is unpinned again.
    // The column is added by `apply` (see `ANNOUNCED_BY`), unless it is there already.
    "
    UPDATE modhost_source_keys SET announced_by = (
        SELECT a.public_key FROM modhost_source_keys AS a
        WHERE a.source = modhost_source_keys.source
          AND a.successor = modhost_source_keys.public_key
        LIMIT 1
    );
",
    // The module a channel of one module's document offered when first accepted: the
    // column `modhost_source_seen.module`, added by `apply` (see `SEEN_MODULE`).
    "
    -- nothing more
",
    // What each module's key-value entries take, kept by triggers: `kv::usage_sql`, run by
    // `apply` (see `KV_USAGE`).
    "
    -- nothing more
",
];

/// The migration that added `modhost_kv_usage` and its triggers.
const KV_USAGE: usize = 10;

/// The migration that added `modhost_source_seen.module`.
const SEEN_MODULE: usize = 9;

/// The migration that added `modhost_source_keys.announced_by`.
const ANNOUNCED_BY: usize = 8;

/// The migration that added `modhost_backups.pages`.
const BACKUP_PAGES: usize = 5;
/// The migration that added `modhost_source_keys`.
const SOURCE_KEYS: usize = 6;

/// Applies the migrations `conn`'s database lacks, all in one transaction.
pub(crate) fn apply(conn: &mut Connection, path: &Path) -> Result<()> {
    let err = sqlite(path);
    let version = |conn: &Connection| -> rusqlite::Result<usize> {
        let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(usize::try_from(applied).unwrap_or(0))
    };
    if version(conn).map_err(&err)? < MIGRATIONS.len() {
        // Read again under the write lock: two processes opening a new root at once both
        // see it empty, and only the first may create its tables.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let applied = version(&tx).map_err(&err)?;
        refuse_foreign(&tx, path)?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            if index == ANNOUNCED_BY {
                add_column(&tx, "modhost_source_keys", "announced_by TEXT").map_err(&err)?;
            }
            if index == SEEN_MODULE {
                add_column(&tx, "modhost_source_seen", "module TEXT").map_err(&err)?;
            }
            tx.execute_batch(migration).map_err(&err)?;
            if index == KV_USAGE {
                tx.execute_batch(&crate::kv::usage_sql()).map_err(&err)?;
            }
        }
        if applied <= BACKUP_PAGES {
            backups::measure_all(&tx).map_err(&err)?;
        }
        if applied <= SOURCE_KEYS {
            sources::move_pinned_keys(&tx).map_err(&err)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
    }
    Ok(())
}

/// Refuses a database that holds tables while no migration of modhost's was applied to
/// it: another program's (copied over modhost.db, or given as a root's), or modhost's
/// restored without its schema version. modhost's tables are never added to it.
pub(crate) fn refuse_foreign(conn: &Connection, path: &Path) -> Result<()> {
    let applied: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite(path))?;
    if applied != 0 {
        return Ok(());
    }
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 4")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(sqlite(path))?;
    if tables.is_empty() {
        return Ok(());
    }
    let more = if tables.len() == 4 {
        tables.pop();
        ", …"
    } else {
        ""
    };
    let names: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
    Err(crate::Error::Corrupt {
        path: path.to_owned(),
        message: format!(
            "it is not a modhost state database: it holds tables ({}{more}) but no modhost \
             schema version (PRAGMA user_version); restore the root's own modhost.db \
             (nothing was changed)",
            names.join(", ")
        ),
    })
}

/// Adds `column` (a name and a type) to `table` unless the table has it already.
fn add_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<()> {
    let name = column.split_whitespace().next().unwrap_or(column);
    let present: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, name],
        |row| row.get(0),
    )?;
    if !present {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column}"))?;
    }
    Ok(())
}
