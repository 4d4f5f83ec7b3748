//! modhost: a module host a PBX application embeds.
//!
//! A [`Host`] owns a *root* directory: the SQLite state database, the installed modules'
//! files, each module's data directory, and the cache of compiled components. Modules are
//! packages (`pkg.tgz`) holding a FreePBX-style module.xml and a WebAssembly component
//! built against modhost's WIT contract; the host runs their lifecycle calls in a sandbox.
//!
//! Every change is a transaction. New files are written beside the old ones, the module's
//! schema and lifecycle call run inside one SQLite transaction, and its commit switches
//! the module to the new files. A failure rolls everything back; a crash leaves either
//! the old or the new version, and the next change (or [`Host::recover`]) sweeps the
//! leftovers. One process changes a root at a time; readers are never blocked.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let host = modhost::Host::open(Path::new("/var/lib/modhost"))?;
//! host.install(&[Path::new("core-16.0.40.tgz").to_owned()], modhost::Options::default())?;
//! for module in host.list()? {
//!     println!("{} {} {}", module.rawname, module.version, module.status);
//! }
//! # Ok::<(), modhost::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The module.xml model in full (hooks, methods, database, menu items…), for embedders
/// that read more of a [`Manifest`] than its commonest types.
pub use modhost_manifest as manifest;
pub use modhost_manifest::{Capability, Manifest, ModuleDependency, Op, Version};
pub use modhost_package::pack;
pub use modhost_runtime::{Limits, Origin, SUPPORTED_API_VERSIONS};
pub use modhost_state::{ModuleRecord, Rows, SqlValue, Status};
pub use modhost_update::{Kind as SourceKind, Stability};

mod config;
mod depends;
mod dispatch;
mod error;
mod fault;
mod layout;
mod lock;
mod online;
mod packages;
mod plan;
mod recover;

pub use config::{Engine, Php, Platform};
pub use depends::{Check, DependencyReport, Outcome};
pub use dispatch::{Dispatch, FailureKind, HookCall, HookPoint, OnError, Shape};
pub use error::Error;
pub use online::{Offer, OfferStatus, SourceInfo, SourceReport};
pub use packages::{Available, Scan, ScanEntry, Unreadable};
pub use recover::Recovery;

use dispatch::Dispatcher;
use layout::{Layout, io};
use lock::RootLock;
use modhost_package::Unpacked;
use modhost_runtime::{Call, CallContext, LoadedComponent, Mount, Runtime};
use modhost_state::{State, Txn};
use plan::{Action, Mode};

/// The result type of the embedding API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads and parses a module.xml without installing anything: `path` is a package, a
/// module directory, or the module.xml itself.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    if path.is_dir() {
        return read_manifest(&path.join("module.xml"));
    }
    let is_xml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    if !is_xml {
        return Ok(modhost_package::read_manifest(path, &Default::default())?);
    }
    // No more than the parser accepts, so a huge file is refused without being read whole.
    // Bytes, not a string: a file that is not UTF-8 gets the line and column of its first
    // bad byte, and the encoding it declares, from the parser.
    let mut source = Vec::new();
    fs_err::File::open(path)
        .and_then(|file| {
            use std::io::Read as _;
            file.take(modhost_manifest::MAX_SIZE as u64 + 1)
                .read_to_end(&mut source)
        })
        .map_err(io(path))?;
    Ok(Manifest::parse_bytes(&source, &path.display().to_string())?)
}

/// Something the host is doing, for progress display. Only the application draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Another process holds the root's lock; this one waits for it.
    Waiting {
        /// The lock file.
        lock: PathBuf,
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

struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event) {}
}

/// What a change did to one module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The module.
    pub rawname: String,
    /// `installed`, `upgraded`, `uninstalled`, `deleted`, `enabled`, `disabled` or
    /// `rolled-back`.
    pub action: &'static str,
    /// The version before, if there was one.
    pub from: Option<String>,
    /// The version after, if the module is still installed.
    pub to: Option<String>,
    /// The host directories its module.xml asks for (installs and upgrades), each with
    /// whether it is granted now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Request>,
    /// What the change accepted but an administrator should know (module.xml warnings,
    /// platform facts nobody declared, a package only a weak checksum vouched for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A host directory a module asks for in `<capabilities>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// The directory.
    pub path: String,
    /// Whether the module asks only to read it.
    pub read_only: bool,
    /// Whether the administrator granted it: until then it does not exist in the sandbox.
    pub granted: bool,
}

/// A module the package directory holds a package of, that is not installed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotInstalled {
    /// The module's rawname.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The package's version.
    pub version: String,
    /// Always [`Status::NotInstalled`]: there so that every line of `list` has one.
    pub status: Status,
    /// Where the package is.
    pub reason: String,
    /// The package file.
    pub package: PathBuf,
}

/// One line of `list`: an installed module, or one the package directory offers.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Listed {
    /// A module with a record.
    Installed(ModuleRecord),
    /// A package nobody installed.
    NotInstalled(NotInstalled),
}

impl Listed {
    /// The module's rawname, name, version, status and the reason for the status.
    pub fn summary(&self) -> (&str, &str, &str, Status, Option<&str>) {
        match self {
            Listed::Installed(r) => (
                &r.rawname,
                &r.name,
                &r.version,
                r.status,
                r.reason.as_deref(),
            ),
            Listed::NotInstalled(n) => (
                &n.rawname,
                &n.name,
                &n.version,
                n.status,
                Some(n.reason.as_str()),
            ),
        }
    }
}

/// Everything known about an installed module.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModuleInfo {
    /// Its record.
    #[serde(flatten)]
    pub record: ModuleRecord,
    /// Its module.xml.
    pub manifest: Manifest,
    /// The version a rollback returns to, if one is kept.
    pub backup_version: Option<String>,
    /// The tables it owns.
    pub tables: Vec<String>,
    /// The running modules that depend on it.
    pub dependents: Vec<String>,
    /// The host directories it was granted (its `<capabilities>` say what it asks for).
    pub grants: Vec<Grant>,
    /// The update source it was installed from, which alone updates it.
    pub source: Option<String>,
}

/// A host directory a module was granted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The directory, as its module.xml names it (and as the module sees it).
    pub path: String,
    /// Whether the module may only read it.
    pub read_only: bool,
}

/// A modhost root, opened.
pub struct Host {
    layout: Layout,
    platform: Platform,
    packages: Option<PathBuf>,
    state: State,
    runtime: Arc<Runtime>,
    dispatcher: Arc<Dispatcher>,
    reporter: Box<dyn Reporter>,
    wait_for_lock: bool,
    /// The extra CA trusted for update sources (`--ca-cert`, or `ca_cert` in modhost.toml).
    ca_cert: Option<PathBuf>,
    /// How update channels are read (`[updates]` in modhost.toml).
    updates: config::UpdatesConfig,
    /// What opening the root repaired, so that [`Host::recover`] can report it too.
    recovered_at_open: Recovery,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("root", &self.layout.root)
            .finish()
    }
}

