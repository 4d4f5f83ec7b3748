//! The engine every call shares, the linker with the host's imports, and the epoch thread
//! that call deadlines count on.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::compile_cost;
use crate::host::Sandbox;
use crate::imports::{self, Interface, TopLevel};
use crate::trap::BACKTRACE_FRAMES;
use crate::warm::Kept;
use crate::{Cancel, Capability, Error, POOL_MEMORY, Result, bindings, deadline, metered_fs};

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The stack a guest may use, on the thread that calls it: enough for CPython to reach
/// its own recursion limit first, so that a Python module recursing through C (through
/// `__getattr__`, say, which needs more than 1 MiB) gets a RecursionError it can catch,
/// not a trap. wasmtime allows no more than its async stack size, 2 MiB. A thread with
/// less left runs calls on a segment it keeps (`stack.rs`).
pub(crate) const MAX_WASM_STACK: usize = 2 << 20;

/// Instances that may be alive at once (concurrent dispatches times nesting depth).
pub(crate) const POOL_INSTANCES: u32 = 256;

/// The wasmtime engine, the linker with the host's imports, and the artifact cache.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<Sandbox>,
    pub(crate) cache_dir: PathBuf,
    pub(crate) compat: String,
    ticker: Arc<AtomicBool>,
    /// Idle instances kept by every [`Warm`](crate::Warm) of this runtime.
    pub(crate) idle: Kept,
    /// What the application gives modules beyond the host's own imports.
    pub(crate) capabilities: Arc<[Arc<dyn Capability>]>,
    /// Every interface a component may import here: the host's and the capabilities'.
    pub(crate) provided: Vec<Interface>,
    /// Each module's disk budget, shared by its sandboxes.
    pub(crate) budgets: crate::disk::Budgets,
    /// The process that made it: a forked child has none of its threads (the epoch
    /// thread that deadlines count on among them), so it runs no call.
    pub(crate) process: modhost_state::Process,
    /// Directories no mount may reach into or hold, as they are now (links resolved): the
    /// compiled code it loads, and what the application adds ([`Runtime::protecting`]).
    pub(crate) protected: Vec<PathBuf>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl Runtime {
    /// Creates a runtime that keeps compiled components in `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<Self> {
        Runtime::with_capabilities(cache_dir, Vec::new())
    }

    /// Creates a runtime that also links `capabilities` into every sandbox, for the
    /// components that import them.
    pub fn with_capabilities(
        cache_dir: &Path,
        capabilities: Vec<Arc<dyn Capability>>,
    ) -> Result<Self> {
        not_forked()?;
        crate::capability::check(&capabilities)?;
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Module authors get file:line in trap backtraces from their debug info, and the
        // behaviour does not depend on an environment variable.
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        // Every call instantiates afresh, so instantiation is the hot path: the pooling
        // allocator reuses pre-reserved slots (and copy-on-write memory images) instead of
        // mapping memory for each instance.
        let mut pool = PoolingAllocationConfig::new();
        // A component is several core instances (a Python one six or more, each with
        // tables) but one or two memories: memories bound how many calls run at once.
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 8)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES * 8)
            .max_memory_size(POOL_MEMORY);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES));
        config.max_wasm_stack(MAX_WASM_STACK);
        let engine = Engine::new(&config).map_err(|e| {
            // Reserving the pool's address space is what fails under `ulimit -v` or
            // valgrind, or with too many hosts open: say what the engine needs, not only
            // that a mapping failed.
            let others = match OPEN.load(Ordering::Relaxed) {
                0 => String::new(),
                _ => format!("; {}", mappings_hint()),
            };
            Error::Engine(format!(
                "{e:#} (the sandbox pool reserves a few TiB of address space, committing \
                 memory only as modules use it: run without `ulimit -v`, and not under \
                 valgrind{others})"
            ))
        })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        metered_fs::add_to_linker(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        deadline::add_to_linker(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        bindings::add_to_linker(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        let mut provided = imports::host_interfaces();
        for capability in &capabilities {
            capability
                .add_to_linker(&mut linker)
                .map_err(|e| Error::Capability {
                    package: capability.package().to_owned(),
                    problem: format!("it cannot be linked: {e:#}"),
                })?;
            // Checked by `capability::check`: every name parses.
            provided.extend(
                capability
                    .interfaces()
                    .iter()
                    .filter_map(|name| Interface::parse(name)),
            );
        }
        fs_err::create_dir_all(cache_dir).map_err(|source| Error::Io {
            path: cache_dir.to_owned(),
            source,
        })?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:016x}", hasher.finish());
        let ticker = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&ticker);
        let ticking = engine.clone();
        thread::Builder::new()
            .name("modhost-epoch".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?;
        OPEN.fetch_add(1, Ordering::Relaxed);
        Ok(Runtime {
            engine,
            linker,
            cache_dir: cache_dir.to_owned(),
            compat,
            ticker,
            idle: Kept::default(),
            capabilities: capabilities.into(),
            provided,
            budgets: Default::default(),
            process: modhost_state::Process::current(),
            protected: vec![resolved(cache_dir)],
        })
    }

    /// Also keeps every mount out of `dir` (and `dir` out of every mount): an embedding
    /// application's root, whose state and modules no module may reach. Checked each time
    /// a sandbox is made, so that a granted directory replaced by a link since is caught.
    pub fn protecting(mut self, dir: &Path) -> Self {
        self.protected.push(resolved(dir));
        self
    }

    /// The protected directory `path` reaches into or holds, as it resolves now.
    pub fn reaches_protected(&self, path: &Path) -> Option<&Path> {
        let path = resolved(path);
        self.protected
            .iter()
            .find(|protected| path.starts_with(protected) || protected.starts_with(&path))
            .map(PathBuf::as_path)
    }

    /// The wasmtime engine components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Fails in a process forked from the one that made the runtime: the child has
    /// none of its threads, so no deadline would stop a call there.
    pub fn same_process(&self) -> Result<()> {
        if self.process.is_current() {
            return Ok(());
        }
        Err(Error::Forked {
            first: self.process.id,
            now: std::process::id(),
        })
    }

    /// A new handle to cancel the calls it is passed to.
    pub fn cancel_handle(&self) -> Cancel {
        Cancel::new(&self.engine)
    }

    /// The packages a component may import here, with their versions: the host's own
    /// and the capabilities'.
    pub fn offered(&self) -> Vec<String> {
        imports::packages_of(&self.provided)
    }

    /// Whether an application's capability of this runtime gives `package`.
    pub fn provides(&self, package: &str) -> bool {
        self.capabilities.iter().any(|c| c.package() == package)
    }

    /// Whether the application's capability providing `package` needs the administrator's
    /// grant: `false` when it needs none, or when no capability provides the package.
    pub fn grant_needed(&self, package: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.package() == package && c.needs_grant())
    }

    /// What the host offers, for a message about `unknown` imports: each package with its
    /// version, and of a package an unknown import belongs to, its interfaces, so that
    /// an import of another interface of a package the host has reads as what it is.
    fn offered_beside(&self, unknown: &[String]) -> Vec<String> {
        let asked: Vec<String> = unknown
            .iter()
            .filter_map(|name| Interface::parse(name))
            .map(|import| import.package().to_owned())
            .collect();
        let (theirs, others): (Vec<Interface>, Vec<Interface>) = self
            .provided
            .iter()
            .cloned()
            .partition(|p| asked.iter().any(|a| a == p.package()));
        let mut offered = imports::packages_of(&others);
        offered.extend(theirs.iter().map(ToString::to_string));
        offered.sort();
        offered.dedup();
        offered
    }

    /// The packages of the capabilities needing a grant that `imports` (a component's
    /// import names) use.
    pub fn needing_grant(&self, imports: &[String]) -> Vec<String> {
        let mut packages: Vec<String> = imports
            .iter()
            .filter_map(|name| Interface::parse(name))
            .filter_map(|import| {
                self.capabilities
                    .iter()
                    .find(|c| c.needs_grant() && c.package() == import.package())
                    .map(|c| c.package().to_owned())
            })
            .collect();
        packages.sort();
        packages.dedup();
        packages
    }

    /// Reads the imports of the component in `bytes` (from `path`, for messages) without
    /// compiling it, and refuses one this runtime does not provide, naming it and what
    /// is offered, or a `modhost:module` version, imported or exported, it does not run.
    /// An import of an application's interface whose capability lists its functions is
    /// checked function by function too; and code that would cost minutes and gigabytes
    /// to compile is refused ([`MAX_FUNCTION_COST`](crate::MAX_FUNCTION_COST)).
    pub fn check_imports(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let names = imports::top_level(bytes).map_err(|message| Error::Load {
            path: path.to_owned(),
            message,
        })?;
        self.check_read(path, bytes, &names)
    }

    /// The component in `bytes` (from `path`, for messages) read without compiling it:
    /// what it imports, the functions it exports (or why it does not validate) and why
    /// this runtime would refuse it, if it would; an error when its top level cannot be
    /// read at all.
    pub fn read_component(&self, path: &Path, bytes: &[u8]) -> Result<ReadComponent> {
        let names = imports::top_level(bytes).map_err(|message| Error::Load {
            path: path.to_owned(),
            message,
        })?;
        let refused = self.check_read(path, bytes, &names).err();
        let exports = imports::validated_exports(bytes, &names.exports);
        Ok(ReadComponent {
            imports: names.imports,
            exports,
            refused,
        })
    }

    /// [`Runtime::check_imports`] of a component whose top level was read already.
    pub fn check_read(&self, path: &Path, bytes: &[u8], names: &TopLevel) -> Result<()> {
        self.check_links(path, bytes, names)?;
        compile_cost::check(bytes).map_err(|message| Error::Load {
            path: path.to_owned(),
            message,
        })
    }

    /// Whether this runtime would link the component read (its imports and the functions
    /// it asks of a capability), without reading its code for the cost of compiling it:
    /// for a component installed already, which that was checked for then.
    pub fn check_links(&self, path: &Path, bytes: &[u8], names: &TopLevel) -> Result<()> {
        self.check_top_level(path, names)?;
        self.check_functions(path, names, |imports| {
            imports::imported_functions(bytes, imports)
        })
    }

    /// Refuses a component importing a function of a capability's interface that the
    /// capability does not provide. Only a component importing an interface whose
    /// capability lists its functions is read for it, by `asked`: the functions each of
    /// the given imports asks for, `None` when they cannot be read.
    pub(crate) fn check_functions(
        &self,
        path: &Path,
        names: &TopLevel,
        asked: impl FnOnce(&[&str]) -> Option<Vec<(String, Vec<String>)>>,
    ) -> Result<()> {
        let mut listed: Vec<(&str, Vec<String>)> = Vec::new();
        for name in &names.imports {
            let Some(import) = Interface::parse(name) else {
                continue;
            };
            let functions = self.capabilities.iter().find_map(|capability| {
                capability
                    .interfaces()
                    .iter()
                    .find(|offered| {
                        Interface::parse(offered).is_some_and(|o| import.satisfied_by(&o))
                    })
                    .and_then(|offered| capability.functions(offered))
            });
            if let Some(functions) = functions {
                listed.push((name, functions));
            }
        }
        if listed.is_empty() {
            return Ok(());
        }
        let imports: Vec<&str> = listed.iter().map(|(name, _)| *name).collect();
        let Some(asked) = asked(&imports) else {
            return Ok(());
        };
        for (interface, functions) in asked {
            let Some((_, provided)) = listed.iter().find(|(name, _)| *name == interface) else {
                continue;
            };
            let missing: Vec<String> = functions
                .into_iter()
                .filter(|function| !provided.contains(function))
                .collect();
            if !missing.is_empty() {
                return Err(Error::MissingFunctions {
                    path: path.to_owned(),
                    interface,
                    missing,
                    provided: provided.clone(),
                });
            }
        }
        Ok(())
    }

    /// [`Runtime::check_imports`] of what was read of a component already.
    pub fn check_top_level(&self, path: &Path, names: &TopLevel) -> Result<()> {
        let mut unknown = Vec::new();
        for name in &names.imports {
            let Some(import) = Interface::parse(name) else {
                unknown.push(name.clone());
                continue;
            };
            if self.provided.iter().any(|p| import.satisfied_by(p)) {
                continue;
            }
            let supported = import
                .version
                .as_ref()
                .is_some_and(|v| crate::SUPPORTED_API_VERSIONS.contains(&v.to_string().as_str()));
            // An interface the contract does not have, of a version it has, is one more
            // unknown import, listed with what the host offers.
            if import.package() == "modhost:module" && !supported {
                return Err(Error::ApiVersion {
                    path: path.to_owned(),
                    found: import.version.map(|v| v.to_string()).unwrap_or_default(),
                });
            }
            unknown.push(name.clone());
        }
        if !unknown.is_empty() {
            return Err(Error::Imports {
                path: path.to_owned(),
                offered: self.offered_beside(&unknown),
                unknown,
            });
        }
        // A component may only export `modhost:module` (its lifecycle and hooks): its
        // version is read here too, so that a wrong one is refused before compiling.
        let unsupported = names
            .exports
            .iter()
            .filter_map(|name| Interface::parse(name))
            .filter(|export| export.package() == "modhost:module")
            .find_map(|export| {
                let version = export.version.map(|v| v.to_string()).unwrap_or_default();
                (!crate::SUPPORTED_API_VERSIONS.contains(&version.as_str())).then_some(version)
            });
        if let Some(found) = unsupported {
            return Err(Error::ApiVersion {
                path: path.to_owned(),
                found,
            });
        }
        let missing: Vec<String> = ["lifecycle", "hooks"]
            .into_iter()
            .filter(|wanted| {
                !names.exports.iter().any(|name| {
                    Interface::parse(name)
                        .is_some_and(|export| export.name == format!("modhost:module/{wanted}"))
                })
            })
            .map(|wanted| format!("`{wanted}`"))
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingExports {
                path: path.to_owned(),
                missing,
            });
        }
        Ok(())
    }
}

