//! The [`Module`] trait an author implements, and its adapter to the generated exports.

use std::marker::PhantomData;

use crate::bindings::exports::modhost::module::{hooks, lifecycle};

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
