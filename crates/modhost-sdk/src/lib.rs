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

/// The version of the `modhost:module` WIT package this SDK targets.
pub const API_VERSION: &str = "0.1.0";

/// Where the module's own data directory is mounted inside the sandbox.
pub const DATA_DIR: &str = "/data";

/// Registers a type implementing [`Module`] as the component's exports.
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        type __ModhostExport = $crate::Export<$module>;
        $crate::bindings::__export_module_bindings!(__ModhostExport with_types_in $crate::bindings);
    };
}

pub mod db;
pub mod dispatch;
pub mod kv;
pub mod log;
mod module;

#[doc(hidden)]
pub use module::Export;

// Defined here, not in `module.rs`: a module's backtrace names its handler by the trait's
// path, `<… as modhost_sdk::Module>::handle`.
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
