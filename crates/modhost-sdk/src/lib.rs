//! Write a modhost module in Rust.
//!
//! A module implements [`Module`], overriding only the lifecycle calls and hook handlers it
//! needs, and registers the type with [`export_module!`]. The crate builds for
//! `wasm32-wasip2` as a `cdylib`; the result is a component that targets the
//! `modhost:module@0.1.0` world in modhost's `wit/` directory.
//!
//! ```no_run
//! use modhost_sdk::{kv, log, Module};
//!
//! struct Hello;
//!
//! impl Module for Hello {
//!     fn install() -> Result<(), String> {
//!         kv::set("greeting", "hello")?;
//!         log::info("installed", &[]);
//!         Ok(())
//!     }
//! }
//!
//! modhost_sdk::export_module!(Hello);
//! ```

use std::marker::PhantomData;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "module",
        pub_export_macro: true,
        export_macro_name: "__export_module_bindings",
        default_bindings_module: "modhost_sdk::bindings",
    });
}

use bindings::exports::modhost::module::{hooks, lifecycle};

/// The version of the `modhost:module` WIT package this SDK targets.
pub const API_VERSION: &str = "0.1.0";

/// Where the module's own data directory is mounted inside the sandbox.
pub const DATA_DIR: &str = "/data";

/// A modhost module. Every method has a default, so a module overrides only what it needs.
pub trait Module {
    /// First-time setup. The default does nothing.
    fn install() -> Result<(), String> {
        Ok(())
    }

    /// Migration from `from_version`, called instead of [`Module::install`] on upgrade.
    /// The default does nothing.
    fn upgrade(from_version: &str) -> Result<(), String> {
        let _ = from_version;
        Ok(())
    }

    /// Clean-up before the module's files and store are removed. The default does nothing.
    fn uninstall() -> Result<(), String> {
        Ok(())
    }

    /// Called when the module is enabled. The default does nothing.
    fn enable() -> Result<(), String> {
        Ok(())
    }

    /// Called when the module is disabled. The default does nothing.
    fn disable() -> Result<(), String> {
        Ok(())
    }

    /// Runs the handler named `handler` for hook point `hook`.
    ///
    /// The default refuses every handler, so a module that declares `<methods>` or
    /// `<hooks>` in its module.xml must override this.
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        let _ = payload;
        Err(format!("no handler `{handler}` for hook `{hook}`"))
    }
}

/// Adapts a [`Module`] to the generated export traits; used by [`export_module!`].
#[doc(hidden)]
pub struct Export<M>(PhantomData<M>);

impl<M: Module> lifecycle::Guest for Export<M> {
    fn install() -> Result<(), String> {
        flushed(M::install())
    }
    fn upgrade(from_version: String) -> Result<(), String> {
        flushed(M::upgrade(&from_version))
    }
    fn uninstall() -> Result<(), String> {
        flushed(M::uninstall())
    }
    fn enable() -> Result<(), String> {
        flushed(M::enable())
    }
    fn disable() -> Result<(), String> {
        flushed(M::disable())
    }
}

impl<M: Module> hooks::Guest for Export<M> {
    fn handle(handler: String, hook: String, payload: String) -> Result<String, String> {
        flushed(M::handle(&handler, &hook, &payload))
    }
}

/// `result`, once what the call printed is out: Rust's stdout holds a line until it
/// ends, and a `print!` without one would otherwise never reach the host's log (or
/// reach it in a later call).
fn flushed<T>(result: T) -> T {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    result
}

/// Registers a type implementing [`Module`] as the component's exports.
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        type __ModhostExport = $crate::Export<$module>;
        $crate::bindings::__export_module_bindings!(__ModhostExport with_types_in $crate::bindings);
    };
}

/// Structured logging into the host's log, under the module's rawname.
pub mod log {
    use crate::bindings::modhost::module::{log, types};

    pub use types::Level;

    /// Emits a record at `level` with structured `fields`.
    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<types::Field> = fields
            .iter()
            .map(|(key, value)| types::Field {
                key: (*key).to_owned(),
                value: (*value).to_owned(),
            })
            .collect();
        log::log(level, message, &fields);
    }

    /// Emits an informational record.
    pub fn info(message: &str, fields: &[(&str, &str)]) {
        log(Level::Info, message, fields);
    }

    /// Emits a warning.
    pub fn warn(message: &str, fields: &[(&str, &str)]) {
        log(Level::Warn, message, fields);
    }

    /// Emits an error record.
    pub fn error(message: &str, fields: &[(&str, &str)]) {
        log(Level::Error, message, fields);
    }

    /// Emits a debug record.
    pub fn debug(message: &str, fields: &[(&str, &str)]) {
        log(Level::Debug, message, fields);
    }
}

/// SQL on the tables the module declares in its module.xml `<database>`.
///
/// Only the module's own tables, one statement per call, inside the current call's
/// transaction. Statements up to 1 MiB, values up to 16 MiB, results up to 10,000 rows;
/// SQLite's core functions only. `last_insert_rowid()` is refused (it would reveal other
/// modules' inserts): get a new row's id with `query("INSERT … RETURNING id", …)`. The
/// full rules are in the WIT file's `db` interface.
pub mod db {
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
}

/// Firing hook points that other modules (or this one) handle.
pub mod dispatch {
    use crate::bindings::modhost::module::dispatch;

    pub use dispatch::Outcome;

    /// Fires hook point `hook` with `payload`; returns each handler's outcome in order.
    pub fn fire(hook: &str, payload: &str) -> Result<Vec<Outcome>, String> {
        dispatch::fire(hook, payload)
    }
}

/// The module's own key-value store.
pub mod kv {
    use crate::bindings::modhost::module::kv;

    /// Returns the value stored under `key`, if any.
    pub fn get(key: &str) -> Option<String> {
        kv::get(key)
    }

    /// Stores `value` under `key`.
    pub fn set(key: &str, value: &str) -> Result<(), String> {
        kv::set(key, value)
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(key: &str) -> bool {
        kv::delete(key)
    }

    /// Lists the keys starting with `prefix`, in byte order.
    pub fn keys(prefix: &str) -> Vec<String> {
        kv::keys(prefix)
    }
}
