//! Update sources: checking them, downloading verified packages, and installing or
//! upgrading from them without ever moving down or crossing sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modhost_manifest::Version;
use modhost_state::SourceRecord;
use modhost_update::{Client, DEFAULT_TIMEOUT, Entry, PublicKey, Source};
use serde::Serialize;

use crate::plan::Mode;
use crate::{Change, Error, Host, Options, Result};

/// A source as `modhost source list` shows it: the download key is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Its name.
    pub name: String,
    /// The repository URL.
    pub url: String,
    /// The pinned publisher key, if the source is signed.
    pub public_key: Option<String>,
    /// Whether a download key is stored.
    pub has_key: bool,
}

/// How an offered version relates to what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfferStatus {
    /// Not installed: `install --online` would install it.
    Available,
    /// Newer than the installed version, from the module's own source.
    Upgrade,
    /// The installed version.
    Current,
    /// Older than the installed version: reported, never installed.
    Downgrade,
    /// The module is installed from another source (or from a file): never replaced.
    OtherSource,
}

/// One module's newest version in one source.
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
}

/// What one source answered.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// The source.
    pub source: String,
    /// Why it could not be checked; the other sources are checked regardless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its offers, by rawname.
    pub offers: Vec<Offer>,
}

/// A source's report, with the index entry behind each of its offers (same order).
type Checked = (SourceReport, Vec<(Source, Entry)>);

impl Host {
    fn client(&self) -> Result<Client> {
        Ok(Client::new(self.ca_cert.as_deref(), DEFAULT_TIMEOUT)?)
    }

    fn source(&self, record: &SourceRecord) -> Result<Source> {
        let public_key = match &record.public_key {
            Some(key) => Some(
                PublicKey::parse(key)
                    .map_err(|e| Error::Refused(vec![format!("source `{}`: {e}", record.name)]))?,
            ),
            None => None,
        };
        Ok(Source {
            name: record.name.clone(),
            url: record.url.clone(),
            public_key,
            extra_query: record.extra_query.clone(),
        })
    }

    /// Adds (or replaces) update source `name` at `url`, which must be HTTPS. With a
    /// `public_key`, the source is signed: unsigned or badly signed indexes are refused.
    pub fn add_source(&self, name: &str, url: &str, public_key: Option<&str>) -> Result<()> {
        modhost_update::require_https(url)?;
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
        let mut txn = self.state.begin()?;
        txn.put_source(&SourceRecord {
            name: name.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
            public_key: public_key.map(str::to_owned),
            extra_query: None,
        })?;
        txn.commit()?;
        Ok(())
    }

