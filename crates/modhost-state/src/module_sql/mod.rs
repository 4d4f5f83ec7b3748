//! SQL a module runs against its own tables.
//!
//! A statement is prepared under an SQLite authorizer that allows reading and writing
//! only the tables the module owns, and nothing else: no DDL, no PRAGMA, no ATTACH, no
//! transaction control (the host owns the transaction), and only the SQL functions that
//! see nothing but their arguments. A progress handler stops a statement that runs past
//! the call's deadline or its cancellation; values, statement text and results are bounded.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Statement, params_from_iter};
use serde::Serialize;

use crate::Stop;
use crate::{bytecode, functions};

mod allowed;
mod failure;
mod memory;

pub(crate) use allowed::FUNCTIONS;
use allowed::UNSTOPPABLE;
pub(crate) use failure::FULL;
use failure::Failure;

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

impl SqlValue {
    /// Roughly how many bytes the value adds to a row.
    pub(crate) fn size(&self) -> usize {
        match self {
            SqlValue::Null => 0,
            SqlValue::Integer(_) | SqlValue::Real(_) => 8,
            SqlValue::Text(text) => text.len(),
            SqlValue::Blob(bytes) => bytes.len(),
        }
    }
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
/// What one value of a result takes in the host besides its bytes.
const VALUE_SIZE: usize = std::mem::size_of::<SqlValue>();

/// The largest string or blob a statement may make or bind. Without it `zeroblob`,
/// `randomblob`, `printf`, `replace` or `group_concat` could make the host allocate
/// gigabytes from a few bytes of SQL.
const MAX_VALUE: i32 = 16 * 1024 * 1024;
/// The most arguments a function of a module's statement takes. One call of a function is
/// one step of SQLite's machine, which its progress handler never interrupts, and
/// `json_set`, `json_remove` and their kin walk a document once per path: a few hundred
/// paths over a 16 MiB document ran fourteen seconds past a deadline. Thirty-one paths
/// stay within about a second; `json_object` still takes 32 pairs.
const MAX_FUNCTION_ARGS: i32 = 64;

/// The longest statement text; data belongs in parameters.
const MAX_SQL: i32 = 1024 * 1024;

/// How many SQLite VM steps pass between two looks at the deadline and the cancellation.
/// One step may cost tens of milliseconds (a `randomblob` of `MAX_VALUE` bytes), so the
/// look comes often: a deadline at 10,000 steps was overrun by a minute and a half.
const PROGRESS_STEPS: i32 = 100;

/// What a module's statement may change in the module's own tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writes {
    /// Insert, update and delete rows.
    Any,
    /// Only delete rows: the shared cap is reached, and a statement may make room but
    /// not take any, not even in pages already used.
    DeletesOnly,
}

/// What the authorizer learns while a module's statement is prepared.
#[derive(Debug)]
struct Audit {
    /// What the statement may change.
    writes: Writes,
    /// Whether the module's statement is being prepared, so that names of unknown
    /// kind may still be noted for [`vet`] rather than refused.
    preparing: bool,
    /// Names read without a database, to be vetted once preparation ends.
    unvetted: BTreeSet<String>,
    /// Names vetted as common table expressions rather than stored tables.
    vetted: BTreeSet<String>,
    /// The reason of the first refusal, for a message more precise than SQLite's.
    refusal: Option<Failure>,
}

fn lock(audit: &Mutex<Audit>) -> MutexGuard<'_, Audit> {
    audit.lock().unwrap_or_else(|e| e.into_inner())
}

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
fn authorize(
    owned: &BTreeSet<String>,
    audit: &mut Audit,
    context: AuthContext<'_>,
) -> Authorization {
    // SQLite folds the ASCII case of names, and reports them as the statement spells them.
    let owns = |table: &str| owned.iter().any(|t| t.eq_ignore_ascii_case(table));
    let own = |table: &str| {
        context
            .database_name
            .is_some_and(|d| d.eq_ignore_ascii_case("main"))
            && owns(table)
    };
    let refusal = match context.action {
        AuthAction::Select | AuthAction::Recursive => None,
        // A table none of whose columns are read (`SELECT count(*) FROM t`) comes with no
        // database name, like a common table expression: which one it is only SQLite's
        // name resolution can tell, so unknown names are noted for `vet`.
        AuthAction::Read { table_name, .. } if context.database_name.is_none() => {
            if owns(table_name) || audit.vetted.contains(table_name) {
                None
            } else if audit.preparing {
                audit.unvetted.insert(table_name.to_owned());
                None
            } else {
                Some(Failure::NotItsTables)
            }
        }
        // A schema change writes the schema table first (and SQLite asks nothing more
        // after a refusal): so does no other statement a module could mean.
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if [
                "sqlite_master",
                "sqlite_schema",
                "sqlite_temp_master",
                "sqlite_temp_schema",
            ]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(table_name)) =>
        {
            Some(Failure::Schema)
        }
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if !own(table_name) =>
        {
            Some(Failure::NotItsTables)
        }
        AuthAction::Insert { .. } | AuthAction::Update { .. }
            if audit.writes == Writes::DeletesOnly =>
        {
            Some(Failure::Full)
        }
        AuthAction::Read { .. }
        | AuthAction::Insert { .. }
        | AuthAction::Update { .. }
        | AuthAction::Delete { .. } => None,
        AuthAction::Function { function_name }
            if UNSTOPPABLE
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name)) =>
        {
            Some(Failure::Unstoppable(function_name.to_owned()))
        }
        AuthAction::Function { function_name } => (!FUNCTIONS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(function_name)))
        .then(|| Failure::Function(function_name.to_owned())),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Some(Failure::Transaction),
        AuthAction::CreateIndex { .. }
        | AuthAction::CreateTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::AlterTable { .. } => Some(Failure::Schema),
        _ => Some(Failure::NotItsTables),
    };
    match refusal {
        None => Authorization::Allow,
        Some(refusal) => {
            // What the statement is (a schema change, a transaction) says more than the
            // schema table it would touch on the way, which SQLite may report first.
            if matches!(refusal, Failure::Schema | Failure::Transaction) {
                audit.refusal = Some(refusal);
            } else {
                audit.refusal.get_or_insert(refusal);
            }
            Authorization::Deny
        }
    }
}

