//! How what is not always text is written as JSON.

use std::path::Path;

/// A path as text, bytes that are not UTF-8 replaced: serde refuses such a path, and a
/// Unix path may hold any bytes, so a root or a package named in Latin-1 would make a
/// whole answer fail.
pub(crate) fn path<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}
