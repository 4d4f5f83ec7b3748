//! Per-module quotas: what one module may keep in the state — its key-value store and its
//! tables — well below the shared cap, so that one module filling its share never stops
//! the others' writes.
//!
//! A module's use is measured once per transaction, when it first writes: the bytes of
//! its key-value entries (with what each row takes beyond its key and value, kept as they
//! change by triggers, in `modhost_kv_usage`) and the pages of its tables and their
//! indexes (SQLite's `dbstat`, one b-tree at a time). Each write of the transaction then adds what it may take: a
//! key-value entry what its row takes, a statement the pages it grew the file by. A statement is
//! bounded as it runs by the page ceiling too: no more than the module's room left (plus
//! the slack a write begun below the cap may use).

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
    let kv = kv_usage(conn, module)?;
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
    let mut bytes = u64::try_from(kv).unwrap_or(0);
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

    /// What `module` keeps as this transaction counts it: measured at the first call,
    /// counted since.
    fn counted(&self, module: &str) -> Result<u64> {
        let mut used = self
            .quota_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(now) = used.get(module) {
            return Ok(*now);
        }
        let now = self.module_usage(module)?;
        used.insert(module.to_owned(), now);
        Ok(now)
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
    /// with [`Error::OverQuota`]; counts it otherwise. Returns the bytes the module may
    /// still add, or, `may_shrink`, `None` for a statement of a module at or past its
    /// quota that carries no more than `SHRINKING` bytes of its own: it may free room (a
    /// `DELETE`, an `UPDATE` that shortens), and runs only if the file does not grow.
    pub(crate) fn check_quota(
        &self,
        module: &str,
        bytes: u64,
        may_shrink: bool,
    ) -> Result<Option<u64>> {
        let quota = self.quotas.of(module);
        let now = self.counted(module)?;
        let mut used = self
            .quota_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        used.insert(module.to_owned(), now.saturating_add(bytes));
        Ok(Some(quota - now - bytes))
    }

    /// Counts `bytes` more for `module`, written by a statement it ran.
    pub(crate) fn add_usage(&self, module: &str, bytes: u64) {
        let mut used = self
            .quota_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(now) = used.get_mut(module) {
            *now = now.saturating_add(bytes);
        }
    }
}
