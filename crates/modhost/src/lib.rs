//! modhost: a module host a PBX application embeds.
//!
//! A [`Host`] owns a *root* directory: the SQLite state database, the installed modules'
//! files, each module's data directory, and the cache of compiled components. Modules are
//! packages (`pkg.tgz`) holding a FreePBX-style module.xml and a WebAssembly component
//! built against modhost's WIT contract; the host runs their lifecycle calls in a sandbox.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let host = modhost::Host::open(Path::new("/var/lib/modhost"))?;
//! host.install(&[Path::new("core-16.0.40.tgz").to_owned()])?;
//! for module in host.list()? {
//!     println!("{} {} {}", module.rawname, module.version, module.status);
//! }
//! # Ok::<(), modhost::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use modhost_manifest::{Manifest, ModuleDependency, Op, Version};
pub use modhost_package::pack;

/// Reads and parses the module.xml inside a package, without installing it.
pub fn read_manifest(package: &Path) -> Result<Manifest> {
    Ok(modhost_package::read_manifest(
        package,
        &Default::default(),
    )?)
}
pub use modhost_runtime::{Limits, Origin};
pub use modhost_state::{ModuleRecord, Status};

mod depends;
mod error;
mod layout;
mod plan;
mod platform;

pub use depends::{Check, DependencyReport, Outcome};
pub use error::Error;
use layout::Layout;
use modhost_package::Unpacked;
use modhost_runtime::{Call, CallContext, LoadedComponent, Runtime};
use modhost_state::State;
pub use platform::{Engine, Php, Platform};

/// The result type of the embedding API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something the host is doing, for progress display. Only the application draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A package is being unpacked and checked.
    Unpacking {
        /// The package file.
        package: PathBuf,
    },
    /// A module's `install()` is running.
    Installing {
        /// The module.
        rawname: String,
        /// Its version.
        version: String,
    },
    /// A module's `uninstall()` is running.
    Uninstalling {
        /// The module.
        rawname: String,
        /// Its version.
        version: String,
    },
    /// A component was loaded, compiled now or mapped from the cache.
    Loaded {
        /// The module.
        rawname: String,
        /// Where its machine code came from.
        origin: Origin,
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

/// A module that [`Host::install`] installed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installed {
    /// The module's rawname.
    pub rawname: String,
    /// The installed version.
    pub version: String,
}

/// A modhost root, opened.
pub struct Host {
    layout: Layout,
    platform: Platform,
    state: State,
    runtime: Runtime,
    reporter: Box<dyn Reporter>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("root", &self.layout.root)
            .finish()
    }
}

impl Host {
    /// Opens the root at `root`, creating it on first use, with default limits.
    pub fn open(root: &Path) -> Result<Self> {
        Host::open_with(root, Limits::default())
    }

    /// Opens the root at `root` with the given sandbox limits.
    pub fn open_with(root: &Path, limits: Limits) -> Result<Self> {
        let layout = Layout::create(root)?;
        let platform = Platform::load(&layout.config())?;
        let state = State::open(&layout.database())?;
        let runtime = Runtime::new(&layout.cache(), limits)?;
        Ok(Host {
            layout,
            platform,
            state,
            runtime,
            reporter: Box::new(Silent),
        })
    }

