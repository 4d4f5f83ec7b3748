//! The sandbox modhost runs modules in.
//!
//! A [`Runtime`] owns one wasmtime [`Engine`] and a directory of compiled components.
//! [`Runtime::load`] compiles a component once and keeps the artifact, keyed by the
//! component's SHA-256 and the engine's compatibility hash, so later processes map it
//! instead of compiling again. [`Runtime::call`] runs one lifecycle call or hook handler in
//! a fresh instance with no ambient authority: WASI sees only the module's data directory
//! (as `/data`), no network, no environment; a deadline bounds its time, running or waiting
//! in WASI; a store limiter caps its memories together; its resource table caps the files
//! and streams it holds; and its result is bounded. [`Runtime::call_warm`] runs hook
//! handlers the same way in an instance kept from the module's previous call (as Zed keeps
//! extensions loaded), so a dispatch across many modules costs function calls rather than
//! instantiations; an instance still holding open files when its call ends is not kept.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use modhost_state::Session;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable, ResourceTableError};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

mod bindings;
mod deadline;
mod host;
mod limiter;

use bindings::{Instance, Pre};
use deadline::DeadlinePassed;
use host::HostState;
use limiter::{Limiter, MemoryCapReached};

/// The `modhost:module` WIT versions this host runs.
pub const SUPPORTED_API_VERSIONS: &[&str] = bindings::VERSIONS;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances that may be alive at once (concurrent dispatches times nesting depth).
const POOL_INSTANCES: u32 = 256;

/// The largest linear memory a pooled slot can hold: the ceiling of any call's cap.
pub const POOL_MEMORY: usize = 256 << 20;

/// Idle instances kept per module, and in all: the rest of the pool stays free for live
/// calls.
const WARM_PER_MODULE: usize = 2;
const WARM_TOTAL: usize = POOL_INSTANCES as usize / 2;

/// How much of a call's stderr is kept (for trap reports); writing more traps the call.
const GUEST_STDERR: usize = 64 * 1024;

/// Host resources (open files, streams, pollables) an idle instance may keep between calls.
/// An SDK module keeps a few (its preopened directories and stdio); one that keeps more is
/// holding on to open files, which are the process's, so it is not kept warm.
const WARM_RESOURCES: usize = 16;

/// Where a module's data directory appears inside its sandbox.
pub const GUEST_DATA_DIR: &str = "/data";

/// Bounds on what one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock CPU budget of one call, enforced by epoch interruption.
    pub call_timeout: Duration,
    /// Linear memory one call's instance may hold, in bytes, across all its memories; at
    /// most [`POOL_MEMORY`].
    pub max_memory: usize,
    /// Longest result or error message a call may return, in bytes.
    pub max_output: usize,
    /// Host resources (open files, directory streams, pollables…) a call may hold at once.
    pub max_resources: usize,
    /// Log records kept per call; the rest are counted and dropped.
    pub max_log_records: usize,
    /// Longest log message kept, in bytes.
    pub max_log_message: usize,
    /// Longest key-value key, in bytes.
    pub max_kv_key: usize,
    /// Longest key-value value, in bytes.
    pub max_kv_value: usize,
    /// How deep hooks fired from handlers may nest: a handler of a hook fired by a
    /// handler runs one level deeper; past this, `fire` fails instead of calling further.
    pub max_fire_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(10),
            max_memory: 64 * 1024 * 1024,
            max_output: 1024 * 1024,
            max_resources: 256,
            max_log_records: 1000,
            max_log_message: 4096,
            max_kv_key: 1024,
            max_kv_value: 1024 * 1024,
            max_fire_depth: 4,
        }
    }
}

impl Limits {
    /// Refuses limits the sandbox cannot enforce as stated: a memory cap above what a pooled
    /// slot holds would silently be cut to the slot.
    pub fn check(&self) -> Result<()> {
        if self.max_memory > POOL_MEMORY {
            return Err(Error::MemoryCapTooLarge {
                cap: self.max_memory,
            });
        }
        Ok(())
    }
}

