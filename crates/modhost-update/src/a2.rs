//! a2-style sources (seed 002): `update_url/modsource.json` names the current version, and
//! the package is `update_url/<version>.<format>` (`tgz` unless the index says `zip`).

use serde::{Deserialize, Serialize};

use crate::release::valid_release;
use crate::release::{Digests, Release};
use crate::{Location, json};

/// The index file's name under a source's `update_url`.
pub const INDEX: &str = "modsource.json";

/// The name a2 itself gives the index file, read where there is no [`INDEX`].
pub const A2_INDEX: &str = "a2modsource.json";

/// `modsource.json` (or a2's own `a2modsource.json`). Beside a2's fields it carries the
/// package's SHA-256: without it the package is offered as unverifiable, and modhost
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
    /// The package's SHA-256, hex; empty when the index gives none, which leaves the
    /// package unverifiable: offered, never downloaded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

/// Reads the index at `doc` and the release it points to. Its fields are read as PHP
/// writes them (a version as a number, a size as text, a byte-order mark before it).
pub(crate) fn parse(bytes: &[u8], doc: &Location) -> Result<Release, String> {
    let not_ours = |e: String| format!("not an a2 {INDEX}: {e}");
    let fields = json::object(bytes).map_err(not_ours)?;
    let source = ModSource {
        rawname: json::required(&fields, "rawname").map_err(not_ours)?,
        name: json::text(&fields, "name").map_err(not_ours)?,
        version: json::required(&fields, "version").map_err(not_ours)?,
        format: json::text(&fields, "format").map_err(not_ours)?,
        size: json::bytes(&fields, "size").map_err(not_ours)?,
        sha256: json::text(&fields, "sha256")
            .map_err(not_ours)?
            .unwrap_or_default(),
    };
    valid_release(&source.rawname, &source.version)?;
    let extension = match source.format.as_deref() {
        None | Some("tgz") => "tgz",
        Some("zip") => "zip",
        Some(other) => return Err(format!("unknown package format `{other}` (tgz or zip)")),
    };
    let mut digests = Digests::default();
    if !source.sha256.is_empty() {
        digests.set("sha256", &source.sha256)?;
    }
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
    fn the_payload_sits_beside_the_index_and_is_unverifiable_without_a_checksum() {
        let doc = Location::Url("https://h/a2/phonebook/modsource.json".into());
        let sha = "a".repeat(64);
        let text = format!(r#"{{"rawname":"phonebook","version":"2.0.0","sha256":"{sha}"}}"#);
        let release = parse(text.as_bytes(), &doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            release.location,
            Location::Url("https://h/a2/phonebook/2.0.0.tgz".into())
        );
        // Offered, with nothing to verify it by: never downloaded.
        for unsummed in [
            &br#"{"rawname":"phonebook","version":"2.0.0"}"#[..],
            br#"{"rawname":"phonebook","version":"2.0.0","sha256":""}"#,
        ] {
            let release = parse(unsummed, &doc);
            assert!(
                release.as_ref().is_ok_and(|r| r.digests.is_empty()),
                "{release:?}"
            );
        }
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

    #[test]
    fn a_document_as_php_writes_it_is_read_and_a_bad_field_named() {
        let doc = Location::Url("https://h/a2/phonebook/modsource.json".into());
        let sha = "a".repeat(64);
        let php = format!(
            "\u{feff}{{\"rawname\":\"phonebook\",\"version\":2.1,\"size\":\"59787\",\"sha256\":\"{sha}\"}}"
        );
        let release = parse(php.as_bytes(), &doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (release.version.as_str(), release.size),
            ("2.1", Some(59787))
        );
        let bad =
            format!(r#"{{"rawname":"phonebook","version":"2.1","size":[1],"sha256":"{sha}"}}"#);
        assert_eq!(
            parse(bad.as_bytes(), &doc).err().as_deref(),
            Some("not an a2 modsource.json: `size`: expected a number of bytes, found an array")
        );
    }
}