    /// Sends progress events to `reporter`.
    pub fn with_reporter(mut self, reporter: Box<dyn Reporter>) -> Self {
        self.reporter = reporter;
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

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// Every installed module, by rawname.
    pub fn list(&self) -> Result<Vec<ModuleRecord>> {
        Ok(self.state.modules()?)
    }

    /// The installed module `rawname`, if any.
    pub fn module(&self, rawname: &str) -> Result<Option<ModuleRecord>> {
        Ok(self.state.module(rawname)?)
    }

    /// The entries of an installed module's key-value store.
    pub fn kv_entries(&self, rawname: &str) -> Result<Vec<(String, String)>> {
        self.installed(rawname)?;
        Ok(self.state.kv_entries(rawname)?)
    }

    /// The module.xml of installed module `rawname`.
    pub fn installed_manifest(&self, rawname: &str) -> Result<Manifest> {
        plan::manifest_of(&self.installed(rawname)?)
    }

    /// Checks every constraint of `manifest` against the installed modules and the
    /// platform, without changing anything.
    pub fn check_depends(&self, manifest: &Manifest) -> Result<DependencyReport> {
        let installed = self.state.modules()?;
        let available = installed
            .iter()
            .map(|r| (r.rawname.as_str(), depends::Available::Installed(r)))
            .collect();
        Ok(depends::check(manifest, &available, &self.platform))
    }

    fn installed(&self, rawname: &str) -> Result<ModuleRecord> {
        self.state
            .module(rawname)?
            .ok_or_else(|| Error::NotInstalled(rawname.to_owned()))
    }

    /// Installs the packages as one unit: every package is unpacked and checked, the
    /// dependencies of all of them are resolved and every component is compiled before
    /// anything changes; then each module's `install()` runs, dependencies first, inside
    /// one transaction. If any step fails, nothing is installed.
    pub fn install(&self, packages: &[PathBuf]) -> Result<Vec<Installed>> {
        let mut staged = Vec::new();
        for package in packages {
            self.reporter.report(Event::Unpacking {
                package: package.clone(),
            });
            let dir = self.layout.staging_dir()?;
            let unpacked = modhost_package::unpack(package, dir.path(), &Default::default())?;
            staged.push(Staged {
                _dir: dir,
                unpacked,
            });
        }
        let installed = self.state.modules()?;
        let order = plan::install_order(
            &staged
                .iter()
                .map(|s| &s.unpacked.manifest)
                .collect::<Vec<_>>(),
            &installed,
            &self.platform,
        )?;
        let mut loaded = Vec::with_capacity(staged.len());
        for staged in &staged {
            let component = self.runtime.load(&staged.unpacked.component, None)?;
            self.reporter.report(Event::Loaded {
                rawname: staged.unpacked.manifest.rawname.clone(),
                origin: component.origin(),
            });
            loaded.push(component);
        }

        let mut applied = Applied::default();
        let mut txn = self.state.begin()?;
        for index in order {
            let (unpacked, component) = (&staged[index].unpacked, &loaded[index]);
            txn = self.install_one(unpacked, component, txn, &mut applied)?;
        }
        txn.commit()?;
        applied.keep();
        Ok(std::mem::take(&mut applied.installed))
    }

    fn install_one(
        &self,
        unpacked: &Unpacked,
        component: &LoadedComponent,
        txn: modhost_state::Txn,
        applied: &mut Applied,
    ) -> Result<modhost_state::Txn> {
        let manifest = &unpacked.manifest;
        let rawname = manifest.rawname.clone();
        let version = manifest.version.to_string();
        let data_dir = self.layout.data_dir(&rawname);
        self.layout.fresh_dir(&data_dir)?;
        applied.created.push(data_dir.clone());
        self.reporter.report(Event::Installing {
            rawname: rawname.clone(),
            version: version.clone(),
        });
        let context = CallContext {
            rawname: rawname.clone(),
            version: version.clone(),
            data_dir,
            txn,
        };
        let (result, mut txn) = self.runtime.call(component, context, &Call::Install);
        result?;
        let target = self.layout.module_dir(&rawname, &version);
        self.layout.move_into_place(&unpacked.dir, &target)?;
        applied.created.push(self.layout.module_root(&rawname));
        let manifest_xml =
            fs_err::read_to_string(target.join("module.xml")).map_err(|source| Error::Io {
                path: target.join("module.xml"),
                source,
            })?;
        txn.put_module(&ModuleRecord {
            rawname: rawname.clone(),
            name: manifest.name.clone(),
            version: version.clone(),
            status: Status::Enabled,
            reason: None,
            component_sha256: component.sha256().to_owned(),
            manifest: manifest_xml,
            installed_at: now(),
        })?;
        applied.installed.push(Installed { rawname, version });
        Ok(txn)
    }

    /// Runs the module's `uninstall()` and removes its files, data and state. Refused while
    /// another installed module depends on it.
    pub fn uninstall(&self, rawname: &str) -> Result<()> {
        let record = self.installed(rawname)?;
        let dependents = plan::dependents(rawname, &self.state.modules()?)?;
        if !dependents.is_empty() {
            return Err(Error::InUse {
                rawname: rawname.to_owned(),
                dependents,
            });
        }
        let manifest = plan::manifest_of(&record)?;
        let module_dir = self.layout.module_dir(rawname, &record.version);
        let component = self.runtime.load(
            &module_dir.join(&manifest.component),
            Some(&record.component_sha256),
        )?;
        self.reporter.report(Event::Loaded {
            rawname: rawname.to_owned(),
            origin: component.origin(),
        });
        self.reporter.report(Event::Uninstalling {
            rawname: rawname.to_owned(),
            version: record.version.clone(),
        });
        let data_dir = self.layout.data_dir(rawname);
        fs_err::create_dir_all(&data_dir).map_err(|source| Error::Io {
            path: data_dir.clone(),
            source,
        })?;
        let context = CallContext {
            rawname: rawname.to_owned(),
            version: record.version.clone(),
            data_dir: data_dir.clone(),
            txn: self.state.begin()?,
        };
        let (result, mut txn) = self.runtime.call(&component, context, &Call::Uninstall);
        result?;
        txn.remove_module(rawname)?;
        let trash = self.layout.staging_dir()?;
        self.layout.move_into_place(
            &self.layout.module_root(rawname),
            &trash.path().join("module"),
        )?;
        if let Err(e) = txn.commit() {
            self.layout.move_into_place(
                &trash.path().join("module"),
                &self.layout.module_root(rawname),
            )?;
            return Err(e.into());
        }
        self.layout.remove_dir(&data_dir)?;
        Ok(())
    }
}

/// A package unpacked into its own staging directory, removed when dropped.
struct Staged {
    /// Holds the staging directory until the install ends; dropping it removes the leftovers.
    _dir: tempfile::TempDir,
    unpacked: Unpacked,
}

/// What an install has put in place so far; removed on drop unless kept, so a failure
/// leaves the root as it was.
#[derive(Default)]
struct Applied {
    created: Vec<PathBuf>,
    installed: Vec<Installed>,
}

impl Applied {
    fn keep(&mut self) {
        self.created.clear();
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        for path in self.created.drain(..).rev() {
            if let Err(e) = fs_err::remove_dir_all(&path) {
                tracing::warn!("cannot remove `{}` while rolling back: {e}", path.display());
            }
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
