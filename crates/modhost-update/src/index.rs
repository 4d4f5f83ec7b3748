//! The repository index: every package a modhost repository offers.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The format tag every index carries.
pub const FORMAT: &str = "modhost-index/1";

/// The largest index accepted.
pub const MAX_INDEX: u64 = 4 * 1024 * 1024;

/// What a repository offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Always [`FORMAT`].
    pub format: String,
    /// Every package, newest first per module.
    pub modules: Vec<Entry>,
}

/// One package in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The module's rawname.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The package's version.
    pub version: String,
    /// The package's path under `packages/`.
    pub file: String,
    /// The package's size in bytes.
    pub size: u64,
    /// The package's SHA-256, hex.
    pub sha256: String,
    /// The licence group whose key a download needs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Index {
    /// Parses and checks an index: the format tag, rawnames, versions, file names.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        let untrusted = |message: String| Error::Untrusted {
            source_name: source.to_owned(),
            message,
        };
        let index: Index = serde_json::from_slice(bytes)
            .map_err(|e| untrusted(format!("the index is not valid: {e}")))?;
        if index.format != FORMAT {
            return Err(untrusted(format!(
                "the index format is `{}`, expected `{FORMAT}`",
                index.format
            )));
        }
        for entry in &index.modules {
            let safe_file = !entry.file.is_empty()
                && entry
                    .file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !entry.file.starts_with('.');
            if !modhost_manifest::is_valid_rawname(&entry.rawname)
                || modhost_manifest::Version::parse(&entry.version).is_err()
                || !safe_file
                || entry.sha256.len() != 64
            {
                return Err(untrusted(format!(
                    "the index has an invalid entry for `{}`",
                    entry.rawname
                )));
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_with_unsafe_entries_is_refused() {
        let entry = |file: &str, rawname: &str| {
            format!(
                r#"{{"format":"{FORMAT}","modules":[{{"rawname":"{rawname}","name":"x","version":"1.0","file":"{file}","size":1,"sha256":"{}"}}]}}"#,
                "a".repeat(64)
            )
        };
        assert!(Index::parse(entry("core-1.0.tgz", "core").as_bytes(), "s").is_ok());
        for (file, rawname) in [
            ("../x.tgz", "core"),
            ("a/b.tgz", "core"),
            ("x.tgz", "Core"),
            (".hidden", "core"),
        ] {
            assert!(
                Index::parse(entry(file, rawname).as_bytes(), "s").is_err(),
                "{file} {rawname}"
            );
        }
        assert!(Index::parse(b"<html>", "s").is_err());
    }
}