/// `bytes` in MiB when it is a whole number of them, else in bytes.
fn bytes(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A sandbox failure, naming the module and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the runtime could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// wasmtime could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The file is not a component that this host can run.
    #[error("`{path}` is not a loadable modhost:module@{} component: {message}", SUPPORTED_API_VERSIONS.join(", "))]
    Load {
        /// The component file.
        path: PathBuf,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component targets a version of the WIT contract this host does not run.
    #[error("`{path}` is built against modhost:module@{found}; this host supports modhost:module@{}", SUPPORTED_API_VERSIONS.join(", @"))]
    ApiVersion {
        /// The component file.
        path: PathBuf,
        /// The version it targets.
        found: String,
    },
    /// The module's call trapped, ran out of time or memory, or could not start.
    #[error("module `{module}` {version}: {call} {failure}")]
    Trapped {
        /// The module's rawname.
        module: String,
        /// The module's version.
        version: String,
        /// The call that failed.
        call: String,
        /// What happened, with the guest backtrace when there is one.
        failure: Failure,
    },
    /// A memory cap larger than the sandbox's memory slots was asked for.
    #[error("a memory cap of {} is larger than the {} a sandbox can hold", bytes(*.cap), bytes(POOL_MEMORY))]
    MemoryCapTooLarge {
        /// The cap asked for, in bytes.
        cap: usize,
    },
    /// The module's call returned a result or error message over the output limit; it was
    /// dropped.
    #[error("module `{module}` {version}: {call} returned {size} bytes, over the output limit of {}", bytes(*.limit))]
    OutputTooLarge {
        /// The module's rawname.
        module: String,
        /// The module's version.
        version: String,
        /// The call that returned it.
        call: String,
        /// How long the result or error message was, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The module's call returned an error.
    #[error("module `{module}` {version}: {call} failed: {message}")]
    Failed {
        /// The module's rawname.
        module: String,
        /// The module's version.
        version: String,
        /// The call that failed.
        call: String,
        /// The module's own message.
        message: String,
    },
}

/// How a call was stopped by the sandbox.
#[derive(Debug)]
pub enum Failure {
    /// It ran, or waited, past its deadline.
    Timeout(Duration),
    /// Its memories together would have grown past its cap; the text includes the backtrace
    /// of what asked for the memory.
    OutOfMemory {
        /// The cap, in bytes.
        cap: usize,
        /// The trap, with the backtrace.
        trap: String,
    },
    /// It tried to hold more host resources (open files, streams…) than its limit.
    TooManyResources(usize),
    /// Its stack ran out (deep or endless recursion); the text includes the backtrace.
    StackOverflow(String),
    /// It trapped; the text includes the backtrace.
    Trap(String),
    /// The host failed it: the state database could not serve one of its statements
    /// (say, the write lock stayed taken past its deadline). Not the module's fault.
    Host(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout(limit) => write!(f, "was stopped after its {limit:?} deadline"),
            Failure::OutOfMemory { cap, trap } => {
                write!(
                    f,
                    "trapped: out of memory at its memory cap of {}: {trap}",
                    bytes(*cap)
                )
            }
            Failure::TooManyResources(limit) => write!(
                f,
                "was stopped holding its limit of {limit} open files, streams and other host resources"
            ),
            Failure::StackOverflow(text) => {
                write!(f, "ran out of stack (deep or endless recursion): {text}")
            }
            Failure::Trap(text) => write!(f, "trapped: {text}"),
            Failure::Host(text) => write!(f, "was stopped by the host: {text}"),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A call into a module.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// `lifecycle.install`.
    Install,
    /// `lifecycle.upgrade(from-version)`.
    Upgrade {
        /// The version being replaced.
        from: &'a str,
    },
    /// `lifecycle.uninstall`.
    Uninstall,
    /// `lifecycle.enable`.
    Enable,
    /// `lifecycle.disable`.
    Disable,
    /// `hooks.handle`.
    Hook {
        /// The handler name from module.xml.
        handler: &'a str,
        /// The hook point.
        hook: &'a str,
        /// The hook point's input.
        payload: &'a str,
    },
}

impl fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Install => f.write_str("install()"),
            Call::Upgrade { from } => write!(f, "upgrade({from})"),
            Call::Uninstall => f.write_str("uninstall()"),
            Call::Enable => f.write_str("enable()"),
            Call::Disable => f.write_str("disable()"),
            Call::Hook { handler, hook, .. } => write!(f, "handler `{handler}` for hook `{hook}`"),
        }
    }
}

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// It was compiled now, and the artifact was stored for next time.
    Compiled,
    /// It was mapped from an artifact compiled earlier.
    Cached,
}

