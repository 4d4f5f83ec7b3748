//! `repo build`: the static files of a repository, every kind's documents and the release
//! document naming them signed when there is a key, with the packages of licence-gated
//! groups kept apart; published in one step by `publish`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::Md5;
use modhost_manifest::Manifest;
use modhost_update::a2::{self, ModSource};
use modhost_update::index::FORMAT;
use modhost_update::release_document::{Document, RELEASE_FORMAT};
use modhost_update::{
    Claims, Entry, Index, Kind, PublicKey, RELEASE_DOCUMENT, ReleaseDocument, SIGNATURE_SUFFIX,
    Stability,
};
use quick_xml::escape::escape;
use sha1::Sha1;
use sha2::Digest;

use crate::advice;
use crate::error::{Error, Result, file_error};
use crate::licence::{Groups, create_private_dir, write_secret};
use crate::publish::Output;
use crate::{CURRENT, Options, SecretKey, packages};

/// The part of a built repository that any web server or CDN may host: every document,
/// and the packages anyone may download.
pub const PUBLIC: &str = "public";
/// The part of a built repository only [`crate::serve`] reads: `groups.toml` with the
/// groups' secrets, and the packages of licence-gated groups (under `packages/` and
/// `a2/RAWNAME/`, as in the public part). Never published; readable by its owner alone.
pub const PRIVATE: &str = "private";

/// What [`build`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// Every package in the index.
    pub modules: Vec<Entry>,
    /// Whether the documents were signed.
    pub signed: bool,
    /// The release's serial: higher than every earlier build's in this directory.
    pub serial: u64,
    /// The end of the release's validity, in seconds since the epoch.
    pub valid_until: u64,
    /// The next key the release announces, as its base64 line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_key: Option<String>,
    /// The directory to publish: a link through `current` to this build's public part.
    pub public: PathBuf,
    /// The directory of licence secrets and gated packages, when there are groups.
    pub private: Option<PathBuf>,
    /// What a publisher should know: without a base URL, the FreePBX and Joomla documents
    /// name packages relative to themselves, which modhost follows and FreePBX's and
    /// Joomla's own clients do not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `text` (a module.xml's, which may hold a control character as `&#x1;`) as XML 1.0
