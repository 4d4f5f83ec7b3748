//! SQL a module runs against its own tables.
//!
//! A statement is prepared under an SQLite authorizer that allows reading and writing
//! only the tables the module owns, and nothing else: no DDL, no PRAGMA, no ATTACH, no
//! transaction control (the host owns the transaction). A progress handler stops a
//! statement that runs past the call's deadline, and results are bounded.

use std::collections::BTreeSet;
use std::time::Instant;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

/// A value passed to or returned from module SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// The result of a query: column names and rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rows {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<SqlValue>>,
}

/// Bounds on what one statement may return.
const MAX_ROWS: usize = 10_000;
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// How many SQLite VM steps pass between deadline checks.
const PROGRESS_STEPS: i32 = 10_000;

fn to_sql(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(r) => Value::Real(*r),
        SqlValue::Text(t) => Value::Text(t.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

fn from_sql(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

/// Allows what a module's statement may do with `owned` tables, and nothing else.
fn authorize(owned: &BTreeSet<String>, context: AuthContext<'_>) -> Authorization {
    let own = |table: &str| context.database_name == Some("main") && owned.contains(table);
    let allowed = match context.action {
        AuthAction::Select | AuthAction::Recursive => true,
        // A common table expression is read with no database: it is not a stored table.
        AuthAction::Read { .. } if context.database_name.is_none() => true,
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name } => own(table_name),
        AuthAction::Function { function_name } => {
            !function_name.eq_ignore_ascii_case("load_extension")
        }
        _ => false,
    };
    if allowed {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
}

/// Runs `f` with the authorizer and the deadline installed, removing both afterwards.
fn confined<T>(
    conn: &mut Connection,
    owned: BTreeSet<String>,
    deadline: Instant,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, String> {
    conn.authorizer(Some(move |context: AuthContext<'_>| {
        authorize(&owned, context)
    }))
    .map_err(|e| e.to_string())?;
    conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() > deadline))
        .map_err(|e| e.to_string())?;
    let result = f(conn);
    let cleared = conn.progress_handler(0, None::<fn() -> bool>);
    let reset = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    let value = result.map_err(|e| match e {
        rusqlite::Error::SqliteFailure(code, _)
            if code.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            "the statement ran past the call's deadline".to_owned()
        }
        rusqlite::Error::SqliteFailure(code, _)
            if code.code == rusqlite::ErrorCode::AuthorizationForStatementDenied =>
        {
            "not authorized: a module may only read and write its own tables".to_owned()
        }
        other => other.to_string(),
    })?;
    reset.and(cleared).map_err(|e| e.to_string())?;
    Ok(value)
}

/// Executes one statement; returns the number of rows changed.
pub(crate) fn execute(
    conn: &mut Connection,
    owned: BTreeSet<String>,
    deadline: Instant,
    sql: &str,
    params: &[SqlValue],
) -> Result<u64, String> {
    confined(conn, owned, deadline, |conn| {
        let mut stmt = conn.prepare(sql)?;
        let changed = stmt.execute(params_from_iter(params.iter().map(to_sql)))?;
        Ok(changed as u64)
    })
}

/// Runs one query and collects its rows, up to the result bounds.
pub(crate) fn query(
    conn: &mut Connection,
    owned: BTreeSet<String>,
    deadline: Instant,
    sql: &str,
    params: &[SqlValue],
) -> Result<Rows, String> {
    let collected = confined(conn, owned, deadline, |conn| {
        let mut stmt = conn.prepare(sql)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let mut rows = stmt.query(params_from_iter(params.iter().map(to_sql)))?;
        let mut out = Rows {
            columns,
            rows: Vec::new(),
        };
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            if out.rows.len() >= MAX_ROWS || bytes > MAX_BYTES {
                return Ok(Err(format!(
                    "the result exceeds {MAX_ROWS} rows or {MAX_BYTES} bytes"
                )));
            }
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                let value = from_sql(row.get_ref(i)?);
                bytes += match &value {
                    SqlValue::Text(t) => t.len(),
                    SqlValue::Blob(b) => b.len(),
                    _ => 8,
                };
                values.push(value);
            }
            out.rows.push(values);
        }
        Ok(Ok(out))
    });
    collected.and_then(|inner| inner)
}