/// A component ready to instantiate: compiled, linked, and type-checked against the WIT.
pub struct LoadedComponent {
    pre: Pre,
    sha256: String,
    origin: Origin,
}

impl fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("sha256", &self.sha256)
            .field("origin", &self.origin)
            .finish()
    }
}

impl LoadedComponent {
    /// SHA-256 of the component file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether it was compiled now or mapped from the cache.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The functions the component exports, as `interface.function` with the
    /// interface's package and version left out when they are a `modhost:module` version
    /// this host runs (e.g. `lifecycle.install`, `hooks.handle`).
    pub fn exports(&self, engine: &Engine) -> Vec<String> {
        use wasmtime::component::types::ComponentItem;
        let component = self.pre.instance_pre().component();
        let mut names = Vec::new();
        for (interface, item) in component.component_type().exports(engine) {
            let short = interface
                .strip_prefix("modhost:module/")
                .and_then(|rest| rest.split_once('@'))
                .filter(|(_, version)| SUPPORTED_API_VERSIONS.contains(version))
                .map_or(interface, |(name, _)| name);
            match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    for (function, item) in instance.exports(engine) {
                        if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                            names.push(format!("{short}.{function}"));
                        }
                    }
                }
                ComponentItem::ComponentFunc(_) => names.push(short.to_owned()),
                _ => {}
            }
        }
        names
    }
}

/// A host directory mounted into a module's sandbox, at the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host directory; the module sees it at the same path.
    pub path: PathBuf,
    /// Whether the module may only read it.
    pub read_only: bool,
}

/// A hook fired by a module from inside a call.
#[derive(Debug)]
pub struct FireRequest<'a> {
    /// The module that fired it.
    pub caller: &'a str,
    /// The hook point.
    pub hook: &'a str,
    /// The payload.
    pub payload: &'a str,
    /// How deep the handlers will run: 1 for a hook fired by a top-level call.
    pub depth: u32,
    /// The firing call's deadline, which the handlers share.
    pub deadline: Instant,
}

/// Each fired handler's module and result, in the order they ran.
pub type Fired = Vec<(String, Result<String, String>)>;

/// Runs the handlers of a hook a module fires. The host implements it; the runtime
/// lends it the firing call's session and gets it back.
pub trait Fire: Send + Sync {
    /// Runs `request`'s handlers inside `session`; returns each `(module, result)` in
    /// order, or why the hook could not be fired.
    fn fire(&self, request: FireRequest<'_>, session: Session) -> (Result<Fired, String>, Session);
}

/// Who is being called, with what.
pub struct CallContext<'a> {
    /// The module's rawname.
    pub rawname: &'a str,
    /// The module's version.
    pub version: &'a str,
    /// The host directory mounted as the module's `/data`.
    pub data_dir: &'a Path,
    /// Granted host directories.
    pub mounts: &'a [Mount],
    /// The session the module's key-value and database calls go through.
    pub session: Session,
    /// The call's limits.
    pub limits: Limits,
    /// A deadline inherited from a firing call, when it is sooner than the call's own.
    pub deadline: Option<Instant>,
    /// Where hooks the module fires go; `None` refuses them.
    pub fire: Option<Arc<dyn Fire>>,
    /// How deep in fired hooks this call is: 0 at the top.
    pub depth: u32,
}

