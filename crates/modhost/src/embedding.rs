//! [`Embedding`]: how an application opens a root — the limits it sets and the
//! capabilities it gives modules.

use std::path::Path;
use std::sync::Arc;

use modhost_runtime::{Capability, Limits};

use crate::Result;
use crate::access;
use crate::host::Host;

/// How an application opens a root: the sandbox limits it sets and the capabilities it
/// gives modules.
///
/// ```
/// use std::sync::Arc;
/// use modhost::embed::{Capability, Sandbox};
/// use wasmtime::component::Linker;
///
/// /// `acme:clock/time@1.0.0`: the PBX's own clock, for the modules that import it.
/// struct Clock;
///
/// impl Capability for Clock {
///     fn package(&self) -> &str {
///         "acme:clock"
///     }
///     fn interfaces(&self) -> Vec<String> {
///         vec!["acme:clock/time@1.0.0".into()]
///     }
///     fn needs_grant(&self) -> bool {
///         false
///     }
///     fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
///         linker
///             .instance("acme:clock/time@1.0.0")?
///             .func_wrap("now", |_, (): ()| Ok((1_700_000_000u64,)))
///     }
/// }
///
/// let root = tempfile::tempdir()?;
/// let host = modhost::Embedding::new()
///     .capability(Arc::new(Clock))
///     .open(root.path())?;
/// assert!(host.offered_imports().contains(&"acme:clock@1.0.0".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Embedding {
    pub(crate) limits: Option<Limits>,
    pub(crate) capabilities: Vec<Arc<dyn Capability>>,
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedding")
            .field("limits", &self.limits)
            .field(
                "capabilities",
                &self
                    .capabilities
                    .iter()
                    .map(|c| c.package())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Embedding {
    /// The defaults: the limits of the root's `modhost.toml`, no capabilities.
    pub fn new() -> Self {
        Embedding::default()
    }

    /// Sandbox limits of every call, instead of the root's `modhost.toml`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Gives modules `capability`: components that import its interfaces are linked with
    /// it (once granted, if it needs a grant).
    pub fn capability(mut self, capability: Arc<dyn Capability>) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Opens the root at `root`, creating it on first use.
    pub fn open(self, root: &Path) -> Result<Host> {
        if let Some(limits) = &self.limits {
            limits.check()?;
        }
        access::warn_if_another_users(root);
        Host::open_inner(root, self).map_err(|e| access::not_writable(root, e))
    }
}
