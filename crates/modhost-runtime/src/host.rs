//! What a module's store holds, and the host side of the imported interfaces.

use modhost_state::{SqlValue, Txn};
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::Limits;
use crate::bindings::v0_1_0::modhost::module::{db, kv, log, types};

/// The data of one call's store: the sandbox, the limits, and the module's view of the
/// state database.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) store_limits: StoreLimits,
    pub(crate) limits: Limits,
    pub(crate) rawname: String,
    pub(crate) txn: Txn,
    pub(crate) log_records: usize,
    pub(crate) log_dropped: usize,
    /// When the call's time is up; database statements stop then too.
    pub(crate) deadline: std::time::Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    fn log(
        &mut self,
        level: types::Level,
        message: String,
        fields: Vec<types::Field>,
    ) -> wasmtime::Result<()> {
        if self.log_records >= self.limits.max_log_records {
            self.log_dropped += 1;
            return Ok(());
        }
        self.log_records += 1;
        let message = truncate(message, self.limits.max_log_message);
        let fields = fields
            .iter()
            .map(|f| format!(" {}={}", f.key, f.value))
            .collect::<String>();
        let fields = truncate(fields, self.limits.max_log_message);
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

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.txn.kv_get(&self.rawname, &key)?)
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        if key.len() > self.limits.max_kv_key {
            return Ok(Err(format!(
                "key is {} bytes; the limit is {}",
                key.len(),
                self.limits.max_kv_key
            )));
        }
        if value.len() > self.limits.max_kv_value {
            return Ok(Err(format!(
                "value is {} bytes; the limit is {}",
                value.len(),
                self.limits.max_kv_value
            )));
        }
        self.txn.kv_set(&self.rawname, &key, &value)?;
        Ok(Ok(()))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.txn.kv_delete(&self.rawname, &key)?)
    }

    fn keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        Ok(self.txn.kv_keys(&self.rawname, &prefix)?)
    }
}

impl db::Host for HostState {
    fn execute(
        &mut self,
        sql: String,
        params: Vec<db::Value>,
    ) -> wasmtime::Result<Result<u64, String>> {
        let params: Vec<SqlValue> = params.into_iter().map(to_sql).collect();
        Ok(self
            .txn
            .module_execute(&self.rawname, &sql, &params, self.deadline))
    }

    fn query(
        &mut self,
        sql: String,
        params: Vec<db::Value>,
    ) -> wasmtime::Result<Result<db::Rows, String>> {
        let params: Vec<SqlValue> = params.into_iter().map(to_sql).collect();
        let rows = self
            .txn
            .module_query(&self.rawname, &sql, &params, self.deadline);
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

/// Cuts `text` to at most `max` bytes, on a character boundary, marking the cut.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
