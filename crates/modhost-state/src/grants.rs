//! The host directories granted to modules (`modhost_grants`).

use rusqlite::Connection;

use crate::error::sqlite;
use crate::{Result, State, Txn};

/// The directories granted to `module`, as `(path, read_only)`.
fn list(conn: &Connection, module: &str) -> rusqlite::Result<Vec<(String, bool)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, access FROM modhost_grants WHERE module = ?1 ORDER BY path",
    )?;
    let rows = stmt.query_map([module], |row| {
        Ok((row.get(0)?, row.get::<_, String>(1)? == "read-only"))
    })?;
    rows.collect()
}

impl State {
    /// The directories granted to `module`, as `(path, read_only)`.
    pub fn grants(&self, module: &str) -> Result<Vec<(String, bool)>> {
        list(&*self.connect()?, module).map_err(sqlite(self.path()))
    }
}

impl Txn {
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
        list(&self.conn, module).map_err(self.err())
    }

    /// Withdraws every grant of `module`.
    pub fn revoke(&mut self, module: &str) -> Result<()> {
        self.changed_modules = true;
        self.conn
            .execute("DELETE FROM modhost_grants WHERE module = ?1", [module])
            .map_err(self.err())?;
        Ok(())
    }
}