impl Host {
    /// Opens the root at `root`, creating it on first use, with the sandbox limits of its
    /// `modhost.toml` (or the defaults).
    pub fn open(root: &Path) -> Result<Self> {
        Host::open_inner(root, None)
    }

    /// Opens the root at `root` with the given sandbox limits.
    pub fn open_with(root: &Path, limits: Limits) -> Result<Self> {
        limits.check()?;
        Host::open_inner(root, Some(limits))
    }

    /// If no other process is changing the root, leftovers of an interrupted change are
    /// cleaned up first.
    fn open_inner(root: &Path, limits: Option<Limits>) -> Result<Self> {
        let layout = Layout::create(root)?;
        let config = config::Config::load(&layout.config())?;
        let limits = limits.unwrap_or_else(|| config.limits.apply(Limits::default()));
        let state = State::open_capped(&layout.database(), config.state.max_size())?;
        let runtime = Arc::new(Runtime::new(&layout.cache())?);
        let dispatcher =
            Dispatcher::new(Arc::clone(&runtime), state.clone(), layout.clone(), limits);
        for point in config.hook_points(limits) {
            dispatcher.declare(point);
        }
        let host = Host {
            layout,
            platform: config.platform,
            packages: config.packages,
            state,
            runtime,
            dispatcher,
            reporter: Box::new(Silent),
            wait_for_lock: true,
            ca_cert: config.ca_cert.clone(),
            updates: config.updates,
            recovered_at_open: Recovery::default(),
        };
        let recovered_at_open = match RootLock::try_acquire(&host.layout.lock())? {
            Some(_lock) => recover::run(&host.layout, &host.state, recover::Check::Present)?,
            None => Recovery::default(),
        };
        Ok(Host {
            recovered_at_open,
            ..host
        })
    }

    /// Sends progress events to `reporter`.
    pub fn with_reporter(mut self, reporter: Box<dyn Reporter>) -> Self {
        self.reporter = reporter;
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

    /// Every installed module, by rawname.
    pub fn list(&self) -> Result<Vec<ModuleRecord>> {
        Ok(self.state.modules()?)
    }

    /// Every installed module and, after them in rawname order, every module the package
    /// directory `from` (default: the configured one) offers that is not installed.
    pub fn list_all(&self, from: Option<&Path>) -> Result<Vec<Listed>> {
        let installed = self.state.modules()?;
        let offered = self.offered(from, &installed)?;
        let mut listed: Vec<Listed> = installed.into_iter().map(Listed::Installed).collect();
        listed.extend(offered.into_iter().map(Listed::NotInstalled));
        Ok(listed)
    }

    /// The modules package directory `from` (default: the configured one) holds packages
    /// of and that are not installed: their status is `not-installed`. Empty without a
    /// package directory.
    pub fn not_installed(&self, from: Option<&Path>) -> Result<Vec<NotInstalled>> {
        self.offered(from, &self.state.modules()?)
    }

    /// What [`Host::not_installed`] returns, given the installed modules.
    fn offered(
        &self,
        from: Option<&Path>,
        installed: &[ModuleRecord],
    ) -> Result<Vec<NotInstalled>> {
        let Some(dir) = from.or(self.packages.as_deref()) else {
            return Ok(Vec::new());
        };
        Ok(packages::newest(dir)?
            .into_values()
            .filter(|(_, manifest)| !installed.iter().any(|r| r.rawname == manifest.rawname))
            .map(|(package, manifest)| NotInstalled {
                reason: format!("package `{}`", package.display()),
                rawname: manifest.rawname,
                name: manifest.name,
                version: manifest.version.to_string(),
                status: Status::NotInstalled,
                package,
            })
            .collect())
    }

    /// The installed module `rawname`, if any.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        Ok(self.state.module(rawname)?)
    }

    /// Everything known about installed module `rawname`.
    pub fn info(&self, rawname: &str) -> Result<ModuleInfo> {
        let record = self.installed(rawname)?;
        Ok(ModuleInfo {
            manifest: plan::manifest_of(&record)?,
            backup_version: self.state.backup(rawname)?.map(|b| b.record.version),
            tables: self.state.tables(rawname)?,
            dependents: plan::dependents(rawname, &self.state.modules()?)?,
            grants: self
                .state
                .grants(rawname)?
                .into_iter()
                .map(|(path, read_only)| Grant { path, read_only })
                .collect(),
            source: self.state.module_source(rawname)?,
            record,
        })
    }

    /// The entries of an installed module's key-value store.
    pub fn kv_entries(&self, rawname: &str) -> Result<Vec<(String, String)>> {
        self.installed(rawname)?;
        Ok(self.state.kv_entries(rawname)?)
    }

    /// The rows of a table an installed module owns.
    pub fn table_rows(&self, rawname: &str, table: &str) -> Result<Rows> {
        self.installed(rawname)?;
        Ok(self.state.table_rows(rawname, table)?)
    }

    /// The module.xml of installed module `rawname`.
    pub fn installed_manifest(&self, rawname: &str) -> Result<Manifest> {
        plan::manifest_of(&self.installed(rawname)?)
    }

    /// The running modules that depend on `rawname`.
    pub fn reverse_dependencies(&self, rawname: &str) -> Result<Vec<String>> {
        self.installed(rawname)?;
        plan::dependents(rawname, &self.state.modules()?)
    }

    /// Checks every constraint of `manifest` against the installed modules and the
    /// platform, without changing anything.
    pub fn check_depends(&self, manifest: &Manifest) -> Result<DependencyReport> {
        let installed = self.state.modules()?;
        let packaged = self.packaged(&[manifest], &installed);
        let available = depends::available(&installed, &packaged);
        Ok(depends::check(manifest, &available, &self.platform))
    }

    /// Reports what a change accepts but an administrator should know: module.xml
    /// warnings, and dependencies on platform facts nobody declared, which therefore went
    /// unchecked. Returns them too, for the change's record.
    fn warn_about(&self, manifest: &Manifest) -> Vec<String> {
        let mut warnings: Vec<String> = manifest
            .warnings
            .iter()
            .map(|problem| format!("module.xml {problem}"))
            .collect();
        // Only platform facts go unchecked, so no module needs to be looked up (the plan
        // has checked those already).
        for check in depends::check(manifest, &BTreeMap::new(), &self.platform)
            .checks
            .into_iter()
            .filter(|c| c.outcome == Outcome::Unchecked)
        {
            warnings.push(format!(
                "{} `{}` was not checked: {} (declare it under [platform] in modhost.toml)",
                check.kind, check.constraint, check.detail
            ));
        }
        for message in &warnings {
            self.reporter.report(Event::Warning {
                rawname: manifest.rawname.clone(),
                message: message.clone(),
            });
        }
        warnings
    }

