//! What a module's store holds, and the host side of the imported interfaces.

use std::sync::Arc;
use std::time::Instant;

use modhost_state::{Session, SqlValue, Stop};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::v0_1_0::modhost::module::{db, dispatch, kv, log, types};
use crate::{Fire, FireRequest, Limits};

/// The data of one call's store: the sandbox, the limits, and the module's view of the
/// state database. Capabilities reach the call they serve through it.
pub struct Sandbox {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: crate::limiter::Limiter,
    pub(crate) limits: Limits,
    pub(crate) rawname: String,
    /// Lent to the handlers this call fires while `fire` runs; otherwise always here.
    pub(crate) session: Option<Session>,
    /// What each module logged in the call's dispatch, fired hooks included.
    pub(crate) logs: std::sync::Arc<crate::LogLedger>,
    pub(crate) log_dropped: usize,
    /// When the call's time is up; database statements and fired hooks stop then too.
    pub(crate) deadline: Instant,
    pub(crate) fire: Option<Arc<dyn Fire>>,
    pub(crate) depth: u32,
    /// What the module may still write to disk, shared with the file streams it opens.
    pub(crate) budget: Arc<crate::disk::Budget>,
    /// What the application passed with the dispatch, for its capabilities.
    pub(crate) context: Option<crate::CallData>,
    /// Cancels the call from another thread.
    pub(crate) cancel: Option<crate::Cancel>,
    /// The application's capabilities, for their implementations to find themselves.
    pub(crate) capabilities: Arc<[Arc<dyn crate::Capability>]>,
}

impl Sandbox {
    fn session(&mut self) -> wasmtime::Result<&mut Session> {
        self.session
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("the module's session is lent to a hook it fired"))
    }

    /// When the module's statements must stop: at the call's deadline, or at once when
    /// the call is cancelled.
    fn stop(&self) -> Stop {
        Stop::new(self.deadline, self.cancel.as_ref().map(crate::Cancel::flag))
    }

    /// The module's transaction, opened at its first statement.
    fn txn(&mut self) -> wasmtime::Result<&mut modhost_state::Txn> {
        let stop = self.stop();
        Ok(self.session()?.txn(stop)?)
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for Sandbox {}

impl log::Host for Sandbox {
    fn log(
        &mut self,
        level: types::Level,
        message: String,
        fields: Vec<types::Field>,
    ) -> wasmtime::Result<()> {
        if !self.logs.admit(&self.rawname, self.limits.max_log_records) {
            self.log_dropped += 1;
            return Ok(());
        }
        let max = self.limits.max_log_message;
        let message = one_line(&truncate(message, max)).into_owned();
        let fields = joined_fields(&fields, max);
        let module = self.rawname.as_str();
        match level {
            types::Level::Trace => {
                tracing::trace!(target: "modhost::module", module, "{message}{fields}")
            }
            types::Level::Debug => {
                tracing::debug!(target: "modhost::module", module, "{message}{fields}")
            }
            types::Level::Info => {
                tracing::info!(target: "modhost::module", module, "{message}{fields}")
            }
            types::Level::Warn => {
                tracing::warn!(target: "modhost::module", module, "{message}{fields}")
            }
            types::Level::Error => {
                tracing::error!(target: "modhost::module", module, "{message}{fields}")
            }
        }
        Ok(())
    }
}

/// `fields` as a record shows them (` key=value` each), cut to `max` bytes. Each part is
/// cut to what is left before it is escaped: however many and however large the fields,
/// a record costs the host no more than its limit. A key that could pass for the record's
/// own (`module`, `level`…), or for more than one key (empty, or holding a space or `=`),
/// is shown quoted: `log.info("x", module="core")` reads ` "module"=core`, never as the
/// record's module.
fn joined_fields(fields: &[types::Field], max: usize) -> String {
    let mut joined = String::new();
    for field in fields {
        if joined.len() > max {
            break;
        }
        let key = if plain_key(&field.key) {
            std::borrow::Cow::Borrowed(field.key.as_str())
        } else {
            let room = max.saturating_sub(joined.len()) + 1;
            format!("{:?}", prefix(&field.key, room)).into()
        };
        for (separator, part) in [(" ", key.as_ref()), ("=", field.value.as_str())] {
            joined.push_str(separator);
            let room = max.saturating_sub(joined.len()) + 1;
            joined.push_str(&one_line(prefix(part, room)));
        }
    }
    truncate(joined, max)
}

/// Whether `key` reads as one field key of the module's own: not empty, ASCII letters,
/// digits, `_`, `-` and `.` only (a Cyrillic `о` would let `mоdule` pass for `module`), and
/// none of the names the record itself carries.
fn plain_key(key: &str) -> bool {
    const RECORDS_OWN: [&str; 6] = ["module", "level", "target", "message", "stdout", "stderr"];
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !RECORDS_OWN.contains(&key.to_ascii_lowercase().as_str())
}

/// `text` as one log record holds it: a line break a module writes would let it forge a
/// record of its own, under another module's name, so it is shown as `\n` or `\r`. (The
/// CLI escapes the other control characters when it prints records.)
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        text.replace('\n', "\\n").replace('\r', "\\r").into()
    } else {
        text.into()
    }
}

