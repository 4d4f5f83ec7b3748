//! Update channels: the sources an administrator configures and the ones modules declare
//! (`<updateurl>`, `<updateservers>`); checking them, downloading verified packages, and
//! installing or upgrading from them without ever moving down or crossing sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use modhost_manifest::{Manifest, Version};
use modhost_state::SourceRecord;
use modhost_update::{
    Client, DEFAULT_PLATFORM, DEFAULT_TIMEOUT, Digests, Kind, Location, PublicKey, Release, Source,
    Target,
};
use serde::Serialize;

use crate::plan::{self, Mode};
use crate::{Change, Error, Event, Host, Options, Result};

/// A channel as `modhost source list` shows it: the download key is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Its name: an administrator's source (`main`), or a module's channel
    /// (`phonebook/updateurl`, `phonebook/1` for its first `<updateservers>` server).
    pub name: String,
    /// Its format.
    pub kind: modhost_update::Kind,
    /// The URL or local path.
    pub url: String,
    /// The pinned publisher key, if the source is signed.
    pub public_key: Option<String>,
    /// Whether a download key is stored.
    pub has_key: bool,
    /// The module that declares this channel in its module.xml; `None` for an
    /// administrator's source.
    pub declared_by: Option<String>,
}

/// How an offered version relates to what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfferStatus {
    /// Not installed: `install --online` would install it.
    Available,
    /// Newer than the installed version, from the module's own channel.
    Upgrade,
    /// The installed version.
    Current,
    /// Older than the installed version: reported, never installed.
    Downgrade,
    /// The module is installed from another source (or from a file): never replaced.
    OtherSource,
    /// The release does not support this host application's version (FreePBX
    /// `supported.version` above the root's `[platform] version`): never installed.
    NotApplicable,
}

/// One module's newest suitable version in one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    /// The module.
    pub rawname: String,
    /// The version offered.
    pub version: String,
    /// The installed version, if any.
    pub installed: Option<String>,
    /// How they relate.
    pub status: OfferStatus,
    /// Whether a download needs a licence key.
    pub gated: bool,
    /// What an administrator should know about it: only a legacy checksum vouches for
    /// its package, or why it is not applicable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What one channel answered.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// The channel's name.
    pub source: String,
    /// Why it could not be checked; the other channels are checked regardless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its offers, by rawname.
    pub offers: Vec<Offer>,
}

/// A channel as configured or declared, or why it cannot be used.
struct Channel {
    name: String,
    /// The module that declares it.
    declared_by: Option<String>,
    source: std::result::Result<Source, String>,
    /// For [`SourceInfo`]: the configured URL and key, as written.
    url: String,
    public_key: Option<String>,
    kind: Kind,
}

/// How many channels are asked at once.
const PARALLEL_CHECKS: usize = 8;

/// A channel's report, with the release behind each of its offers (same order).
struct Checked {
    report: SourceReport,
    /// The module that declares the channel; `None` for an administrator's source.
    declared_by: Option<String>,
    releases: Vec<(Source, Release)>,
}

impl Host {
    fn client(&self) -> Result<Client> {
        let timeout = self
            .updates
            .timeout_secs
            .map_or(DEFAULT_TIMEOUT, std::time::Duration::from_secs);
        Ok(Client::new(self.ca_cert.as_deref(), timeout)?)
    }

    fn target(&self) -> Target {
        Target {
            platform: self
                .platform
                .name
                .clone()
                .unwrap_or_else(|| DEFAULT_PLATFORM.into()),
            version: self
                .platform
                .version
                .as_ref()
                .map(Version::to_string)
                .unwrap_or_default(),
            stability: self.updates.stability,
        }
    }

