//! Each kind's documents, written from the packages a build found: the index, a2's
//! `modsource.json`, FreePBX's JSON and Joomla's update XML.

use std::collections::BTreeMap;

use md5::Md5;
use modhost_manifest::Manifest;
use modhost_update::a2::{self, ModSource};
use modhost_update::index::FORMAT;
use modhost_update::{Entry, Index, Kind, Stability};
use quick_xml::escape::escape;
use sha1::Sha1;
use sha2::Digest;

use crate::error::{Error, Result, file_error};

use crate::build::{Documents, Parts};

/// `text` (a module.xml's, which may hold a control character as `&#x1;`) as XML 1.0
/// text: escaped, and each character XML 1.0 cannot carry at all replaced by U+FFFD,
/// so that Joomla's parser reads the whole document rather than refuse it.
pub(crate) fn xml_text(text: &str) -> String {
    let carried = |c: char| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    let clean: String = text
        .chars()
        .map(|c| if carried(c) { c } else { '\u{FFFD}' })
        .collect();
    escape(clean.as_str()).into_owned()
}

/// The format of the package file `file` written by [`build`]: its extension.
fn format_of(file: &str) -> &str {
    file.rsplit_once('.')
        .map_or("tgz", |(_, extension)| extension)
}

/// The `format` Joomla's update XML names the package file `file` by: `gz` for a gzip
/// tar (Joomla's `DownloadSource::FORMAT_TAR_GZ`), `zip` for a zip.
fn joomla_format(file: &str) -> &str {
    match format_of(file) {
        "tgz" => "gz",
        other => other,
    }
}

/// What every kind's documents are written from: the packages a build found.
pub(crate) struct Publication<'a> {
    /// The public part's documents, signed when there is a key.
    pub(crate) docs: &'a Documents<'a>,
    /// Where the packages are.
    pub(crate) parts: &'a Parts<'a>,
    /// The URL the repository is served at, when download URLs are to be absolute.
    pub(crate) base_url: Option<&'a str>,
    /// The host application the Joomla documents target.
    pub(crate) platform: &'a str,
    /// Every package with its manifest, by rawname and newest first.
    pub(crate) found: Vec<(Manifest, Entry)>,
}