    /// What the package directory holds of the modules `manifests` require but nobody
    /// installed, so that a refusal can tell "not installed" from "not present at all".
    /// Empty without a package directory; the directory is read only when something is
    /// missing.
    fn packaged(
        &self,
        manifests: &[&Manifest],
        installed: &[ModuleRecord],
    ) -> BTreeMap<String, Option<Version>> {
        let missing = depends::missing(manifests, installed);
        let Some(dir) = self.packages.as_deref().filter(|_| !missing.is_empty()) else {
            return BTreeMap::new();
        };
        let mut found = match packages::newest(dir) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("cannot read the package directory: {e}");
                return BTreeMap::new();
            }
        };
        missing
            .into_iter()
            .map(|name| {
                let version = found.remove(&name).map(|(_, manifest)| manifest.version);
                (name, version)
            })
            .collect()
    }

    fn installed(&self, rawname: &str) -> Result<ModuleRecord> {
        self.state
            .module(rawname)?
            .ok_or_else(|| Error::NotInstalled(rawname.to_owned()))
    }

    /// Takes the root's lock and sweeps leftovers of interrupted changes.
    fn lock(&self) -> Result<RootLock> {
        let path = self.layout.lock();
        let lock = RootLock::acquire(&path, self.wait_for_lock, || {
            self.reporter.report(Event::Waiting { lock: path.clone() });
        })?;
        self.recover_locked(recover::Check::Present)?;
        Ok(lock)
    }

    /// Repairs the root after a crash: removes what no record points at and marks
    /// modules whose files are gone as broken. Includes what opening the root repaired.
    pub fn recover(&self) -> Result<Recovery> {
        let path = self.layout.lock();
        let _lock = RootLock::acquire(&path, self.wait_for_lock, || {
            self.reporter.report(Event::Waiting { lock: path.clone() });
        })?;
        let mut recovery = self.recovered_at_open.clone();
        let now = self.recover_locked(recover::Check::Digest)?;
        recovery.removed.extend(now.removed);
        recovery.broken.extend(now.broken);
        Ok(recovery)
    }

    fn recover_locked(&self, check: recover::Check) -> Result<Recovery> {
        let recovery = recover::run(&self.layout, &self.state, check)?;
        if !recovery.is_empty() {
            self.reporter.report(Event::Recovered {
                summary: recovery.to_string(),
            });
        }
        Ok(recovery)
    }

    /// Loads the component of `package`, unpacked, telling the reporter: compiling a new
    /// component takes seconds.
    fn load_unpacked(&self, package: &Path, unpacked: &Unpacked) -> Result<LoadedComponent> {
        let rawname = &unpacked.manifest.rawname;
        self.reporter.report(Event::Loading {
            rawname: rawname.clone(),
        });
        let component = self
            .runtime
            .load(&unpacked.component, None)
            .map_err(|e| in_package(e, package, unpacked))?;
        self.reporter.report(Event::Loaded {
            rawname: rawname.clone(),
            origin: component.origin(),
        });
        Ok(component)
    }

    /// Loads the component of an installed version.
    fn component(&self, record: &ModuleRecord) -> Result<LoadedComponent> {
        let manifest = plan::manifest_of(record)?;
        let path = self
            .layout
            .module_dir(&record.rawname, &record.module_dir)
            .join(&manifest.component);
        let component = self.runtime.load(&path, Some(&record.component_sha256))?;
        self.reporter.report(Event::Loaded {
            rawname: record.rawname.clone(),
            origin: component.origin(),
        });
        Ok(component)
    }

    /// Runs one lifecycle call inside `txn`; the transaction comes back only on success.
    fn run(
        &self,
        component: &LoadedComponent,
        rawname: &str,
        version: &str,
        data_dir: PathBuf,
        txn: Txn,
        call: &Call,
    ) -> Result<Txn> {
        let mounts: Vec<Mount> = txn
            .grants(rawname)?
            .into_iter()
            .map(|(path, read_only)| Mount {
                path: path.into(),
                read_only,
            })
            .collect();
        let context = CallContext {
            rawname,
            version,
            data_dir: &data_dir,
            mounts: &mounts,
            session: modhost_state::Session::over(txn),
            limits: self.dispatcher.limits(),
            deadline: None,
            fire: self.dispatcher.as_fire(),
            depth: 0,
        };
        let (result, session) = self.runtime.call(component, context, call);
        result?;
        session.into_txn().ok_or_else(|| {
            Error::Refused(vec![format!("`{rawname}`: the call lost its transaction")])
        })
    }

    fn running(&self, verb: &'static str, rawname: &str, version: &str) {
        self.reporter.report(Event::Running {
            verb,
            rawname: rawname.to_owned(),
            version: version.to_owned(),
        });
    }

    /// Installs packages as one unit; a package whose module is installed at a lower
    /// version upgrades it. A module directory (module.xml beside its component) may
    /// stand for a package: it is packed first and passes the same checks. See [`Host::upgrade`] for what "one unit" guarantees.
    pub fn install(&self, packages: &[PathBuf], options: Options) -> Result<Vec<Change>> {
        self.apply(packages, Mode::Install, options, &Default::default())
    }

    /// Upgrades installed modules from packages, as one unit: every package is unpacked
    /// and checked, the whole plan's dependencies resolved and every component compiled
    /// before anything changes; then, dependencies first and inside one transaction, each
    /// module's schema is applied and its `install()` or `upgrade()` runs against new
    /// copies of its files and data. The replaced version is kept as the backup. If any
    /// step fails, nothing changes. `force` skips dependency checks, never safety checks.
    pub fn upgrade(&self, packages: &[PathBuf], options: Options) -> Result<Vec<Change>> {
        self.apply(packages, Mode::Upgrade, options, &Default::default())
    }

    fn apply(
        &self,
        packages: &[PathBuf],
        mode: Mode,
        options: Options,
        origin: &BTreeMap<String, String>,
    ) -> Result<Vec<Change>> {
        let _lock = self.lock()?;
        self.apply_locked(packages, mode, options, origin)
    }

    /// [`Host::apply`] for a caller that already holds the root's lock.
    fn apply_locked(
        &self,
        packages: &[PathBuf],
        mode: Mode,
        options: Options,
        origin: &BTreeMap<String, String>,
    ) -> Result<Vec<Change>> {
        let mut staged = Vec::new();
        for package in packages {
            self.reporter.report(Event::Unpacking {
                package: package.clone(),
            });
            staged.push(self.stage(package)?);
        }
        let manifests: Vec<&Manifest> = staged.iter().map(|s| &s.unpacked.manifest).collect();
        let installed = self.state.modules()?;
        let plan = plan::plan(
            &manifests,
            &installed,
            &self.packaged(&manifests, &installed),
            &self.platform,
            mode,
            options.force,
        )?;
        let mut components = Vec::with_capacity(plan.len());
        let mut warned = Vec::with_capacity(plan.len());
        let mut applied = Ok(());
        for (index, _) in &plan {
            let unpacked = &staged[*index].unpacked;
            warned.push(self.warn_about(&unpacked.manifest));
            match self.load_unpacked(&packages[*index], unpacked) {
                Ok(component) => components.push(component),
                Err(e) => {
                    applied = Err(e);
                    break;
                }
            }
        }
        let applied = applied
            .and_then(|()| self.apply_plan(plan, &staged, &components, warned, options, origin));
        if applied.is_err() {
            // A change that failed leaves no trace, not even the code it compiled.
            self.forget_compiled_now(&components);
        }
        applied
    }

    /// Carries out `plan` over the staged packages and their loaded components, in one
    /// transaction: [`Host::apply_locked`] once everything is checked and compiled.
    fn apply_plan(
        &self,
        plan: plan::Plan,
        staged: &[Staged],
        components: &[LoadedComponent],
        warned: Vec<Vec<String>>,
        options: Options,
        origin: &BTreeMap<String, String>,
    ) -> Result<Vec<Change>> {
        let mut left = Vec::new();
        for (_, action) in &plan {
            if let Action::Upgrade(previous) = action {
                left.extend(self.digests_of(&previous.rawname)?);
            }
        }
        let mut created = Created::default();
        let mut superseded = Vec::new();
        let mut changes = Vec::new();
        let mut txn = self.state.begin()?;
        for (((index, action), component), warnings) in plan.into_iter().zip(components).zip(warned)
        {
            let unpacked = &staged[index].unpacked;
            let manifest = &unpacked.manifest;
            let rawname = manifest.rawname.as_str();
            let version = manifest.version.to_string();
            let operation = match action {
                Action::Install => "install",
                Action::Upgrade(_) => "upgrade",
            };
            fault::point(operation, "begin");
            let data_dir = layout::unique_name("data");
            let data_path = self.layout.data_dir(rawname, &data_dir);
            created.push_with_parent(&data_path);
            let call = match &action {
                Action::Install => {
                    layout::create_dirs(&data_path, layout::PUBLIC_DIR)?;
                    self.running("Installing", rawname, &version);
                    Call::Install
                }
                Action::Upgrade(previous) => {
                    layout::copy_tree(
                        &self.layout.data_dir(rawname, &previous.data_dir),
                        &data_path,
                    )?;
                    if previous.status == Status::Broken {
                        // Nothing to roll back to in a broken version: the kept backup
                        // (if any) stays the one before it.
                        superseded.push(self.layout.module_dir(rawname, &previous.module_dir));
                        superseded.push(self.layout.data_dir(rawname, &previous.data_dir));
                    } else {
                        if let Some(old) = txn.backup(rawname)? {
                            superseded
                                .push(self.layout.module_dir(rawname, &old.record.module_dir));
                            superseded.push(self.layout.data_dir(rawname, &old.record.data_dir));
                        }
                        txn.keep_backup(previous)?;
                    }
                    self.running(
                        if previous.version == version {
                            "Reinstalling"
                        } else {
                            "Upgrading"
                        },
                        rawname,
                        &format!("{} -> {version}", previous.version),
                    );
                    Call::Upgrade {
                        from: &previous.version,
                    }
                }
            };
            fault::point(operation, "data-staged");
            let requests = self.capabilities(&mut txn, manifest, options.grant)?;
            txn.apply_schema(rawname, &manifest.database)?;
            fault::point(operation, "schema-applied");
            txn = self.run(component, rawname, &version, data_path.clone(), txn, &call)?;
            layout::make_durable(&data_path)?;
            fault::point(operation, "lifecycle-called");
            let module_dir = layout::unique_name(&version);
            let target = self.layout.module_dir(rawname, &module_dir);
            created.push_with_parent(&target);
            layout::move_into_place(&unpacked.dir, &target)?;
            fault::point(operation, "files-moved");
            let xml = target.join("module.xml");
            // A module disabled on purpose stays disabled through an upgrade, as a
            // WordPress plugin keeps its activation; anything else comes out enabled.
            let (status, reason) = match &action {
                Action::Upgrade(previous) if previous.status == Status::Disabled => {
                    (Status::Disabled, previous.reason.clone())
                }
                _ => (Status::Enabled, None),
            };
            txn.put_module(&ModuleRecord {
                rawname: rawname.to_owned(),
                name: manifest.name.clone(),
                version: version.clone(),
                status,
                reason,
                module_dir,
                data_dir,
                component_sha256: component.sha256().to_owned(),
                manifest: fs_err::read_to_string(&xml).map_err(io(&xml))?,
                installed_at: now(),
            })?;
            if let Some(source) = origin.get(rawname) {
                txn.set_module_source(rawname, source)?;
            }
            fault::point(operation, "recorded");
            changes.push(Change {
                rawname: rawname.to_owned(),
                action: match &action {
                    Action::Install => "installed",
                    Action::Upgrade(previous) if previous.version == version => "reinstalled",
                    Action::Upgrade(_) => "upgraded",
                },
                requests,
                warnings,
                from: match action {
                    Action::Install => None,
                    Action::Upgrade(previous) => Some(previous.version.clone()),
                },
                to: Some(version),
            });
        }
        txn.commit()?;
        fault::point("apply", "committed");
        created.keep();
        sweep(&superseded);
        self.forget_compiled(left);
        fault::point("apply", "cleaned");
        Ok(changes)
    }

    /// Runs the module's `uninstall()`, then removes its record, tables, key-value store,
    /// backup, files and data. Refused while running modules depend on it, unless `force`.
    pub fn uninstall(&self, rawname: &str, force: bool) -> Result<Change> {
        self.remove(rawname, force, true)
    }

    /// Removes a module without running any of its code — for a module that is broken or
    /// whose `uninstall()` keeps failing. Refused while running modules depend on it,
    /// unless `force`.
    pub fn delete(&self, rawname: &str, force: bool) -> Result<Change> {
        self.remove(rawname, force, false)
    }

    fn remove(&self, rawname: &str, force: bool, call_uninstall: bool) -> Result<Change> {
        let _lock = self.lock()?;
        let record = self.installed(rawname)?;
        self.refuse_if_depended_on(rawname, force)?;
        let operation = if call_uninstall {
            "uninstall"
        } else {
            "delete"
        };
        let left = self.digests_of(rawname)?;
        let mut txn = self.state.begin()?;
        // `uninstall()` works on a copy of the data directory, so that one that damages
        // its data and then fails leaves the module as it was.
        let mut created = Created::default();
        if call_uninstall {
            let component = self.component(&record)?;
            self.running("Uninstalling", rawname, &record.version);
            let (_, copy) = self.stage_data(&record, &mut created, operation)?;
            txn = self.run(
                &component,
                rawname,
                &record.version,
                copy,
                txn,
                &Call::Uninstall,
            )?;
        } else {
            self.running("Deleting", rawname, &record.version);
        }
        fault::point(operation, "lifecycle-called");
        txn.remove_module(rawname)?;
        fault::point(operation, "recorded");
        txn.commit()?;
        fault::point(operation, "committed");
        created.keep();
        sweep(&[
            self.layout.modules().join(rawname),
            self.layout.data().join(rawname),
        ]);
        self.forget_compiled(left);
        fault::point(operation, "cleaned");
        Ok(Change {
            requests: Vec::new(),
            warnings: Vec::new(),
            rawname: rawname.to_owned(),
            action: if call_uninstall {
                "uninstalled"
            } else {
                "deleted"
            },
            from: Some(record.version),
            to: None,
        })
    }

    fn refuse_if_depended_on(&self, rawname: &str, force: bool) -> Result<()> {
        let dependents = plan::dependents(rawname, &self.state.modules()?)?;
        if dependents.is_empty() {
            return Ok(());
        }
        if force {
            tracing::warn!(
                "--force: `{rawname}` is required by {}",
                dependents.join(", ")
            );
            return Ok(());
        }
        Err(Error::InUse {
            rawname: rawname.to_owned(),
            dependents,
        })
    }

    /// Enables a disabled module: checks its dependencies (unless `force`), runs its
    /// `enable()`, and marks it enabled, in one transaction.
    pub fn enable(&self, rawname: &str, force: bool) -> Result<Change> {
        let mut changes = self.enable_all(&[rawname.to_owned()], force)?;
        changes
            .pop()
            .ok_or_else(|| Error::Refused(vec![format!("`{rawname}` was not enabled")]))
    }

    /// Enables several disabled modules as one change: dependencies among them count as
    /// enabled, their `enable()` calls run dependencies first, and either all of them end
    /// up enabled or none does.
    pub fn enable_all(&self, rawnames: &[String], force: bool) -> Result<Vec<Change>> {
        let _lock = self.lock()?;
        let mut refusals = Vec::new();
        let mut wanted: Vec<ModuleRecord> = Vec::new();
        for rawname in rawnames {
            if wanted.iter().any(|r| &r.rawname == rawname) {
                continue;
            }
            let record = self.installed(rawname)?;
            match record.status {
                Status::Disabled => wanted.push(record),
                Status::Broken => refusals.push(format!(
                    "`{rawname}` is broken ({}); reinstall or delete it",
                    record.reason.as_deref().unwrap_or("no reason recorded")
                )),
                status => refusals.push(format!("`{rawname}` is already {status}")),
            }
        }
        if !refusals.is_empty() {
            return Err(Error::Refused(refusals));
        }
        // Check each against the modules as they will be: the others enabled too.
        let after: Vec<ModuleRecord> = self
            .state
            .modules()?
            .into_iter()
            .map(|r| match wanted.iter().any(|w| w.rawname == r.rawname) {
                true => ModuleRecord {
                    status: Status::Enabled,
                    ..r
                },
                false => r,
            })
            .collect();
        let manifests = wanted
            .iter()
            .map(plan::manifest_of)
            .collect::<Result<Vec<_>>>()?;
        let references: Vec<&Manifest> = manifests.iter().collect();
        let packaged = self.packaged(&references, &after);
        let available = depends::available(&after, &packaged);
        let failures: Vec<String> = manifests
            .iter()
            .flat_map(|m| depends::check(m, &available, &self.platform).failures())
            .collect();
        if !failures.is_empty() && !force {
            return Err(Error::Refused(failures));
        }
        let order = plan::dependencies_first(&references)?;
        let ordered: Vec<ModuleRecord> = order.into_iter().map(|i| wanted[i].clone()).collect();
        self.toggle(&ordered, Call::Enable, Status::Enabled, None)
    }

    /// Disables a module: refused while running modules depend on it (unless `force`);
    /// runs its `disable()` and marks it disabled, in one transaction.
    pub fn disable(&self, rawname: &str, force: bool) -> Result<Change> {
        let _lock = self.lock()?;
        let record = self.installed(rawname)?;
        if !record.status.runs() {
            return Err(Error::Refused(vec![format!(
                "`{rawname}` is {}, not enabled",
                record.status
            )]));
        }
        self.refuse_if_depended_on(rawname, force)?;
        let mut changes = self.toggle(
            std::slice::from_ref(&record),
            Call::Disable,
            Status::Disabled,
            Some("disabled by an administrator"),
        )?;
        changes
            .pop()
            .ok_or_else(|| Error::Refused(vec![format!("`{rawname}` was not disabled")]))
    }

    /// Copies `record`'s data directory to a fresh one for a lifecycle call to work on, so
    /// that a call that fails leaves the original as it was. Returns the copy's name and
    /// path; `created` removes it unless the change commits.
    fn stage_data(
        &self,
        record: &ModuleRecord,
        created: &mut Created,
        operation: &str,
    ) -> Result<(String, PathBuf)> {
        let name = layout::unique_name("data");
        let copy = self.layout.data_dir(&record.rawname, &name);
        created.0.push(copy.clone());
        layout::copy_tree(
            &self.layout.data_dir(&record.rawname, &record.data_dir),
            &copy,
        )?;
        fault::point(operation, "data-staged");
        Ok((name, copy))
    }

    /// Runs `call` on each of `records` in order and gives them `status`, in one
    /// transaction. Each call works on a copy of its module's data directory that
    /// replaces the original only when every call succeeds, as an upgrade's does.
    fn toggle(
        &self,
        records: &[ModuleRecord],
        call: Call,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Vec<Change>> {
        let (operation, verb, action) = match status {
            Status::Enabled => ("enable", "Enabling", "enabled"),
            _ => ("disable", "Disabling", "disabled"),
        };
        let mut created = Created::default();
        let mut replaced = Vec::new();
        let mut changes = Vec::new();
        let mut txn = self.state.begin()?;
        for record in records {
            let rawname = record.rawname.as_str();
            let component = self.component(record)?;
            self.running(verb, rawname, &record.version);
            let (data_dir, copy) = self.stage_data(record, &mut created, operation)?;
            txn = self.run(
                &component,
                rawname,
                &record.version,
                copy.clone(),
                txn,
                &call,
            )?;
            layout::make_durable(&copy)?;
            fault::point(operation, "lifecycle-called");
            txn.put_module(&ModuleRecord {
                status,
                reason: reason.map(str::to_owned),
                data_dir,
                ..record.clone()
            })?;
            replaced.push(self.layout.data_dir(rawname, &record.data_dir));
            changes.push(Change {
                requests: Vec::new(),
                warnings: Vec::new(),
                rawname: rawname.to_owned(),
                action,
                from: Some(record.version.clone()),
                to: Some(record.version.clone()),
            });
        }
        txn.commit()?;
        fault::point(operation, "committed");
        created.keep();
        sweep(&replaced);
        fault::point(operation, "cleaned");
        Ok(changes)
    }

    /// Returns `rawname` to the version its last upgrade replaced: files, data, key-value
    /// store and tables as they were. Refused when running modules need the current
    /// version (unless `force`).
    pub fn rollback(&self, rawname: &str, force: bool) -> Result<Change> {
        let _lock = self.lock()?;
        let current = self.installed(rawname)?;
        let backup = self.state.backup(rawname)?.ok_or_else(|| {
            Error::Refused(vec![format!(
                "`{rawname}` has no previous version to roll back to"
            )])
        })?;
        let previous = plan::manifest_of(&backup.record)?;
        self.component(&backup.record)?;
        let returning_to = Version::parse(&backup.record.version)
            .map_err(|e| Error::Refused(vec![e.to_string()]))?;
        let mut broken = Vec::new();
        for record in self
            .state
            .modules()?
            .iter()
            .filter(|r| r.status.runs() && r.rawname != rawname)
        {
            let dependent = plan::manifest_of(record)?;
            for dependency in plan::required_modules(&dependent).filter(|d| d.name == rawname) {
                if dependency
                    .requirement
                    .as_ref()
                    .is_some_and(|r| !r.matches(&returning_to))
                {
                    broken.push(format!(
                        "`{}` requires `{dependency}`, but the rollback returns `{rawname}` to {returning_to}",
                        record.rawname
                    ));
                }
            }
        }
        // The version returned to must itself still fit what is installed now.
        broken.extend(self.check_depends(&previous)?.failures());
        if !broken.is_empty() && !force {
            return Err(Error::Refused(broken));
        }
        self.running(
            "Rolling back",
            rawname,
            &format!("{} -> {}", current.version, backup.record.version),
        );
        let left = vec![current.component_sha256.clone()];
        let mut txn = self.state.begin()?;
        txn.restore_backup(rawname, &previous.database)?;
        // The backup's status is the one it had when the upgrade replaced it; since then
        // the administrator may have disabled or enabled the module, with the checks and
        // calls that go with it, and a rollback must not undo that behind their back.
        // Only a broken module takes the backup's: the backup is what still works.
        if current.status != Status::Broken {
            txn.put_module(&ModuleRecord {
                status: current.status,
                reason: current.reason.clone(),
                ..backup.record.clone()
            })?;
        }
        self.narrow_grants(&mut txn, &previous)?;
        fault::point("rollback", "restored");
        txn.commit()?;
        fault::point("rollback", "committed");
        sweep(&[
            self.layout.module_dir(rawname, &current.module_dir),
            self.layout.data_dir(rawname, &current.data_dir),
        ]);
        self.forget_compiled(left);
        fault::point("rollback", "cleaned");
        Ok(Change {
            requests: Vec::new(),
            warnings: Vec::new(),
            rawname: rawname.to_owned(),
            action: "rolled-back",
            from: Some(current.version),
            to: Some(backup.record.version),
        })
    }

    /// The package for each of `names`: a package file as given, or the newest package of
    /// that module in `from` (else the configured package directory).
    pub fn resolve_packages(&self, names: &[String], from: Option<&Path>) -> Result<Vec<PathBuf>> {
        packages::resolve(names, from.or(self.packages.as_deref()))
    }

    fn package_dir_or(&self, from: Option<&Path>) -> Result<PathBuf> {
        from.or(self.packages.as_deref())
            .map(Path::to_owned)
            .ok_or_else(|| {
                Error::Refused(vec![
                    "no package directory: give --from DIR or set `packages` in modhost.toml"
                        .into(),
                ])
            })
    }

    /// Upgrades every installed module for which the package directory holds a newer
    /// version, as one unit.
    pub fn upgrade_all(&self, from: Option<&Path>, options: Options) -> Result<Vec<Change>> {
        let selected = self.local(from, &[packages::Available::Upgrade])?;
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        self.apply(&selected, Mode::Upgrade, options, &Default::default())
    }

    /// Installs every module of the package directory that is not installed, and upgrades
    /// those it holds newer versions of, as one unit.
    pub fn install_local(&self, from: Option<&Path>, options: Options) -> Result<Vec<Change>> {
        let selected = self.local(
            from,
            &[packages::Available::New, packages::Available::Upgrade],
        )?;
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        self.apply(&selected, Mode::Install, options, &Default::default())
    }

    fn local(&self, from: Option<&Path>, wanted: &[packages::Available]) -> Result<Vec<PathBuf>> {
        let dir = self.package_dir_or(from)?;
        let installed = self.state.modules()?;
        Ok(packages::newest(&dir)?
            .into_values()
            .filter(|(_, manifest)| {
                let current = installed.iter().find(|r| r.rawname == manifest.rawname);
                wanted.contains(&packages::compare(
                    &manifest.version,
                    current.map(|r| r.version.as_str()),
                ))
            })
            .map(|(path, _)| path)
            .collect())
    }

    /// Unpacks `source` into a fresh staging directory. A module directory (module.xml
    /// and its component) is packed first, as `modhost pack` would, so that it passes
    /// exactly the checks a package passes.
    fn stage(&self, source: &Path) -> Result<Staged> {
        let dir = self.layout.staging_dir()?;
        let packed;
        let package = if source.is_dir() {
            let manifest = read_manifest(source)?;
            packed = self.layout.staging_dir()?;
            let package = packed.path().join(format!("{}.tgz", manifest.rawname));
            modhost_package::pack(
                &source.join("module.xml"),
                &source.join(&manifest.component),
                &package,
            )?;
            package
        } else {
            source.to_owned()
        };
        let unpacked = modhost_package::unpack(&package, dir.path(), &Default::default())?;
        Ok(Staged {
            _dir: dir,
            unpacked,
        })
    }

    /// Describes every module in `dir` — its packages and its module directories (each a
    /// directory holding a module.xml), as phpWebSite's installer lists a modules
    /// directory: its version against the installed one, whether it could be installed,
    /// and what its component exports. A package or module directory whose module.xml
    /// cannot be read is reported in [`Scan::unreadable`] with the error, and the others
    /// are still described. Installed modules for which `dir` holds a newer version are
    /// marked `needs-upgrade`; those an earlier scan of `dir` marked, and for which it no
    /// longer holds one, are enabled again — unless something in `dir` could not be read,
    /// which may be that newer version. The artifacts the scan compiles to list exports
    /// are removed again unless an installed version or backup uses them.
    pub fn scan(&self, dir: &Path) -> Result<Scan> {
        let _lock = self.lock()?;
        let mut loaded_now = Vec::new();
        let scanned = self.scan_locked(dir, &mut loaded_now);
        // Compiled code does not outlive the modules it belongs to: what the scan compiled
        // only to list exports goes, whether or not the scan succeeded.
        self.forget_compiled_now(&loaded_now);
        scanned
    }

    /// [`Host::scan`] for a caller that holds the root's lock; every component it loads
    /// is added to `loaded_now`, for the caller to forget what it compiled.
    fn scan_locked(&self, dir: &Path, loaded_now: &mut Vec<LoadedComponent>) -> Result<Scan> {
        let installed = self.state.modules()?;
        let mut entries = Vec::new();
        let suffix = format!(" is available in `{}`", dir.display());
        let marked_here = |r: &ModuleRecord| {
            r.status == Status::NeedsUpgrade
                && r.reason.as_deref().is_some_and(|x| x.ends_with(&suffix))
        };
        let mut statuses: BTreeMap<String, (Status, Option<String>)> = installed
            .iter()
            .filter(|r| marked_here(r))
            .map(|r| (r.rawname.clone(), (Status::Enabled, None)))
            .collect();
        let (newest, mut unreadable) = packages::read_packages(dir)?;
        let (module_dirs, unreadable_dirs) = packages::read_module_dirs(dir)?;
        unreadable.extend(unreadable_dirs);
        unreadable.sort_by(|a, b| a.package.cmp(&b.package));
        if !unreadable.is_empty() {
            // What could not be read may be the newer version a mark stands for: without
            // knowing, a mark is kept rather than taken back.
            statuses.clear();
        }
        for (path, manifest) in newest.into_values().chain(module_dirs) {
            let current = installed.iter().find(|r| r.rawname == manifest.rawname);
            let available =
                packages::compare(&manifest.version, current.map(|r| r.version.as_str()));
            if let (packages::Available::Upgrade, Some(record)) = (available, current)
                && (record.status == Status::Enabled || marked_here(record))
            {
                statuses.insert(
                    record.rawname.clone(),
                    (
                        Status::NeedsUpgrade,
                        Some(format!("{}{suffix}", manifest.version)),
                    ),
                );
            }
            let report = self.check_depends(&manifest)?;
            let loaded = self
                .stage(&path)
                .and_then(|staged| self.load_unpacked(&path, &staged.unpacked));
            let (exports, problem) = match loaded {
                Ok(component) => {
                    let exports = component.exports(self.runtime.engine());
                    loaded_now.push(component);
                    (exports, None)
                }
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let newer = matches!(
                available,
                packages::Available::New | packages::Available::Upgrade
            );
            entries.push(ScanEntry {
                package: path,
                rawname: manifest.rawname.clone(),
                version: manifest.version.to_string(),
                installed: current.map(|r| r.version.clone()),
                available,
                installable: newer && report.satisfied && problem.is_none(),
                unmet: report.failures(),
                problem,
                exports,
            });
        }
        if !statuses.is_empty() {
            let mut txn = self.state.begin()?;
            for (rawname, (status, reason)) in &statuses {
                txn.set_status(rawname, *status, reason.as_deref())?;
            }
            txn.commit()?;
        }
        Ok(Scan {
            entries,
            unreadable,
        })
    }

    /// Declares how hook point `point.name` runs: its shape, failure mode and limits.
    /// Undeclared hook points are broadcast and fail-open; `get_config` is a fail-closed
    /// pipeline.
    pub fn declare(&self, point: HookPoint) {
        self.dispatcher.declare(point);
    }

    /// How hook point `hook` runs.
    pub fn hook_point(&self, hook: &str) -> HookPoint {
        self.dispatcher.point(hook)
    }

    /// Runs hook point `hook` with `payload`: every running module's handler (its
    /// `<methods>` named `hook`, its `<hooks>` entries whose `TARGET.callingMethod` is
    /// `hook`), in priority order — lower first, then by rawname. A `<hooks>` entry is
    /// qualified by its target module, as in FreePBX, where it belongs to that module's
    /// method: `userman.delUser`, never any hook point that happens to be named `delUser`.
    /// Safe to call from many threads at once.
    pub fn dispatch(&self, hook: &str, payload: &str) -> Result<Dispatch> {
        self.dispatcher.dispatch(hook, payload)
    }

    /// Runs the `get_config` pipeline across the running modules and writes the
    /// configuration it builds to `etc/extensions_modhost.conf` in the root, atomically.
    /// Fails with [`Error::Reload`], writing nothing, if a handler fails. `get_config` runs
    /// as a fail-closed pipeline whatever was declared for it: only its limits are taken.
    pub fn reload(&self) -> Result<Reload> {
        let point = HookPoint {
            shape: Shape::Pipeline,
            on_error: OnError::Stop,
            ..self.hook_point("get_config")
        };
        let mut dispatch = self.dispatcher.dispatch_as(&point, RELOAD_HEADER)?;
        if dispatch.stopped_by.is_some()
            && let Some(failed) = dispatch.calls.pop()
        {
            return Err(Error::Reload(Box::new(failed)));
        }
        let text = dispatch.output.clone().unwrap_or_default();
        let path = self.layout.root.join("etc").join("extensions_modhost.conf");
        layout::write_atomically(&path, text.as_bytes())?;
        Ok(Reload {
            path,
            handlers: dispatch
                .calls
                .into_iter()
                .map(|c| (c.rawname, c.priority))
                .collect(),
            bytes: text.len(),
        })
    }

    /// Grants installed module `rawname` every directory its module.xml asks for.
    pub fn grant(&self, rawname: &str) -> Result<Vec<Request>> {
        let _lock = self.lock()?;
        let manifest = plan::manifest_of(&self.installed(rawname)?)?;
        let mut txn = self.state.begin()?;
        let granted = self.capabilities(&mut txn, &manifest, true)?;
        txn.commit()?;
        Ok(granted)
    }

    /// Withdraws every grant of installed module `rawname`.
    pub fn revoke(&self, rawname: &str) -> Result<()> {
        let _lock = self.lock()?;
        self.installed(rawname)?;
        let mut txn = self.state.begin()?;
        txn.revoke(rawname)?;
        txn.commit()?;
        Ok(())
    }

    /// Refuses a directory grant that would reach modhost's own root (its state database
    /// and its cache of compiled components, which the host loads as native code) or
    /// hide the module's `/data`. A safety check: `--force` does not override it.
    fn refuse_unsafe_grant(&self, rawname: &str, path: &str) -> Result<()> {
        let requested = Path::new(path);
        let requested = requested
            .canonicalize()
            .unwrap_or_else(|_| requested.to_owned());
        let root = self
            .layout
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.layout.root.clone());
        let reason = if requested.starts_with(&root) || root.starts_with(&requested) {
            Some(format!("it overlaps modhost's root `{}`", root.display()))
        } else if Path::new(path).starts_with(modhost_runtime::GUEST_DATA_DIR) {
            Some(format!(
                "`{}` is where the module's own data is",
                modhost_runtime::GUEST_DATA_DIR
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::Refused(vec![format!(
                "`{rawname}` asks for the directory `{path}`, which is never granted: {reason}"
            )])),
            None => Ok(()),
        }
    }

    /// Shows what `manifest` asks for and, if `grant`, grants it inside `txn`. Grants of an
    /// earlier version that `manifest` no longer asks for are taken back first; those it
    /// still asks for stay, and show as granted.
    fn capabilities(
        &self,
        txn: &mut Txn,
        manifest: &Manifest,
        grant: bool,
    ) -> Result<Vec<Request>> {
        self.narrow_grants(txn, manifest)?;
        let kept = txn.grants(&manifest.rawname)?;
        let mut requests = Vec::new();
        for capability in &manifest.capabilities {
            let modhost_manifest::Capability::Directory { path, access } = capability;
            let read_only = *access == modhost_manifest::Access::ReadOnly;
            if grant {
                self.refuse_unsafe_grant(&manifest.rawname, path)?;
                txn.grant(&manifest.rawname, path, read_only)?;
            }
            let granted = grant || kept.iter().any(|(kept, _)| kept == path);
            self.reporter.report(Event::Requests {
                rawname: manifest.rawname.clone(),
                capability: format!(
                    "{} access to `{path}`",
                    if read_only { "read-only" } else { "read-write" }
                ),
                granted,
            });
            requests.push(Request {
                path: path.clone(),
                read_only,
                granted,
            });
        }
        Ok(requests)
    }

    /// Keeps only the grants `manifest` still asks for, and none wider than it asks: a new
    /// (or rolled-back-to) version never inherits access its module.xml does not request.
    fn narrow_grants(&self, txn: &mut Txn, manifest: &Manifest) -> Result<()> {
        let granted = txn.grants(&manifest.rawname)?;
        let kept: Vec<(String, bool)> = granted
            .iter()
            .filter_map(|(path, read_only)| {
                manifest.capabilities.iter().find_map(|capability| {
                    let modhost_manifest::Capability::Directory {
                        path: asked,
                        access,
                    } = capability;
                    (asked == path).then(|| {
                        let asks_read_only = *access == modhost_manifest::Access::ReadOnly;
                        (path.clone(), *read_only || asks_read_only)
                    })
                })
            })
            .collect();
        if kept == granted {
            return Ok(());
        }
        txn.revoke(&manifest.rawname)?;
        for (path, read_only) in &kept {
            txn.grant(&manifest.rawname, path, *read_only)?;
        }
        for (path, read_only) in granted.iter().filter(|g| !kept.contains(g)) {
            let narrowed = kept.iter().any(|(kept, _)| kept == path);
            self.reporter.report(Event::Revoked {
                rawname: manifest.rawname.clone(),
                capability: match (narrowed, read_only) {
                    (true, _) => format!("write access to `{path}`"),
                    (false, true) => format!("read-only access to `{path}`"),
                    (false, false) => format!("read-write access to `{path}`"),
                },
            });
        }
        Ok(())
    }
}

/// Names a staged component by where it is inside its package, not by the staging
/// directory it was unpacked to, which is gone by the time anyone reads the error.
fn in_package(error: modhost_runtime::Error, package: &Path, unpacked: &Unpacked) -> Error {
    let inside = package
        .join(&unpacked.manifest.rawname)
        .join(&unpacked.manifest.component);
    Error::Runtime(match error {
        modhost_runtime::Error::Load { message, .. } => modhost_runtime::Error::Load {
            path: inside,
            message,
        },
        modhost_runtime::Error::ApiVersion { found, .. } => modhost_runtime::Error::ApiVersion {
            path: inside,
            found,
        },
        other => other,
    })
}

/// The header every generated configuration starts with.
const RELOAD_HEADER: &str =
    "; Generated by `modhost reload` from the modules' get_config handlers. Do not edit.\n";

/// What [`Host::reload`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reload {
    /// The configuration file.
    pub path: PathBuf,
    /// The handlers that built it, in order, with their priorities.
    pub handlers: Vec<(String, i32)>,
    /// Its size.
    pub bytes: usize,
}

