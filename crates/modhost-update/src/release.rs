//! What every channel boils down to: a release of one module, and the checksums that
//! verify its package.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::Location;

/// One module version a channel offers, with what is needed to fetch and verify it.
#[derive(Debug, Clone)]
pub struct Release {
    /// The module.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The version offered.
    pub version: String,
    /// Where the package is.
    pub location: Location,
    /// The document that published it (a modhost index, an a2 `modsource.json`, a FreePBX
    /// or Joomla document), which messages about the release name; `None` for a package
    /// named directly.
    pub document: Option<Location>,
    /// The package's size, when the channel states it.
    pub size: Option<u64>,
    /// The package's checksums; at least one must be there for a download.
    pub digests: Digests,
    /// Whether a download needs a licence key.
    pub gated: bool,
    /// The least host application version the release supports (FreePBX
    /// `supported.version`), when the channel states one.
    pub supported: Option<String>,
}

impl Release {
    /// The warning an administrator gets about this release's package (naming neither
    /// module nor version: where it is shown says which) when only legacy checksums (MD5,
    /// SHA-1) vouch for it: FreePBX servers publish nothing stronger, so
    /// such a package is accepted, but a collision-prone checksum is not much of a promise.
    pub fn weak_checksum_warning(&self) -> Option<String> {
        let d = &self.digests;
        if d.has_sha2() {
            return None;
        }
        let only = match (&d.md5, &d.sha1) {
            (Some(_), Some(_)) => "only MD5 and SHA-1 checksums vouch",
            (Some(_), None) => "only an MD5 checksum vouches",
            (None, Some(_)) => "only a SHA-1 checksum vouches",
            (None, None) => return None,
        };
        Some(format!(
            "{only} for this package; ask its publisher for sha256 or a signature"
        ))
    }
}

/// The checksums a channel publishes for a package, lower-case hex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256: modhost's own channels always carry it.
    pub sha256: Option<String>,
    /// SHA-384 (Joomla).
    pub sha384: Option<String>,
    /// SHA-512 (Joomla).
    pub sha512: Option<String>,
    /// SHA-1 (legacy FreePBX `sha1sum`).
    pub sha1: Option<String>,
    /// MD5 (FreePBX `md5sum`): a legacy extra, checked whenever present.
    pub md5: Option<String>,
    /// Given by the administrator (`download URL` with its SHA-256), not published by a
    /// channel: said so when a package does not match.
    pub given: bool,
}

