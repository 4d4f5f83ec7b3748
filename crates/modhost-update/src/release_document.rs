//! A repository's release document, `release.json`: what apt's signed `Release` file and
//! TUF's timestamp and snapshot roles give. It names every other document the build
//! published (path, size, SHA-256), carries a serial that only grows, the build time and
//! a validity end, and may announce the publisher's next key. A client pinned to a key
//! reads it first: an older serial than one it accepted is a rollback, a release past
//! its validity end a freeze, and a document whose hash it does not name was mixed in
//! from elsewhere.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::trust::Refusal;

/// The release document's path, at the repository's root.
pub const RELEASE_DOCUMENT: &str = "release.json";

/// The format tag every release document carries.
pub const RELEASE_FORMAT: &str = "modhost-release/1";

/// The largest release serial: what clients keep of the last one accepted is a signed
/// 64-bit number.
pub const MAX_SERIAL: u64 = i64::MAX as u64;

/// The longest a release may be valid, in seconds from its build: 366 days. Expiry is
/// what stops a mirror or an attacker serving an old signed repository for ever, so a
/// release claiming longer (built so by mistake, or signed with a stolen key) is refused.
pub const MAX_VALIDITY: u64 = 366 * 24 * 3600;

/// `release.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDocument {
    /// Always [`RELEASE_FORMAT`].
    pub format: String,
    /// Grows with every build: a client refuses one lower than it accepted.
    pub serial: u64,
    /// When it was built, in seconds since the epoch.
    pub built: u64,
    /// The end of its validity, in seconds since the epoch: a client refuses it after.
    pub valid_until: u64,
    /// Every other document the build published, by path.
    pub documents: Vec<Document>,
    /// The publisher's next key (a minisign public key's base64 line), announced under
    /// the signature of the current one: clients pin it beside the current key, and drop
    /// the current one once a release signed by the next arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_key: Option<String>,
}

/// One document a release names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Its path from the repository's root, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

impl Document {
    /// The entry for `bytes`, published at `path`.
    pub fn of(path: &str, bytes: &[u8]) -> Document {
        Document {
            path: path.to_owned(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// Its size and hash, as a message shows them.
    fn shown(&self) -> String {
        format!("{} bytes with SHA-256 {}", self.size, self.sha256)
    }
}

impl ReleaseDocument {
    /// Parses and checks a release document: its format, its next key, and that every
    /// document named has a relative path and a SHA-256.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let release: ReleaseDocument =
            serde_json::from_slice(bytes).map_err(|e| format!("not a release document: {e}"))?;
        if release.format != RELEASE_FORMAT {
            return Err(format!(
                "the format is `{}`, expected `{RELEASE_FORMAT}`",
                release.format
            ));
        }
        if release.serial > MAX_SERIAL {
            return Err(format!(
                "its serial {} is above {MAX_SERIAL}, the largest serial a client keeps",
                release.serial
            ));
        }
        if let Some(next) = &release.next_key {
            crate::PublicKey::parse(next).map_err(|e| format!("its `next_key`: {e}"))?;
        }
        let valid_for = release.valid_until.saturating_sub(release.built);
        if valid_for > MAX_VALIDITY {
            return Err(format!(
                "it is valid for {} days from its build, longer than the {} a release may be",
                valid_for / 86_400,
                MAX_VALIDITY / 86_400
            ));
        }
        for (index, document) in release.documents.iter().enumerate() {
            if release.documents[..index]
                .iter()
                .any(|earlier| earlier.path == document.path)
            {
                return Err(format!("it names `{}` twice", document.path));
            }
            let relative = !document.path.is_empty()
                && !document.path.starts_with('/')
                && document
                    .path
                    .split('/')
                    .all(|part| !matches!(part, "" | "." | ".."));
            let hashed = document.sha256.len() == 64
                && document.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !relative || !hashed {
                return Err(format!("its entry for `{}` is invalid", document.path));
            }
        }
        Ok(release)
    }

    /// Checks that `bytes`, read as the document `path` at `location`, is the one this
    /// release names.
    pub fn check(&self, path: &str, location: &str, bytes: &[u8]) -> Result<(), Refusal> {
        let found = Document::of(path, bytes);
        let named = self.documents.iter().find(|d| d.path == path);
        if named == Some(&found) {
            return Ok(());
        }
        Err(Refusal::MixAndMatch {
            document: location.to_owned(),
            serial: self.serial,
            found: found.shown(),
            named: named.map(Document::shown),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(documents: Vec<Document>) -> ReleaseDocument {
        ReleaseDocument {
            format: RELEASE_FORMAT.into(),
            serial: 7,
            built: 1,
            valid_until: 2,
            documents,
            next_key: None,
        }
    }

    #[test]
    fn a_document_must_be_the_one_the_release_names() {
        let release = release(vec![Document::of("index.json", b"{}")]);
        assert!(
            release
                .check("index.json", "https://h/index.json", b"{}")
                .is_ok()
        );
        let mixed = release.check("index.json", "https://h/index.json", b"{ }");
        assert!(
            mixed.as_ref().is_err_and(|e| e
                .to_string()
                .contains("is not the document release serial 7 names (3 bytes with SHA-256")),
            "{mixed:?}"
        );
        let unnamed = release.check("freepbx/core.json", "f", b"{}");
        assert!(
            unnamed
                .as_ref()
                .is_err_and(|e| e.to_string().contains("the release does not name it")),
            "{unnamed:?}"
        );
    }

    #[test]
    fn a_release_naming_paths_outside_the_repository_is_refused() {
        for path in ["/etc/passwd", "../x", "a//b", "a/./b", ""] {
            let mut doc = Document::of("x", b"");
            doc.path = path.into();
            let text = serde_json::to_vec(&release(vec![doc])).unwrap_or_default();
            assert!(ReleaseDocument::parse(&text).is_err(), "{path:?}");
        }
        let text = serde_json::to_vec(&release(vec![Document::of("a2/core/modsource.json", b"")]))
            .unwrap_or_default();
        assert!(ReleaseDocument::parse(&text).is_ok());
        assert!(ReleaseDocument::parse(b"{\"format\":\"other\"}").is_err());
    }

    #[test]
    fn a_release_naming_a_document_twice_or_valid_past_a_year_is_refused() {
        let twice = release(vec![
            Document::of("index.json", b"{}"),
            Document::of("index.json", b""),
        ]);
        let text = serde_json::to_vec(&twice).unwrap_or_default();
        let said = ReleaseDocument::parse(&text);
        assert_eq!(said, Err("it names `index.json` twice".to_owned()));
        let mut lasting = release(vec![Document::of("index.json", b"{}")]);
        lasting.valid_until = lasting.built + MAX_VALIDITY;
        let text = serde_json::to_vec(&lasting).unwrap_or_default();
        assert!(ReleaseDocument::parse(&text).is_ok());
        lasting.valid_until = lasting.built + 100 * 365 * 86_400;
        let text = serde_json::to_vec(&lasting).unwrap_or_default();
        let said = ReleaseDocument::parse(&text);
        assert_eq!(
            said,
            Err(
                "it is valid for 36500 days from its build, longer than the 366 a release may be"
                    .to_owned()
            )
        );
    }
}
