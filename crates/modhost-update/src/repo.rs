//! Publishing: the static files of a repository, and licence keys for package groups.

use std::collections::BTreeMap;
use std::path::Path;

use hmac::{Hmac, Mac};
use modhost_manifest::{Manifest, Version};
use quick_xml::escape::escape;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::index::{Entry, FORMAT, Index, SecretKey};
use crate::{Error, Result, file_error, hex};

/// `groups.toml` beside the packages: licence-gated package groups (jBackend-style).
///
/// ```toml
/// [groups.pro]
/// secret = "a long random string only the publisher knows"
/// modules = ["phonebook"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    /// The groups, by name.
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
}

/// One licence group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The secret licence keys are derived from; never published.
    pub secret: String,
    /// The modules whose packages need a key.
    pub modules: Vec<String>,
}

impl Groups {
    /// Reads `path`; a missing file means no groups.
    pub fn load(path: &Path) -> Result<Self> {
        match fs_err::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| Error::File {
                path: path.to_owned(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Groups::default()),
            Err(e) => Err(file_error(path)(e)),
        }
    }

    /// The group `rawname` belongs to, if any.
    pub fn group_of(&self, rawname: &str) -> Option<(&str, &Group)> {
        self.groups
            .iter()
            .find(|(_, g)| g.modules.iter().any(|m| m == rawname))
            .map(|(name, g)| (name.as_str(), g))
    }
}

/// The licence key of `email` for a group with `secret`: HMAC-SHA256, hex.
pub fn licence_key(secret: &str, email: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(email.trim().to_ascii_lowercase().as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// What [`build`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// Every package in the index.
    pub modules: Vec<Entry>,
    /// Whether `index.json.sig` was written.
    pub signed: bool,
}

/// Writes the repository for the packages (`*.tgz`) in `dir` into `out`: `packages/`,
/// `index.json` (+ `index.json.sig` with `key`), `freepbx/RAWNAME.json` and
/// `joomla/RAWNAME.xml` (download URLs under `base_url` when given), and `groups.toml`
/// for the server (it never serves that file). Output is reproducible: no timestamps.
pub fn build(
    dir: &Path,
    out: &Path,
    key: Option<&SecretKey>,
    base_url: Option<&str>,
) -> Result<Built> {
    let groups = Groups::load(&dir.join("groups.toml"))?;
    for sub in ["packages", "freepbx", "joomla"] {
        let path = out.join(sub);
        fs_err::create_dir_all(&path).map_err(file_error(&path))?;
    }
    let mut found: Vec<(Manifest, Entry)> = Vec::new();
    let mut paths: Vec<_> = fs_err::read_dir(dir)
        .map_err(file_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tgz"))
        .collect();
    paths.sort();
    for path in paths {
        let manifest = modhost_package::read_manifest(&path, &Default::default()).map_err(|e| {
            Error::File {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        let bytes = fs_err::read(&path).map_err(file_error(&path))?;
        let file = format!("{}-{}.tgz", manifest.rawname, manifest.version);
        let target = out.join("packages").join(&file);
        fs_err::write(&target, &bytes).map_err(file_error(&target))?;
        let entry = Entry {
            rawname: manifest.rawname.clone(),
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            file,
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
            group: groups
                .group_of(&manifest.rawname)
                .map(|(name, _)| name.to_owned()),
        };
        found.push((manifest, entry));
    }
    found.sort_by(|(a, _), (b, _)| a.rawname.cmp(&b.rawname).then(b.version.cmp(&a.version)));
    let index = Index {
        format: FORMAT.to_owned(),
        modules: found.iter().map(|(_, e)| e.clone()).collect(),
    };
    let json = serde_json::to_vec_pretty(&index).map_err(|e| Error::File {
        path: out.join("index.json"),
        message: e.to_string(),
    })?;
    write(&out.join("index.json"), &json)?;
    if let Some(key) = key {
        write(&out.join("index.json.sig"), key.sign(&json).as_bytes())?;
    }
    let location = |entry: &Entry| {
        base_url.map(|b| format!("{}/packages/{}", b.trim_end_matches('/'), entry.file))
    };
    let mut by_module: BTreeMap<&str, Vec<&(Manifest, Entry)>> = BTreeMap::new();
    for item in &found {
        by_module.entry(&item.0.rawname).or_default().push(item);
    }
    for (rawname, versions) in by_module {
        let Some((newest, entry)) = versions.first().map(|(m, e)| (m, e)) else {
            continue;
        };
        let freepbx = serde_json::json!({
            "rawname": newest.rawname,
            "repo": newest.repo,
            "name": newest.name,
            "version": newest.version,
            "publisher": newest.publisher,
            "license": newest.license,
            "licenselink": newest.licenselink,
            "changelog": newest.changelog,
            "category": newest.category,
            "description": newest.description,
            "depends": { "version": newest.depends.version.first().map(|r| r.version.to_string()) },
            "supported": { "version": newest.supported.as_ref().map(|s| s.version.to_string()) },
            "location": location(entry),
            "sha256": entry.sha256,
            "packaged": 0,
        });
        let text = serde_json::to_vec_pretty(&freepbx).unwrap_or_default();
        write(&out.join("freepbx").join(format!("{rawname}.json")), &text)?;
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<updates>\n");
        for (manifest, entry) in &versions {
            let stability = if matches!(Version::parse(&entry.version).map(|v| v.canonical()), Ok(c) if c.chars().any(|c| c.is_ascii_alphabetic()))
            {
                "testing"
            } else {
                "stable"
            };
            xml += &format!(
                "  <update>\n    <name>{}</name>\n    <description>{}</description>\n    <element>{}</element>\n    \
                 <type>module</type>\n    <version>{}</version>\n    <downloads>\n      \
                 <downloadurl type=\"full\" format=\"tgz\">{}</downloadurl>\n    </downloads>\n    \
                 <tags>\n      <tag>{stability}</tag>\n    </tags>\n    <sha256>{}</sha256>\n    \
                 <targetplatform name=\"modhost\" version=\".*\"/>\n  </update>\n",
                escape(manifest.name.as_str()),
                escape(manifest.description.as_deref().unwrap_or("")),
                escape(entry.rawname.as_str()),
                escape(entry.version.as_str()),
                escape(
                    location(entry)
                        .unwrap_or_else(|| format!("packages/{}", entry.file))
                        .as_str()
                ),
                entry.sha256
            );
        }
        xml += "</updates>\n";
        write(
            &out.join("joomla").join(format!("{rawname}.xml")),
            xml.as_bytes(),
        )?;
    }
    if !groups.groups.is_empty() {
        let from = dir.join("groups.toml");
        let to = out.join("groups.toml");
        fs_err::copy(&from, &to).map_err(file_error(&to))?;
    }
    Ok(Built {
        modules: index.modules,
        signed: key.is_some(),
    })
}

/// Writes `path` readable by nobody else, for secret keys.
pub fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(file_error(path))?;
    file.write_all(text.as_bytes()).map_err(file_error(path))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs_err::write(path, bytes).map_err(file_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_keys_depend_on_secret_and_email_only() {
        let key = licence_key("s3cret", "Admin@Example.org");
        assert_eq!(key, licence_key("s3cret", " admin@example.org "));
        assert_ne!(key, licence_key("s3cret", "other@example.org"));
        assert_ne!(key, licence_key("other", "admin@example.org"));
        assert_eq!(key.len(), 64);
    }
}
