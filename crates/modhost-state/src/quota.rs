//! Per-module quotas: what one module may keep in the state — its key-value store and its
//! tables — well below the shared cap, so that one module filling its share never stops
//! the others' writes.
//!
//! A module's use is the bytes of its key-value entries (with what each row takes beyond
//! its key and value), read at every write from `modhost_kv_usage`, which triggers keep
//! exact as entries change, and the pages of its tables and their indexes: measured
//! (SQLite's `dbstat`, one b-tree at a time) when the transaction first needs them, then
//! counted up by what each of the module's statements grew the file by, and measured
//! again after one that shrank it or a rollback to a savepoint. A write is refused when
//! what it may take would pass the quota; only what it did take is counted, so that
//! rewriting the same rows again and again never adds up. A statement is bounded as it
//! runs by the page ceiling too: no more than the module's room left (plus the slack a
//! write begun below the cap may use).

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::error::sqlite;
use crate::kv;
use crate::{Error, Result, Txn};

/// The quota of a module `modhost.toml` names none for: a sixteenth of the default cap.
pub const DEFAULT_MODULE_QUOTA: u64 = 64 * 1024 * 1024;

/// How much each module may keep in the state, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    /// Every module's, unless named in `modules`.
    pub default: u64,
    /// Per module, by rawname.
    pub modules: BTreeMap<String, u64>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            default: DEFAULT_MODULE_QUOTA,
            modules: BTreeMap::new(),
        }
    }
}

impl Quotas {
    /// The quota of `module`.
    pub fn of(&self, module: &str) -> u64 {
        self.modules.get(module).copied().unwrap_or(self.default)
    }
}

/// What `module`'s entries in `table` (a backup's copy of `modhost_kv`) take, each as
/// `kv::row_cost` counts it.
pub(crate) fn kv_cost(conn: &Connection, table: &str, module: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(&kv::cost_sql(table))?
        .query_row([module], |row| row.get(0))
}

/// What `module`'s entries in its store take, as the triggers on `modhost_kv` keep it.
pub(crate) fn kv_usage(conn: &Connection, module: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(bytes), 0) FROM modhost_kv_usage WHERE module = ?1")?
        .query_row([module], |row| row.get(0))
}

/// The bytes `module` keeps in the state: its key-value entries (each as
/// `kv::row_cost` counts what it takes: its module's name, key, value and the b-tree's
/// share) and every page of its tables and their indexes.
pub(crate) fn usage_of(conn: &Connection, module: &str) -> rusqlite::Result<u64> {
    let kv = u64::try_from(kv_usage(conn, module)?).unwrap_or(0);
    Ok(kv.saturating_add(tables_usage(conn, module)?))
}

/// The installed module that keeps the most in the state, with its bytes; `None` when no
/// module keeps anything.
pub(crate) fn keeps_most(conn: &Connection) -> rusqlite::Result<Option<(String, u64)>> {
    let modules: Vec<String> = conn
        .prepare_cached("SELECT rawname FROM modhost_modules")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut most: Option<(String, u64)> = None;
    for module in modules {
        let bytes = usage_of(conn, &module)?;
        if bytes > 0 && most.as_ref().is_none_or(|(_, kept)| bytes > *kept) {
            most = Some((module, bytes));
        }
    }
    Ok(most)
}