    /// Every channel: the administrator's sources by name, then the channels declared by
    /// modules installed from a file (a module from a source is updated from it alone),
    /// a module's update servers in priority order.
    fn channels(&self) -> Result<Vec<Channel>> {
        let mut channels = Vec::new();
        for record in self.state.sources()? {
            let kind = Kind::parse(&record.kind).unwrap_or(Kind::Index);
            let source = admin_source(&record, kind);
            channels.push(Channel {
                name: record.name,
                declared_by: None,
                source,
                url: record.url,
                public_key: record.public_key,
                kind,
            });
        }
        for module in self.state.modules()? {
            if self.state.module_source(&module.rawname)?.is_some() {
                continue;
            }
            let Ok(manifest) = Manifest::parse(&module.manifest, "module.xml") else {
                continue;
            };
            let mut declared = Vec::new();
            if let Some(url) = &manifest.updateurl {
                declared.push((
                    "updateurl".to_owned(),
                    Kind::Freepbx,
                    url.clone(),
                    manifest.updateurl_publickey.clone(),
                ));
            }
            let mut servers: Vec<_> = manifest.updateservers.iter().enumerate().collect();
            servers.sort_by_key(|(i, s)| (s.priority, *i));
            for (i, server) in servers {
                declared.push((
                    (i + 1).to_string(),
                    Kind::Joomla,
                    server.url.clone(),
                    server.publickey.clone(),
                ));
            }
            for (suffix, kind, url, key) in declared {
                let name = format!("{}/{suffix}", module.rawname);
                let extra_query = self.channel_key(&name, &url)?;
                let source = declared_source(&name, kind, &url, key.as_deref(), extra_query);
                channels.push(Channel {
                    name,
                    declared_by: Some(module.rawname.clone()),
                    source,
                    url,
                    public_key: key,
                    kind,
                });
            }
        }
        Ok(channels)
    }

    /// The download key stored for module channel `name`, if it was stored for `url`. The
    /// name is a position in a module.xml, which another module.xml of the same rawname
    /// may give to another server: a key stored for one URL is never sent to another, and
    /// the administrator is told it was left out.
    fn channel_key(&self, name: &str, url: &str) -> Result<Option<String>> {
        let Some(stored) = self.state.channel_key(name)? else {
            return Ok(None);
        };
        if stored.url.as_deref() == Some(url) {
            return Ok(Some(stored.extra_query));
        }
        let stored_for = match &stored.url {
            Some(other) => format!("`{other}`"),
            None => "a URL not recorded (it was stored by an older modhost)".to_owned(),
        };
        tracing::warn!(
            "channel `{name}`: its download key was stored for {stored_for}, not `{url}`, so \
             it is not sent; if `{url}` is its publisher's, store the key again with \
             `modhost source key {name}`"
        );
        Ok(None)
    }

    /// Adds update source `name` of `kind` at `location`: an `https://` URL or an
    /// absolute local path. With a `public_key`, the source is signed: unsigned or badly
    /// signed documents are refused. An existing source is changed only if `replace`: it
    /// keeps its download key while its URL stays the same (the key is the publisher's,
    /// never sent to another server), and its modules stay bound to it.
    pub fn add_source(
        &self,
        name: &str,
        kind: Kind,
        location: &str,
        public_key: Option<&str>,
        replace: bool,
    ) -> Result<()> {
        if let Location::Path(path) = Location::parse(location)?
            && !path.exists()
        {
            return Err(Error::Refused(vec![format!(
                "source `{name}`: `{}` does not exist",
                path.display()
            )]));
        }
        if !modhost_manifest::is_valid_rawname(name) {
            return Err(Error::Refused(vec![format!(
                "source name `{name}` must be a-z, 0-9 and _"
            )]));
        }
        if let Some(key) = public_key {
            PublicKey::parse(key)
                .map_err(|e| Error::Refused(vec![format!("source `{name}`: {e}")]))?;
        }
        let _lock = self.lock()?;
        let url = location.trim().trim_end_matches('/').to_owned();
        let existing = self.state.sources()?.into_iter().find(|s| s.name == name);
        let extra_query = match existing {
            Some(existing) if !replace => {
                return Err(Error::Refused(vec![format!(
                    "source `{name}` already exists (`{}`{}); use `source add --replace` to change it",
                    existing.url,
                    if existing.public_key.is_some() {
                        ", signed"
                    } else {
                        ""
                    }
                )]));
            }
            Some(existing) => {
                if existing.public_key.is_some() && public_key.is_none() {
                    tracing::warn!("source `{name}` is no longer signed: no --public-key given");
                }
                existing.extra_query.filter(|_| existing.url == url)
            }
            None => None,
        };
        let mut txn = self.state.begin()?;
        txn.put_source(&SourceRecord {
            name: name.to_owned(),
            url,
            kind: kind.as_str().to_owned(),
            public_key: public_key.map(str::to_owned),
            extra_query,
        })?;
        txn.commit()?;
        Ok(())
    }

