//! Update channels: the sources an administrator configures and the ones modules declare
//! (`<updateurl>`, `<updateservers>`); checking them, downloading verified packages, and
//! installing or upgrading from them without ever moving down or crossing sources.
//!
//! `sources.rs` says which channels there are, `offers.rs` what they offer,
//! `download.rs` fetches verified packages, and `apply.rs` applies what was chosen.

mod apply;
mod download;
mod keys;
mod offers;
mod sources;

pub(crate) use apply::{install_online, upgrade_online};
pub(crate) use download::{clear_stale_downloads, download, download_url};
pub(crate) use keys::{clear_source_key, set_source_key};
pub(crate) use offers::{check_online, check_upgrades};
pub(crate) use sources::{
    add_source, add_source_pinned, attach_source, remove_source, sources, warn_if_unpinned,
};

use modhost_manifest::Version;
use modhost_state::PinnedKey;
use modhost_update::{
    Client, DEFAULT_PLATFORM, DEFAULT_TIMEOUT, Kind, PublicKey, Release, Seen, Source, Target,
    Trust,
};
use serde::Serialize;

use crate::Result;
use crate::host::Host;

/// A channel as `modhost source list` shows it: the download key is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Its name: an administrator's source (`main`), or a module's channel
    /// (`phonebook/updateurl`, `phonebook/1` for its first `<updateservers>` server).
    pub name: String,
    /// Its format; `None` when the stored kind is not one this modhost reads, or the
    /// declaring module's module.xml cannot be read (checking the channel says which).
    pub kind: Option<Kind>,
    /// The URL or local path.
    pub url: String,
    /// Whether it pins a publisher key, so that its documents must be signed.
    pub signed: bool,
    /// The publisher keys it pins.
    pub public_keys: Vec<KeyInfo>,
    /// The highest release serial accepted from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// The latest signing time accepted from it, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
    /// Whether a download key is stored.
    pub has_key: bool,
    /// The module that declares this channel in its module.xml; `None` for an
    /// administrator's source.
    pub declared_by: Option<String>,
}

/// A publisher key a channel pins, as `source list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The minisign public key's base64 line.
    pub key: String,
    /// Its id, as minisign shows it.
    pub key_id: String,
    /// The id of the next key its publisher announced, pinned beside it until that one
    /// signs a release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_by: Option<String>,
}

impl KeyInfo {
    /// How `pinned` is shown.
    fn of(pinned: &PinnedKey) -> KeyInfo {
        let id = |key: &str| PublicKey::parse(key).map_or_else(|_| key.to_owned(), |k| k.key_id());
        KeyInfo {
            key: pinned.key.clone(),
            key_id: id(&pinned.key),
            succeeded_by: pinned.successor.as_deref().map(id),
        }
    }
}

/// How an offered version relates to what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfferStatus {
    /// Not installed: an online install would install it.
    Available,
    /// Newer than the installed version, from the module's own channel.
    Upgrade,
    /// The installed version.
    Current,
    /// Older than the installed version: reported, never installed.
    Downgrade,
    /// Newer than the installed version, from a channel the module is not updated from
    /// (another source's, or any for a module installed from a file): never installed
    /// over it unless the module is attached to that source.
    OtherSource,
    /// The release cannot be installed here: it does not support this host application's
    /// version (FreePBX `supported.version` above the root's `[platform] version`), or its
    /// package is published larger than a package may be. Never installed.
    NotApplicable,
    /// The channel gives no checksum for the package, so nothing could verify it: never
    /// downloaded.
    Unverifiable,
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
    /// Whether the source holds a download key it would send for the package (a key
    /// goes to the source's own server only): a gated offer without one cannot be
    /// downloaded until `Host::set_source_key` gives one.
    pub key_given: bool,
    /// Whether this channel updates the module: the one it is updated from, or any for a
    /// module not installed. Another channel's offer is never installed over it.
    pub own: bool,
    /// Whether attaching the module to this source would upgrade it: an
    /// [`OfferStatus::OtherSource`] offer newer than the installed version, which could be
    /// verified and suits this host.
    pub attachable: bool,
    /// What an administrator should know about it: only a legacy checksum vouches for
    /// its package, or why it is not applicable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Offer {
    /// Whether `showupgrades` shows it: an upgrade, an attachable one, or a newer or
    /// older version of an installed module that is held back (so that the administrator
    /// sees why nothing is upgraded).
    pub fn concerns_upgrades(&self) -> bool {
        match self.status {
            OfferStatus::Upgrade => true,
            // Newer versions held back, from any channel, and older ones from the module's
            // own (an older one elsewhere says nothing about upgrading).
            OfferStatus::NotApplicable | OfferStatus::Unverifiable => self.installed.is_some(),
            OfferStatus::Downgrade => self.installed.is_some() && self.own,
            OfferStatus::OtherSource => self.is_newer(),
            OfferStatus::Available | OfferStatus::Current => false,
        }
    }

    /// Whether the version offered is newer than the installed one.
    pub(crate) fn is_newer(&self) -> bool {
        let parse = |v: &str| modhost_manifest::Version::parse(v).ok();
        match (
            parse(&self.version),
            self.installed.as_deref().and_then(parse),
        ) {
            (Some(offered), Some(installed)) => offered > installed,
            _ => false,
        }
    }
}