/// The wasmtime engine, the linker with the host's imports, and the artifact cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: PathBuf,
    compat: String,
    ticker: Arc<AtomicBool>,
    /// Idle instances kept by every [`Warm`] of this runtime.
    idle: Arc<AtomicUsize>,
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
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Module authors get file:line in trap backtraces from their debug info, and the
        // behaviour does not depend on an environment variable.
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        // Every call instantiates afresh, so instantiation is the hot path: the pooling
        // allocator reuses pre-reserved slots (and copy-on-write memory images) instead of
        // mapping memory for each instance.
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 2)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES * 2)
            .max_memory_size(POOL_MEMORY);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES));
        config.max_wasm_stack(512 * 1024);
        let engine = Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        deadline::add_to_linker(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        bindings::add_to_linker(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
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
        Ok(Runtime {
            engine,
            linker,
            cache_dir: cache_dir.to_owned(),
            compat,
            ticker,
            idle: Arc::default(),
        })
    }

    /// The wasmtime engine components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the component at `path`, mapping its compiled artifact if one exists and
    /// compiling (and storing) it otherwise. `sha256` may pass a digest already known
    /// (recorded at install) to skip reading the file.
    pub fn load(&self, path: &Path, sha256: Option<&str>) -> Result<LoadedComponent> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let (sha256, bytes) = match sha256 {
            Some(known) => (known.to_owned(), None),
            None => {
                let bytes = fs_err::read(path).map_err(io)?;
                (hex(&Sha256::digest(&bytes)), Some(bytes))
            }
        };
        let artifact = self
            .cache_dir
            .join(format!("{sha256}-{}.cwasm", self.compat));
        let cached = if artifact.is_file() {
            match self.map_artifact(&artifact) {
                Ok(component) => Some(component),
                Err(e) => {
                    tracing::warn!(artifact = %artifact.display(), "discarding unusable compiled component: {e}");
                    None
                }
            }
        } else {
            None
        };
        let (component, origin) = match cached {
            Some(component) => {
                tracing::debug!(artifact = %artifact.display(), "loaded precompiled component");
                (component, Origin::Cached)
            }
            None => {
                let bytes = match bytes {
                    Some(bytes) => bytes,
                    None => {
                        // Compiled code is cached under the recorded digest: a file that no
                        // longer has it must not be compiled and trusted under that name.
                        let bytes = fs_err::read(path).map_err(io)?;
                        let found = hex(&Sha256::digest(&bytes));
                        if found != sha256 {
                            return Err(Error::Load {
                                path: path.to_owned(),
                                message: format!(
                                    "it has changed since it was installed (sha256 {found}, recorded {sha256})"
                                ),
                            });
                        }
                        bytes
                    }
                };
                tracing::info!(component = %path.display(), "compiling component");
                let component =
                    Component::from_binary(&self.engine, &bytes).map_err(|e| Error::Load {
                        path: path.to_owned(),
                        message: format!("{e:#}"),
                    })?;
                self.store_artifact(&component, &artifact)?;
                (component, Origin::Compiled)
            }
        };
        let api_version = check_api_version(&self.engine, &component, path)?;
        let load_err = |e: wasmtime::Error| Error::Load {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(load_err)?;
        let pre = Pre::new(api_version, instance_pre).map_err(load_err)?;
        Ok(LoadedComponent {
            pre,
            sha256,
            origin,
        })
    }

    /// Maps an artifact this runtime wrote earlier.
    #[allow(unsafe_code)]
    fn map_artifact(&self, artifact: &Path) -> wasmtime::Result<Component> {
        // SAFETY: the artifact lives in the root's cache directory, which only modhost
        // writes, always atomically (temp file + rename) and always with bytes produced by
        // `Component::serialize`; wasmtime also checks that it was compiled by a
        // compatible engine before using it.
        unsafe { Component::deserialize_file(&self.engine, artifact) }
    }

    /// Writes the artifact beside its final name and renames it into place, so a reader
    /// never sees a partial file.
    fn store_artifact(&self, component: &Component, artifact: &Path) -> Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| Error::Engine(format!("cannot serialize a compiled component: {e}")))?;
        let io = |source| Error::Io {
            path: artifact.to_owned(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.cache_dir).map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(artifact).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Removes every compiled artifact of the component with digest `sha256`, whatever
    /// engine compiled it, once no installed version needs it: compiled code should not
    /// outlive the module it came from.
    pub fn forget(&self, sha256: &str) -> Result<()> {
        let prefix = format!("{sha256}-");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        for entry in fs_err::read_dir(&self.cache_dir).map_err(io(&self.cache_dir))? {
            let entry = entry.map_err(io(&self.cache_dir))?;
            let name = entry.file_name();
            let ours = name.to_str().is_some_and(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.ends_with(".cwasm"))
            });
            if ours {
                let path = entry.path();
                match fs_err::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&path)(e));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Runs `call` in a fresh instance of `component`. The context's session is handed
    /// back whatever happens, so the caller decides whether to commit it.
    pub fn call(
        &self,
        component: &LoadedComponent,
        context: CallContext,
        call: &Call,
    ) -> (Result<Option<String>>, Session) {
        self.call_in(component, None, context, call)
    }

    /// Runs hook call `call` like [`Runtime::call`], in an instance kept in `warm` from an
    /// earlier call when there is one: a call then costs a function call, not an
    /// instantiation. An instance that trapped, or wrote to stderr, is not kept.
    pub fn call_warm(
        &self,
        component: &LoadedComponent,
        warm: &Warm,
        context: CallContext,
        call: &Call,
    ) -> (Result<Option<String>>, Session) {
        self.call_in(component, Some(warm), context, call)
    }

    fn call_in(
        &self,
        component: &LoadedComponent,
        warm: Option<&Warm>,
        context: CallContext,
        call: &Call,
    ) -> (Result<Option<String>>, Session) {
        let CallContext {
            rawname,
            version,
            data_dir,
            mounts,
            session,
            limits,
            deadline,
            fire,
            depth,
        } = context;
        if let Err(e) = limits.check() {
            return (Err(e), session);
        }
        let trapped = trapped(rawname, version, call, limits);
        let reused = warm.and_then(|w| w.take(limits.max_memory));
        let mut hot = match reused {
            Some(hot) => hot,
            None => match self.sandbox(rawname, data_dir, mounts, limits) {
                Ok(sandbox) => sandbox,
                Err(e) => return (Err(e), session),
            },
        };
        let now = Instant::now();
        let deadline = match deadline {
            Some(inherited) => inherited.min(now + limits.call_timeout),
            None => now + limits.call_timeout,
        };
        let state = hot.store.data_mut();
        state.table.set_max_capacity(limits.max_resources);
        state.session = Some(session);
        state.limits = limits;
        state.deadline = deadline;
        state.fire = fire;
        state.depth = depth;
        state.log_records = 0;
        state.log_dropped = 0;
        let remaining = deadline.saturating_duration_since(now);
        let ticks = remaining.as_millis() / EPOCH_TICK.as_millis();
        hot.store
            .set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));

        let instance = match hot.instance.take() {
            Some(instance) => Ok(instance),
            None => component.pre.instantiate(&mut hot.store).map_err(&trapped),
        };
        let result = instance.and_then(|instance| {
            let result = invoke(&instance, &mut hot.store, call, rawname, version, &trapped);
            hot.instance = Some(instance);
            result
        });
        let stderr = hot.stderr.contents();
        let result = result.map_err(|e| with_stderr(e, &stderr));
        let state = hot.store.data_mut();
        state.fire = None;
        if state.log_dropped > 0 {
            tracing::warn!(target: "modhost::module", module = %rawname, "{} log records over the limit of {} were dropped", state.log_dropped, limits.max_log_records);
        }
        let session = match state.session.take() {
            Some(session) => session,
            None => unreachable!("the session is returned by every fire before the call ends"),
        };
        let healthy = !matches!(result, Err(Error::Trapped { .. }))
            && stderr.is_empty()
            && state.table.iter_mut().count() <= WARM_RESOURCES;
        if let Some(warm) = warm.filter(|_| healthy) {
            warm.keep(hot, &self.idle);
        }
        (result, session)
    }

    /// A store for `rawname` with no ambient authority: WASI sees only the module's data
    /// directory and granted mounts, no network; memory is capped by a limiter, host
    /// resources by the table's capacity.
    fn sandbox(
        &self,
        rawname: &str,
        data_dir: &Path,
        mounts: &[Mount],
        limits: Limits,
    ) -> Result<Hot> {
        let mut wasi = WasiCtxBuilder::new();
        let stderr = MemoryOutputPipe::new(GUEST_STDERR);
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone());
        let mut preopens = vec![(
            data_dir.to_owned(),
            GUEST_DATA_DIR.to_owned(),
            FsPerms::ReadWrite,
        )];
        for mount in mounts {
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            preopens.push((mount.path.clone(), mount.path.display().to_string(), perms));
        }
        for (host, guest, perms) in &preopens {
            wasi.preopened_dir(host, guest, *perms)
                .map_err(|e| Error::Io {
                    path: host.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources);
        let state = HostState {
            wasi: wasi.build(),
            table,
            limiter: Limiter::new(limits.max_memory),
            limits,
            rawname: rawname.to_owned(),
            session: None,
            log_records: 0,
            log_dropped: 0,
            deadline: Instant::now(),
            fire: None,
            depth: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        Ok(Hot {
            store,
            instance: None,
            stderr,
            max_memory: limits.max_memory,
        })
    }
}

/// Maps a wasmtime error of a call to [`Error::Trapped`], naming the module, its version
/// and the call, and telling which limit stopped it from other traps.
fn trapped<'a>(
    rawname: &'a str,
    version: &'a str,
    call: &'a Call,
    limits: Limits,
) -> impl Fn(wasmtime::Error) -> Error + 'a {
    move |e| {
        let failure = if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
            || e.is::<DeadlinePassed>()
        {
            Failure::Timeout(limits.call_timeout)
        } else if let Some(reached) = e.downcast_ref::<MemoryCapReached>() {
            Failure::OutOfMemory {
                cap: reached.cap,
                trap: format!("{e:#}"),
            }
        } else if matches!(
            e.downcast_ref::<ResourceTableError>(),
            Some(ResourceTableError::Full)
        ) {
            Failure::TooManyResources(limits.max_resources)
        } else if let Some(db) = e.downcast_ref::<modhost_state::Error>() {
            Failure::Host(db.to_string())
        } else if stack_exhausted(&e) {
            Failure::StackOverflow(format!("{e:#}"))
        } else {
            Failure::Trap(format!("{e:#}"))
        };
        Error::Trapped {
            module: rawname.to_owned(),
            version: version.to_owned(),
            call: call.to_string(),
            failure,
        }
    }
}

