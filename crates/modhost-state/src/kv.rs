//! Each module's key-value store (`modhost_kv`).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

use crate::error::sqlite;
use crate::{Result, State, Stop, Txn};

/// The keys of module `?1` from `?2` on, in byte order. The index holds names and keys
/// alone: a scan of the table itself would read every value it passes (its rows hold
/// them, and their overflow pages are read to compare a row with the range's bounds).
pub(crate) const KEYS_SQL: &str = "SELECT key FROM modhost_kv INDEXED BY modhost_kv_keys
     WHERE module = ?1 AND key >= ?2 ORDER BY key";

/// The most the keys one listing returns may take in the host, as a query's result may.
const MAX_KEYS_BYTES: usize = 16 * 1024 * 1024;

/// What a row of `modhost_kv` takes beyond its module's name, key and value, in bytes:
/// its 2-byte cell pointer, 1–2 bytes of cell size and 4 of record header (the header's
/// size and three serial types).
pub(crate) const ROW_OVERHEAD: u64 = 8;

/// A row's payload beyond its module's name, key and value: the record header.
const HEADER: u64 = 4;

/// The usable bytes of a page (4096, none reserved), and what an overflow page holds of a
/// payload (all but its 4-byte pointer to the next).
const PAGE: u64 = 4096;
const OVERFLOW: u64 = PAGE - 4;

/// The most and the least of a payload an index b-tree page keeps in the cell, as SQLite
/// computes them (`modhost_kv` is `WITHOUT ROWID`, so stored as an index b-tree): a
/// longer payload keeps between the two in the cell and the rest in whole overflow pages.
const MAX_LOCAL: u64 = (PAGE - 12) * 64 / 255 - 23;
const MIN_LOCAL: u64 = (PAGE - 12) * 32 / 255 - 23;

/// What an entry takes in the database: its row, and its entry in `modhost_kv_keys` (the
/// index of its module's name and key, which lists keys without reading values). Each is
/// the part of it its b-tree page holds (its bytes and [`ROW_OVERHEAD`], with an eighth
/// more for the room b-tree pages keep free and for the interior pages above), and each
/// whole overflow page the rest fills — a value of 1000 bytes spills past [`MAX_LOCAL`]
/// into a page of its own. Measured without the index, 50,000 entries in one transaction
/// each grew the file by: 85 bytes for 64 + 4 + 0 bytes (the row counts 85), 16 for 4 +
/// 4 + 0 (18), 56 for 16 + 8 + 20 (58), 231 for 64 + 30 + 100 (227); the test
/// `kv_cost_follows_what_rows_take` checks both against SQLite's own count.
pub(crate) fn row_cost(module: &str, key: &str, value: &str) -> u64 {
    let named = (module.len() + key.len()) as u64;
    cell_cost(named + value.len() as u64 + HEADER) + cell_cost(named + KEYS_HEADER)
}

/// The record header of an entry of `modhost_kv_keys`: its size and two serial types.
const KEYS_HEADER: u64 = HEADER - 1;

/// What a cell of `payload` bytes takes, as [`row_cost`] counts it.
fn cell_cost(payload: u64) -> u64 {
    let (local, overflow_pages) = split(payload);
    let in_page = local + ROW_OVERHEAD - HEADER + if overflow_pages > 0 { 4 } else { 0 };
    in_page + in_page / 8 + overflow_pages * PAGE
}

/// How SQLite stores a payload of `payload` bytes: the bytes kept in the cell and the
/// overflow pages the rest fills.
fn split(payload: u64) -> (u64, u64) {
    if payload <= MAX_LOCAL {
        return (payload, 0);
    }
    let surplus = MIN_LOCAL + (payload - MIN_LOCAL) % OVERFLOW;
    let local = if surplus <= MAX_LOCAL {
        surplus
    } else {
        MIN_LOCAL
    };
    (local, (payload - local).div_ceil(OVERFLOW))
}

/// [`row_cost`] as an SQL expression of the row `row` (a table's alias, or `NEW` and `OLD`
/// in a trigger), its constants written in: one definition for summing a backup's entries
/// and for the triggers that keep `modhost_kv_usage`.
pub(crate) fn row_cost_sql(row: &str) -> String {
    format!(
        "({} + {})",
        row_only_cost_sql(row),
        cell_cost_sql(&format!("{} + {KEYS_HEADER}", named_sql(row)))
    )
}