impl Publication<'_> {
    /// Writes what clients of `kind` read.
    pub(crate) fn write(&self, kind: Kind) -> Result<()> {
        match kind {
            Kind::Index => self.write_index(),
            Kind::A2 => self.write_a2(),
            Kind::Freepbx => self.write_freepbx(),
            Kind::Joomla => self.write_joomla(),
        }
    }

    /// `index.json`: every package.
    fn write_index(&self) -> Result<()> {
        let index = Index {
            format: FORMAT.to_owned(),
            modules: self.found.iter().map(|(_, e)| e.clone()).collect(),
            malformed: Vec::new(),
        };
        let json = serde_json::to_vec_pretty(&index).map_err(|e| Error::File {
            path: self.docs.out.join(modhost_update::index::FILE),
            message: e.to_string(),
        })?;
        self.docs.write(modhost_update::index::FILE, &json)
    }

    /// `a2/RAWNAME/modsource.json`, beside a copy of the package it names as
    /// `VERSION.EXT` (in the module's part).
    fn write_a2(&self) -> Result<()> {
        self.docs.create_dir("a2")?;
        for (rawname, _, entry) in self.offered() {
            let bytes = self.package(rawname, entry)?;
            let extension = format_of(&entry.file);
            let a2 = ModSource {
                rawname: entry.rawname.clone(),
                name: Some(entry.name.clone()),
                version: entry.version.clone(),
                format: (extension != "tgz").then(|| extension.to_owned()),
                size: Some(entry.size),
                sha256: entry.sha256.clone(),
            };
            self.docs.create_dir(&format!("a2/{rawname}"))?;
            self.parts.write_package(
                rawname,
                &format!("a2/{rawname}/{}.{extension}", entry.version),
                &bytes,
            )?;
            let text = serde_json::to_vec_pretty(&a2).unwrap_or_default();
            self.docs
                .write(&format!("a2/{rawname}/{}", a2::INDEX), &text)?;
        }
        Ok(())
    }

    /// `freepbx/RAWNAME.json`: one version, with every checksum FreePBX knows.
    fn write_freepbx(&self) -> Result<()> {
        self.docs.create_dir("freepbx")?;
        for (rawname, manifest, entry) in self.offered() {
            let bytes = self.package(rawname, entry)?;
            // What is not known is left out rather than written as null or 0.
            // As FreePBX turns module.xml's <depends> into JSON: one element a string,
            // several an array.
            let mut depends = serde_json::Map::new();
            let requirement = |r: &modhost_manifest::Requirement| match r.op {
                modhost_manifest::Op::Ge => r.version.to_string(),
                _ => r.to_string(),
            };
            let one_or_many = |items: Vec<String>| match <[String; 1]>::try_from(items) {
                Ok([one]) => serde_json::Value::from(one),
                Err(many) => serde_json::Value::from(many),
            };
            let deps = &manifest.depends;
            for (field, items) in [
                (
                    "version",
                    deps.version.iter().map(requirement).collect::<Vec<_>>(),
                ),
                (
                    "phpversion",
                    deps.php.version.iter().map(requirement).collect(),
                ),
                (
                    "module",
                    deps.modules.iter().map(|m| m.to_string()).collect(),
                ),
                (
                    "engine",
                    deps.engines.iter().map(|e| e.to_string()).collect(),
                ),
                (
                    "phpcomponent",
                    // Each entry's alternatives as module.xml writes them: `a||b`.
                    deps.php
                        .components
                        .iter()
                        .map(|alternatives| {
                            alternatives
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("||")
                        })
                        .collect(),
                ),
            ] {
                if !items.is_empty() {
                    depends.insert(field.into(), one_or_many(items));
                }
            }
            let mut freepbx = serde_json::json!({
                "rawname": manifest.rawname,
                "repo": manifest.repo,
                "name": manifest.name,
                "version": manifest.version,
                "publisher": manifest.publisher,
                "license": manifest.license,
                "licenselink": manifest.licenselink,
                "changelog": manifest.changelog,
                "category": manifest.category,
                "description": manifest.description,
                "depends": depends,
                "location": self.location(entry, "../"),
                "md5sum": hex::encode(Md5::digest(&bytes)),
                "sha1sum": hex::encode(Sha1::digest(&bytes)),
                "sha256": entry.sha256,
                "packaged": self.packaged(rawname, entry)?.to_string(),
            });
            if let Some(object) = freepbx.as_object_mut() {
                object.retain(|_, value| !value.is_null());
                if let Some(supported) = &manifest.supported {
                    object.insert(
                        "supported".into(),
                        serde_json::json!({ "version": supported.version.to_string() }),
                    );
                }
            }
            let text = serde_json::to_vec_pretty(&freepbx).unwrap_or_default();
            self.docs.write(&format!("freepbx/{rawname}.json"), &text)?;
        }
        Ok(())
    }

    /// `joomla/RAWNAME.xml`: every version, tagged by stability.
    fn write_joomla(&self) -> Result<()> {
        self.docs.create_dir("joomla")?;
        for (rawname, versions) in self.modules() {
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<updates>\n");
            for (manifest, entry) in &versions {
                xml += &format!(
                    "  <update>\n    <name>{}</name>\n    <description>{}</description>\n    <element>{}</element>\n    \
                     <type>module</type>\n    <version>{}</version>\n    <downloads>\n      \
                     <downloadurl type=\"full\" format=\"{}\">{}</downloadurl>\n    </downloads>\n    \
                     <tags>\n      <tag>{}</tag>\n    </tags>\n    <sha256>{}</sha256>\n    \
                     <targetplatform name=\"{}\" version=\".*\"/>\n  </update>\n",
                    xml_text(&manifest.name),
                    xml_text(manifest.description.as_deref().unwrap_or("")),
                    escape(entry.rawname.as_str()),
                    escape(entry.version.as_str()),
                    joomla_format(&entry.file),
                    escape(self.location(entry, "../").as_str()),
                    Stability::of_version(&entry.version).tag(),
                    entry.sha256,
                    escape(self.platform.trim())
                );
            }
            xml += "</updates>\n";
            self.docs
                .write(&format!("joomla/{rawname}.xml"), xml.as_bytes())?;
        }
        Ok(())
    }

    /// Every module's packages, newest first.
    fn modules(&self) -> BTreeMap<&str, Vec<&(Manifest, Entry)>> {
        let mut by_module: BTreeMap<&str, Vec<&(Manifest, Entry)>> = BTreeMap::new();
        for item in &self.found {
            by_module.entry(&item.0.rawname).or_default().push(item);
        }
        by_module
    }

    /// Each module with the release its one-version documents (a2, FreePBX) name: the
    /// newest stable one when there is one. Clients offer only stable releases unless told
    /// otherwise, so naming a newer pre-release would leave them with no offer at all.
    fn offered(&self) -> Vec<(&str, &Manifest, &Entry)> {
        self.modules()
            .into_iter()
            .filter_map(|(rawname, versions)| {
                versions
                    .iter()
                    .find(|(_, e)| Stability::of_version(&e.version) == Stability::Stable)
                    .or(versions.first())
                    .map(|(manifest, entry)| (rawname, manifest, entry))
            })
            .collect()
    }

    /// The bytes of the package of `rawname` that `entry` lists, as copied to its part.
    /// When `entry`'s package was made, in seconds since the epoch, as FreePBX's
    /// `packaged` says it: its file's modification time, so that building the same files
    /// again writes the same documents.
    fn packaged(&self, rawname: &str, entry: &Entry) -> Result<u64> {
        let package = self.parts.of(rawname).join("packages").join(&entry.file);
        let modified = fs_err::metadata(&package)
            .and_then(|m| m.modified())
            .map_err(file_error(&package))?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()))
    }

    fn package(&self, rawname: &str, entry: &Entry) -> Result<Vec<u8>> {
        let package = self.parts.of(rawname).join("packages").join(&entry.file);
        fs_err::read(&package).map_err(file_error(&package))
    }

    /// Where a document `relative` to the repository's root finds `entry`'s package:
    /// absolute under the base URL when there is one.
    fn location(&self, entry: &Entry, relative: &str) -> String {
        match self.base_url {
            Some(base) => format!("{}/packages/{}", base.trim_end_matches('/'), entry.file),
            None => format!("{relative}packages/{}", entry.file),
        }
    }
}