/// The first keyword of `sql`, past whitespace, semicolons and comments.
fn leading_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(comment) = trimmed.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            let end = trimmed
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(trimmed.len());
            return &trimmed[..end];
        }
    }
}

/// Accepts the names the statement read without a database, once preparation ends: each
/// is a common table expression, or a stored table none of whose columns is read
/// (`SELECT count(*) FROM t`). Which, the statement's bytecode tells: it opens a stored
/// table's b-tree, and [`bytecode::confined`] refuses one that is not the module's. The
/// name alone must decide nothing: refusing a `WITH` named as another module's table,
/// and running one named otherwise, told a module which tables the others have.
fn vet(audit: &Mutex<Audit>) {
    let mut audit = lock(audit);
    let names = std::mem::take(&mut audit.unvetted);
    audit.vetted.extend(names);
    // SQLite prepares again after a schema change; names new by then are refused.
    audit.preparing = false;
}

/// Prepares `sql` and hands it to `run` with the authorizer, the deadline and the limits
/// installed, removing them afterwards: the connection goes back to the host's pool.
///
/// A statement that fails before it runs gets the failure it would have had if the
/// module's tables were the only ones (see [`alone`]): otherwise SQLite's "no such
/// table" for a name that nothing holds, against a refusal (or "no such column", or a
/// later name's "no such table") for one another module's table holds, would let a
/// module list the others' tables.
fn confined<T>(
    conn: &mut Connection,
    owned: BTreeSet<String>,
    writes: Writes,
    stop: &Stop,
    sql: &str,
    run: impl FnOnce(&mut Statement<'_>) -> Result<T, Failure>,
) -> Result<T, String> {
    let mut prepared = false;
    let result = guarded(conn, &owned, writes, stop, sql, |stmt| {
        prepared = true;
        run(stmt)
    });
    match result {
        Err(failure) if !prepared => {
            let said = alone(conn, &owned, writes, stop, sql)
                .unwrap_or(failure)
                .to_string();
            // Said of every table missing, another module's or none at all: an author
            // reading core's tables as FreePBX modules do would take it for core missing.
            Err(if said.starts_with("no such table: ") {
                format!("{said} {REACH}")
            } else {
                said
            })
        }
        other => other.map_err(|failure| failure.to_string()),
    }
}

/// What a module's SQL reaches, said with every "no such table".
pub(crate) const REACH: &str =
    "(a module reaches only the tables its module.xml's <database> declares)";

/// [`confined`]'s work on one connection: prepares and vets `sql` under the guards, runs
/// it, and removes the guards whatever happened.
fn guarded<T>(
    conn: &mut Connection,
    owned: &BTreeSet<String>,
    writes: Writes,
    stop: &Stop,
    sql: &str,
    run: impl FnOnce(&mut Statement<'_>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let audit = Arc::new(Mutex::new(Audit {
        writes,
        preparing: true,
        unvetted: BTreeSet::new(),
        vetted: BTreeSet::new(),
        refusal: None,
    }));
    let seen = Arc::clone(&audit);
    let mine = owned.clone();
    let mut saved = Vec::new();
    let result = (|| {
        let roots = bytecode::roots(conn, owned)?;
        conn.authorizer(Some(move |context: AuthContext<'_>| {
            authorize(&mine, &mut lock(&seen), context)
        }))?;
        let stopping = stop.clone();
        let baseline = memory::Baseline::now();
        let noting = Arc::clone(&audit);
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                if baseline.exceeded() {
                    lock(&noting)
                        .refusal
                        .get_or_insert(Failure::StatementMemory);
                    return true;
                }
                stopping.reached()
            }),
        )?;
        for (limit, value) in [
            (Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE),
            (Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL),
            (Limit::SQLITE_LIMIT_FUNCTION_ARG, MAX_FUNCTION_ARGS),
        ] {
            saved.push((limit, conn.set_limit(limit, value)?));
        }
        // The functions that search stop then too (see `functions.rs`).
        let _scope = functions::enter(functions::Scope {
            stop: stop.clone(),
            like_limit: conn.limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH)?,
            length_limit: MAX_VALUE,
        });
        // `REINDEX t` of a table with no index asks the authorizer nothing and compiles
        // to nothing, where one of a missing table fails: an answer that would tell
        // other modules' tables from missing ones. No module needs it.
        if leading_keyword(sql).eq_ignore_ascii_case("REINDEX") {
            return Err(Failure::NotItsTables);
        }
        if sql.contains('\0') {
            return Err(Failure::Nul);
        }
        let mut stmt = conn.prepare(sql)?;
        vet(&audit);
        // What the authorizer does not see (`NATURAL JOIN`, `USING`, `VACUUM`), and how
        // long the statement may run with nothing to stop it.
        match bytecode::confined(conn, sql, &roots) {
            bytecode::Verdict::Confined => {}
            bytecode::Verdict::NotItsTables => return Err(Failure::NotItsTables),
            bytecode::Verdict::TooManyCalls(calls) => return Err(Failure::TooManyCalls(calls)),
        }
        run(&mut stmt)
    })();
    let restored = saved
        .into_iter()
        .try_for_each(|(limit, previous)| conn.set_limit(limit, previous).map(drop));
    let cleared = conn.progress_handler(0, None::<fn() -> bool>);
    let reset = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    // A refusal fails the preparation, with a message that does not always say why.
    let value = result.map_err(|failure| lock(&audit).refusal.take().unwrap_or(failure))?;
    reset.and(cleared).and(restored)?;
    Ok(value)
}

