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
//!
//! The bytecode also tells how many places call a function: SQLite's progress handler
//! runs only where the program jumps, so a statement of many calls in a row, each on a
//! value of megabytes, ran as one stretch for tens of seconds past its deadline.

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

/// The most places one module statement may call a function at: each call may take a
/// value of up to 16 MiB, and all of them may run with no jump between, where nothing
/// stops them.
pub(crate) const MAX_CALL_SITES: usize = 48;

/// What a statement's bytecode says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It opens only the module's tables, and calls functions at few enough places.
    Confined,
    /// It opens what is not the module's, or uses a refused opcode (or its bytecode
    /// could not be read).
    NotItsTables,
    /// It calls functions at this many places, more than [`MAX_CALL_SITES`].
    TooManyCalls(usize),
}

/// What `sql` (already prepared once on `conn`, with the same guards) does: whether it
/// opens only what `roots` allows and holds none of the [`REFUSED`] opcodes, and at how
/// many places it calls a function. Any failure to read its bytecode counts as
/// [`Verdict::NotItsTables`].
pub(crate) fn confined(conn: &Connection, sql: &str, roots: &Roots) -> Verdict {
    match read(conn, sql, roots) {
        Ok((true, calls)) if calls > MAX_CALL_SITES => Verdict::TooManyCalls(calls),
        Ok((true, _)) => Verdict::Confined,
        _ => Verdict::NotItsTables,
    }
}

/// Whether `sql` opens only what `roots` allows, and at how many places it calls a
/// function.
fn read(conn: &Connection, sql: &str, roots: &Roots) -> rusqlite::Result<(bool, usize)> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}"))?;
    // Unbound parameters are NULL: the bytecode does not depend on them.
    let mut rows = stmt.raw_query();
    let (mut sequence_reads, mut sequence_writes) = (0u32, 0u32);
    let mut calls = 0;
    while let Some(row) = rows.next()? {
        let opcode: String = row.get(1)?;
        if [
            "Function",
            "PureFunc",
            "AggStep",
            "AggStep1",
            "AggInverse",
            "AggValue",
        ]
        .contains(&opcode.as_str())
        {
            calls += 1;
            continue;
        }
        let (p1, p2, p3, p5): (i64, i64, i64, i64) =
            (row.get(2)?, row.get(3)?, row.get(4)?, row.get(6)?);
        if REFUSED.contains(&opcode.as_str()) {
            return Ok((false, calls));
        }
        let (root, database) = match opcode.as_str() {
            "OpenRead" | "OpenWrite" | "ReopenIdx" if p5 & P2_IS_REGISTER != 0 => {
                return Ok((false, calls));
            }
            "OpenRead" | "OpenWrite" | "ReopenIdx" => (p2, p3),
            "Clear" => (p1, p2),
            _ => continue,
        };
        if database != 0 {
            return Ok((false, calls));
        }
        if roots.owned.contains(&root) {
            continue;
        }
        if roots.sequence == Some(root) {
            match opcode.as_str() {
                "OpenWrite" => sequence_writes += 1,
                "OpenRead" => sequence_reads += 1,
                _ => return Ok((false, calls)),
            }
            continue;
        }
        return Ok((false, calls));
    }
    // `AUTOINCREMENT` reads `sqlite_sequence` once for each time it writes it; a read
    // more is the statement's own.
    Ok((sequence_reads <= sequence_writes, calls))
}
