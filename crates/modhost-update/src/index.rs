//! The repository index and its signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
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

/// A publisher's public key, pinned per source: base64 of the 32 key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses a key as [`PublicKey::encode`] writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("the public key is not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a public key is 32 bytes".to_owned())?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| format!("not an ed25519 public key: {e}"))
    }

    /// The key as base64.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.0.as_bytes())
    }

    /// Checks `signature` (base64, as `index.json.sig` holds it) over `data`.
    pub fn verify(&self, data: &[u8], signature: &[u8], source: &str) -> Result<()> {
        let untrusted = |message: &str| Error::Untrusted {
            source_name: source.to_owned(),
            message: message.to_owned(),
        };
        let text =
            std::str::from_utf8(signature).map_err(|_| untrusted("the signature is not text"))?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| untrusted("the signature is not base64"))?;
        let signature =
            Signature::from_slice(&bytes).map_err(|_| untrusted("the signature is malformed"))?;
        self.0
            .verify(data, &signature)
            .map_err(|_| untrusted("the index signature does not match the pinned publisher key"))
    }
}

/// A publisher's signing key: base64 of the 32 secret bytes, kept in a file.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Self {
        SecretKey(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Parses a key as [`SecretKey::encode`] writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("the signing key is not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a signing key is 32 bytes".to_owned())?;
        Ok(SecretKey(SigningKey::from_bytes(&bytes)))
    }

    /// The key as base64.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    /// The public key that verifies this key's signatures.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `data`; base64, as `index.json.sig` holds it.
    pub fn sign(&self, data: &[u8]) -> String {
        STANDARD.encode(self.0.sign(data).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_signing_key_and_the_exact_bytes() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let signature = key.sign(b"index");
        let public = PublicKey::parse(&key.public().encode()).unwrap_or_else(|e| panic!("{e}"));
        assert!(public.verify(b"index", signature.as_bytes(), "s").is_ok());
        assert!(public.verify(b"indeX", signature.as_bytes(), "s").is_err());
        assert!(
            other
                .public()
                .verify(b"index", signature.as_bytes(), "s")
                .is_err()
        );
        assert!(public.verify(b"index", b"garbage", "s").is_err());
        let restored = SecretKey::parse(&key.encode())
            .map(|k| k.public())
            .map_err(|e| e.to_string());
        assert_eq!(restored, Ok(key.public()));
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
