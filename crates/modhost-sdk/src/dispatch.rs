//! Firing hook points that other modules (or this one) handle.

use crate::bindings::modhost::module::dispatch;

pub use dispatch::Outcome;

/// Fires hook point `hook` with `payload`; returns each handler's outcome in order.
pub fn fire(hook: &str, payload: &str) -> Result<Vec<Outcome>, String> {
    dispatch::fire(hook, payload)
}
