//! What one module statement may take of SQLite's memory. A sort, `GROUP BY` or
//! `DISTINCT` held in memory (`temp_store = MEMORY`) is sorted by one VM step, which no
//! progress handler interrupts: a statement that gathered hundreds of MiB of rows before
//! its deadline would then sort them for seconds past it, and hold memory every other
//! module's statement shares (SQLite's hard heap limit is the process's). Bounding what
//! a statement gathers bounds that step, and leaves the rest to the others.

/// The most of SQLite's memory one module statement may grow it by: at that, a sort of
/// a million small rows, which takes a fraction of a second.
pub(crate) const STATEMENT_MEMORY: i64 = 64 * 1024 * 1024;

/// SQLite's memory in use now, in bytes, all connections of the process together.
/// (rusqlite wraps no safe call for it.)
#[allow(unsafe_code)]
fn in_use() -> i64 {
    // SAFETY: `sqlite3_memory_used` takes no arguments, only reads SQLite's memory
    // statistics (under their own mutex) and may be called from any thread at any time.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// SQLite's memory when a statement began, to tell what the statement took since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline(i64);

impl Baseline {
    /// SQLite's memory now.
    pub(crate) fn now() -> Self {
        Baseline(in_use())
    }

    /// Whether SQLite's memory grew by more than [`STATEMENT_MEMORY`] since. The count is
    /// the process's: another connection's growth meanwhile counts against this
    /// statement, and what another frees meanwhile lets this one take that much more.
    /// SQLite's hard heap limit (`state.rs`) bounds them all together whatever happens.
    pub(crate) fn exceeded(self) -> bool {
        in_use().saturating_sub(self.0) > STATEMENT_MEMORY
    }
}
