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
//!
//! # Map
//!
//! - `host.rs`: [`Host`] itself — opening a root, its settings, the root lock, recovery,
//!   and the entry to hook dispatch (`dispatch/`: the dispatcher, hook points, outcomes);
//!   `embedding.rs`: [`Embedding`], how an application opens one with its limits and
//!   capabilities; `made.rs`: what opening made, taken away by a failed change;
//!   `intent.rs`: what a change in progress makes and replaces, listed first.
//! - `verbs.rs`: what a host does to modules; each verb is one operation of `ops/`
//!   (install and upgrade, remove, enable and disable, rollback, scan, grants, reload),
//!   each run inside the one `ops/transaction.rs`, or of `online/` (sources, offers,
//!   applying what verified).
//! - `query.rs`: read-only questions (list, info, kv, rows, reverse dependencies,
//!   dependency checks); `near.rs`: names near a mistyped one.
//! - `event.rs` and `change.rs`: progress events, and what a change did.
//! - `plan.rs` and `depends.rs`: what a batch does and whether its constraints hold;
//!   `packages.rs`: a local package directory; `config.rs`: `modhost.toml`;
//!   `layout.rs`, `lock.rs`, `recover.rs`: the root on disk; `access.rs`: a root this
//!   process may not write, said so.
//! - `error.rs`: [`Error`]; `fault.rs`: the crash points tests inject; `serialize.rs`:
//!   what is not always text (paths) written as JSON.
//! - `scaffold.rs` (with `templates/`): a new module's directory, for `modhost new`;
//!   `packing.rs`: a module directory packed, for `modhost pack`.

/// What an application gives modules: capabilities (WIT packages it implements), the
/// sandbox its implementations see, per-dispatch values and cancellation; and enough
/// stack for modhost's work on an application thread whose own is small.
pub mod embed {
    pub use modhost_runtime::{CallData, Cancel, Capability, CapabilityError, Sandbox, with_stack};
}

/// The module.xml model in full (hooks, methods, database, menu items…), for embedders
/// that read more of a [`Manifest`] than its commonest types.
pub use modhost_manifest as manifest;
pub use modhost_manifest::{Capability, Manifest, ModuleDependency, Op, Version};
pub use modhost_package::pack;
pub use modhost_runtime::{
    Limits, MAX_CALL_TIMEOUT, MAX_FIRE_DEPTH, Origin, SUPPORTED_API_VERSIONS,
};
pub use modhost_state::{ModuleRecord, Rows, SqlValue, Status};
pub use modhost_update::{Kind as SourceKind, Stability};
// The errors [`Error`]'s variants carry, for an embedder to match on.
pub use modhost_package::Error as PackageError;
pub use modhost_runtime::{Error as RuntimeError, Failure as CallFailure};
pub use modhost_state::Error as StateError;
pub use modhost_update::Error as UpdateError;

mod access;
mod change;
mod config;
mod depends;
mod dispatch;
mod embedding;
mod error;
mod event;
mod fault;
mod host;
mod intent;
mod layout;
mod list_reasons;
mod lock;
mod made;
mod near;
mod online;
mod ops;
mod packages;
mod packing;
mod plan;
mod query;
mod recover;
mod scaffold;
mod serialize;
mod verbs;

pub use change::{Action, Change, DisableOptions, Options, Request, StagedCall};
pub use config::{Engine, Php, Platform};
pub use depends::{Check, DependencyReport, Mend, Outcome};
pub use dispatch::{
    Dispatch, DispatchOptions, FailureKind, HookCall, HookPoint, LeftOut, LeftOutCause, OnError,
    Shape,
};
pub use embedding::Embedding;
pub use error::{Error, held, shortened};
pub use event::{Event, Reporter};
pub use host::Host;
pub use online::{KeyInfo, Offer, OfferStatus, SourceInfo, SourceReport};
pub use ops::{Reload, ReloadHandler};
pub use packages::{
    Available, LocalUpgrade, Scan, ScanEntry, Unreadable, names_a_file, read_manifest,
};
pub use packing::{PackTo, Packed, pack_module};
pub use query::{ComponentImports, Described, Grant, Listed, ModuleInfo, NotInstalled, Offered};
pub use recover::{RecoverOptions, Recovery};
pub use scaffold::{COMPONENTIZE_JS_VERSION, COMPONENTIZE_PY_VERSION, Lang, new_module};

/// The result type of the embedding API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
