//! Progress events: what the host is doing, for the application to draw.

use std::path::PathBuf;

use modhost_runtime::Origin;

/// Something the host is doing, for progress display. Only the application draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Another process holds the root's lock; this one waits for it.
    Waiting {
        /// The lock file.
        lock: PathBuf,
        /// The process holding it, as it wrote itself in the file.
        holder: Option<u32>,
    },
    /// Leftovers of an interrupted change were cleaned up.
    Recovered {
        /// What was done.
        summary: String,
    },
    /// A package is being unpacked and checked.
    Unpacking {
        /// The package file.
        package: PathBuf,
    },
    /// A component is being loaded: mapped from the cache, or compiled (seconds for a
    /// large one), which [`Event::Loaded`] then tells.
    Loading {
        /// The module.
        rawname: String,
    },
    /// A component was loaded, compiled now or mapped from the cache.
    Loaded {
        /// The module.
        rawname: String,
        /// Where its machine code came from.
        origin: Origin,
    },
    /// A module asks for a capability; it exists in the sandbox only if granted.
    Requests {
        /// The module.
        rawname: String,
        /// What it asks for.
        capability: String,
        /// Whether it was granted.
        granted: bool,
    },
    /// Something an administrator should know that does not stop the change: a module.xml
    /// warning, or a dependency on a platform fact nobody declared (so it was not checked).
    Warning {
        /// The module.
        rawname: String,
        /// What to know.
        message: String,
    },
    /// A grant was taken back or narrowed because the module's new version no longer asks
    /// for it (or asks for less).
    Revoked {
        /// The module.
        rawname: String,
        /// What it no longer has.
        capability: String,
    },
    /// A module being installed from a source needs another that nobody installed, which
    /// comes along from `source`.
    Requires {
        /// The module being installed.
        rawname: String,
        /// The module it needs.
        dependency: String,
        /// The source it comes from.
        source: String,
    },
    /// A package is being downloaded and verified.
    Downloading {
        /// The module.
        rawname: String,
        /// The version.
        version: String,
        /// The source.
        source: String,
    },
    /// Part of a download has arrived.
    Progress {
        /// The module.
        rawname: String,
        /// Bytes received so far.
        received: u64,
        /// The package's size, when the channel states it.
        total: Option<u64>,
    },
    /// A download finished and its size and checksums matched.
    Verified {
        /// The module.
        rawname: String,
        /// The package's size.
        bytes: u64,
    },
    /// A package's version is installed already, so its module is left as it is.
    Unchanged {
        /// The module.
        rawname: String,
        /// The installed version.
        version: String,
        /// What of the package differs from the installed module, if anything:
        /// `component`, `module.xml`, or `component and module.xml`. The author changed it
        /// without raising `<version>`, which an upgrade would need.
        differs: Option<&'static str>,
    },
    /// A module asked to be enabled (or disabled) already was, and is left as it is.
    AlreadyIn {
        /// The module.
        rawname: String,
        /// Its status, which is the one asked for.
        status: modhost_state::Status,
    },
    /// A module's lifecycle call is running.
    Running {
        /// What is being done: `Installing`, `Upgrading`, `Uninstalling`, `Enabling`,
        /// `Disabling`, `Deleting`, `Rolling back`.
        verb: &'static str,
        /// The module.
        rawname: String,
        /// The version concerned.
        version: String,
    },
}

/// Receives [`Event`]s as the host works.
pub trait Reporter: Send + Sync {
    /// Called for each event, in order.
    fn report(&self, event: Event);
}

/// The reporter of a host nobody listens to.
pub(crate) struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event) {}
}
