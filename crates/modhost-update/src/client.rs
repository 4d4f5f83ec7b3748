//! The client: fetching what a source offers and downloading verified packages, over
//! HTTPS or from a local directory.

use std::path::Path;
use std::time::Duration;

use ureq::tls::TlsConfig;

use crate::checking::{Answer, Checking};
use crate::index::Index;
use crate::release::{Digests, Release, SetAside, Stability, Target};
use crate::source::{Kind, Source};
use crate::tls::roots;
use crate::{Error, Location, Result, a2, freepbx, joomla};

mod body;
mod busy;
mod download;
mod fetch;
mod key;

use body::read_local_bytes;

/// How long a server may stay silent (connecting, or between two reads) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a whole download may take, however steadily the server trickles.
pub const MAX_TRANSFER_TIME: Duration = Duration::from_secs(600);
/// The largest package downloaded unless the client is told otherwise, whatever size the
/// channel states.
pub const MAX_PACKAGE: u64 = 256 * 1024 * 1024;
/// The largest file of CA certificates read: the whole Mozilla set is about 250 KiB.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// How long the body of an answer other than 200 is read for a message it may hold.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);
/// How long [`Client::check`] waits before reading a source again whose documents looked
/// like two builds': a publish swaps its build in at once, so a short wait sees it done;
/// the longer ones outlast a publisher that rebuilds several times in a row. A source
/// really serving mixed documents is refused after about four seconds.
const REREAD_PAUSES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// An HTTPS client with bounded waits and sizes.
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
    /// The largest package downloaded, whatever size the channel states.
    max_package: u64,
    /// The proxy the environment names, which every request not excepted by `NO_PROXY`
    /// goes through: named in a failure, which may be the proxy's.
    proxy: Option<ureq::Proxy>,
    /// Asked between a transfer's steps: when it says stop, the transfer ends at once.
    stop: Option<Stop>,
}

