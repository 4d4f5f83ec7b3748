//! The state database of a modhost root: which modules are installed, in which state,
//! where their files are, their backups, their key-value stores and their own tables.
//!
//! The database is SQLite in WAL mode with full synchronisation, and it is the single
//! point of truth: a change prepares new files beside the old ones, then commits one
//! [`Txn`] that points the module at them. A crash before the commit leaves the old
//! state; after it, the new. Files that no record points at are leftovers that
//! [`State::referenced_dirs`] lets the host sweep away.
//!
//! ```
//! use modhost_state::State;
//!
//! let dir = tempfile::tempdir()?;
//! let state = State::open(&dir.path().join("modhost.db"))?;
//! let mut txn = state.begin()?;
//! txn.kv_set("core", "extension/100", "Reception")?;
//! txn.commit()?;
//! assert_eq!(state.kv_entries("core")?, vec![("extension/100".into(), "Reception".into())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The database, its transactions, and what they hand out.
mod error;
mod migrations;
mod process;
mod records;
mod session;
mod setup;
mod state;
mod stop;
mod txn;

// One file per family of modhost's tables, holding both what `State` reads of it and
// what `Txn` reads and writes.
mod backups;
mod grants;
mod intents;
mod kv;
mod modules;
mod quota;
mod sources;
mod tables;

// What stands between a module and its own tables: its DDL, and the guard on its SQL.
mod bytecode;
mod functions;
mod module_sql;
mod pattern;
mod rebuild;
mod schema;

// How this process's writers wait for each other, and how every process's caches learn
// that modules changed.
mod gate;
mod signal;
mod writer;

pub use error::{Error, Result};
pub use migrations::Survey;
pub use module_sql::{Rows, SqlValue};
pub use process::Process;
pub use quota::{DEFAULT_MODULE_QUOTA, Quotas};
pub use records::{Backup, Found, ModuleRecord, Status};
pub use schema::RESERVED_PREFIXES;
pub use session::Session;
pub use sources::{ChannelKey, PinnedKey, SeenRecord, SourceRecord};
pub use state::{DEFAULT_MAX_SIZE, State};
pub use stop::Stop;
pub use txn::Txn;

#[cfg(test)]
mod tests;