/// [`row_cost_sql`] of a row in a table without `modhost_kv_keys` (a backup's copy of a
/// store): the row alone.
fn row_only_cost_sql(row: &str) -> String {
    cell_cost_sql(&format!(
        "{} + length(CAST({row}.value AS BLOB)) + {HEADER}",
        named_sql(row)
    ))
}

/// The bytes of the module's name and the key of the row `row`, as SQL.
fn named_sql(row: &str) -> String {
    format!("length(CAST({row}.module AS BLOB)) + length(CAST({row}.key AS BLOB))")
}

/// [`cell_cost`] as an SQL scalar subquery of the payload size `payload`.
fn cell_cost_sql(payload: &str) -> String {
    format!(
        "(SELECT in_page + in_page / 8 + pages * {PAGE} FROM (
             SELECT local + {extra} + CASE WHEN pages > 0 THEN 4 ELSE 0 END AS in_page, pages
             FROM (
                 SELECT local, CASE WHEN p <= {MAX_LOCAL} THEN 0
                     ELSE (p - local + {OVERFLOW} - 1) / {OVERFLOW} END AS pages
                 FROM (
                     SELECT p, CASE
                         WHEN p <= {MAX_LOCAL} THEN p
                         WHEN {MIN_LOCAL} + (p - {MIN_LOCAL}) % {OVERFLOW} <= {MAX_LOCAL}
                             THEN {MIN_LOCAL} + (p - {MIN_LOCAL}) % {OVERFLOW}
                         ELSE {MIN_LOCAL} END AS local
                     FROM (SELECT {payload} AS p)))))",
        extra = ROW_OVERHEAD - HEADER
    )
}

/// [`row_cost`] summed over `module`'s entries of `table` (`modhost_kv`, or a backup's
/// copy of it, `modhost_backup_kv`, whose rows have no index entry), reading every one:
/// for a backup, taken once per upgrade. The live store's is kept as it changes, in
/// `modhost_kv_usage` ([`usage_sql`]).
pub(crate) fn cost_sql(table: &str) -> String {
    let cost = match table {
        "modhost_kv" => row_cost_sql("e"),
        _ => row_only_cost_sql("e"),
    };
    format!("SELECT coalesce(sum({cost}), 0) FROM {table} AS e WHERE e.module = ?1")
}

/// `modhost_kv_usage`: what each module's entries take, kept by triggers in the same
/// statement as every change to `modhost_kv`, so that measuring a module's use reads one
/// row, not its every entry (a store of millions of keys would hold the write lock for
/// seconds, every call), and filled from the entries there are.
///
/// `INSERT OR REPLACE`, which every modhost writes entries with (an older one too, on a
/// database this one migrated), deletes the row it replaces without firing a delete
/// trigger: the row's cost leaves in a trigger before the insert instead. An upsert would
/// fire that trigger and an update one both, so none is used.
pub(crate) fn usage_sql() -> String {
    let (new, old) = (row_cost_sql("NEW"), row_cost_sql("OLD"));
    let add = format!(
        "INSERT INTO modhost_kv_usage (module, bytes) VALUES (NEW.module, {new})
             ON CONFLICT (module) DO UPDATE SET bytes = bytes + excluded.bytes;"
    );
    let remove = format!(
        "UPDATE modhost_kv_usage SET bytes = bytes - {old} WHERE module = OLD.module;
         DELETE FROM modhost_kv_usage WHERE module = OLD.module AND bytes <= 0;"
    );
    let replaced = format!(
        "UPDATE modhost_kv_usage SET bytes = bytes - coalesce((
             SELECT {} FROM modhost_kv AS o WHERE o.module = NEW.module AND o.key = NEW.key
         ), 0) WHERE module = NEW.module;",
        row_cost_sql("o")
    );
    // Made again from the entries there are whenever the migration runs: it cannot count
    // twice.
    format!(
        "DROP TRIGGER IF EXISTS modhost_kv_usage_replace;
         DROP TRIGGER IF EXISTS modhost_kv_usage_insert;
         DROP TRIGGER IF EXISTS modhost_kv_usage_delete;
         DROP TRIGGER IF EXISTS modhost_kv_usage_update;
         DROP TABLE IF EXISTS modhost_kv_usage;
         CREATE TABLE modhost_kv_usage (
             module TEXT PRIMARY KEY NOT NULL,
             bytes  INTEGER NOT NULL
         ) STRICT;
         CREATE TRIGGER modhost_kv_usage_replace BEFORE INSERT ON modhost_kv BEGIN {replaced} END;
         CREATE TRIGGER modhost_kv_usage_insert AFTER INSERT ON modhost_kv BEGIN {add} END;
         CREATE TRIGGER modhost_kv_usage_delete AFTER DELETE ON modhost_kv BEGIN {remove} END;
         CREATE TRIGGER modhost_kv_usage_update AFTER UPDATE ON modhost_kv BEGIN
             {remove} {add}
         END;
         INSERT INTO modhost_kv_usage (module, bytes)
             SELECT e.module, sum({}) FROM modhost_kv AS e GROUP BY e.module;",
        row_cost_sql("e")
    )
}