/// text: escaped, and each character XML 1.0 cannot carry at all replaced by U+FFFD,
/// so that Joomla's parser reads the whole document rather than refuse it.
fn xml_text(text: &str) -> String {
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

/// Builds as [`build_with`] does, the release valid for [`DEFAULT_VALID_FOR`] and
/// announcing no next key.
pub fn build(
    dir: &Path,
    out: &Path,
    key: Option<&SecretKey>,
    base_url: Option<&str>,
    platform: &str,
) -> Result<Built> {
    let options = Options {
        key,
        base_url,
        platform,
        ..Options::default()
    };
    build_with(dir, out, &options)
}

/// Writes the repository for the packages (`*.tgz`, `*.zip`) in `dir` into `out`. `out/`[`PUBLIC`]
/// gets `packages/`, `index.json`, and for each module `freepbx/RAWNAME.json`,
/// `joomla/RAWNAME.xml` (every version, tagged by stability) and `a2/RAWNAME/modsource.json`
/// beside its `VERSION.tgz` (or `.zip`); the FreePBX and a2 documents, which name one
/// version, name the newest stable one when there is one, since clients offer only stable
/// releases by default. The packages of licence-gated groups (`groups.toml` in `dir`) go to
/// `out/`[`PRIVATE`] instead (mode 0700), with a copy of `groups.toml` (mode 0600): the
/// public part can be uploaded anywhere without giving away a secret or a gated package.
/// Download URLs are absolute under the base URL when given, else relative to the
/// document. The Joomla documents target the host application named by the platform
/// (any version): a client offers only updates whose `<targetplatform name>` is its own
/// ([`modhost_update::DEFAULT_PLATFORM`] unless its root declares another). The documents
/// are reproducible: no timestamps.
///
/// Beside them, `release.json` ([`modhost_update::ReleaseDocument`]) names every other
/// document with its size and SHA-256, the build time, a validity end and a serial higher
/// than the last build's (which is the build time in seconds, or one more than the last
/// serial when that is higher). With a key, every document and the release get a minisign
/// `.minisig` whose trusted comment claims the document's path, the serial, the build
/// time and the validity end ([`modhost_update::Claims`]).
///
/// A build is written into a directory of its own, `out/builds/SERIAL`, and published in
/// one step: `out/current` is swapped to it by a rename, and `out/public` and
/// `out/private` are links through `current` (see the `publish` module). So each part
/// holds exactly what this build produced (a withdrawn package or a signature from an
/// earlier signed build does not linger), a failed build leaves the previous repository
/// as it was, and a client reading during a build never finds a file missing. Files put
/// into them by hand do not survive a build; anything else in `out` is left alone. A
/// `public` or `private` directory no build wrote (no modhost `index.json`, no
/// `groups.toml`) is refused rather than replaced. A version the last build published is
/// not published again with other bytes, unless [`Options::republish`] allows it.
pub fn build_with(dir: &Path, out: &Path, options: &Options) -> Result<Built> {
    let invalid = |message: &str| Error::Options(message.to_owned());
    options.check()?;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        found => {
            let what = match found {
                Ok(_) => "is not a directory".to_owned(),
                Err(e) => crate::error::io_words(&e),
            };
            return Err(Error::File {
                path: dir.to_owned(),
                message: format!("{what}: a repository is built from a directory of packages"),
            });
        }
    }
    let next_key = match (options.next_key, options.key) {
        (Some(_), None) => {
            return Err(invalid(
                "a next key is announced only in a signed release: sign it with the current key",
            ));
        }
        (Some(next), Some(key)) if *next == key.public() => {
            return Err(invalid(
                "the next key announced is the key signing the release",
            ));
        }
        (next, _) => next,
    };
    let groups_file = dir.join("groups.toml");
    let groups_text = read_if_present(&groups_file)?;
    let groups = match &groups_text {
        Some(text) => Groups::parse(&groups_file, text)?,
        None => Groups::default(),
    };
    // Every package is read, and refused if ambiguous, before `out` is touched.
    let scanned = packages::scan(dir)?;
    let output = Output::open(out)?;
    if !options.republish {
        packages::check_republished(dir, &scanned, &out.join(CURRENT).join(PUBLIC))?;
    }
    // What the build published last gated, read before this one replaces it: a module it
    // gated that this one makes public (groups.toml left behind, a name misspelt) is said.
    let gated_before = read_if_present(&out.join(CURRENT).join(PRIVATE).join("groups.toml"))
        .ok()
        .flatten()
        .map(|text| Groups::gated_in(&text))
        .unwrap_or_default();
    let built = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = output.last_serial();
    if last > built.saturating_add(modhost_update::MAX_CLOCK_SKEW) {
        return Err(Error::SerialAhead {
            out: out.to_owned(),
            last,
            now: built,
        });
    }
    let serial = built.max(last.saturating_add(1));
    let valid_until = built.saturating_add(options.valid_for.as_secs());
    // Removed when dropped, unless published.
    let stage = output.stage()?;
    let gated = match (&groups_text, groups.groups.is_empty()) {
        (Some(text), false) => Some(text.as_str()),
        _ => None,
    };
    let docs = Documents {
        out: &stage.path().join(PUBLIC),
        key: options.key,
        claims: Claims {
            timestamp: Some(built),
            file: None,
            serial: Some(serial),
            expires: Some(valid_until),
        },
        written: RefCell::new(Vec::new()),
    };
    let modules = write_parts(
        scanned.packages,
        stage.path(),
        &groups,
        gated,
        &docs,
        options,
    )?;
    let mut documents = docs.written.take();
    documents.sort_by(|a, b| a.path.cmp(&b.path));
    let release = ReleaseDocument {
        format: RELEASE_FORMAT.to_owned(),
        serial,
        built,
        valid_until,
        documents,
        next_key: next_key.map(PublicKey::encode),
    };
    let text = serde_json::to_vec_pretty(&release).unwrap_or_default();
    docs.write(RELEASE_DOCUMENT, &text)?;
    output.publish(stage, serial)?;
    let empty = modules.is_empty();
    let warnings = advice::warnings(&modules, &groups, &gated_before, &release.documents);
    Ok(Built {
        modules,
        signed: options.key.is_some(),
        serial,
        valid_until,
        next_key: release.next_key,
        public: out.join(PUBLIC),
        private: gated.map(|_| out.join(PRIVATE)),
        warnings: scanned
            .warnings
            .into_iter()
            .chain(warnings)
            .chain(empty.then(|| {
                "no packages: the repository offers no module (a previous build's are withdrawn)"
                    .to_owned()
            }))
            .chain(options.base_url.is_none().then(|| {
                "no base URL: freepbx/ and joomla/ documents name their packages relative to \
                 themselves, which modhost follows but FreePBX's and Joomla's own clients do not"
                    .to_owned()
            }))
            .collect(),
    })
}