/// The bytes of every page of `module`'s tables and their indexes.
fn tables_usage(conn: &Connection, module: &str) -> rusqlite::Result<u64> {
    let mut objects = conn.prepare_cached(
        "SELECT s.name FROM sqlite_schema AS s JOIN modhost_tables AS t ON s.tbl_name = t.name
         WHERE t.module = ?1 AND s.type IN ('table', 'index')",
    )?;
    let names: Vec<String> = objects
        .query_map([module], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // One b-tree at a time: `name = ?` is what dbstat answers without walking the file.
    let mut pages = conn.prepare_cached(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1 AND aggregate = 1",
    )?;
    let mut bytes = 0_u64;
    for name in names {
        let size: i64 = pages.query_row([&name], |row| row.get(0))?;
        bytes = bytes.saturating_add(u64::try_from(size).unwrap_or(0));
    }
    Ok(bytes)
}

/// The most a statement of a module past its quota may carry (its parameters) and still
/// run, under a ceiling that lets the file grow by nothing: enough for the `WHERE` of a
/// `DELETE`, too little for a row worth keeping.
const SHRINKING: u64 = 4096;

impl Txn {
    /// The bytes `module` keeps, as this transaction sees it.
    pub fn module_usage(&self, module: &str) -> Result<u64> {
        usage_of(&self.conn, module).map_err(sqlite(&self.path))
    }

    /// What `module` keeps as this transaction counts it: its key-value entries as they
    /// are now, and its tables as measured at the first call and grown since.
    fn counted(&self, module: &str) -> Result<u64> {
        let kv = kv_usage(&self.conn, module).map_err(sqlite(&self.path))?;
        let kv = u64::try_from(kv).unwrap_or(0);
        let mut tables = self
            .quota_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tables = match tables.get(module) {
            Some(counted) => *counted,
            None => {
                let measured = tables_usage(&self.conn, module).map_err(sqlite(&self.path))?;
                tables.insert(module.to_owned(), measured);
                measured
            }
        };
        Ok(kv.saturating_add(tables))
    }

    /// The bytes `module` may still add before its quota.
    pub(crate) fn quota_left(&self, module: &str) -> Result<u64> {
        Ok(self.quotas.of(module).saturating_sub(self.counted(module)?))
    }

    /// Why a statement of `module`'s that reached the page ceiling was stopped: its
    /// quota, when that left it less room than the shared cap did.
    pub(crate) fn over_quota(&self, module: &str, cap_left: u64) -> Option<Error> {
        let quota = self.quotas.of(module);
        let used = self.counted(module).ok()?;
        (quota.saturating_sub(used) <= cap_left).then(|| Error::OverQuota {
            module: module.to_owned(),
            used,
            quota,
        })
    }

    /// Refuses a write of about `bytes` by `module` that would take it past its quota,
    /// with [`Error::OverQuota`]. Returns the bytes the module may still add (the write
    /// included: what bounds the write as it runs), or, `may_shrink`, `None` for a statement of a module at or past its quota that
    /// carries no more than `SHRINKING` bytes of its own: it may free room (a `DELETE`,
    /// an `UPDATE` that shortens), and runs only if the file does not grow. Nothing is
    /// counted here: what the write takes is, once it has run.
    pub(crate) fn check_quota(
        &self,
        module: &str,
        bytes: u64,
        may_shrink: bool,
    ) -> Result<Option<u64>> {
        let quota = self.quotas.of(module);
        let now = self.counted(module)?;
        if now.saturating_add(bytes) > quota {
            if may_shrink && bytes <= SHRINKING {
                return Ok(None);
            }
            return Err(Error::OverQuota {
                module: module.to_owned(),
                used: now,
                quota,
            });
        }
        Ok(Some(quota - now))
    }

    /// Counts what a statement of `module`'s did to its tables, given the bytes the
    /// file's used pages took before it (`before`): what it grew them by, or, when it
    /// shrank them, nothing, and its tables are measured again at the next write.
    pub(crate) fn count_statement(&self, module: &str, before: u64) {
        let after = self.used_bytes();
        let mut used = self
            .quota_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if after < before {
            used.remove(module);
        } else if let Some(now) = used.get_mut(module) {
            *now = now.saturating_add(after - before);
        }
    }

    /// Forgets what every module's tables were counted at, so that the next write
    /// measures them again: a rollback to a savepoint undid writes that were counted, or
    /// modhost itself changed a module's tables (its schema, a backup put back, a module
    /// removed).
    pub(crate) fn recount(&self) {
        self.quota_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