/// Fails in a process forked from one that used modhost. The threads that process
/// started — its engines' epoch threads, the compiler's pool, WASI's runtime — are not
/// in the fork, yet their shared state (SQLite's and the allocator's locks among it) says
/// they are: opening a database, compiling or reading a file there could wait for ever,
/// so this comes before any of them.
pub fn not_forked() -> Result<()> {
    let Some(first) = modhost_state::Process::forked_from() else {
        return Ok(());
    };
    Err(Error::Forked {
        first,
        now: std::process::id(),
    })
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many runtimes (one per open host) this process has.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// What an open host costs in memory mappings, and how many are open: a process runs out
/// of mappings long before it runs out of memory.
pub(crate) fn mappings_hint() -> String {
    format!(
        "each open host takes about 2,000 memory mappings, and Linux allows a process \
         65,530 by default (`sysctl vm.max_map_count`): {} hosts are open in this process; \
         share one host between threads, or raise the limit",
        OPEN.load(Ordering::Relaxed)
    )
}

/// Whether `error` is the system refusing memory (`ENOMEM`): the process is out of memory
/// or of memory mappings, which is no fault of the component being loaded.
pub(crate) fn out_of_memory(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(12))
    }) || format!("{error:#}").contains("(os error 12)")
}

/// `path` with its links resolved, or as given when it cannot be (not there yet).
fn resolved(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// A component as [`Runtime::read_component`] reads it, never compiled.
#[derive(Debug)]
pub struct ReadComponent {
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The functions it exports ([`crate::exported_functions`]), or why it does not
    /// validate.
    pub exports: std::result::Result<Vec<String>, String>,
    /// Why this runtime would refuse it, if it would.
    pub refused: Option<Error>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_reaching_a_protected_directory_is_told_as_it_resolves_now() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("root");
        let shared = dir.path().join("shared");
        for made in [root.join("cache"), shared.clone()] {
            std::fs::create_dir_all(made).unwrap_or_else(|e| panic!("{e}"));
        }
        let runtime = Runtime::new(&root.join("cache"))
            .unwrap_or_else(|e| panic!("{e}"))
            .protecting(&root);
        assert_eq!(runtime.reaches_protected(&shared), None);
        // Into it, holding it, or a link to it, which is how it resolves now.
        assert!(runtime.reaches_protected(&root.join("data")).is_some());
        assert!(runtime.reaches_protected(dir.path()).is_some());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(root.join("cache"), &link).unwrap_or_else(|e| panic!("{e}"));
        // The compiled code, which the runtime protects of itself, is named first.
        assert_eq!(
            runtime.reaches_protected(&link),
            Some(
                root.join("cache")
                    .canonicalize()
                    .unwrap_or_default()
                    .as_path()
            )
        );
    }
}
