//! SQL on the tables the module declares in its module.xml `<database>`.
//!
//! Only the module's own tables, one statement per call, inside the current call's
//! transaction. Statements up to 1 MiB, values up to 16 MiB, results up to 10,000 rows;
//! SQLite's core functions only. `last_insert_rowid()` is refused (it would reveal other
//! modules' inserts): get a new row's id with `query("INSERT … RETURNING id", …)`. The
//! full rules are in the WIT file's `db` interface.

use crate::bindings::modhost::module::db;

pub use db::{Rows, Value};

/// Runs one INSERT, UPDATE or DELETE; returns the number of rows changed.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, String> {
    db::execute(sql, params)
}

/// Runs one SELECT, or a change with `RETURNING`, and returns its rows.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, String> {
    db::query(sql, params)
}

/// A text parameter.
pub fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

/// The text in `value`, if it holds text.
pub fn as_text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(text) => Some(text),
        _ => None,
    }
}

/// The integer in `value`, if it holds one.
pub fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        _ => None,
    }
}
