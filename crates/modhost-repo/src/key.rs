//! The publisher's signing key: documents signed as minisign signs them, so that clients
//! pinned to its public key (and the `minisign` tool) can check them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blake2::{Blake2b512, Digest};
use ed25519_dalek::{Signer, SigningKey};
use modhost_update::{Claims, PublicKey};

/// A publisher's signing key: base64 of its 8-byte minisign key id and 32 secret bytes,
/// kept in a file only the publisher can read.
pub struct SecretKey {
    id: [u8; 8],
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret itself never shows: only which key it is.
        f.debug_struct("SecretKey")
            .field("key_id", &self.public().key_id())
            .finish_non_exhaustive()
    }
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

    /// Reads the secret key file at `path` ([`SecretKey::parse`]'s formats), naming the
    /// file in every refusal.
    pub fn read(path: &Path) -> crate::Result<Self> {
        let refused = |message: String| crate::Error::File {
            path: path.to_owned(),
            message,
        };
        if path.is_dir() {
            return Err(refused(
                "a directory, not a signing key file (key generation writes one, as \
                 `modhost repo keygen --out FILE` does)"
                    .into(),
            ));
        }
        // A key file is a line or two: more is not one, and is not read whole.
        const MOST: u64 = 64 * 1024;
        let mut bytes = Vec::new();
        fs_err::File::open(path)
            .and_then(|file| {
                std::io::Read::read_to_end(&mut std::io::Read::take(file, MOST + 1), &mut bytes)
            })
            .map_err(|e| match e.kind() {
                // A first build names a key that is yet to be made.
                std::io::ErrorKind::NotFound => refused(
                    "does not exist: `modhost repo keygen --out FILE` makes a signing key (or \
                     `minisign -G -W`, one without a password)"
                        .into(),
                ),
                _ => crate::error::file_error(path)(e),
            })?;
        if bytes.len() as u64 > MOST {
            return Err(refused(format!(
                "larger than {} KiB, not a signing key: {}",
                MOST / 1024,
                SecretKey::EXPECTED
            )));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            refused(format!(
                "not text, so not a signing key: {}",
                SecretKey::EXPECTED
            ))
        })?;
        SecretKey::parse(&text).map_err(refused)
    }

    /// What a signing key file holds, said when a file is not one.
    const EXPECTED: &str = "modhost signs with the key `modhost repo keygen` writes \
                            (one line of base64: a key id and an Ed25519 secret key)";

    /// Writes a new key's secret file at `out`, readable by its owner alone, and beside it
    /// `OUT.pub`, the public key as minisign's `.pub` files hold it (so that `minisign -Vm
    /// DOC -p OUT.pub` checks what it signs). Returns the key and the `.pub` file's path.
    pub fn generate_files(out: &Path) -> crate::Result<(Self, PathBuf)> {
        let key = SecretKey::generate();
        crate::write_secret(out, &key.encode())?;
        let mut pub_file = out.to_owned().into_os_string();
        pub_file.push(".pub");
        let pub_file = PathBuf::from(pub_file);
        let public = key.public();
        fs_err::write(
            &pub_file,
            format!(
                "untrusted comment: modhost repository public key {}\n{}\n",
                public.key_id(),
                public.encode()
            ),
        )
        .map_err(crate::error::file_error(&pub_file))?;
        Ok((key, pub_file))
    }

    /// Parses a key as [`SecretKey::encode`] writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str = SecretKey::EXPECTED;
        if let Some(public) = text
            .lines()
            .find_map(|line| PublicKey::parse(line.trim()).ok())
        {
            return Err(format!(
                "this is a public key (key ID {}, as a minisign .pub file holds it), which \
                 checks signatures and cannot make them; signing takes the secret key made \
                 with it (`repo keygen --out FILE` writes FILE beside FILE.pub; `minisign \
                 -G` writes minisign.key beside minisign.pub)",
                public.key_id()
            ));
        }
        if text.trim_start().starts_with("untrusted comment:") {
            return Self::parse_minisign(text).map_err(|why| {
                format!(
                    "this is a minisign secret key file, which modhost reads only when it is \
                     not encrypted (`minisign -G -W`): {why}; {EXPECTED}, or sign the built \
                     documents with `minisign -S` yourself"
                )
            });
        }
        if text.contains("-----BEGIN") || text.trim_start().starts_with("ssh-") {
            return Err(format!(
                "this is a PEM or OpenSSH key, not a signing key modhost reads; {EXPECTED}"
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

    /// Reads a minisign secret key file as `minisign -G` writes it, when it is not
    /// encrypted (`-W`): an untrusted comment, then base64 of the algorithms, the
    /// password's scrypt parameters, the key id, the Ed25519 key pair and a BLAKE2b
    /// checksum of them.
    fn parse_minisign(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .nth(1)
            .ok_or("it has no key line after its comment")?;
        let bytes = STANDARD
            .decode(line)
            .map_err(|e| format!("its key line is not base64 ({e})"))?;
        let field = |range: std::ops::Range<usize>| {
            bytes
                .get(range)
                .ok_or_else(|| format!("its key is {} bytes, not 158", bytes.len()))
        };
        if field(0..2)? != b"Ed" || field(4..6)? != b"B2" || bytes.len() != 158 {
            return Err("it is not an Ed25519 key as minisign writes one".to_owned());
        }
        if field(2..4)? != [0, 0] {
            return Err("it is encrypted with a password".to_owned());
        }
        let (id, pair, checksum) = (field(54..62)?, field(62..126)?, field(126..158)?);
        // minisign leaves the checksum of a key it does not encrypt all zeros.
        let mut hasher = blake2::Blake2b::<blake2::digest::consts::U32>::new();
        hasher.update(b"Ed");
        hasher.update(id);
        hasher.update(pair);
        if checksum.iter().any(|b| *b != 0) && hasher.finalize().as_slice() != checksum {
            return Err("its checksum does not match: the file is damaged".to_owned());
        }
        let (Ok(id), Ok(seed)) = (<[u8; 8]>::try_from(id), <[u8; 32]>::try_from(&pair[..32]))
        else {
            return Err("it is not an Ed25519 key as minisign writes one".to_owned());
        };
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().to_bytes()[..] != pair[32..] {
            return Err("its public half does not match its secret half".to_owned());
        }
        Ok(SecretKey { id, key })
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

    /// Signs `data` as minisign does (a prehashed signature), its trusted comment
    /// claiming `claims` — which document, which release, when, until when — as the text
    /// of a `.minisig` file.
    pub fn sign(&self, data: &[u8], claims: &Claims) -> String {
        self.sign_with_comment(data, &claims.to_comment())
    }

    /// Signs `data` as [`SecretKey::sign`] does, with `trusted` as its trusted comment:
    /// free text, as `minisign -S -t` writes it.
    pub fn sign_with_comment(&self, data: &[u8], trusted: &str) -> String {
        // A comment is one line of the signature file: a line break would end it early.
        let trusted = trusted.replace(['\r', '\n'], " ");
        let signature = self.key.sign(&Blake2b512::digest(data)).to_bytes();
        let global = self
            .key
            .sign(&[&signature[..], trusted.as_bytes()].concat())
            .to_bytes();
        format!(
            "untrusted comment: signature from modhost repo key {}\n{}\ntrusted comment: {trusted}\n{}\n",
            self.public().key_id(),
            STANDARD.encode([&b"ED"[..], &self.id[..], &signature[..]].concat()),
            STANDARD.encode(global)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use modhost_update::signature::verify;
    use modhost_update::{
        Client, DEFAULT_TIMEOUT, Error, Kind, Location, Refusal, Release, SIGNATURE_SUFFIX, Seen,
        Source, Target,
    };

    use super::*;

    /// What `key`'s signature of `data` for `path` proves, checked against `pinned`.
    fn verified(
        pinned: &SecretKey,
        data: &[u8],
        signature: &str,
    ) -> Result<modhost_update::signature::Signed, Refusal> {
        verify(
            &[pinned.public()],
            "https://h/index.json",
            data,
            signature.as_bytes(),
            None,
        )
    }

    /// Claims of a document signed a minute ago, valid for 30 days.
    fn claims(file: &str) -> Claims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Claims {
            timestamp: Some(now - 60),
            file: Some(file.to_owned()),
            serial: Some(7),
            expires: Some(now + 30 * 86_400),
        }
    }

    #[test]
    fn signatures_verify_only_with_the_signing_key_and_the_exact_bytes() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let claimed = claims("index.json");
        let signature = key.sign(b"index", &claimed);
        let signed = verified(&key, b"index", &signature).map(|s| s.claims);
        assert_eq!(signed, Ok(claimed), "the claims come back as signed");
        assert!(
            matches!(
                verified(&key, b"indeX", &signature),
                Err(Refusal::ChangedOrStale { .. })
            ),
            "a changed document"
        );
        let foreign = verified(&other, b"index", &signature);
        assert!(
            matches!(&foreign, Err(Refusal::OtherKey { seen, pinned, .. })
                if *seen == key.public().key_id() && *pinned == [other.public().key_id()]),
            "{foreign:?}"
        );
        assert!(matches!(
            verified(&key, b"index", "garbage"),
            Err(Refusal::Malformed { .. })
        ));
        // The comment is signed too: claiming another serial breaks the signature.
        let tampered = signature.replace("serial:7", "serial:8");
        assert!(matches!(
            verified(&key, b"index", &tampered),
            Err(Refusal::ChangedOrStale { .. })
        ));
        // Sound, but claiming a time nobody can read: refused, not taken as undated.
        let unreadable = verified(
            &key,
            b"index",
            &key.sign_with_comment(b"index", "timestamp:today"),
        );
        assert!(
            matches!(&unreadable, Err(Refusal::Malformed { why, .. })
                if why.contains("claims `timestamp:today`, which is not a number of seconds")),
            "{unreadable:?}"
        );
        let restored = SecretKey::parse(&key.encode())
            .map(|k| k.public())
            .map_err(|e| e.to_string());
        assert_eq!(restored, Ok(key.public()));
        assert!(
            signature.starts_with(&format!(
                "untrusted comment: signature from modhost repo key {}\n",
                key.public().key_id()
            )),
            "{signature}"
        );
    }

    #[test]
    fn a_legacy_signature_is_refused_saying_how_to_sign_again() {
        let key = SecretKey::generate();
        // What `minisign -S -l` writes: the document itself signed, under `Ed`.
        let trusted = "timestamp:1700000000\tfile:index.json";
        let signature = key.key.sign(b"index").to_bytes();
        let global = key
            .key
            .sign(&[&signature[..], trusted.as_bytes()].concat())
            .to_bytes();
        let legacy = format!(
            "untrusted comment: legacy\n{}\ntrusted comment: {trusted}\n{}\n",
            STANDARD.encode([&b"Ed"[..], &key.id[..], &signature[..]].concat()),
            STANDARD.encode(global)
        );
        let refused = verified(&key, b"index", &legacy).map_err(|e| e.to_string());
        assert_eq!(
            refused.err().as_deref(),
            Some(
                "`https://h/index.json` has a legacy minisign signature (made with `minisign -S \
                 -l`), which is not accepted: re-sign it with `minisign -S` (without -l) or \
                 `modhost repo build --sign`"
            )
        );
    }

    #[test]
    fn a_free_text_comment_claims_nothing_and_still_verifies() {
        let key = SecretKey::generate();
        let signature = key.sign_with_comment(b"index", "signed by ACME\nreally");
        assert!(signature.contains("trusted comment: signed by ACME really\n"));
        let signed = verified(&key, b"index", &signature).map(|s| s.claims);
        assert_eq!(signed, Ok(Claims::default()));
    }

    /// A local FreePBX document `json` signed by `key`, as a source pinned to `pinned`.
    fn signed_freepbx(dir: &Path, json: &str, key: &SecretKey, pinned: &SecretKey) -> Source {
        let doc = dir.join("phonebook.json");
        let sig = dir.join(format!("phonebook.json{SIGNATURE_SUFFIX}"));
        assert!(
            std::fs::write(&doc, json).is_ok()
                && std::fs::write(&sig, key.sign(json.as_bytes(), &claims("phonebook.json")))
                    .is_ok()
        );
        Source {
            name: "pb".into(),
            kind: Kind::Freepbx,
            location: Location::Path(doc),
            public_keys: vec![pinned.public()],
            seen: Seen::default(),
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
            public_keys: Vec::new(),
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
            refused.as_ref().is_err_and(|e| e
                .to_string()
                .contains(&format!("is signed by key ID {}", other.public().key_id()))),
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

    #[test]
    fn a_key_file_not_made_yet_is_said_with_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("repo.key");
        let error = SecretKey::read(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            format!(
                "`{}`: does not exist: `modhost repo keygen --out FILE` makes a signing key \
                 (or `minisign -G -W`, one without a password)",
                missing.display()
            )
        );
    }

    #[test]
    fn a_binary_or_huge_file_is_refused_saying_which_key_is_expected() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let binary = dir.path().join("random.key");
        let huge = dir.path().join("huge.key");
        assert!(std::fs::write(&binary, [0xff_u8, 0xfe, 0x00, 0x9c, 0x80]).is_ok());
        assert!(std::fs::write(&huge, "A".repeat(100 * 1024)).is_ok());
        for (path, why) in [(&binary, "not text"), (&huge, "larger than 64 KiB")] {
            let error = SecretKey::read(path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains(why) && error.contains("modhost repo keygen"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_secret_key_minisign_made_without_a_password_signs_what_minisign_verifies() {
        use modhost_test_support::minisign;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let made = minisign(&["-G", "-W", "-p", "k.pub", "-s", "k.key"], dir.path());
        assert!(made.status.success(), "{made:?}");
        let text =
            std::fs::read_to_string(dir.path().join("k.key")).unwrap_or_else(|e| panic!("{e}"));
        let key = SecretKey::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let public =
            std::fs::read_to_string(dir.path().join("k.pub")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(public.lines().nth(1), Some(key.public().encode().as_str()));
        std::fs::write(dir.path().join("doc.json"), b"{}").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("doc.json.minisig"),
            key.sign(b"{}", &claims("doc.json")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let verified = minisign(&["-V", "-p", "k.pub", "-m", "doc.json"], dir.path());
        assert!(verified.status.success(), "{verified:?}");
        // One byte of the public half changed: the halves no longer match.
        let mut bytes = STANDARD
            .decode(text.lines().nth(1).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        bytes[100] ^= 1;
        let damaged = format!("untrusted comment: k\n{}\n", STANDARD.encode(&bytes));
        let error = SecretKey::parse(&damaged).err().unwrap_or_default();
        assert!(error.contains("does not match its secret half"), "{error}");
        // With a password, it is named as encrypted.
        bytes[100] ^= 1;
        bytes[2..4].copy_from_slice(b"Sc");
        let encrypted = format!("untrusted comment: k\n{}\n", STANDARD.encode(&bytes));
        let error = SecretKey::parse(&encrypted).err().unwrap_or_default();
        assert!(
            error.contains("encrypted with a password") && error.contains("minisign -G -W"),
            "{error}"
        );
    }

    #[test]
    fn pem_and_openssh_keys_are_named_for_what_they_are() {
        for text in [
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA user@host",
        ] {
            let error = SecretKey::parse(text).err().unwrap_or_default();
            assert!(
                error.starts_with("this is a PEM or OpenSSH key") && !error.contains("not base64"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_public_key_is_refused_as_one() {
        let key = SecretKey::generate();
        let public = key.public();
        // As `repo keygen` writes the .pub file, and its key line alone.
        let file = format!(
            "untrusted comment: modhost repository public key {}\n{}\n",
            public.key_id(),
            public.encode()
        );
        for text in [file, public.encode()] {
            let error = SecretKey::parse(&text).err().unwrap_or_default();
            assert!(
                error.starts_with(&format!(
                    "this is a public key (key ID {}, as a minisign .pub file holds it)",
                    public.key_id()
                )) && error.contains("signing takes the secret key made with it")
                    && !error.contains("encrypted"),
                "{error}"
            );
        }
    }
}