/// How preparing `sql` fails in a database that holds only `owned`'s tables and their
/// indexes, as `conn` defines them; `None` when it does not fail there (the failure on
/// `conn` was then the host's, such as a locked schema) or that database could not be
/// made. Whatever other modules' tables and the host's exist, and whatever their names'
/// case, the answer is the same: a missing table of the module's own and another's are
/// both "no such table", as the statement spells it.
fn alone(
    conn: &Connection,
    owned: &BTreeSet<String>,
    writes: Writes,
    stop: &Stop,
    sql: &str,
) -> Option<Failure> {
    let mut schema = Vec::new();
    {
        // Each table before its indexes; a foreign key may name a table made later.
        let mut stmt = conn
            .prepare(
                "SELECT sql FROM sqlite_schema WHERE tbl_name = ?1 COLLATE NOCASE
                 AND type IN ('table', 'index') AND sql IS NOT NULL
                 ORDER BY type = 'index', name",
            )
            .ok()?;
        for table in owned {
            let rows = stmt
                .query_map([table], |row| row.get::<_, String>(0))
                .ok()?;
            for sql in rows {
                schema.push(sql.ok()?);
            }
        }
    }
    let mut shadow = Connection::open_in_memory().ok()?;
    for statement in &schema {
        shadow.execute_batch(statement).ok()?;
    }
    guarded(&mut shadow, owned, writes, stop, sql, |_| Ok(())).err()
}

/// Refuses `params` unless they are as many as `stmt` takes. (SQLite's binding stops
/// at the first one too many, and would say that one's number.)
fn counted(stmt: &Statement<'_>, params: &[SqlValue]) -> Result<(), Failure> {
    let needed = stmt.parameter_count();
    if params.len() == needed {
        Ok(())
    } else {
        Err(Failure::Parameters {
            given: params.len(),
            needed,
        })
    }
}

/// Executes one statement; returns the number of rows changed.
pub(crate) fn execute(
    conn: &mut Connection,
    owned: BTreeSet<String>,
    writes: Writes,
    stop: &Stop,
    sql: &str,
    params: &[SqlValue],
) -> Result<u64, String> {
    confined(conn, owned, writes, stop, sql, |stmt| {
        counted(stmt, params)?;
        let changed = stmt.execute(params_from_iter(params.iter().map(to_sql)))?;
        Ok(changed as u64)
    })
}

/// Runs one query and collects its rows, up to the result bounds.
pub(crate) fn query(
    conn: &mut Connection,
    owned: BTreeSet<String>,
    writes: Writes,
    stop: &Stop,
    sql: &str,
    params: &[SqlValue],
) -> Result<Rows, String> {
    confined(conn, owned, writes, stop, sql, |stmt| {
        counted(stmt, params)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let mut rows = stmt.query(params_from_iter(params.iter().map(to_sql)))?;
        let mut out = Rows {
            columns,
            rows: Vec::new(),
        };
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            if out.rows.len() >= MAX_ROWS {
                return Err(Failure::TooLarge);
            }
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                let value = row.get_ref(i)?;
                // Counted before the copy, value by value: one row may hold thousands
                // of columns at the largest value size each. A value takes its `SqlValue`
                // as well as its bytes: ten thousand rows of two thousand empty strings
                // hold hundreds of megabytes in the host.
                bytes += VALUE_SIZE
                    + match value {
                        ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
                        _ => 0,
                    };
                if bytes > MAX_BYTES {
                    return Err(Failure::TooLarge);
                }
                values.push(from_sql(value));
            }
            out.rows.push(values);
        }
        Ok(out)
    })
}