/// What one channel answered.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// The channel's name.
    pub source: String,
    /// Why it could not be checked; the other channels are checked regardless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who signed its answer and what says it is current; `signed` is false for a
    /// channel pinning no key. Absent when it could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<Trust>,
    /// Its offers, by rawname.
    pub offers: Vec<Offer>,
    /// What it offers that is set aside (another platform, less stable than this host
    /// takes, no package modhost unpacks), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<modhost_update::SetAside>,
    /// Installed modules that take their updates from it and that it does not offer at
    /// all: attached to the wrong source, or dropped by its publisher.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_offered: Vec<String>,
}

/// A channel as configured or declared, or why it cannot be used.
struct Channel {
    name: String,
    /// The module that declares it.
    declared_by: Option<String>,
    source: std::result::Result<Source, String>,
    /// For [`SourceInfo`]: the configured URL and keys, as written.
    url: String,
    public_keys: Vec<PinnedKey>,
    kind: Option<Kind>,
    /// What was last accepted from it.
    seen: Seen,
    /// For an administrator's source of one module's document (a2, FreePBX), the module
    /// it offered when first accepted from its URL.
    offered: Option<String>,
}

/// How many channels are asked at once.
const PARALLEL_CHECKS: usize = 8;

/// A channel's report, with the release behind each of its offers (same order).
struct Checked {
    report: SourceReport,
    /// The module that declares the channel; `None` for an administrator's source.
    declared_by: Option<String>,
    releases: Vec<(Source, Release)>,
    /// What is kept of its answer once what it was asked for has succeeded.
    accepted: Option<offers::Accepted>,
    /// The one module it can offer, when that is known: a module's own channel offers that
    /// module, and a one-module document the module it offered when first accepted.
    only: Option<String>,
}

/// Whether a channel of `kind` announcing `announced` means `version`. FreePBX documents
/// are written by PHP's `json_encode`, which writes a version kept as a number without
/// its trailing zeros (16.0 as `16`, 16.10 as `16.1`): a FreePBX version that reads as
/// a number means any version of the same numeric value.
pub(crate) fn announces(kind: Kind, announced: &str, version: &Version) -> bool {
    if Version::parse(announced).is_ok_and(|a| a == *version) {
        return true;
    }
    let number = |text: &str| {
        let numeric = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && text.bytes().filter(|b| *b == b'.').count() <= 1;
        numeric.then(|| text.parse::<f64>().ok()).flatten()
    };
    kind == Kind::Freepbx
        && matches!(
            (number(announced), number(&version.to_string())),
            (Some(a), Some(b)) if a == b
        )
}

pub(crate) fn client(host: &Host) -> Result<Client> {
    let timeout = host
        .updates
        .timeout_secs
        .map_or(DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    let longest = modhost_update::MAX_TRANSFER_TIME;
    if timeout > longest {
        tracing::warn!(
            "[updates] timeout_secs is more than {} s, the longest a whole transfer may take: \
             {} s is waited",
            longest.as_secs(),
            longest.as_secs()
        );
    }
    // An interrupted change stops its downloads too: nothing of them is kept, and the
    // lock is not held while they run, so nothing waits for them to end.
    let interruption = host.interruption();
    Ok(Client::new(host.ca_cert.as_deref(), timeout)?
        .stopped_by(move || interruption.is_cancelled()))
}

pub(crate) fn target(host: &Host) -> Target {
    Target {
        platform: host
            .platform
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_PLATFORM.into()),
        version: host
            .platform
            .version
            .as_ref()
            .map(Version::to_string)
            .unwrap_or_default(),
        stability: host.updates.stability,
        php: host.platform.php.as_ref().and_then(|p| p.version.clone()),
    }
}

/// Whether module `name`, installed from source `bound` (`None`: from a file), is updated
/// from channel `channel` (declared by module `declared_by`, or an administrator's source).
pub(crate) fn updated_from(
    name: &str,
    bound: Option<&str>,
    channel: &str,
    declared_by: Option<&str>,
) -> bool {
    match bound {
        Some(source) => declared_by.is_none() && source == channel,
        None => declared_by == Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freepbx_version_php_wrote_as_a_number_means_the_same_numeric_version() {
        let version = |text: &str| Version::parse(text).unwrap_or_else(|e| panic!("{e}"));
        // `json_encode(16.0)` writes 16, `json_encode(16.10)` writes 16.1.
        assert!(announces(Kind::Freepbx, "16", &version("16.0")));
        assert!(announces(Kind::Freepbx, "16.1", &version("16.10")));
        assert!(announces(Kind::Freepbx, "16.0.40", &version("16.0.40")));
        assert!(!announces(Kind::Freepbx, "16", &version("16.0.1")));
        assert!(!announces(Kind::Freepbx, "16.1", &version("16.0.1")));
        // Other channels write versions as text: they must match exactly.
        assert!(!announces(Kind::Joomla, "16", &version("16.0")));
        assert!(announces(Kind::Joomla, "2.0.0", &version("2.0.0")));
    }
}
