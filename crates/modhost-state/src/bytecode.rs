//! What a module's prepared statement opens, read from its bytecode (`EXPLAIN`).
//!
//! SQLite's authorizer does not see every table a statement reads: the columns a
//! `NATURAL JOIN` or `JOIN … USING` compares are never reported, and neither is their
//! table, so `SELECT 1 FROM (SELECT 'guess' AS pin) NATURAL JOIN their_table` told a
//! module whether another module's table held a value. Every b-tree a statement touches
//! is opened by an opcode naming its root page, whatever the SQL said: the statement may
//! open only the root pages of the module's tables and their indexes (and
//! `sqlite_sequence` as `AUTOINCREMENT` does, once to read and once to write per
//! table), and may not use the opcodes of schema changes, `VACUUM` or virtual tables.

use std::collections::BTreeSet;

use rusqlite::Connection;

/// Opcodes no module statement may hold.
const REFUSED: &[&str] = &[
    "Checkpoint",
    "CreateBtree",
    "Destroy",
    "DropIndex",
    "DropTable",
    "DropTrigger",
    "IncrVacuum",
    "IntegrityCk",
    "JournalMode",
    "LoadAnalysis",
    "MaxPgcnt",
    "Pagecount",
    "ParseSchema",
    "SqlExec",
    "Vacuum",
    "VBegin",
    "VCheck",
    "VColumn",
    "VCreate",
    "VDestroy",
    "VFilter",
    "VInitIn",
    "VNext",
    "VOpen",
    "VRename",
    "VUpdate",
];

/// `OPFLAG_P2ISREG`: an `Open*` whose root page is in a register, not known until run.
const P2_IS_REGISTER: i64 = 0x10;

/// The root pages of `main` a module's statement may open.
#[derive(Debug, Clone, Default)]
pub(crate) struct Roots {
    /// Those of the module's tables and their indexes.
    owned: BTreeSet<i64>,
    /// `sqlite_sequence`'s, if the database has one.
    sequence: Option<i64>,
}

/// The root pages of `owned`'s tables and their indexes, and of `sqlite_sequence`.
/// Read before the authorizer is installed: it refuses reading the schema.
pub(crate) fn roots(conn: &Connection, owned: &BTreeSet<String>) -> rusqlite::Result<Roots> {
    let mut roots = Roots::default();
    let mut stmt = conn.prepare_cached(
        "SELECT tbl_name, rootpage FROM main.sqlite_schema
         WHERE type IN ('table', 'index') AND rootpage > 0",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (table, root): (String, i64) = (row.get(0)?, row.get(1)?);
        if owned.iter().any(|t| t.eq_ignore_ascii_case(&table)) {
            roots.owned.insert(root);
        } else if table == "sqlite_sequence" {
            roots.sequence = Some(root);
        }
    }
    Ok(roots)
}

/// Whether `sql` (already prepared once on `conn`, with the same guards) opens only
/// what `roots` allows and holds none of the [`REFUSED`] opcodes. Any failure to read
/// its bytecode counts as no.
pub(crate) fn confined(conn: &Connection, sql: &str, roots: &Roots) -> bool {
    opens_only(conn, sql, roots).unwrap_or(false)
}

fn opens_only(conn: &Connection, sql: &str, roots: &Roots) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}"))?;
    // Unbound parameters are NULL: the bytecode does not depend on them.
    let mut rows = stmt.raw_query();
    let (mut sequence_reads, mut sequence_writes) = (0u32, 0u32);
    while let Some(row) = rows.next()? {
        let opcode: String = row.get(1)?;
        let (p1, p2, p3, p5): (i64, i64, i64, i64) =
            (row.get(2)?, row.get(3)?, row.get(4)?, row.get(6)?);
        if REFUSED.contains(&opcode.as_str()) {
            return Ok(false);
        }
        let (root, database) = match opcode.as_str() {
            "OpenRead" | "OpenWrite" | "ReopenIdx" if p5 & P2_IS_REGISTER != 0 => {
                return Ok(false);
            }
            "OpenRead" | "OpenWrite" | "ReopenIdx" => (p2, p3),
            "Clear" => (p1, p2),
            _ => continue,
        };
        if database != 0 {
            return Ok(false);
        }
        if roots.owned.contains(&root) {
            continue;
        }
        if roots.sequence == Some(root) {
            match opcode.as_str() {
                "OpenWrite" => sequence_writes += 1,
                "OpenRead" => sequence_reads += 1,
                _ => return Ok(false),
            }
            continue;
        }
        return Ok(false);
    }
    // `AUTOINCREMENT` reads `sqlite_sequence` once for each time it writes it; a read
    // more is the statement's own.
    Ok(sequence_reads <= sequence_writes)
}
