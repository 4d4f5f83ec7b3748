//! The adapter from a [`Module`] to the generated exports.

use std::marker::PhantomData;

use crate::Module;
use crate::bindings::exports::modhost::module::{hooks, lifecycle};

/// Adapts a [`Module`] to the generated export traits; used by [`crate::export_module!`].
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