/// The most guest frames a trap's backtrace keeps.
const BACKTRACE_FRAMES: usize = 32;

/// Whether a trap is the stack running out: wasmtime's own stack limit, or, for guests that
/// keep their stack in linear memory (Rust, C), an out-of-bounds access under a backtrace
/// full of one function, which is how running off the bottom of that stack shows.
fn stack_exhausted(e: &wasmtime::Error) -> bool {
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => true,
        Some(Trap::MemoryOutOfBounds) => {
            e.downcast_ref::<wasmtime::WasmBacktrace>()
                .is_some_and(|trace| {
                    let frames = trace.frames();
                    frames.len() >= BACKTRACE_FRAMES
                        && frames
                            .windows(2)
                            .all(|w| w[0].func_index() == w[1].func_index())
                })
        }
        _ => false,
    }
}

/// Calls `call`'s export on `instance`.
fn invoke(
    instance: &Instance,
    store: &mut Store<HostState>,
    call: &Call,
    rawname: &str,
    version: &str,
    trapped: &impl Fn(wasmtime::Error) -> Error,
) -> Result<Option<String>> {
    let failed = |message: String| Error::Failed {
        module: rawname.to_owned(),
        version: version.to_owned(),
        call: call.to_string(),
        message,
    };
    let limit = store.data().limits.max_output;
    // The result is already copied out of the guest (bounded by its memory cap); refusing it
    // here keeps a dispatch from holding one such copy per handler.
    let bounded = |text: &str| {
        if text.len() > limit {
            Err(Error::OutputTooLarge {
                module: rawname.to_owned(),
                version: version.to_owned(),
                call: call.to_string(),
                size: text.len(),
                limit,
            })
        } else {
            Ok(())
        }
    };
    let outcome = instance.call(store, call);
    match outcome.map_err(trapped)? {
        Ok(output) => {
            bounded(output.as_deref().unwrap_or_default())?;
            Ok(output)
        }
        Err(message) => {
            bounded(&message)?;
            Err(failed(message))
        }
    }
}