/// What tells a client's transfers to stop.
type Stop = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    /// A client that trusts the public (Mozilla) roots, and also every certificate in
    /// the PEM file `ca_cert` when given — how private repositories and tests are trusted;
    /// verification is never turned off. A server silent for `timeout` is given up on;
    /// longer than [`MAX_TRANSFER_TIME`], which bounds a whole transfer, is taken as that.
    pub fn new(ca_cert: Option<&Path>, timeout: Duration) -> Result<Self> {
        let timeout = timeout.min(MAX_TRANSFER_TIME);
        let pem = match ca_cert {
            Some(path) => {
                let (body, bytes) = read_local_bytes(path, MAX_CA_FILE)?;
                if body.over {
                    return Err(Error::File {
                        path: path.to_owned(),
                        message: format!(
                            "larger than {} KiB: not a PEM file of certificates",
                            MAX_CA_FILE / 1024
                        ),
                    });
                }
                Some((path, bytes))
            }
            None => None,
        };
        let roots = roots(pem.as_ref().map(|(path, pem)| (*path, pem.as_slice())))?;
        // As curl and apt read them: `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` (or in lower
        // case), and `NO_PROXY` for hosts reached directly.
        let proxy = ureq::Proxy::try_from_env();
        let config = ureq::Agent::config_builder()
            .proxy(proxy.clone())
            .https_only(true)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            // A head trickled a byte at a time is never silent for a read's timeout, and
            // the body's pace (see `Pace`) does not see it: each has a bound of its own.
            .timeout_send_request(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_global(Some(MAX_TRANSFER_TIME))
            // Named as itself, as apt and FreePBX's updater are: a publisher's logs tell
            // modhost's requests from a script's.
            .user_agent(concat!("modhost/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            timeout,
            max_package: MAX_PACKAGE,
            proxy,
            stop: None,
        })
    }

    /// Asks `stop` between the steps of every transfer (each chunk read, each redirect
    /// or wait for a busy server): once it says stop, the transfer ends with
    /// [`Error::Stopped`] rather than run on for as long as the server takes. An
    /// interrupted command then ends within a read's timeout, not a download's.
    pub fn stopped_by(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stop = Some(std::sync::Arc::new(stop));
        self
    }

    /// [`Error::Stopped`] for `url` if the client's stop says so.
    fn check_stop(&self, url: &str) -> Result<()> {
        match &self.stop {
            Some(stop) if stop() => Err(Error::Stopped {
                url: url.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Sets the largest package downloaded, whatever size its channel states
    /// ([`MAX_PACKAGE`] unless changed).
    pub fn max_package(mut self, bytes: u64) -> Self {
        self.max_package = bytes;
        self
    }

    /// What `source` offers: every release it lists (of `rawname` only, when given) that
    /// suits `target`. Documents are verified (signature, freshness, format, fields)
    /// first.
    pub fn releases(
        &self,
        source: &Source,
        rawname: Option<&str>,
        target: &Target,
    ) -> Result<Vec<Release>> {
        self.check(source, rawname, target)
            .map(|answer| answer.releases)
    }

    /// What `source` offers, as [`Client::releases`], with what vouches for it. A signed
    /// modhost repository's release document is read first: an older serial than
    /// `source.seen`'s is a rollback, a release past its validity end a freeze, and its
    /// index must be the one the release names. A single-document channel's signature
    /// must name its path, and a signing time older than `source.seen`'s is a rollback.
    ///
    /// A client reading while the publisher swaps in a new build may read a document and
    /// its signature, or the release and the index, from two builds: what that looks like
    /// ([`Refusal::torn`]) is read again, after a pause, before it is refused — a publish
    /// is over by then, and a document really mixed or changed stays so — while the
    /// readings so far took less than the timeout.
    pub fn check(&self, source: &Source, rawname: Option<&str>, target: &Target) -> Result<Answer> {
        let mut pauses = REREAD_PAUSES.iter();
        let started = std::time::Instant::now();
        loop {
            match self.check_once(source, rawname, target) {
                Err(Error::Refused { refusal, .. }) if refusal.torn() => {
                    // Only while reading is quick, as a publish race is: a server that
                    // answers slowly and mixed would have every reading take its time.
                    let quick = started.elapsed() < self.timeout;
                    if let Some(pause) = pauses.next().filter(|_| quick) {
                        tracing::debug!(source = %source.name, "read again: {refusal}");
                        std::thread::sleep(*pause);
                        continue;
                    }
                    return Err(Error::Refused {
                        source_name: source.name.clone(),
                        refusal,
                    });
                }
                answer => return answer,
            }
        }
    }

    /// One reading of `source`, as [`Client::check`] describes it.
    fn check_once(
        &self,
        source: &Source,
        rawname: Option<&str>,
        target: &Target,
    ) -> Result<Answer> {
        let invalid = |location: &Location| {
            let url = location.to_string();
            move |message: String| Error::Invalid { url, message }
        };
        let mut checking = Checking::new(self, source);
        let mut set_aside = Vec::new();
        let releases = match source.kind {
            Kind::Index => {
                checking.release_document()?;
                let doc = source.location.join(crate::index::FILE);
                let (bytes, _) = checking.document(&doc, Some(crate::index::FILE))?;
                let index = Index::parse(&bytes).map_err(invalid(&doc))?;
                set_aside.extend(index.malformed);
                index
                    .modules
                    .into_iter()
                    .map(|entry| {
                        let mut digests = Digests::default();
                        if !entry.sha256.is_empty() {
                            digests
                                .set("sha256", &entry.sha256)
                                .map_err(invalid(&doc))?;
                        }
                        Ok(Release {
                            location: source.location.join("packages").join(&entry.file),
                            document: Some(doc.clone()),
                            rawname: entry.rawname,
                            name: entry.name,
                            version: entry.version,
                            size: Some(entry.size),
                            digests,
                            gated: entry.group.is_some(),
                            supported: None,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            // A document's relative references are resolved against where it was found.
            Kind::A2 => {
                // a2 itself names the document `a2modsource.json`: read where there is no
                // `modsource.json`.
                let ours = source.location.join(a2::INDEX);
                let theirs = source.location.join(a2::A2_INDEX);
                let only_theirs = matches!((&ours, &theirs),
                    (Location::Path(ours), Location::Path(theirs))
                        if !ours.exists() && theirs.exists());
                let (doc, fetched) = match only_theirs {
                    true => (theirs.clone(), checking.document(&theirs, None)),
                    false => match checking.document(&ours, None) {
                        Err(missing @ Error::Missing { .. }) => {
                            match checking.document(&theirs, None) {
                                Err(Error::Missing { .. }) => (ours, Err(missing)),
                                fetched => (theirs, fetched),
                            }
                        }
                        fetched => (ours, fetched),
                    },
                };
                let (bytes, found) = fetched?;
                vec![a2::parse(&bytes, &found).map_err(invalid(&doc))?]
            }
            Kind::Freepbx => {
                let (bytes, found) = checking.document(&source.location, None)?;
                vec![freepbx::parse(&bytes, &found).map_err(invalid(&source.location))?]
            }
            Kind::Joomla => {
                let (bytes, found) = checking.document(&source.location, None)?;
                let (releases, aside) = joomla::parse(&bytes, &found, rawname, target)
                    .map_err(invalid(&source.location))?;
                set_aside = aside;
                releases
            }
        };
        // A module's own channel offers that module only. An index or a Joomla feed lists
        // many; a document of one release (a2, FreePBX) naming another module is a
        // mistake or a trick, and is said.
        let (releases, others): (Vec<Release>, Vec<Release>) = releases
            .into_iter()
            .partition(|r| rawname.is_none_or(|name| r.rawname == name));
        if let Some(own) = rawname.filter(|_| source.kind.one_module()) {
            set_aside.extend(others.into_iter().map(|r| SetAside {
                reason: format!(
                    "it is in a channel of module `{own}`, which offers that module's \
                     updates only"
                ),
                rawname: r.rawname,
                version: r.version,
            }));
        }
        // Joomla tags its updates; elsewhere the version's pre-release word says.
        let (releases, unstable): (Vec<Release>, Vec<Release>) =
            releases.into_iter().partition(|r| {
                source.kind == Kind::Joomla || Stability::of_version(&r.version) >= target.stability
            });
        set_aside.extend(unstable.into_iter().map(|r| SetAside {
            reason: format!(
                "its version makes it a {} release, less stable than the {} releases this \
                 host takes",
                Stability::of_version(&r.version).tag(),
                target.stability.tag()
            ),
            rawname: r.rawname,
            version: r.version,
        }));
        // A signature vouches for the package only through the checksum it covers: with
        // MD5 or SHA-1 alone, a colliding package would pass under the publisher's name.
        if source.signed()
            && let Some(weak) = releases.iter().find(|r| !r.digests.has_sha2())
        {
            return Err(Error::Untrusted {
                source_name: source.name.clone(),
                message: format!(
                    "the source is signed, but its document gives no sha256 for `{}` {}: a \
                     signature vouches for a package only through a SHA-2 checksum",
                    weak.rawname, weak.version
                ),
            });
        }
        Ok(checking.answer(releases, set_aside))
    }
}

#[cfg(test)]
mod tests;