impl Digests {
    /// Sets the digest of `algorithm` from a published value, refusing one that is not
    /// hex of the algorithm's length.
    pub fn set(&mut self, algorithm: &str, value: &str) -> Result<(), String> {
        let value = value.trim().to_ascii_lowercase();
        let (slot, len) = match algorithm {
            "sha256" => (&mut self.sha256, 64),
            "sha384" => (&mut self.sha384, 96),
            "sha512" => (&mut self.sha512, 128),
            "sha1" => (&mut self.sha1, 40),
            "md5" => (&mut self.md5, 32),
            other => return Err(format!("unknown checksum `{other}`")),
        };
        if value.len() != len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("the {algorithm} checksum `{value}` is malformed"));
        }
        *slot = Some(value);
        Ok(())
    }

    /// Whether no checksum is known: such a package is never downloaded.
    pub fn is_empty(&self) -> bool {
        *self == Digests::default()
    }

    /// Whether a SHA-2 checksum (SHA-256, -384 or -512) is known: MD5 and SHA-1 alone
    /// do not resist a publisher's server being made to serve a colliding package.
    pub fn has_sha2(&self) -> bool {
        self.sha256.is_some() || self.sha384.is_some() || self.sha512.is_some()
    }

    /// Checks every known checksum against `bytes`; the first mismatch is the error.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), String> {
        self.verify_reader(bytes)
            .unwrap_or_else(|e| Err(format!("cannot be read: {e}")))
    }

    /// [`Digests::verify`] of what `reader` reads, hashed as it is read (a package of
    /// hundreds of megabytes is never held in memory); the outer error is the reader's.
    pub fn verify_reader(
        &self,
        mut reader: impl std::io::Read,
    ) -> std::io::Result<Result<(), String>> {
        let mut sha256 = self.sha256.as_ref().map(|_| Sha256::new());
        let mut sha384 = self.sha384.as_ref().map(|_| Sha384::new());
        let mut sha512 = self.sha512.as_ref().map(|_| Sha512::new());
        let mut sha1 = self.sha1.as_ref().map(|_| Sha1::new());
        let mut md5 = self.md5.as_ref().map(|_| Md5::new());
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = reader.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            let bytes = &chunk[..n];
            sha256.iter_mut().for_each(|h| h.update(bytes));
            sha384.iter_mut().for_each(|h| h.update(bytes));
            sha512.iter_mut().for_each(|h| h.update(bytes));
            sha1.iter_mut().for_each(|h| h.update(bytes));
            md5.iter_mut().for_each(|h| h.update(bytes));
        }
        let checks = [
            (
                "SHA-256",
                &self.sha256,
                sha256.map(|h| hex::encode(h.finalize())),
            ),
            (
                "SHA-384",
                &self.sha384,
                sha384.map(|h| hex::encode(h.finalize())),
            ),
            (
                "SHA-512",
                &self.sha512,
                sha512.map(|h| hex::encode(h.finalize())),
            ),
            ("SHA-1", &self.sha1, sha1.map(|h| hex::encode(h.finalize()))),
            ("MD5", &self.md5, md5.map(|h| hex::encode(h.finalize()))),
        ];
        for (name, expected, actual) in checks {
            if let (Some(expected), Some(actual)) = (expected, actual)
                && &actual != expected
            {
                let whose = match self.given {
                    true => "given",
                    false => "published",
                };
                return Ok(Err(format!(
                    "{name} {actual} does not match the {whose} {expected}"
                )));
            }
        }
        Ok(Ok(()))
    }
}

/// How stable a release must be to be offered, Joomla's scale: `dev < alpha < beta < rc <
/// stable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stability {
    /// Development snapshots.
    Dev,
    /// Alpha releases.
    Alpha,
    /// Beta releases.
    Beta,
    /// Release candidates.
    Rc,
    /// Stable releases: the default.
    #[default]
    Stable,
}

impl Stability {
    /// A Joomla `<tag>`; unknown tags are `None`.
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" => Some(Stability::Dev),
            "alpha" => Some(Stability::Alpha),
            "beta" => Some(Stability::Beta),
            "rc" => Some(Stability::Rc),
            "stable" => Some(Stability::Stable),
            _ => None,
        }
    }

    /// The stability a version's pre-release word implies (`2.0beta1` is beta); versions
    /// without one, or with a post-release word (`pl`, `p`), are stable.
    pub fn of_version(version: &str) -> Self {
        let word: String = version
            .to_ascii_lowercase()
            .chars()
            .skip_while(|c| !c.is_ascii_alphabetic())
            .take_while(char::is_ascii_alphabetic)
            .collect();
        match word.as_str() {
            "" | "pl" | "p" => Stability::Stable,
            "rc" => Stability::Rc,
            "beta" | "b" => Stability::Beta,
            "alpha" | "a" => Stability::Alpha,
            _ => Stability::Dev,
        }
    }

    /// The tag Joomla uses.
    pub fn tag(self) -> &'static str {
        match self {
            Stability::Dev => "dev",
            Stability::Alpha => "alpha",
            Stability::Beta => "beta",
            Stability::Rc => "rc",
            Stability::Stable => "stable",
        }
    }
}

/// An update a channel offers that modhost sets aside, and why: shown to the
/// administrator, never installed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetAside {
    /// The module.
    pub rawname: String,
    /// The version offered.
    pub version: String,
    /// Why it is set aside, in words.
    pub reason: String,
}

