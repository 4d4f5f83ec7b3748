//! Structured logging into the host's log, under the module's rawname.

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
