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
    // An index of each entry's module and key, so that listing keys reads no value; what
    // an entry takes counts it, so `kv::usage_sql` runs again (see `KV_KEYS`).
    "
    CREATE INDEX IF NOT EXISTS modhost_kv_keys ON modhost_kv (module, key);
",
];

/// The migration that added `modhost_kv_keys`.
const KV_KEYS: usize = 11;

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
    let found = version(conn).map_err(&err)?;
    // One a newer modhost made (found unsurveyed, read-only) is left for it.
    if found > MIGRATIONS.len() {
        survey(conn, path)?;
    }
    if found < MIGRATIONS.len() {
        // Read again under the write lock: two processes opening a new root at once both
        // see it empty, and only the first may create its tables.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let applied = version(&tx).map_err(&err)?;
        survey(&tx, path)?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            if index == ANNOUNCED_BY {
                add_column(&tx, "modhost_source_keys", "announced_by TEXT").map_err(&err)?;
            }
            if index == SEEN_MODULE {
                add_column(&tx, "modhost_source_seen", "module TEXT").map_err(&err)?;
            }
            tx.execute_batch(migration).map_err(&err)?;
            if index == KV_USAGE || index == KV_KEYS {
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

/// What a database file holds, as modhost sees it before opening it as a root's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survey {
    /// No table at all: a new database, or one emptied.
    Empty,
    /// modhost's tables, at a schema version this modhost knows.
    Ours,
    /// Not looked at: this process cannot open it, and opening it as a root's fails for
    /// that, saying so.
    NotLooked,
}

/// What `conn`'s database holds; refused when it is not modhost's: one holding tables but
/// not modhost's own (another program's, copied over modhost.db or given as a root's,
/// whatever its `user_version`), modhost's restored without its schema version (a copy
/// through `.dump` loses it), whose migrations would run again over its tables, and one a
/// newer modhost made. Read in one statement, so that another process making the root at
/// the same moment is seen before or after, never half-way. Only reads.
pub(crate) fn survey(conn: &Connection, path: &Path) -> Result<Survey> {
    let err = sqlite(path);
    let (tables, ours, applied, names): (i64, bool, i64, Option<String>) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table'),
                    (SELECT count(*) > 0 FROM sqlite_schema
                       WHERE type = 'table' AND name = 'modhost_modules'),
                    (SELECT user_version FROM pragma_user_version),
                    (SELECT group_concat('`' || name || '`', ', ') FROM
                       (SELECT name FROM sqlite_schema WHERE type = 'table'
                          ORDER BY name LIMIT 3))",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .map_err(&err)?;
    let known = MIGRATIONS.len() as i64;
    let message = match (tables, ours, applied) {
        (0, _, 0) => return Ok(Survey::Empty),
        (_, true, applied) if (1..=known).contains(&applied) => return Ok(Survey::Ours),
        (_, true, 0) => "it holds modhost's tables but not its schema version (PRAGMA \
                         user_version), as a copy made through `.dump` does: restore the \
                         root's own modhost.db, or copy it with `sqlite3 modhost.db .backup` \
                         (nothing was changed)"
            .to_owned(),
        (_, _, applied) if applied > known => format!(
            "it was made by a newer modhost (its schema version {applied}; this modhost \
             knows versions up to {known}): use that modhost (nothing was changed)"
        ),
        (0, _, applied) => format!(
            "it holds modhost's schema version {applied} but none of its tables: restore \
             the root's own modhost.db (nothing was changed)"
        ),
        (_, true, applied) => format!(
            "it holds modhost's tables under schema version {applied}, which no modhost \
             writes: restore the root's own modhost.db (nothing was changed)"
        ),
        (tables, false, _) => {
            // Another program's names: shown escaped and bounded.
            let names: String = names.unwrap_or_default().chars().take(200).collect();
            format!(
                "it is not a modhost state database: it holds tables ({}{}) and none of \
                 modhost's; restore the root's own modhost.db (nothing was changed)",
                names.escape_debug(),
                if tables > 3 { ", …" } else { "" }
            )
        }
    };
    Err(crate::Error::Corrupt {
        path: path.to_owned(),
        message,
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
