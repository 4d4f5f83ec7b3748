//! a2-style sources (seed 002): `update_url/modsource.json` names the current version, and
//! the package is `update_url/<version>.<format>` (`tgz` unless the index says `zip`).

use serde::{Deserialize, Serialize};

use crate::release::{Digests, Release};
use crate::{Location, valid_release};

/// The index file's name under a source's `update_url`.
pub const INDEX: &str = "modsource.json";

/// `modsource.json`. Unlike a2's own file it must carry the package's SHA-256: modhost
/// installs nothing it cannot verify.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModSource {
    /// The module.
    pub rawname: String,
    /// Its display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The current version: the package is `<version>.<format>` beside this file.
    pub version: String,
    /// The package's format, `tgz` (the default) or `zip`: its file's extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The package's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The package's SHA-256, hex.
    pub sha256: String,
}

/// Reads the index at `doc` and the release it points to.
pub(crate) fn parse(bytes: &[u8], doc: &Location) -> Result<Release, String> {
    let source: ModSource =
        serde_json::from_slice(bytes).map_err(|e| format!("not an a2 {INDEX}: {e}"))?;
    valid_release(&source.rawname, &source.version)?;
    let extension = match source.format.as_deref() {
        None | Some("tgz") => "tgz",
        Some("zip") => "zip",
        Some(other) => return Err(format!("unknown package format `{other}` (tgz or zip)")),
    };
    let mut digests = Digests::default();
    digests.set("sha256", &source.sha256)?;
    Ok(Release {
        location: doc
            .resolve(&format!("{}.{extension}", source.version))
            .map_err(|e| e.to_string())?,
        name: source.name.unwrap_or_else(|| source.rawname.clone()),
        rawname: source.rawname,
        version: source.version,
        document: Some(doc.clone()),
        size: source.size,
        digests,
        gated: false,
        supported: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_sits_beside_the_index_and_needs_a_checksum() {
        let doc = Location::Url("https://h/a2/phonebook/modsource.json".into());
        let sha = "a".repeat(64);
        let text = format!(r#"{{"rawname":"phonebook","version":"2.0.0","sha256":"{sha}"}}"#);
        let release = parse(text.as_bytes(), &doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            release.location,
            Location::Url("https://h/a2/phonebook/2.0.0.tgz".into())
        );
        assert!(parse(br#"{"rawname":"phonebook","version":"2.0.0"}"#, &doc).is_err());
        let traversal =
            format!(r#"{{"rawname":"phonebook","version":"../../x","sha256":"{sha}"}}"#);
        assert!(parse(traversal.as_bytes(), &doc).is_err());
    }

    #[test]
    fn a_zip_payload_is_named_by_its_format() {
        let doc = Location::Url("https://h/a2/phonebook/modsource.json".into());
        let sha = "a".repeat(64);
        let with = |format: &str| {
            let text = format!(
                r#"{{"rawname":"phonebook","version":"2.0.0","format":"{format}","sha256":"{sha}"}}"#
            );
            parse(text.as_bytes(), &doc).map(|r| r.location)
        };
        assert_eq!(
            with("zip"),
            Ok(Location::Url("https://h/a2/phonebook/2.0.0.zip".into()))
        );
        assert_eq!(
            with("tgz"),
            Ok(Location::Url("https://h/a2/phonebook/2.0.0.tgz".into()))
        );
        assert!(with("rar").is_err_and(|e| e.contains("unknown package format `rar`")));
    }
}
