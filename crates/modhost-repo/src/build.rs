//! `repo build`: the static files of a repository, every kind's documents and the release
//! document naming them signed when there is a key, with the packages of licence-gated
//! groups kept apart; published in one step by `publish`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use modhost_update::release_document::{Document, RELEASE_FORMAT};
use modhost_update::{
    Claims, Entry, Kind, PublicKey, RELEASE_DOCUMENT, ReleaseDocument, SIGNATURE_SUFFIX,
};

use crate::advice;
use crate::error::{Error, Result, file_error};
use crate::licence::{Groups, create_private_dir, write_secret};
use crate::publication::Publication;
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
    let announced_before = output.last_release().and_then(|r| r.next_key);
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
    let warnings = advice::warnings(&modules, &groups, &gated_before, &release.documents)
        .into_iter()
        .chain(advice::rotation(
            announced_before.as_deref(),
            options.key.map(|k| k.public().encode()).as_deref(),
            release.next_key.as_deref(),
        ));
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

/// Writes the metadata documents under `out`, each with its `.minisig` when signing, and
/// keeps what the release document names of each.
pub(crate) struct Documents<'a> {
    pub(crate) out: &'a Path,
    key: Option<&'a SecretKey>,
    /// What every signature claims, but the path: the build's time, serial and validity.
    claims: Claims,
    /// Every document written so far.
    written: RefCell<Vec<Document>>,
}

impl Documents<'_> {
    /// Creates the directory `name` (and its parents) for documents.
    pub(crate) fn create_dir(&self, name: &str) -> Result<()> {
        let path = self.out.join(name);
        fs_err::create_dir_all(&path).map_err(file_error(&path))
    }

    /// Writes the document `name` (a path from the repository's root), and its signature
    /// when signing, claiming that path.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
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
#[path = "tests_licence.rs"]
mod tests_licence;
#[cfg(test)]
#[path = "tests_release.rs"]
mod tests_release;