    /// Removes update source `name`. While modules installed from it are bound to it, only
    /// if `force`: they then get no updates until installed again from a source.
    pub fn remove_source(&self, name: &str, force: bool) -> Result<()> {
        let _lock = self.lock()?;
        let mut bound = Vec::new();
        for record in self.state.modules()? {
            if self.state.module_source(&record.rawname)?.as_deref() == Some(name) {
                bound.push(format!("`{}`", record.rawname));
            }
        }
        if !bound.is_empty() && !force {
            return Err(Error::Refused(vec![format!(
                "{} {} installed from source `{name}` and updated only from it; \
                 use --force to remove it anyway ({} then get{} no updates)",
                bound.join(", "),
                if bound.len() == 1 { "is" } else { "are" },
                if bound.len() == 1 { "it" } else { "they" },
                if bound.len() == 1 { "s" } else { "" }
            )]));
        }
        let mut txn = self.state.begin()?;
        if !txn.remove_source(name)? {
            return Err(Error::Refused(vec![format!("there is no source `{name}`")]));
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores the download key (`email=…&key=…`, say) appended to the package URLs of
    /// source or module channel `name`; a module channel's key is sent only to the URL the
    /// channel has now. A key a URL's query cannot hold as written is refused.
    pub fn set_source_key(&self, name: &str, extra_query: &str) -> Result<()> {
        let query = extra_query.trim().trim_start_matches('?');
        // The message never quotes the key: it is a secret.
        modhost_update::validate_query(query)
            .map_err(|e| Error::Refused(vec![format!("source `{name}`: {e}")]))?;
        let _lock = self.lock()?;
        let channel = self
            .channels()?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::Refused(vec![format!("there is no source `{name}`")]))?;
        let mut txn = self.state.begin()?;
        if channel.declared_by.is_some() {
            txn.set_channel_key(name, &channel.url, query)?;
        } else if let Some(mut record) = self.state.sources()?.into_iter().find(|s| s.name == name)
        {
            record.extra_query = Some(query.to_owned());
            txn.put_source(&record)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The administrator's sources and the channels installed modules declare.
    pub fn sources(&self) -> Result<Vec<SourceInfo>> {
        let mut infos = Vec::new();
        for channel in self.channels()? {
            let has_key = match &channel.source {
                Ok(source) => source.extra_query.is_some(),
                Err(_) => false,
            };
            infos.push(SourceInfo {
                name: channel.name,
                kind: channel.kind,
                url: channel.url,
                public_key: channel.public_key,
                has_key,
                declared_by: channel.declared_by,
            });
        }
        Ok(infos)
    }

    /// Asks every channel what it offers. A channel that is down, slow, or answers garbage
    /// or a bad signature is reported in its own entry; the others are checked regardless.
    pub fn check_online(&self) -> Result<Vec<SourceReport>> {
        Ok(self
            .offers()?
            .into_iter()
            .map(|checked| checked.report)
            .collect())
    }

    /// Each channel's report with the releases behind its offers.
    fn offers(&self) -> Result<Vec<Checked>> {
        let client = self.client()?;
        let target = self.target();
        let channels = self.channels()?;
        // Channels are asked in parallel, so a slow server costs one timeout, not one per
        // channel behind it.
        let mut answers = Vec::with_capacity(channels.len());
        for batch in channels.chunks(PARALLEL_CHECKS) {
            std::thread::scope(|scope| {
                let asked: Vec<_> = batch
                    .iter()
                    .map(|channel| {
                        scope.spawn(|| match &channel.source {
                            Ok(source) => client
                                .releases(source, channel.declared_by.as_deref(), &target)
                                .map_err(|e| e.to_string()),
                            Err(error) => Err(error.clone()),
                        })
                    })
                    .collect();
                for handle in asked {
                    answers.push(
                        handle
                            .join()
                            .unwrap_or_else(|_| Err("checking the source panicked".into())),
                    );
                }
            });
        }
        let mut reports = Vec::new();
        for (channel, answer) in channels.into_iter().zip(answers) {
            let failed = |error: String| Checked {
                report: SourceReport {
                    source: channel.name.clone(),
                    error: Some(error),
                    offers: Vec::new(),
                },
                declared_by: channel.declared_by.clone(),
                releases: Vec::new(),
            };
            let (source, releases) = match (&channel.source, answer) {
                (Ok(source), Ok(releases)) => (source, releases),
                (_, Err(error)) => {
                    reports.push(failed(error));
                    continue;
                }
                (Err(error), _) => {
                    reports.push(failed(error.clone()));
                    continue;
                }
            };
            let mut newest: BTreeMap<String, (Version, Release)> = BTreeMap::new();
            for release in releases {
                let Ok(version) = Version::parse(&release.version) else {
                    continue;
                };
                if newest
                    .get(&release.rawname)
                    .is_none_or(|(known, _)| version > *known)
                {
                    newest.insert(release.rawname.clone(), (version, release));
                }
            }
            let mut offers = Vec::new();
            let mut releases = Vec::new();
            for (offered, release) in newest.into_values() {
                let installed = self.state.module(&release.rawname)?;
                let from = self.state.module_source(&release.rawname)?;
                let own = match &channel.declared_by {
                    Some(_) => from.is_none(),
                    None => from.as_deref() == Some(channel.name.as_str()),
                };
                let mut warnings = Vec::new();
                let mut status = match &installed {
                    None => OfferStatus::Available,
                    Some(_) if !own => OfferStatus::OtherSource,
                    Some(record) => match Version::parse(&record.version) {
                        Ok(current) if offered > current => OfferStatus::Upgrade,
                        Ok(current) if offered == current => OfferStatus::Current,
                        _ => OfferStatus::Downgrade,
                    },
                };
                // Only what would be installed is held back: the rest is not offered anyway.
                if matches!(status, OfferStatus::Available | OfferStatus::Upgrade)
                    && let Some(why) = self.unsupported(&release)
                {
                    status = OfferStatus::NotApplicable;
                    warnings.push(why);
                }
                warnings.extend(
                    release
                        .weak_checksum_warning()
                        .map(|w| format!("`{}` {}: {w}", release.rawname, release.version)),
                );
                offers.push(Offer {
                    rawname: release.rawname.clone(),
                    version: release.version.clone(),
                    installed: installed.map(|r| r.version),
                    status,
                    gated: release.gated,
                    warnings,
                });
                releases.push((source.clone(), release));
            }
            reports.push(Checked {
                report: SourceReport {
                    source: channel.name.clone(),
                    error: None,
                    offers,
                },
                declared_by: channel.declared_by.clone(),
                releases,
            });
        }
        Ok(reports)
    }

    /// Why `release` does not suit this host, if it does not: it states a least supported
    /// host version (FreePBX `supported.version`) above the root's `[platform] version`. As
    /// at install, an undeclared host version is not held against it.
    fn unsupported(&self, release: &Release) -> Option<String> {
        let supported = Version::parse(release.supported.as_deref()?).ok()?;
        let host = self.platform.version.as_ref()?;
        (*host < supported).then(|| {
            format!(
                "`{}` {} supports the host application from {supported}; this one is {host} \
                 ([platform] version): not applicable",
                release.rawname, release.version
            )
        })
    }

    /// Downloads the newest verified package of `rawname` from the first channel offering
    /// it into `dir`.
    pub fn download(&self, rawname: &str, dir: &Path) -> Result<PathBuf> {
        // Only a file is written: any source will do, even for an installed module.
        let (source, release) = self.find_release(&self.offers()?, rawname, false)?;
        let work = download_dir(dir)?;
        let path = self.fetch_package(&self.client()?, &source, &release, work.path())?;
        self.keep_package(&path, dir)
    }

    /// Downloads the package at `url` into `dir`, refusing it unless its SHA-256 is
    /// `sha256` and it is a readable module package; named `RAWNAME-VERSION.tgz` (or
    /// `.zip`, by its content).
    pub fn download_url(&self, url: &str, sha256: &str, dir: &Path) -> Result<PathBuf> {
        let mut digests = Digests::default();
        digests
            .set("sha256", sha256)
            .map_err(|e| Error::Refused(vec![e]))?;
        let location = Location::parse(url)?;
        let name = location.file_name().unwrap_or_default();
        let release = Release {
            rawname: name.clone(),
            name,
            version: String::new(),
            location,
            size: None,
            digests,
            gated: false,
            supported: None,
        };
        let work = download_dir(dir)?;
        let path = work.path().join("download");
        self.client()?
            .download(&release, None, &path, &mut |_, _| {})?;
        self.keep_package(&path, dir)
    }

    /// Moves a verified download into `dir` under its manifest's name, with the
    /// extension of its format.
    fn keep_package(&self, path: &Path, dir: &Path) -> Result<PathBuf> {
        let manifest = modhost_package::read_manifest(path, &Default::default())?;
        let extension = modhost_package::format(path)?.extension();
        let target = dir.join(format!(
            "{}-{}.{extension}",
            manifest.rawname, manifest.version
        ));
        fs_err::rename(path, &target).map_err(crate::layout::io(&target))?;
        Ok(target)
    }

    /// Downloads `release` into `dir` with progress events, and checks that the package
    /// is the module and version the channel announced.
    fn fetch_package(
        &self,
        client: &Client,
        source: &Source,
        release: &Release,
        dir: &Path,
    ) -> Result<PathBuf> {
        self.reporter.report(Event::Downloading {
            rawname: release.rawname.clone(),
            version: release.version.clone(),
            source: source.name.clone(),
        });
        let path = dir.join(format!("{}-{}.tgz", release.rawname, release.version));
        let mut progress = |received, total| {
            self.reporter.report(Event::Progress {
                rawname: release.rawname.clone(),
                received,
                total,
            })
        };
        client.download(release, source.extra_query.as_deref(), &path, &mut progress)?;
        let manifest = modhost_package::read_manifest(&path, &Default::default())?;
        if manifest.rawname != release.rawname
            || Version::parse(&release.version).ok().as_ref() != Some(&manifest.version)
        {
            return Err(Error::Refused(vec![format!(
                "`{}`: source `{}` announced {} {} but the package is {} {}",
                release.location,
                source.name,
                release.rawname,
                release.version,
                manifest.rawname,
                manifest.version
            )]));
        }
        // Accepted, since FreePBX servers publish nothing stronger, but not silently.
        if let Some(message) = release.weak_checksum_warning() {
            self.reporter.report(Event::Warning {
                rawname: release.rawname.clone(),
                message,
            });
        }
        self.reporter.report(Event::Verified {
            rawname: release.rawname.clone(),
            bytes: fs_err::metadata(&path).map(|m| m.len()).unwrap_or(0),
        });
        Ok(path)
    }

    /// The first channel in `offers` offering `rawname`, with its release. With
    /// `own_only`, an installed module is taken only from its own channels: the source it
    /// was installed from, or for one installed from a file, the channels its module.xml
    /// declares.
    fn find_release(
        &self,
        offers: &[Checked],
        rawname: &str,
        own_only: bool,
    ) -> Result<(Source, Release)> {
        let mut reasons = Vec::new();
        let mut elsewhere = None;
        // Offers this host cannot take: named when nothing else is found.
        let mut not_applicable = Vec::new();
        for checked in offers {
            let report = &checked.report;
            if let Some(error) = &report.error {
                reasons.push(format!("source `{}`: {error}", report.source));
                continue;
            }
            for (offer, found) in report.offers.iter().zip(&checked.releases) {
                if offer.rawname != rawname {
                    continue;
                }
                if own_only && offer.status == OfferStatus::OtherSource {
                    elsewhere.get_or_insert((report.source.clone(), offer.version.clone()));
                    continue;
                }
                if offer.status == OfferStatus::NotApplicable {
                    not_applicable.extend(
                        offer
                            .warnings
                            .first()
                            .map(|w| format!("source `{}`: {w}", report.source)),
                    );
                    continue;
                }
                return Ok(found.clone());
            }
        }
        if !not_applicable.is_empty() {
            reasons.extend(not_applicable);
            return Err(Error::Refused(reasons));
        }
        reasons.push(match elsewhere {
            Some((other, version)) => {
                let from = match self.state.module_source(rawname)? {
                    Some(source) => format!("source `{source}`"),
                    None => "a file, and is updated only from the channels its module.xml declares"
                        .to_owned(),
                };
                format!(
                    "`{rawname}` is installed from {from}; source `{other}` offers {version}, \
                     but a module is never replaced by one from another source"
                )
            }
            None => format!("no source offers `{rawname}`"),
        });
        Err(Error::Refused(reasons))
    }

    /// Installs modules from the sources that offer them: every package is downloaded and
    /// verified before anything changes, then installed as one unit, each recorded as
    /// coming from its source. A module already installed is taken only from its own
    /// channels ([`Host::upgrade_online`]'s): never replaced by one from another source.
    pub fn install_online(&self, names: &[String], options: Options) -> Result<Vec<Change>> {
        // Asked once: every name, and every dependency found later, is looked up in it.
        let offers = self.offers()?;
        let mut picked = Vec::new();
        for name in names {
            picked.push(self.find_release(&offers, name, true)?);
        }
        self.apply_online(picked, Mode::Install, options, Some(&offers), false)
            .map(|(changes, _)| changes)
    }

    /// Upgrades modules (all with an upgrade when `names` is empty) from their own
    /// channels: the source they were installed from, or for a module installed from a
    /// file the channels its module.xml declares — the highest version wins, a server
    /// earlier in priority order on a tie. A lower version is never installed, and a
    /// module is never replaced by one of the same rawname from another source.
    ///
    /// A channel that fails affects only the modules it updates: a named module is refused
    /// only when none of its channels answered, and `upgradeall` (no names) upgrades what
    /// the others offer, then fails naming the channels it could not check. Likewise a
    /// package that fails to download or verify: named modules are upgraded all together
    /// or not at all, while `upgradeall` leaves that one out, upgrades the rest as one
    /// change, and then fails naming it.
    pub fn upgrade_online(&self, names: &[String], options: Options) -> Result<Vec<Change>> {
        let mut best: BTreeMap<String, (Version, Source, Release)> = BTreeMap::new();
        let mut reasons = Vec::new();
        let mut downgrades: BTreeMap<String, String> = BTreeMap::new();
        // Newer versions this host cannot take: a named module's refusal says so.
        let mut not_applicable: BTreeMap<String, String> = BTreeMap::new();
        let mut current = Vec::new();
        // Offers for a module from a source it is not updated from: named in a refusal.
        let mut elsewhere: BTreeMap<String, (String, String)> = BTreeMap::new();
        let named = !names.is_empty();
        let targets: Vec<String> = if named {
            names.to_vec()
        } else {
            self.state
                .modules()?
                .into_iter()
                .map(|r| r.rawname)
                .collect()
        };
        // Per module: the errors of its channels, and whether any of them answered.
        let mut failed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut answered: BTreeSet<&str> = BTreeSet::new();
        let mut unchecked = BTreeSet::new();
        // The source each target was installed from, read once, not once per channel.
        let mut bound = Vec::with_capacity(targets.len());
        for name in &targets {
            bound.push((name.as_str(), self.state.module_source(name)?));
        }
        for checked in self.offers()? {
            let report = checked.report;
            let declared_by = checked.declared_by.as_deref();
            let owners: Vec<&str> = bound
                .iter()
                .filter(|(name, source)| {
                    updated_from(name, source.as_deref(), &report.source, declared_by)
                })
                .map(|(name, _)| *name)
                .collect();
            if let Some(error) = report.error {
                let named = format!("source `{}`", report.source);
                let error = if error.starts_with(&named) {
                    error
                } else {
                    format!("{named}: {error}")
                };
                if owners.is_empty() {
                    tracing::warn!("{error} (skipped: no module to upgrade is updated from it)");
                }
                for owner in owners {
                    failed.entry(owner).or_default().push(error.clone());
                }
                continue;
            }
            answered.extend(owners);
            for (offer, (source, release)) in report.offers.into_iter().zip(checked.releases) {
                if named && !names.contains(&offer.rawname) {
                    continue;
                }
                match offer.status {
                    OfferStatus::Upgrade => {
                        let Ok(version) = Version::parse(&offer.version) else {
                            continue;
                        };
                        if best
                            .get(&offer.rawname)
                            .is_none_or(|(known, _, _)| version > *known)
                        {
                            best.insert(offer.rawname, (version, source, release));
                        }
                    }
                    OfferStatus::Downgrade => {
                        downgrades.insert(
                            offer.rawname.clone(),
                            format!(
                                "`{}` {} is installed; source `{}` offers {}: a downgrade is never installed",
                                offer.rawname,
                                offer.installed.unwrap_or_default(),
                                report.source,
                                offer.version
                            ),
                        );
                    }
                    OfferStatus::Current => current.push(offer.rawname),
                    OfferStatus::NotApplicable => {
                        if let Some(warning) = offer.warnings.into_iter().next() {
                            not_applicable
                                .entry(offer.rawname)
                                .or_insert(format!("source `{}`: {warning}", report.source));
                        }
                    }
                    OfferStatus::OtherSource => {
                        elsewhere
                            .entry(offer.rawname)
                            .or_insert((report.source.clone(), offer.version));
                    }
                    _ => {}
                }
            }
        }
        for name in &targets {
            let errors = failed.remove(name.as_str()).unwrap_or_default();
            if best.contains_key(name) {
                for error in errors {
                    tracing::warn!("`{name}`: {error}; upgrading from the channels that answered");
                }
                continue;
            }
            if !answered.contains(name.as_str()) && !errors.is_empty() {
                if named {
                    reasons.extend(errors);
                } else {
                    unchecked.extend(errors);
                }
                continue;
            }
            if !named {
                continue;
            }
            if let Some(reason) = not_applicable.remove(name) {
                reasons.push(reason);
                continue;
            }
            match downgrades.remove(name) {
                Some(downgrade) => reasons.push(downgrade),
                None if current.contains(name) && errors.is_empty() => {}
                None => reasons.push(format!(
                    "no upgrade of `{name}` is offered by the channels it is updated from{}{}",
                    errors.iter().map(|e| format!("; {e}")).collect::<String>(),
                    match elsewhere.get(name) {
                        Some((source, version)) => format!(
                            "; source `{source}` offers {version}, but a module is never \
                             replaced by one from another source"
                        ),
                        None => String::new(),
                    }
                )),
            }
        }
        for downgrade in downgrades.values().filter(|_| names.is_empty()) {
            tracing::warn!("{downgrade}");
        }
        if !reasons.is_empty() {
            return Err(Error::Refused(reasons));
        }
        let picked: Vec<_> = best.into_values().map(|(_, s, r)| (s, r)).collect();
        // Named modules are upgraded all together or not at all, as the administrator
        // asked for them together. `upgradeall` upgrades what it can: one server's bad
        // package, like one server being down, must not hold back every other module.
        let changes = if picked.is_empty() {
            Vec::new()
        } else {
            let (changes, failures) =
                self.apply_online(picked, Mode::Upgrade, options, None, !named)?;
            unchecked.extend(failures);
            changes
        };
        if unchecked.is_empty() {
            Ok(changes)
        } else {
            Err(Error::Unchecked {
                done: changes,
                failures: unchecked.into_iter().collect(),
            })
        }
    }

    /// Downloads and verifies `picked`, then applies them as one change. With `offers`,
    /// a module they need that nobody installed comes along from the first channel there
    /// offering it; one no channel offers is left to the plan, which names it.
    ///
    /// A package that fails to download or verify fails the whole change, unless
    /// `partial`: then it is left out, the others are applied, and each one left out is
    /// returned with why.
    fn apply_online(
        &self,
        picked: Vec<(Source, Release)>,
        mode: Mode,
        options: Options,
        offers: Option<&[Checked]>,
        partial: bool,
    ) -> Result<(Vec<Change>, Vec<String>)> {
        // Held from before the downloads: taking it later would run recovery, which sweeps
        // staging/, where the downloads are.
        let _lock = self.lock()?;
        let downloads = self.layout.staging_dir()?;
        let admin: Vec<String> = self.state.sources()?.into_iter().map(|s| s.name).collect();
        let client = self.client()?;
        let installed: BTreeSet<String> = self
            .state
            .modules()?
            .into_iter()
            .map(|r| r.rawname)
            .collect();
        let mut packages = Vec::new();
        let mut origin = BTreeMap::new();
        let mut fetched = BTreeSet::new();
        let mut failures = Vec::new();
        let mut weak = BTreeMap::new();
        let mut pending = picked;
        while let Some((source, release)) = pending.pop() {
            if !fetched.insert(release.rawname.clone()) {
                continue;
            }
            let package = match self.fetch_package(&client, &source, &release, downloads.path()) {
                Ok(package) => package,
                Err(error) if partial => {
                    failures.push(format!(
                        "source `{}`: `{}` {} was left out: {error}",
                        source.name, release.rawname, release.version
                    ));
                    continue;
                }
                Err(error) => return Err(error),
            };
            if let Some(warning) = release.weak_checksum_warning() {
                weak.insert(release.rawname.clone(), warning);
            }
            if admin.contains(&source.name) {
                origin.insert(release.rawname.clone(), source.name.clone());
            }
            if let Some(offers) = offers {
                let manifest = crate::read_manifest(&package)?;
                for dependency in plan::required_modules(&manifest) {
                    let name = dependency.name.as_str();
                    let known = installed.contains(name)
                        || fetched.contains(name)
                        || pending.iter().any(|(_, r)| r.rawname == name);
                    if known {
                        continue;
                    }
                    if let Ok((source, release)) = self.find_release(offers, name, true) {
                        self.reporter.report(Event::Requires {
                            rawname: manifest.rawname.clone(),
                            dependency: name.to_owned(),
                            source: source.name.clone(),
                        });
                        pending.push((source, release));
                    }
                }
            }
            packages.push(package);
        }
        if packages.is_empty() {
            return Ok((Vec::new(), failures));
        }
        match self.apply_locked(&packages, mode, options, &origin) {
            Ok(mut changes) => {
                for change in &mut changes {
                    change.warnings.extend(weak.remove(&change.rawname));
                }
                Ok((changes, failures))
            }
            // What was left out may be why the rest cannot be applied (a dependency's
            // upgrade): the refusal names it too.
            Err(Error::Refused(mut reasons)) => {
                reasons.extend(failures);
                Err(Error::Refused(reasons))
            }
            Err(error) => Err(error),
        }
    }
}

/// Whether module `name`, installed from source `bound` (`None`: from a file), is updated
/// from channel `channel` (declared by module `declared_by`, or an administrator's source).
fn updated_from(name: &str, bound: Option<&str>, channel: &str, declared_by: Option<&str>) -> bool {
    match bound {
        Some(source) => declared_by.is_none() && source == channel,
        None => declared_by == Some(name),
    }
}

/// A hidden work directory inside `dir` for a download that is not part of a change: the
/// root's staging area is swept by other processes' recovery, and the same file system
/// lets the verified package be renamed into place.
fn download_dir(dir: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".modhost-download-")
        .tempdir_in(dir)
        .map_err(crate::layout::io(dir))
}

/// The client's view of a channel a module declares, or why it cannot be used: it must be
/// HTTPS, and a key the module pins must parse.
fn declared_source(
    name: &str,
    kind: Kind,
    url: &str,
    key: Option<&str>,
    extra_query: Option<String>,
) -> std::result::Result<Source, String> {
    let public_key = match key {
        Some(key) => {
            Some(PublicKey::parse(key).map_err(|e| format!("the module's publickey: {e}"))?)
        }
        None => None,
    };
    match Location::parse(url) {
        Ok(location @ Location::Url(_)) => Ok(Source {
            name: name.to_owned(),
            kind,
            location,
            public_key,
            extra_query,
        }),
        Ok(Location::Path(_)) => Err(format!(
            "`{url}`: a module may only declare https:// update channels"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The client's view of an administrator's source, or why it cannot be used.
fn admin_source(record: &SourceRecord, kind: Kind) -> std::result::Result<Source, String> {
    let public_key = match &record.public_key {
        Some(key) => Some(PublicKey::parse(key).map_err(|e| format!("the pinned key: {e}"))?),
        None => None,
    };
    Ok(Source {
        name: record.name.clone(),
        kind,
        location: Location::parse(&record.url).map_err(|e| e.to_string())?,
        public_key,
        extra_query: record.extra_query.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_source_never_shows_its_download_key() {
        let record = SourceRecord {
            name: "main".into(),
            url: "https://repo.example.org".into(),
            kind: "index".into(),
            public_key: None,
            extra_query: Some("email=a%40example.org&key=s3cret".into()),
        };
        let source = admin_source(&record, Kind::Index);
        for shown in [format!("{record:?}"), format!("{source:?}")] {
            assert!(
                !shown.contains("s3cret") && shown.contains("<redacted>"),
                "{shown}"
            );
        }
    }
}
