//! How a [`Host`] is set up once opened (its reporter, lock waiting, CA, stability and
//! platform), and where its root, package directory and configuration are.

use std::path::{Path, PathBuf};

use crate::Host;
use crate::config::Platform;
use crate::event::Reporter;

impl Host {
    /// Sends progress events to `reporter`, starting with what opening the root repaired
    /// ([`Event::Recovered`](crate::Event::Recovered): an interrupted change's leftovers
    /// removed before any reporter could be set), so that a repair is never silent.
    pub fn with_reporter(mut self, reporter: Box<dyn Reporter>) -> Self {
        self.reporter = reporter;
        if self.recovered_at_open.repaired() {
            self.report(crate::Event::Recovered {
                summary: self.recovered_at_open.to_string(),
            });
        }
        self
    }

    /// Whether a change waits for another process's change to finish (the default) or
    /// fails at once with [`Error::Locked`].
    pub fn wait_for_lock(mut self, wait: bool) -> Self {
        self.wait_for_lock = wait;
        self
    }

    /// Also trusts every CA certificate in `path` (PEM) for update sources, beside the
    /// public roots: how private repositories (and tests) are trusted.
    pub fn with_ca_cert(mut self, path: &Path) -> Self {
        self.ca_cert = Some(path.to_owned());
        self
    }

    /// Offers releases down to `stability` from update channels (default: stable only).
    pub fn with_stability(mut self, stability: modhost_update::Stability) -> Self {
        self.updates.stability = stability;
        self
    }

    /// Declares the host's platform facts, replacing those of the root's `modhost.toml`.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// The platform facts constraints are checked against.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The local package directory named by the root's `modhost.toml`, if any.
    pub fn package_dir(&self) -> Option<&Path> {
        self.packages.as_deref()
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// Where [`Host::reload`] writes the configuration the running modules build:
    /// `etc/extensions_modhost.conf` in the root. A change of the modules leaves it as it
    /// is until the next reload, as FreePBX's module admin leaves its configuration until
    /// "Apply Config".
    pub fn configuration(&self) -> PathBuf {
        self.layout.root.join("etc").join("extensions_modhost.conf")
    }
}