impl kv::Host for Sandbox {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        let rawname = self.rawname.clone();
        Ok(self.txn()?.kv_get(&rawname, &key)?)
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        let limits = self.limits;
        if key.len() > limits.max_kv_key {
            return Ok(Err(format!(
                "key is {} bytes; the limit is {}",
                key.len(),
                limits.max_kv_key
            )));
        }
        if value.len() > limits.max_kv_value {
            return Ok(Err(format!(
                "value is {} bytes; the limit is {}",
                value.len(),
                limits.max_kv_value
            )));
        }
        let rawname = self.rawname.clone();
        match self.txn()?.kv_set(&rawname, &key, &value) {
            // The module's own doing, and one it can handle: not a trap.
            Err(
                refused @ (modhost_state::Error::Full { .. }
                | modhost_state::Error::OverQuota { .. }),
            ) => Ok(Err(refused.to_string())),
            other => {
                other?;
                Ok(Ok(()))
            }
        }
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        let rawname = self.rawname.clone();
        Ok(self.txn()?.kv_delete(&rawname, &key)?)
    }

    fn keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let (rawname, stop) = (self.rawname.clone(), self.stop());
        Ok(self.txn()?.kv_keys(&rawname, &prefix, &stop)?)
    }
}

impl db::Host for Sandbox {
    fn execute(
        &mut self,
        sql: String,
        params: Vec<db::Value>,
    ) -> wasmtime::Result<Result<u64, String>> {
        let params: Vec<SqlValue> = params.into_iter().map(to_sql).collect();
        let (rawname, stop) = (self.rawname.clone(), self.stop());
        Ok(self.txn()?.module_execute(&rawname, &sql, &params, stop))
    }

    fn query(
        &mut self,
        sql: String,
        params: Vec<db::Value>,
    ) -> wasmtime::Result<Result<db::Rows, String>> {
        let params: Vec<SqlValue> = params.into_iter().map(to_sql).collect();
        let (rawname, stop) = (self.rawname.clone(), self.stop());
        let rows = self.txn()?.module_query(&rawname, &sql, &params, stop);
        Ok(rows.map(|rows| db::Rows {
            columns: rows.columns,
            rows: rows
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(from_sql).collect())
                .collect(),
        }))
    }
}

impl dispatch::Host for Sandbox {
    fn fire(
        &mut self,
        hook: String,
        payload: String,
    ) -> wasmtime::Result<Result<Vec<dispatch::Outcome>, String>> {
        let Some(fire) = self.fire.clone() else {
            return Ok(Err(
                "this host does not dispatch hooks from modules".to_owned()
            ));
        };
        let Some(session) = self.session.take() else {
            return Ok(Err("a hook is already being fired".to_owned()));
        };
        let request = FireRequest {
            caller: &self.rawname,
            hook: &hook,
            payload: &payload,
            depth: self.depth + 1,
            deadline: self.deadline,
            memory_left: self.limiter.left(),
            data: self.context.clone(),
            cancel: self.cancel.clone(),
            logs: std::sync::Arc::clone(&self.logs),
        };
        let (outcomes, mut session) = fire.fire(request, session);
        // A statement of a fired handler that SQLite interrupted took the whole
        // transaction with it, this call's writes included: the outcomes would tell of
        // writes that are gone, so the call learns that instead.
        let lost = session.lost().then(|| session.rolled_back().to_string());
        self.session = Some(session);
        if let Some(lost) = lost {
            return Ok(Err(format!("hook `{hook}`: {lost}")));
        }
        Ok(outcomes.map(|outcomes| {
            outcomes
                .into_iter()
                .map(|(module, result)| match result {
                    Ok(output) => dispatch::Outcome {
                        module,
                        ok: true,
                        output,
                    },
                    Err(error) => dispatch::Outcome {
                        module,
                        ok: false,
                        output: error,
                    },
                })
                .collect()
        }))
    }
}

fn to_sql(value: db::Value) -> SqlValue {
    match value {
        db::Value::Null => SqlValue::Null,
        db::Value::Integer(i) => SqlValue::Integer(i),
        db::Value::Real(r) => SqlValue::Real(r),
        db::Value::Text(t) => SqlValue::Text(t),
        db::Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn from_sql(value: SqlValue) -> db::Value {
    match value {
        SqlValue::Null => db::Value::Null,
        SqlValue::Integer(i) => db::Value::Integer(i),
        SqlValue::Real(r) => db::Value::Real(r),
        SqlValue::Text(t) => db::Value::Text(t),
        SqlValue::Blob(b) => db::Value::Blob(b),
    }
}

/// The longest start of `text` of at most `max` bytes.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// Cuts `text` to at most `max` bytes, on a character boundary, marking the cut.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let end = prefix(&text, max).len();
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, value: &str) -> types::Field {
        types::Field {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn a_records_fields_are_joined_escaped_and_cut_to_its_limit() {
        let few = [field("a", "1"), field("line", "x\ny")];
        assert_eq!(joined_fields(&few, 4096), " a=1 line=x\\ny");
        // However many and however large, the record is its limit and a mark.
        let large = "v".repeat(1 << 20);
        let many: Vec<_> = (0..64).map(|i| field(&format!("k{i}"), &large)).collect();
        let joined = joined_fields(&many, 4096);
        assert_eq!(joined.len(), 4096 + '…'.len_utf8());
        assert!(
            joined.starts_with(" k0=vvv") && joined.ends_with("v…"),
            "{joined}"
        );
        // A cut never splits a character, nor leaves an escape's half.
        let wide = [field("é", &"é".repeat(3000))];
        assert!(joined_fields(&wide, 4095).ends_with("é…"));
        let breaks = [field("n", &"\n".repeat(5000))];
        assert!(joined_fields(&breaks, 10).starts_with(" n=\\n\\n\\n"));
        // A key that could pass for the record's own, or for two, is quoted.
        let posing = [
            field("module", "spoof"),
            field("Level", "error"),
            field("", "empty"),
            field("x=1 y", "2"),
            field("call.id", "7"),
            field("m\u{43e}dule", "core"),
        ];
        assert_eq!(
            joined_fields(&posing, 4096),
            " \"module\"=spoof \"Level\"=error \"\"=empty \"x=1 y\"=2 call.id=7 \"m\u{43e}dule\"=core"
        );
    }
}
