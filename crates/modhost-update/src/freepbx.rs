//! FreePBX's `<updateurl>` channel (seed 000): one HTTPS JSON document describing a
//! module's newest release.

use serde_json::Value;

use crate::json::{kind, text};
use crate::release::valid_release;
use crate::release::{Digests, Release};
use crate::{Location, json};

/// Reads the document at `doc`: the release it describes, its `location` resolved (it must
/// be HTTPS) and its checksums. Only the fields modhost reads are checked — the rest
/// (depends, changelog, …) is informative: the package's own module.xml governs the
/// install — and they are taken as PHP's `json_encode` writes them: a byte-order mark
/// before the document, a version as a number (`16.0`), an empty `supported` as `[]`.
pub(crate) fn parse(bytes: &[u8], doc: &Location) -> Result<Release, String> {
    if json::first_byte(bytes) == Some(b'<') && !crate::signature::is_web_page(bytes) {
        return Err(
            "not a FreePBX module description: it is XML, not JSON (Joomla update \
                    XML is read by a source of kind `joomla`)"
                .to_owned(),
        );
    }
    let d = json::object(bytes).map_err(|e| format!("not a FreePBX module description: {e}"))?;
    let rawname = json::required(&d, "rawname")?;
    let version = json::required(&d, "version")?;
    valid_release(&rawname, &version)?;
    let mut digests = Digests::default();
    for (algorithm, field) in [("md5", "md5sum"), ("sha1", "sha1sum"), ("sha256", "sha256")] {
        let Some(value) = text(&d, field)?.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        // As module.xml's: FreePBX writes placeholders (`compatibility` in every firewall
        // 16 and 17 release) where it has no legacy checksum. One that is not hexadecimal
        // at all is taken as absent; hexadecimal of the wrong length is a damaged checksum.
        if field != "sha256" && !value.trim().bytes().all(|b| b.is_ascii_hexdigit()) {
            tracing::warn!(
                document = %doc,
                "`{field}` `{}` is not a checksum; it is taken as absent (FreePBX writes such \
                 placeholders)",
                crate::messages::clipped(&value).escape_debug()
            );
            continue;
        }
        digests.set(algorithm, &value)?;
    }
    let location = json::required_string(&d, "location")?;
    let location = doc
        .resolve(&location)
        .map_err(|e| format!("`location`: {e}"))?;
    let supported = match d.get("supported") {
        None | Some(Value::Null) => None,
        // PHP writes an empty array as `[]`, whatever it stands for.
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Object(supported)) => text(supported, "version")
            .map_err(|e| format!("`supported.{}", e.trim_start_matches('`')))?
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_owned()),
        Some(other) => {
            return Err(format!(
                "`supported`: expected an object with a `version`, found {}",
                kind(other)
            ));
        }
    };
    if let Some(version) = &supported {
        modhost_manifest::Version::parse(version)
            .map_err(|e| format!("`supported.version` `{version}`: {e}"))?;
    }
    Ok(Release {
        name: text(&d, "name")?.unwrap_or_else(|| rawname.clone()),
        rawname,
        version,
        location,
        document: Some(doc.clone()),
        size: None,
        digests,
        gated: false,
        supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Location {
        Location::Url("https://pbx.example/modules/module.json".into())
    }

    #[test]
    fn a_web_page_in_a_documents_place_is_named_as_one() {
        let page = b"<!DOCTYPE html><html><body>Down for maintenance</body></html>";
        let said = parse(page, &doc()).map(|_| ()).map_err(|e| e.to_string());
        assert!(
            said.as_ref()
                .is_err_and(|e| e.contains("an HTML page (61 bytes), not JSON")),
            "{said:?}"
        );
    }

    #[test]
    fn the_seed_document_reads_with_its_md5() {
        let seed = br#"{ "rawname": "module", "repo": "local", "name": "Module", "version": "2.3",
            "publisher": "Publisher", "license": "GPLv3+", "category": "Admin",
            "depends": { "version": "13.0", "phpversion": "5.6" }, "supported": { "version": "13.0" },
            "location": "https://download.example.com/modules/module-2.3.tgz",
            "md5sum": "55278ae5d4ab4aa7a7047076d07305b2", "packaged": "1486679131" }"#;
        let release = parse(seed, &doc()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(release.version, "2.3");
        assert_eq!(
            release.digests.md5.as_deref(),
            Some("55278ae5d4ab4aa7a7047076d07305b2")
        );
        assert_eq!(release.supported.as_deref(), Some("13.0"));
        assert_eq!(
            release.weak_checksum_warning().as_deref(),
            Some(
                "only an MD5 checksum vouches for this package; ask its publisher for sha256 \
                 or a signature"
            )
        );
        assert_eq!(
            release.location,
            Location::Url("https://download.example.com/modules/module-2.3.tgz".into())
        );
    }

    #[test]
    fn plain_http_locations_and_bad_fields_are_refused() {
        let with = |location: &str, version: &str, md5: &str| {
            format!(
                r#"{{"rawname":"module","version":"{version}","location":"{location}","md5sum":"{md5}"}}"#
            )
        };
        let good_md5 = "55278ae5d4ab4aa7a7047076d07305b2";
        assert!(parse(with("m.tgz", "2.3", good_md5).as_bytes(), &doc()).is_ok());
        let err = parse(with("http://x/m.tgz", "2.3", good_md5).as_bytes(), &doc());
        assert!(err.is_err_and(|e| e.contains("plain HTTP")));
        assert!(parse(with("m.tgz", "two", good_md5).as_bytes(), &doc()).is_err());
        assert!(parse(with("m.tgz", "2.3", "abc").as_bytes(), &doc()).is_err());
        let supported = |version: &str| {
            let text = with("m.tgz", "2.3", good_md5)
                .replace('}', &format!(r#","supported":{{"version":{version}}}}}"#));
            parse(text.as_bytes(), &doc()).map(|r| r.supported)
        };
        assert_eq!(supported("\"16.0\""), Ok(Some("16.0".into())));
        assert_eq!(supported("17.0"), Ok(Some("17.0".into())));
        assert_eq!(supported("\"\""), Ok(None));
        assert!(supported("\"sixteen\"").is_err());
        assert!(supported("[16]").is_err());
        assert!(parse(b"<html>", &doc()).is_err());
    }

    #[test]
    fn a_document_as_phps_json_encode_writes_it_is_read() {
        let php = "\u{feff}{\"rawname\":\"core\",\"name\":\"Core\",\"version\":16.0,\
            \"supported\":[],\"depends\":{\"version\":null},\
            \"location\":\"core-16.0.tgz\",\"sha256\":\""
            .to_owned()
            + &"a".repeat(64)
            + "\"}";
        let release = parse(php.as_bytes(), &doc()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (release.version.as_str(), release.supported),
            ("16.0", None)
        );
        assert_eq!(
            release.location,
            Location::Url("https://pbx.example/modules/core-16.0.tgz".into())
        );
        // Every field PHP never set comes as an empty array: absent, as it is meant.
        let unset = php.replacen(
            "\"supported\":[]",
            "\"supported\":[],\"md5sum\":[],\"sha1sum\":{},\"size\":[]",
            1,
        );
        let release = parse(unset.as_bytes(), &doc()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((release.digests.md5, release.digests.sha1), (None, None));
        // A field that holds something that is not text is still refused, by name.
        let listed = php.replacen("\"supported\":[]", "\"supported\":[],\"md5sum\":[\"x\"]", 1);
        assert_eq!(
            parse(listed.as_bytes(), &doc()).err(),
            Some("`md5sum`: expected a string, found an array".to_owned())
        );
    }

    #[test]
    fn a_placeholder_for_a_legacy_checksum_is_taken_as_absent_but_never_for_sha256() {
        let sha256 = "b".repeat(64);
        let document = |md5: &str, sha256: &str| {
            format!(
                r#"{{"rawname":"firewall","version":"16.0.1","location":"f.tgz","md5sum":"{md5}","sha1sum":"x","sha256":"{sha256}"}}"#
            )
        };
        let release = parse(document("compatibility", &sha256).as_bytes(), &doc())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(release.digests.md5, None);
        assert_eq!(release.digests.sha1, None);
        assert_eq!(release.digests.sha256.as_deref(), Some(sha256.as_str()));
        assert_eq!(
            parse(
                document("compatibility", "compatibility").as_bytes(),
                &doc()
            )
            .err(),
            Some("the sha256 checksum `compatibility` is malformed".to_owned())
        );
        // Hexadecimal of the wrong length is damaged, not a placeholder.
        assert!(parse(document("abc123", &sha256).as_bytes(), &doc()).is_err());
    }

    #[test]
    fn a_refused_field_is_named() {
        for (document, expected) in [
            (
                r#"{"rawname":["core"],"version":"1.0","location":"x"}"#,
                "`rawname`: expected a string, found an array",
            ),
            (
                r#"{"rawname":"core","version":"1.0","location":"x","supported":"16"}"#,
                "`supported`: expected an object with a `version`, found a string",
            ),
            (
                r#"{"rawname":"core","version":"1.0","location":"x","supported":{"version":true}}"#,
                "`supported.version`: expected a string, found a boolean",
            ),
            (
                r#"{"rawname":"core","location":"x"}"#,
                "`version` is missing",
            ),
            (
                r#"{"rawname":"core","version":"1.0","location":5}"#,
                "`location`: expected a string, found a number",
            ),
            (
                r#"[1]"#,
                "not a FreePBX module description: an array, not an object",
            ),
            // Another kind's document, said as that kind's.
            (
                "\u{feff}\n<?xml version=\"1.0\"?><updates></updates>",
                "not a FreePBX module description: it is XML, not JSON (Joomla update XML is \
                 read by a source of kind `joomla`)",
            ),
        ] {
            assert_eq!(
                parse(document.as_bytes(), &doc()).err().as_deref(),
                Some(expected)
            );
        }
    }
}