/// How a change may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip dependency checks (never safety checks).
    pub force: bool,
    /// Grant the capabilities the modules ask for.
    pub grant: bool,
}

/// A package unpacked into its own staging directory.
struct Staged {
    /// Holds the staging directory until the change ends; dropping it removes leftovers.
    _dir: tempfile::TempDir,
    unpacked: Unpacked,
}

/// Directories a change has created; removed on drop unless kept, so that a failure
/// leaves the root as it was.
#[derive(Default)]
struct Created(Vec<PathBuf>);

impl Created {
    /// Records `dir`, about to be created — with its parent when that does not exist
    /// yet either (a first install's `modules/RAWNAME`), so a failure leaves no trace.
    fn push_with_parent(&mut self, dir: &Path) {
        match dir.parent() {
            Some(parent) if !parent.exists() => self.0.push(parent.to_owned()),
            _ => self.0.push(dir.to_owned()),
        }
    }

    fn keep(&mut self) {
        self.0.clear();
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        sweep(&std::mem::take(&mut self.0));
    }
}

/// Removes directories no record points at any more. A failure only leaves a leftover
/// that the next recovery removes, so it is logged rather than returned.
impl Host {
    /// The component digests of `rawname`'s installed version and its backup.
    fn digests_of(&self, rawname: &str) -> Result<Vec<String>> {
        let installed = self.state.module(rawname)?;
        let backup = self.state.backup(rawname)?.map(|b| b.record);
        Ok(installed
            .into_iter()
            .chain(backup)
            .map(|r| r.component_sha256)
            .collect())
    }

