//! Host bindings for each supported version of the `modhost:module` WIT package.
//!
//! Each version lives in its own module, generated from its frozen directory under `wit/`,
//! and the enums below hold a component linked against whichever version it was built
//! for, as Zed's extension host keeps several API versions side by side. Adding 0.2 means
//! a `v0_2_0` module (with its `Host` impls in `host.rs`), a variant in [`Pre`] and
//! [`Instance`], and its entry in [`VERSIONS`]; components built against 0.1 keep loading.

use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

use crate::Call;
use crate::host::Sandbox;

/// `modhost:module@0.1.0`, from `wit/v0.1.0`.
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0",
        world: "module",
        imports: { default: trappable },
    });
}

/// The versions of `modhost:module` this host runs components of, oldest first.
pub const VERSIONS: &[&str] = &["0.1.0"];

/// Adds the host's imports of every supported version to `linker`; their names carry
/// the version, so they sit side by side.
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    v0_1_0::Module::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)
}

/// A component linked and type-checked against the version it was built for.
pub(crate) enum Pre {
    /// Built against 0.1.0.
    V0_1_0(v0_1_0::ModulePre<Sandbox>),
}

impl Pre {
    /// Type-checks `pre` against `version`'s world; `version` is one of [`VERSIONS`].
    pub(crate) fn new(version: &str, pre: InstancePre<Sandbox>) -> wasmtime::Result<Self> {
        match version {
            "0.1.0" => Ok(Pre::V0_1_0(v0_1_0::ModulePre::new(pre)?)),
            other => Err(wasmtime::format_err!(
                "modhost:module@{other} is not a version this host runs"
            )),
        }
    }

    /// The linked component underneath.
    pub(crate) fn instance_pre(&self) -> &InstancePre<Sandbox> {
        match self {
            Pre::V0_1_0(pre) => pre.instance_pre(),
        }
    }

    /// A new instance in `store`.
    pub(crate) fn instantiate(&self, store: &mut Store<Sandbox>) -> wasmtime::Result<Instance> {
        match self {
            Pre::V0_1_0(pre) => pre.instantiate(store).map(Instance::V0_1_0),
        }
    }
}

/// An instance of a component, of the version it was built for.
pub(crate) enum Instance {
    /// Built against 0.1.0.
    V0_1_0(v0_1_0::Module),
}

impl Instance {
    /// Calls `call`'s export: the outer error is a trap, the inner one the module's own
    /// error message; a hook handler's output is `Some`.
    pub(crate) fn call(
        &self,
        store: &mut Store<Sandbox>,
        call: &Call,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        match self {
            Instance::V0_1_0(instance) => {
                let lifecycle = instance.modhost_module_lifecycle();
                let done = |r: Result<(), String>| r.map(|()| None);
                match call {
                    Call::Install => lifecycle.call_install(store).map(done),
                    Call::Upgrade { from } => lifecycle.call_upgrade(store, from).map(done),
                    Call::Uninstall => lifecycle.call_uninstall(store).map(done),
                    Call::Enable => lifecycle.call_enable(store).map(done),
                    Call::Disable => lifecycle.call_disable(store).map(done),
                    Call::Hook {
                        handler,
                        hook,
                        payload,
                    } => instance
                        .modhost_module_hooks()
                        .call_handle(store, handler, hook, payload)
                        .map(|r| r.map(Some)),
                }
            }
        }
    }
}