/// Every entry of `module`'s store, by key.
pub(crate) fn entries_of(
    conn: &Connection,
    module: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        conn.prepare("SELECT key, value FROM modhost_kv WHERE module = ?1 ORDER BY key")?;
    let rows = stmt.query_map([module], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

impl State {
    /// Every entry of `module`'s key-value store, by key.
    pub fn kv_entries(&self, module: &str) -> Result<Vec<(String, String)>> {
        entries_of(&*self.connect()?, module).map_err(sqlite(self.path()))
    }
}

impl Txn {
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
        self.last_failure = None;
        // What the entry adds: a value replacing another (a counter, a state rewritten on
        // every call) adds only what it is larger by.
        let replaced: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT coalesce(max({}), 0) FROM modhost_kv AS o WHERE o.module = ?1 AND o.key = ?2",
                row_cost_sql("o")
            ))
            .and_then(|mut stmt| stmt.query_row([module, key], |row| row.get(0)))
            .map_err(self.err())?;
        let replaced = u64::try_from(replaced).unwrap_or(0);
        self.check_room_for(
            module,
            row_cost(module, key, value).saturating_sub(replaced),
        )?;
        // `INSERT OR REPLACE`, as the usage triggers expect (see `usage_sql`). Cached:
        // preparing it compiles those triggers, most of a write's time.
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO modhost_kv (module, key, value) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute([module, key, value]))
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes `key` from `module`'s store; returns whether it was there.
    pub fn kv_delete(&mut self, module: &str, key: &str) -> Result<bool> {
        self.last_failure = None;
        let removed = self
            .conn
            .prepare_cached("DELETE FROM modhost_kv WHERE module = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.execute([module, key]))
            .map_err(self.err())?;
        Ok(removed > 0)
    }

    /// The keys of `module`'s store that start with `prefix`, in byte order.
    ///
    /// Reads keys alone: values may be up to `max_kv_value_kb` each, and a guest listing
    /// its keys must not make the host hold all of them outside the guest's memory cap.
    /// The keys themselves are bounded as a query's result is
    /// ([`Error::TooManyKeys`](crate::Error::TooManyKeys)), and the scan ends at `stop`
    /// ([`Error::Stopped`](crate::Error::Stopped)).
    pub fn kv_keys(&self, module: &str, prefix: &str, stop: &Stop) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(KEYS_SQL).map_err(self.err())?;
        let mut rows = stmt.query([module, prefix]).map_err(self.err())?;
        let mut keys = Vec::new();
        let mut bytes = 0usize;
        // In byte order the keys that start with `prefix` come together, first among those
        // not below it, so the scan starts there on the index and stops at the first
        // key that does not start with it: no `LIKE` or `substr` (whose `%`, `_` and NUL
        // handling differ from a byte prefix), and no keys outside the range are read.
        while let Some(row) = rows.next().map_err(self.err())? {
            let key = match row.get_ref(0).map_err(self.err())? {
                ValueRef::Text(key) if key.starts_with(prefix.as_bytes()) => key,
                _ => break,
            };
            bytes += key.len() + std::mem::size_of::<String>();
            if bytes > MAX_KEYS_BYTES {
                return Err(crate::Error::TooManyKeys {
                    module: module.to_owned(),
                    prefix: prefix.to_owned(),
                    limit: MAX_KEYS_BYTES,
                });
            }
            if keys.len() % 1024 == 1023 && stop.reached() {
                return Err(crate::Error::Stopped {
                    module: module.to_owned(),
                    doing: "listing its keys",
                });
            }
            keys.push(row.get(0).map_err(self.err())?);
        }
        Ok(keys)
    }
}