/// What the host is, for Joomla's `<targetplatform>` and stability choice.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The host application's name, matched case-insensitively against
    /// `<targetplatform name>`.
    pub platform: String,
    /// Its version, matched by the server's `version` pattern (`""` when unknown).
    pub version: String,
    /// The least stable release to offer.
    pub stability: Stability,
    /// The PHP version the host declares, checked against Joomla's `<php_minimum>`
    /// (`None`: not declared, and not checked).
    pub php: Option<modhost_manifest::Version>,
}

/// Checks a release's rawname and version grammar: what keeps a server's answer from
/// naming files or versions modhost cannot handle.
pub(crate) fn valid_release(rawname: &str, version: &str) -> std::result::Result<(), String> {
    if !modhost_manifest::is_valid_rawname(rawname) {
        return Err(format!(
            "`{}` is not a valid module rawname",
            crate::messages::clipped(rawname)
        ));
    }
    modhost_manifest::Version::parse(version)
        .map(|_| ())
        .map_err(|e| format!("`{rawname}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_checksum_is_checked() {
        let mut digests = Digests::default();
        assert!(digests.is_empty());
        assert!(
            digests
                .set("md5", "5d41402abc4b2a76b9719d911017c592")
                .is_ok()
        );
        assert!(digests.verify(b"hello").is_ok());
        assert!(digests.verify(b"hellO").is_err());
        assert!(
            digests
                .set("sha256", &hex::encode(Sha256::digest(b"other")))
                .is_ok()
        );
        let err = digests.verify(b"hello").err().unwrap_or_default();
        assert!(err.contains("SHA-256"), "{err}");
        assert!(digests.set("sha1", "xyz").is_err());
        assert!(digests.set("crc32", "00000000").is_err());
    }

    #[test]
    fn only_legacy_checksums_get_a_warning() {
        let mut release = Release {
            rawname: "pb".into(),
            name: "pb".into(),
            version: "2.0".into(),
            location: Location::Url("https://h/pb.tgz".into()),
            document: None,
            size: None,
            digests: Digests::default(),
            gated: false,
            supported: None,
        };
        assert_eq!(
            release.weak_checksum_warning(),
            None,
            "no checksum: refused, not warned"
        );
        let set = |release: &mut Release, algorithm: &str, bytes: &[u8]| {
            let value = match algorithm {
                "md5" => hex::encode(Md5::digest(bytes)),
                "sha1" => hex::encode(Sha1::digest(bytes)),
                _ => hex::encode(Sha256::digest(bytes)),
            };
            assert!(release.digests.set(algorithm, &value).is_ok());
        };
        set(&mut release, "sha1", b"x");
        let warning = release.weak_checksum_warning().unwrap_or_default();
        assert!(
            warning.starts_with("only a SHA-1 checksum vouches"),
            "{warning}"
        );
        set(&mut release, "md5", b"x");
        let warning = release.weak_checksum_warning().unwrap_or_default();
        assert!(
            warning.starts_with("only MD5 and SHA-1 checksums vouch"),
            "{warning}"
        );
        // A SHA-1 that does not match is refused like any other checksum.
        set(&mut release, "sha1", b"y");
        let err = release.digests.verify(b"x").err().unwrap_or_default();
        assert!(err.starts_with("SHA-1 "), "{err}");
        set(&mut release, "sha256", b"x");
        assert_eq!(release.weak_checksum_warning(), None);
    }

    #[test]
    fn stability_follows_joomla_order() {
        assert!(Stability::Dev < Stability::Alpha);
        assert!(Stability::Rc < Stability::Stable);
        assert_eq!(Stability::from_tag(" Stable "), Some(Stability::Stable));
        assert_eq!(Stability::from_tag("nightly"), None);
        for (version, stability) in [
            ("2.0.0", Stability::Stable),
            ("2.0.0beta1", Stability::Beta),
            ("2.0b1", Stability::Beta),
            ("2.0.0RC2", Stability::Rc),
            ("2.11.0alpha0", Stability::Alpha),
            ("1.0pl1", Stability::Stable),
            ("1.0dev3", Stability::Dev),
        ] {
            assert_eq!(Stability::of_version(version), stability, "{version}");
            assert_eq!(Stability::from_tag(stability.tag()), Some(stability));
        }
    }
}
