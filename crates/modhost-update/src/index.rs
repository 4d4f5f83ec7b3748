//! The repository index, and the publisher key that checks the signatures of a source's
//! documents.

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

/// The extension of a document's signature file: minisign's format, so publishers can sign
/// with the `minisign` tool and anyone can check modhost's signatures with it.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// A publisher's public key, pinned per source: a minisign public key (the `RW…` line of
/// a `minisign.pub`).
#[derive(Clone)]
pub struct PublicKey {
    key: minisign_verify::PublicKey,
    encoded: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Parses a minisign public key: its base64 line, or a whole `minisign.pub`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default();
        minisign_verify::PublicKey::from_base64(line)
            .map(|key| PublicKey {
                key,
                encoded: line.to_owned(),
            })
            .map_err(|e| format!("not a minisign public key: {e}"))
    }

    /// The key's base64 line.
    pub fn encode(&self) -> String {
        self.encoded.clone()
    }

    /// Checks `signature` (the text of a `.minisig` file) over `data`. Only prehashed
    /// signatures (minisign's default since 0.8) are accepted.
    pub fn verify(&self, data: &[u8], signature: &[u8], source: &str) -> Result<()> {
        let untrusted = |message: &str| Error::Untrusted {
            source_name: source.to_owned(),
            message: message.to_owned(),
        };
        let text =
            std::str::from_utf8(signature).map_err(|_| untrusted("the signature is not text"))?;
        let signature = minisign_verify::Signature::decode(text)
            .map_err(|_| untrusted("the signature is not a minisign signature"))?;
        self.key
            .verify(data, &signature, false)
            .map_err(|e| match e {
                minisign_verify::Error::UnexpectedKeyId => {
                    untrusted("the document is signed by another key than the pinned publisher key")
                }
                _ => untrusted("the signature does not match the pinned publisher key"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature made by the `minisign` tool over `test` (minisign-verify's own example).
    #[test]
    fn signatures_made_by_the_minisign_tool_verify() {
        let public = PublicKey::parse(
            "untrusted comment: minisign public key E7620F1842B4E81F\n\
             RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let signature = "untrusted comment: signature from minisign secret key\n\
            RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/\
            z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=\n\
            trusted comment: timestamp:1633700835\tfile:test\tprehashed\n\
            wLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==\n";
        assert!(public.verify(b"test", signature.as_bytes(), "s").is_ok());
        assert!(public.verify(b"tesT", signature.as_bytes(), "s").is_err());
    }

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
