//! The sandbox modhost runs modules in.
//!
//! A [`Runtime`] owns one wasmtime [`Engine`](wasmtime::Engine) and a directory of compiled
//! components. [`Runtime::load`] compiles a component once and keeps the artifact, keyed by
//! the component's SHA-256 and the engine's compatibility hash, so later processes map it
//! instead of compiling again. [`Runtime::call`] runs one lifecycle call or hook handler in
//! a fresh instance with no ambient authority: WASI sees only the module's data directory
//! (as `/data`), no network, no environment; a deadline bounds its time, running or waiting
//! in WASI; a store limiter caps its memories together; its resource table caps the files
//! and streams it holds; and its result is bounded. [`Runtime::call_warm`] runs hook
//! handlers the same way in an instance kept from the module's previous call (as Zed keeps
//! extensions loaded), so a dispatch across many modules costs function calls rather than
//! instantiations; an instance still holding open files when its call ends is not kept.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use modhost_runtime::{Call, CallContext, DiskQuota, Limits, Runtime};
//! use modhost_state::{Session, State};
//!
//! let runtime = Runtime::new(Path::new("/var/lib/modhost/cache"))?;
//! let component = runtime.load(Path::new("core.wasm"), None)?;
//! let state = State::open(Path::new("/var/lib/modhost/modhost.db"))?;
//! let context = CallContext {
//!     rawname: "core",
//!     version: "16.0.40",
//!     data_dir: Path::new("/var/lib/modhost/data/core"),
//!     mounts: &[],
//!     session: Session::over(state.begin()?),
//!     limits: Limits::default(),
//!     deadline: None,
//!     fire: None,
//!     depth: 0,
//!     disk_quota: DiskQuota::default(),
//!     data: None,
//!     cancel: None,
//!     logs: None,
//! };
//! // The session comes back whatever happened: the caller decides whether to commit.
//! let (result, session) = runtime.call(&component, context, &Call::Install);
//! result?;
//! session.commit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// First: rustdoc lists a type's methods in the order the compiler meets its `impl` blocks,
// so `Runtime::new` stays ahead of the methods the other modules add.
mod runtime;

mod bindings;
mod cache;
mod call;
mod cancel;
mod capability;
mod compile_cost;
#[cfg(test)]
mod core_wasm;
mod deadline;
mod disk;
mod error;
mod fire;
mod granted;
mod host;
mod imports;
mod limiter;
mod limits;
mod log_ledger;
mod metered_fs;
mod nesting;
mod output;
mod sandbox;
mod stack;
mod trap;
mod version;
mod warm;

pub use cache::{DEFAULT_CACHE_KEEP, LoadedComponent, Origin, PARTIAL, sha256_of};
pub use call::{Call, CallContext, with_stack};
pub use cancel::{Cancel, running_call};
pub use capability::{CallData, Capability, CapabilityError};
pub use compile_cost::{MAX_FUNCTION_COST, MAX_TOTAL_COST};
pub use disk::{DEFAULT_DISK_QUOTA, DiskQuota, DiskUsage, disk_usage};
pub use error::{Error, Failure, Result};
pub use fire::{Fire, FireRequest, Fired};
pub use granted::link_on_path;
pub use host::Sandbox;
pub use imports::{
    Interface, TopLevel, component_imports, exported_functions, top_level, validated_exports,
};
pub use limits::{Limits, MAX_CALL_TIMEOUT, MAX_FIRE_DEPTH, POOL_MEMORY};
pub use log_ledger::LogLedger;
pub use nesting::MAX_DIRECTORY_DEPTH;
pub use runtime::{ReadComponent, Runtime, not_forked};
pub use sandbox::{GUEST_DATA_DIR, Mount};
pub use version::SUPPORTED_API_VERSIONS;
pub use warm::Warm;