/// The text of `path`; `None` when there is no such file.
pub(crate) fn read_if_present(path: &Path) -> Result<Option<String>> {
    match fs_err::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(path)(e)),
    }
}

/// Writes the public part, and the private one when there are `gated` groups (the text of
/// `groups.toml`), under `stage`: the packages, then each kind's documents through
/// `docs`; what the index lists.
fn write_parts(
    found: Vec<packages::Package>,
    stage: &Path,
    groups: &Groups,
    gated: Option<&str>,
    docs: &Documents,
    options: &Options,
) -> Result<Vec<Entry>> {
    let parts = Parts {
        public: stage.join(PUBLIC),
        private: stage.join(PRIVATE),
        groups,
    };
    if let Some(text) = gated {
        create_private_dir(&parts.private)?;
        write_secret(&parts.private.join("groups.toml"), text)?;
    }
    let found = packages::copy(found, &parts)?;
    let publication = Publication {
        docs,
        parts: &parts,
        base_url: options.base_url,
        platform: options.platform,
        found,
    };
    for kind in Kind::ALL {
        publication.write(kind)?;
    }
    Ok(publication
        .found
        .into_iter()
        .map(|(_, entry)| entry)
        .collect())
}

/// The two parts a build writes, and which one each module's packages belong in.
pub(crate) struct Parts<'a> {
    /// The public part: every document, and the packages anyone may download.
    pub(crate) public: PathBuf,
    /// The private part: the packages of licence-gated groups.
    pub(crate) private: PathBuf,
    /// The licence groups.
    pub(crate) groups: &'a Groups,
}

impl Parts<'_> {
    /// The part a package of `rawname` belongs in.
    pub(crate) fn of(&self, rawname: &str) -> &Path {
        match self.groups.group_of(rawname) {
            Some(_) => &self.private,
            None => &self.public,
        }
    }

    /// Writes a package of `rawname` as `relative` in its part.
    pub(crate) fn write_package(&self, rawname: &str, relative: &str, bytes: &[u8]) -> Result<()> {
        let path = self.of(rawname).join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(file_error(parent))?;
        }
        fs_err::write(&path, bytes).map_err(file_error(&path))
    }
}

/// What every kind's documents are written from: the packages a build found.
struct Publication<'a> {
    /// The public part's documents, signed when there is a key.
    docs: &'a Documents<'a>,
    /// Where the packages are.
    parts: &'a Parts<'a>,
    /// The URL the repository is served at, when download URLs are to be absolute.
    base_url: Option<&'a str>,
    /// The host application the Joomla documents target.
    platform: &'a str,
    /// Every package with its manifest, by rawname and newest first.
    found: Vec<(Manifest, Entry)>,
}

impl Publication<'_> {
    /// Writes what clients of `kind` read.
    fn write(&self, kind: Kind) -> Result<()> {
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

/// Writes the metadata documents under `out`, each with its `.minisig` when signing, and
/// keeps what the release document names of each.
struct Documents<'a> {
    out: &'a Path,
    key: Option<&'a SecretKey>,
    /// What every signature claims, but the path: the build's time, serial and validity.
    claims: Claims,
    /// Every document written so far.
    written: RefCell<Vec<Document>>,
}

impl Documents<'_> {
    /// Creates the directory `name` (and its parents) for documents.
    fn create_dir(&self, name: &str) -> Result<()> {
        let path = self.out.join(name);
        fs_err::create_dir_all(&path).map_err(file_error(&path))
    }

    /// Writes the document `name` (a path from the repository's root), and its signature
    /// when signing, claiming that path.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.out.join(name);
        fs_err::write(&path, bytes).map_err(file_error(&path))?;
        if let Some(key) = self.key {
            let claims = Claims {
                file: Some(name.to_owned()),
                ..self.claims.clone()
            };
            let sig = self.out.join(format!("{name}{SIGNATURE_SUFFIX}"));
            fs_err::write(&sig, key.sign(bytes, &claims)).map_err(file_error(&sig))?;
        }
        if name != RELEASE_DOCUMENT {
            self.written.borrow_mut().push(Document::of(name, bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests_build.rs"]
mod tests_build;
#[cfg(test)]
#[path = "tests_inputs.rs"]
mod tests_inputs;
#[cfg(test)]
#[path = "tests_release.rs"]
mod tests_release;
