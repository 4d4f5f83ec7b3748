//! Why a module's statement failed, in the words the module gets as its error.

use super::{MAX_BYTES, MAX_ROWS, MAX_SQL, MAX_VALUE};
use crate::bytecode::MAX_CALL_SITES;

/// Why a module's statement failed; shown to the module as its error message.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    /// The statement touches something other than the module's own tables.
    #[error("not authorized: a module may only read and write its own tables")]
    NotItsTables,
    /// The statement begins, ends or marks a transaction: the host's to do.
    #[error(
        "not authorized: transactions are the host's (each call runs in its own, undone if it fails): leave out BEGIN, COMMIT, ROLLBACK and SAVEPOINT"
    )]
    Transaction,
    /// The statement changes the schema: module.xml's `<database>` is the schema.
    #[error(
        "not authorized: a module's tables and indexes are the ones its module.xml's <database> declares; it cannot create, alter or drop any"
    )]
    Schema,
    /// The statement calls a function modules may not use.
    #[error("not authorized: function `{0}` is not available to modules")]
    Function(String),
    /// The statement calls a function one call of which could run past any deadline.
    #[error(
        "not authorized: function `{0}` is not available to modules: one call of it can run \
         for minutes, past any deadline, on large objects; merge them in the module's own code"
    )]
    Unstoppable(String),
    /// The statement calls functions at more places than may run with nothing to stop
    /// them.
    #[error(
        "the statement calls functions at {0} places, more than the {MAX_CALL_SITES} one \
         statement may: SQLite runs calls in a row with nothing to stop them at the call's \
         deadline; split it into several statements"
    )]
    TooManyCalls(usize),
    /// The statement's text holds a NUL byte, where SQLite would stop reading it and run
    /// what comes before: `DELETE FROM t\0 WHERE …` would empty the table.
    #[error(
        "the statement holds a NUL byte, where SQLite would stop reading it and run only \
         what comes before; text holding NUL bytes goes in a parameter"
    )]
    Nul,
    /// The progress handler stopped the statement.
    #[error("the statement ran past the call's deadline")]
    Deadline,
    /// A value or the statement text is over its limit.
    #[error("too big: values are limited to {MAX_VALUE} bytes and statements to {MAX_SQL} bytes")]
    TooBig,
    /// The parameters given are not as many as the statement takes.
    #[error(
        "the statement takes {needed} parameter{}, and {given} {} given",
        if *needed == 1 { "" } else { "s" },
        if *given == 1 { "was" } else { "were" }
    )]
    Parameters {
        /// How many were given.
        given: usize,
        /// How many the statement takes.
        needed: usize,
    },
    /// The result is over its bounds.
    #[error("the result exceeds {MAX_ROWS} rows or {MAX_BYTES} bytes")]
    TooLarge,
    /// The statement reached the database's page ceiling.
    #[error("{FULL}")]
    Full,
    /// The statement needed more of SQLite's memory than the process allows it.
    #[error(
        "the statement needed more memory than SQLite may take ({} MiB, shared by every \
         module): a sort, GROUP BY, DISTINCT or RETURNING over too many rows; work in smaller \
         steps (LIMIT)",
        crate::state::HEAP_LIMIT / (1024 * 1024)
    )]
    OutOfMemory,
    /// The statement gathered more of SQLite's memory than one statement may.
    #[error(
        "the statement needed more than {} MiB of memory: a sort, GROUP BY, DISTINCT or \
         RETURNING over too many rows; work in smaller steps (LIMIT)",
        super::memory::STATEMENT_MEMORY / (1024 * 1024)
    )]
    StatementMemory,
    /// Anything else SQLite reported.
    #[error("{0}")]
    Sqlite(rusqlite::Error),
}

/// [`Failure::Full`]'s message, which the transaction replaces with the cap it met.
pub(crate) const FULL: &str = "the state database is full";

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(code, _) => match code.code {
                rusqlite::ErrorCode::OperationInterrupted => Failure::Deadline,
                rusqlite::ErrorCode::AuthorizationForStatementDenied => Failure::NotItsTables,
                rusqlite::ErrorCode::TooBig => Failure::TooBig,
                rusqlite::ErrorCode::DiskFull => Failure::Full,
                rusqlite::ErrorCode::OutOfMemory => Failure::OutOfMemory,
                _ => Failure::Sqlite(error),
            },
            rusqlite::Error::InvalidParameterCount(given, needed) => Failure::Parameters {
                given: *given,
                needed: *needed,
            },
            _ => Failure::Sqlite(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_out_of_sqlites_memory_is_told_why_and_what_to_do() {
        let nomem = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOMEM),
            None,
        );
        let message = Failure::from(nomem).to_string();
        assert!(
            message.starts_with("the statement needed more memory than SQLite may take (256 MiB")
                && message.contains("LIMIT"),
            "{message}"
        );
    }
}