/// A sandboxed store, with its instance once instantiated.
struct Hot {
    store: Store<HostState>,
    instance: Option<Instance>,
    stderr: MemoryOutputPipe,
    max_memory: usize,
}

/// Instances of one module kept between its hook calls. Dropping it (when the module is
/// upgraded, disabled or removed) drops them.
#[derive(Default)]
pub struct Warm {
    idle: std::sync::Mutex<Vec<Hot>>,
    /// The runtime-wide count of idle instances, shared with every `Warm`.
    counter: std::sync::OnceLock<Arc<AtomicUsize>>,
}

impl fmt::Debug for Warm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Warm")
    }
}

impl Warm {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Hot>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, max_memory: usize) -> Option<Hot> {
        let mut idle = self.idle();
        let at = idle.iter().position(|h| h.max_memory == max_memory)?;
        if let Some(counter) = self.counter.get() {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
        Some(idle.swap_remove(at))
    }

    /// Keeps `hot` unless this module or the runtime already keeps enough: idle instances
    /// hold pooled slots that live calls need.
    fn keep(&self, hot: Hot, counter: &Arc<AtomicUsize>) {
        let counter = self.counter.get_or_init(|| Arc::clone(counter));
        let mut idle = self.idle();
        if idle.len() >= WARM_PER_MODULE {
            return;
        }
        if counter.fetch_add(1, Ordering::Relaxed) < WARM_TOTAL {
            idle.push(hot);
        } else {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        if let Some(counter) = self.counter.get() {
            counter.fetch_sub(self.idle().len(), Ordering::Relaxed);
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

/// Adds the tail of what the guest wrote to stderr (a Rust panic message, say) to a trap.
fn with_stderr(error: Error, stderr: &[u8]) -> Error {
    let text = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    match error {
        Error::Trapped {
            module,
            version,
            call,
            failure: Failure::Trap(trap),
        } if !tail.is_empty() => Error::Trapped {
            module,
            version,
            call,
            failure: Failure::Trap(format!(
                "{trap}\nguest stderr:\n  {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            )),
        },
        other => other,
    }
}

/// The `modhost:module` version `component` is built against; refuses one this host does
/// not run, naming both, before linking would fail with a less helpful message, and one
/// that mixes versions.
fn check_api_version(engine: &Engine, component: &Component, path: &Path) -> Result<&'static str> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name));
    let mut versions: Vec<String> = names
        .filter_map(|name| name.strip_prefix("modhost:module/"))
        .filter_map(|rest| rest.split_once('@').map(|(_, version)| version.to_owned()))
        .collect();
    versions.sort();
    versions.dedup();
    match versions
        .iter()
        .find(|v| !SUPPORTED_API_VERSIONS.contains(&v.as_str()))
    {
        Some(unsupported) => Err(Error::ApiVersion {
            path: path.to_owned(),
            found: unsupported.clone(),
        }),
        None => match versions.as_slice() {
            [] => Err(Error::Load {
                path: path.to_owned(),
                message: "it neither imports nor exports any modhost:module interface".to_owned(),
            }),
            [version] => SUPPORTED_API_VERSIONS
                .iter()
                .copied()
                .find(|v| v == version)
                .ok_or_else(|| Error::ApiVersion {
                    path: path.to_owned(),
                    found: version.clone(),
                }),
            mixed => Err(Error::Load {
                path: path.to_owned(),
                message: format!("it mixes modhost:module versions {}", mixed.join(", ")),
            }),
        },
    }
}

/// The lower-case hex sha256 of the file at `path`, as components are recorded.
pub fn sha256_of(path: &Path) -> Result<String> {
    let bytes = fs_err::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