    /// Removes update source `name`.
    pub fn remove_source(&self, name: &str) -> Result<()> {
        let _lock = self.lock()?;
        let mut txn = self.state.begin()?;
        if !txn.remove_source(name)? {
            return Err(Error::Refused(vec![format!("there is no source `{name}`")]));
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores the download key (`email=…&key=…`, say) appended to `name`'s package URLs.
    pub fn set_source_key(&self, name: &str, extra_query: &str) -> Result<()> {
        let _lock = self.lock()?;
        let mut record = self.source_record(name)?;
        record.extra_query = Some(extra_query.trim_start_matches('?').to_owned());
        let mut txn = self.state.begin()?;
        txn.put_source(&record)?;
        txn.commit()?;
        Ok(())
    }

    fn source_record(&self, name: &str) -> Result<SourceRecord> {
        self.state
            .sources()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::Refused(vec![format!("there is no source `{name}`")]))
    }

    /// The configured sources.
    pub fn sources(&self) -> Result<Vec<SourceInfo>> {
        Ok(self
            .state
            .sources()?
            .into_iter()
            .map(|s| SourceInfo {
                has_key: s.extra_query.is_some(),
                name: s.name,
                url: s.url,
                public_key: s.public_key,
            })
            .collect())
    }

    /// Asks every source what it offers. A source that is down, slow, or answers garbage
    /// or a bad signature is reported in its own entry; the others are checked regardless.
    pub fn check_online(&self) -> Result<Vec<SourceReport>> {
        Ok(self
            .offers()?
            .into_iter()
            .map(|(report, _)| report)
            .collect())
    }

    /// Each source's report with the index entries behind its offers.
    fn offers(&self) -> Result<Vec<Checked>> {
        let client = self.client()?;
        let mut reports = Vec::new();
        for record in self.state.sources()? {
            let source = self.source(&record)?;
            let index = match client.fetch_index(&source) {
                Ok(index) => index,
                Err(e) => {
                    reports.push((
                        SourceReport {
                            source: record.name.clone(),
                            error: Some(e.to_string()),
                            offers: Vec::new(),
                        },
                        Vec::new(),
                    ));
                    continue;
                }
            };
            let mut newest: BTreeMap<String, Entry> = BTreeMap::new();
            for entry in index.modules {
                let newer = newest.get(&entry.rawname).is_none_or(|known| {
                    matches!((Version::parse(&entry.version), Version::parse(&known.version)), (Ok(a), Ok(b)) if a > b)
                });
                if newer {
                    newest.insert(entry.rawname.clone(), entry);
                }
            }
            let mut offers = Vec::new();
            let mut entries = Vec::new();
            for entry in newest.into_values() {
                let installed = self.state.module(&entry.rawname)?;
                let from = self.state.module_source(&entry.rawname)?;
                let status = match &installed {
                    None => OfferStatus::Available,
                    Some(_) if from.as_deref() != Some(record.name.as_str()) => {
                        OfferStatus::OtherSource
                    }
                    Some(record) => match (
                        Version::parse(&entry.version),
                        Version::parse(&record.version),
                    ) {
                        (Ok(offered), Ok(current)) if offered > current => OfferStatus::Upgrade,
                        (Ok(offered), Ok(current)) if offered == current => OfferStatus::Current,
                        _ => OfferStatus::Downgrade,
                    },
                };
                offers.push(Offer {
                    rawname: entry.rawname.clone(),
                    version: entry.version.clone(),
                    installed: installed.map(|r| r.version),
                    status,
                    gated: entry.group.is_some(),
                });
                entries.push((source.clone(), entry));
            }
            reports.push((
                SourceReport {
                    source: record.name.clone(),
                    error: None,
                    offers,
                },
                entries,
            ));
        }
        Ok(reports)
    }

    /// Downloads the newest verified package of `rawname` from the first source offering it
    /// into `dir`.
    pub fn download(&self, rawname: &str, dir: &Path) -> Result<PathBuf> {
        let (source, entry) = self.find_entry(rawname, None)?;
        Ok(self.client()?.download(&source, &entry, dir)?)
    }

    fn find_entry(&self, rawname: &str, from: Option<&str>) -> Result<(Source, Entry)> {
        let mut reasons = Vec::new();
        for (report, entries) in self.offers()? {
            if let Some(error) = report.error {
                reasons.push(format!("source `{}`: {error}", report.source));
                continue;
            }
            if from.is_some_and(|f| f != report.source) {
                continue;
            }
            if let Some(found) = entries.into_iter().find(|(_, e)| e.rawname == rawname) {
                return Ok(found);
            }
        }
        reasons.push(format!("no source offers `{rawname}`"));
        Err(Error::Refused(reasons))
    }

    /// Installs modules from the sources that offer them: every package is downloaded and
    /// verified before anything changes, then installed as one unit, each recorded as
    /// coming from its source.
    pub fn install_online(&self, names: &[String], options: Options) -> Result<Vec<Change>> {
        let mut picked = Vec::new();
        for name in names {
            picked.push(self.find_entry(name, None)?);
        }
        self.apply_online(picked, Mode::Install, options)
    }

    /// Upgrades modules (all with an upgrade when `names` is empty) from the sources they
    /// were installed from. A lower version is never installed, and a module is never
    /// replaced by one of the same rawname from another source.
    pub fn upgrade_online(&self, names: &[String], options: Options) -> Result<Vec<Change>> {
        let mut picked = Vec::new();
        let mut reasons = Vec::new();
        let mut seen = Vec::new();
        for (report, entries) in self.offers()? {
            if let Some(error) = report.error {
                if names.is_empty() {
                    tracing::warn!("source `{}` skipped: {error}", report.source);
                } else {
                    reasons.push(format!("source `{}`: {error}", report.source));
                }
                continue;
            }
            for (offer, found) in report.offers.into_iter().zip(entries) {
                if !names.is_empty() && !names.contains(&offer.rawname) {
                    continue;
                }
                match offer.status {
                    OfferStatus::Upgrade => {
                        seen.push(offer.rawname.clone());
                        picked.push(found);
                    }
                    OfferStatus::Downgrade if !names.is_empty() => {
                        seen.push(offer.rawname.clone());
                        reasons.push(format!(
                            "`{}` {} is installed; source `{}` offers {}: a downgrade is never installed",
                            offer.rawname,
                            offer.installed.unwrap_or_default(),
                            report.source,
                            offer.version
                        ));
                    }
                    OfferStatus::Current if !names.is_empty() => seen.push(offer.rawname.clone()),
                    _ => {}
                }
            }
        }
        for name in names.iter().filter(|n| !seen.contains(n)) {
            reasons.push(format!(
                "no upgrade of `{name}` is offered by the source it was installed from"
            ));
        }
        if !reasons.is_empty() {
            return Err(Error::Refused(reasons));
        }
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        self.apply_online(picked, Mode::Upgrade, options)
    }

    fn apply_online(
        &self,
        picked: Vec<(Source, Entry)>,
        mode: Mode,
        options: Options,
    ) -> Result<Vec<Change>> {
        // Held from before the downloads: taking it later would run recovery, which sweeps
        // staging/, where the downloads are.
        let _lock = self.lock()?;
        let client = self.client()?;
        let downloads = self.layout.staging_dir()?;
        let mut packages = Vec::new();
        let mut origin = BTreeMap::new();
        for (source, entry) in &picked {
            self.reporter.report(crate::Event::Downloading {
                rawname: entry.rawname.clone(),
                version: entry.version.clone(),
                source: source.name.clone(),
            });
            packages.push(client.download(source, entry, downloads.path())?);
            origin.insert(entry.rawname.clone(), source.name.clone());
        }
        self.apply_locked(&packages, mode, options, &origin)
    }
}
