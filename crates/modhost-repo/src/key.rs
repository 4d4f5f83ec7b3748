//! The publisher's signing key: documents signed as minisign signs them, so that clients
//! pinned to its public key (and the `minisign` tool) can check them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blake2::{Blake2b512, Digest};
use ed25519_dalek::{Signer, SigningKey};
use modhost_update::{PublicKey, hex};

/// A publisher's signing key: base64 of its 8-byte minisign key id and 32 secret bytes,
/// kept in a file only the publisher can read.
pub struct SecretKey {
    id: [u8; 8],
    key: SigningKey,
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut id = [0; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        SecretKey {
            id,
            key: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// Parses a key as [`SecretKey::encode`] writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str = "modhost signs with the key `modhost repo keygen` writes \
                                (one line of base64: a key id and an Ed25519 secret key)";
        if text.contains("untrusted comment:") {
            return Err(format!(
                "this is a minisign secret key file, which modhost cannot read (it is \
                 encrypted with a password); {EXPECTED}, or sign the built documents with \
                 `minisign -S` yourself"
            ));
        }
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("the signing key is not base64 ({e}); {EXPECTED}"))?;
        let (Some(id), Some(secret)) = (
            bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            bytes.get(8..).and_then(|b| <[u8; 32]>::try_from(b).ok()),
        ) else {
            return Err(format!(
                "the signing key is {} bytes, not 40; {EXPECTED}",
                bytes.len()
            ));
        };
        Ok(SecretKey {
            id,
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// The key as base64.
    pub fn encode(&self) -> String {
        STANDARD.encode([&self.id[..], &self.key.to_bytes()[..]].concat())
    }

    /// The minisign public key that verifies this key's signatures.
    pub fn public(&self) -> PublicKey {
        let line = STANDARD.encode(
            [
                &b"Ed"[..],
                &self.id[..],
                &self.key.verifying_key().to_bytes()[..],
            ]
            .concat(),
        );
        match PublicKey::parse(&line) {
            Ok(key) => key,
            Err(e) => unreachable!("a freshly encoded key parses: {e}"),
        }
    }

    /// Signs `data` as minisign does (a prehashed signature with a trusted comment), as
    /// the text of a `.minisig` file. Deterministic: the comment has no timestamp.
    pub fn sign(&self, data: &[u8]) -> String {
        let trusted = "modhost repository document";
        let signature = self.key.sign(&Blake2b512::digest(data)).to_bytes();
        let global = self
            .key
            .sign(&[&signature[..], trusted.as_bytes()].concat())
            .to_bytes();
        format!(
            "untrusted comment: signature from modhost repo key {}\n{}\ntrusted comment: {trusted}\n{}\n",
            hex(&self.id),
            STANDARD.encode([&b"ED"[..], &self.id[..], &signature[..]].concat()),
            STANDARD.encode(global)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use modhost_update::{
        Client, DEFAULT_TIMEOUT, Error, Kind, Location, Release, SIGNATURE_SUFFIX, Source, Target,
    };

    use super::*;

    #[test]
    fn signatures_verify_only_with_the_signing_key_and_the_exact_bytes() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let signature = key.sign(b"index");
        let public = PublicKey::parse(&key.public().encode()).unwrap_or_else(|e| panic!("{e}"));
        assert!(public.verify(b"index", signature.as_bytes(), "s").is_ok());
        assert!(public.verify(b"indeX", signature.as_bytes(), "s").is_err());
        let foreign = other.public().verify(b"index", signature.as_bytes(), "s");
        assert!(foreign.is_err_and(|e| e.to_string().contains("another key")));
        assert!(public.verify(b"index", b"garbage", "s").is_err());
        let tampered = signature.replace("modhost repository document", "anything else");
        assert!(public.verify(b"index", tampered.as_bytes(), "s").is_err());
        let restored = SecretKey::parse(&key.encode())
            .map(|k| k.public())
            .map_err(|e| e.to_string());
        assert_eq!(restored, Ok(key.public()));
    }

    /// A local FreePBX document `json` signed by `key`, as a source pinned to `pinned`.
    fn signed_freepbx(dir: &Path, json: &str, key: &SecretKey, pinned: &SecretKey) -> Source {
        let doc = dir.join("phonebook.json");
        let sig = dir.join(format!("phonebook.json{SIGNATURE_SUFFIX}"));
        assert!(
            std::fs::write(&doc, json).is_ok()
                && std::fs::write(&sig, key.sign(json.as_bytes())).is_ok()
        );
        Source {
            name: "pb".into(),
            kind: Kind::Freepbx,
            location: Location::Path(doc),
            public_key: Some(pinned.public()),
            extra_query: None,
        }
    }

    #[test]
    fn a_signed_source_must_vouch_for_its_packages_with_sha2() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = SecretKey::generate();
        let client = Client::new(None, DEFAULT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let md5_only = r#"{"rawname":"phonebook","version":"2.0.0","location":"pb.tgz",
            "md5sum":"55278ae5d4ab4aa7a7047076d07305b2"}"#;
        let source = signed_freepbx(dir.path(), md5_only, &key, &key);
        match client.releases(&source, Some("phonebook"), &Target::default()) {
            Err(Error::Untrusted { message, .. }) => assert!(
                message.contains(
                    "the source is signed, but its document gives no sha256 for `phonebook` 2.0.0"
                ),
                "{message}"
            ),
            other => panic!("expected the release refused, got {other:?}"),
        }
        let with_sha256 = md5_only.replace('}', &format!(r#","sha256":"{}"}}"#, "a".repeat(64)));
        let source = signed_freepbx(dir.path(), &with_sha256, &key, &key);
        let offered = client.releases(&source, Some("phonebook"), &Target::default());
        assert!(offered.is_ok_and(|r| r.len() == 1));
        // Unsigned, the MD5 alone is accepted (FreePBX servers publish nothing else).
        let unsigned = Source {
            public_key: None,
            ..signed_freepbx(dir.path(), md5_only, &key, &key)
        };
        let offered = client.releases(&unsigned, Some("phonebook"), &Target::default());
        assert!(
            offered.is_ok_and(|r| r.first().and_then(Release::weak_checksum_warning).is_some())
        );
        // Signed by another key than the pinned one: refused before anything is read.
        let other = SecretKey::generate();
        let source = signed_freepbx(dir.path(), &with_sha256, &other, &key);
        let refused = client.releases(&source, Some("phonebook"), &Target::default());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("another key")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_key_of_another_kind_is_refused_saying_which_key_is_expected() {
        let minisign = "untrusted comment: minisign encrypted secret key\n\
                        RWRTY0IyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        for text in [minisign, "not a key at all", "AAAA"] {
            let error = SecretKey::parse(text).err().unwrap_or_default();
            assert!(error.contains("modhost repo keygen"), "{text}: {error}");
        }
        assert!(
            SecretKey::parse(minisign)
                .err()
                .unwrap_or_default()
                .contains("minisign secret key file")
        );
    }
}
