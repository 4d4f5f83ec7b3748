//! FreePBX's `<updateurl>` channel (seed 000): one HTTPS JSON document describing a
//! module's newest release.

use serde::Deserialize;

use crate::release::{Digests, Release};
use crate::{Location, valid_release};

/// The fields of the JSON modhost reads; the rest (depends, changelog, …) is informative —
/// the package's own module.xml governs the install.
#[derive(Debug, Deserialize)]
struct Description {
    rawname: String,
    name: Option<String>,
    version: String,
    location: String,
    md5sum: Option<String>,
    sha1sum: Option<String>,
    sha256: Option<String>,
    supported: Option<Supported>,
}

/// `supported`: the least host application version the release supports.
#[derive(Debug, Deserialize)]
struct Supported {
    version: Option<serde_json::Value>,
}

/// Reads the document at `doc`: the release it describes, its `location` resolved (it must
/// be HTTPS) and its checksums.
pub(crate) fn parse(bytes: &[u8], doc: &Location) -> Result<Release, String> {
    let d: Description = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a FreePBX module description: {e}"))?;
    valid_release(&d.rawname, &d.version)?;
    let mut digests = Digests::default();
    for (algorithm, value) in [
        ("md5", &d.md5sum),
        ("sha1", &d.sha1sum),
        ("sha256", &d.sha256),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            digests.set(algorithm, value)?;
        }
    }
    let location = doc
        .resolve(&d.location)
        .map_err(|e| format!("`location`: {e}"))?;
    // FreePBX writes it as a string ("13.0"), some servers as a number (13.0).
    let supported = match d.supported.and_then(|s| s.version) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => None,
        Some(serde_json::Value::String(text)) => Some(text.trim().to_owned()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        Some(other) => return Err(format!("`supported.version` {other} is not a version")),
    };
    if let Some(version) = &supported {
        modhost_manifest::Version::parse(version)
            .map_err(|e| format!("`supported.version` `{version}`: {e}"))?;
    }
    Ok(Release {
        name: d.name.unwrap_or_else(|| d.rawname.clone()),
        rawname: d.rawname,
        version: d.version,
        location,
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
}