    /// Removes the artifacts of those of `components` compiled by this run that no
    /// installed version or backup uses. One mapped from the cache stays: it was there
    /// before the run, for whatever put it there.
    fn forget_compiled_now(&self, components: &[LoadedComponent]) {
        self.forget_compiled(
            components
                .iter()
                .filter(|c| c.origin() == Origin::Compiled)
                .map(|c| c.sha256().to_owned())
                .collect(),
        );
    }

    /// Removes the compiled artifacts of `digests` that no installed version or backup
    /// uses any more. A failure only leaves a file in the cache, so it is logged.
    fn forget_compiled(&self, digests: Vec<String>) {
        let in_use = self.state.modules().and_then(|modules| {
            let mut in_use = BTreeSet::new();
            for record in modules {
                if let Some(backup) = self.state.backup(&record.rawname)? {
                    in_use.insert(backup.record.component_sha256);
                }
                in_use.insert(record.component_sha256);
            }
            Ok(in_use)
        });
        let forgotten = in_use.map_err(Error::from).and_then(|in_use| {
            digests
                .iter()
                .filter(|d| !in_use.contains(*d))
                .try_for_each(|d| self.runtime.forget(d).map_err(Error::from))
        });
        if let Err(e) = forgotten {
            tracing::warn!("cannot clear compiled components from the cache: {e}");
        }
    }
}

fn sweep(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(e) = layout::remove_dir(dir) {
            tracing::warn!("cannot remove `{}` (recovery will): {e}", dir.display());
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
