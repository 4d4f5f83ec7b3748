//! The Extism side of the peer benchmark: one export, `echo`, that returns its input as
//! text — the same work as the modhost module's `echo` handler.

// `#[plugin_fn]` wraps the function in an undocumented `extern "C"` export of its own.
#![allow(missing_docs)]

use extism_pdk::{FnResult, plugin_fn};

/// Returns the input unchanged.
#[plugin_fn]
pub fn echo(input: String) -> FnResult<String> {
    Ok(input)
}
