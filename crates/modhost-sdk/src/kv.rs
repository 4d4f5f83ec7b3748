//! The module's own key-value store.

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
