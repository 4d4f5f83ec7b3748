//! Capabilities an embedding application gives modules: WIT interfaces of its own (say
//! `pbx:telephony/calls@1.0.0`) with their host implementation, linked into the sandbox
//! the way wasmtime's `bindgen!` + `add_to_linker` link any WIT package (as wasmCloud's
//! host plugins and Extism's host functions do). A component that imports one is linked
//! with it; one that does not is unaffected.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Linker;

use crate::host::Sandbox;

/// A WIT package the application implements for modules. Its `bindgen!`-generated
/// `Host` traits are implemented for [`Sandbox`], where an implementation finds its own
/// state ([`Sandbox::capability`]) and the dispatch's value ([`Sandbox::context`]).
///
/// With `bindgen!`, `add_to_linker` is the generated one
/// (`pbx::telephony::calls::add_to_linker::<_, HasSelf<Sandbox>>(linker, |s| s)`, as the
/// `pbx` example of the `modhost` crate does); by hand, one function:
///
/// ```
/// use std::sync::Arc;
/// use modhost_runtime::{Capability, Runtime, Sandbox};
/// use wasmtime::component::Linker;
///
/// /// `acme:clock/time@1.0.0`, whose state is the time it reports.
/// struct Clock {
///     now: u64,
/// }
///
/// impl Capability for Clock {
///     fn package(&self) -> &str {
///         "acme:clock"
///     }
///     fn interfaces(&self) -> Vec<String> {
///         vec!["acme:clock/time@1.0.0".into()]
///     }
///     fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
///         linker
///             .instance("acme:clock/time@1.0.0")?
///             .func_wrap("now", |store, (): ()| {
///                 // The registered capability, found again through the call's sandbox.
///                 let clock = store.data().capability::<Clock>();
///                 Ok((clock.map_or(0, |c| c.now),))
///             })
///     }
/// }
///
/// let cache = tempfile::tempdir()?;
/// let runtime = Runtime::with_capabilities(cache.path(), vec![Arc::new(Clock { now: 1 })])?;
/// assert!(runtime.offered().contains(&"acme:clock@1.0.0".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Capability: Any + Send + Sync {
    /// The WIT package, `namespace:package`: how a module asks for it in `<capabilities>`
    /// and how an administrator's grant names it.
    fn package(&self) -> &str;

    /// The interfaces it provides, with their versions: `pbx:telephony/calls@1.0.0`.
    fn interfaces(&self) -> Vec<String>;

    /// The functions `interface` (one of [`Capability::interfaces`]) provides, when the
    /// capability can say: a component importing one it lacks is then refused before it
    /// is compiled, naming the function. `None` (the default) leaves that to linking.
    fn functions(&self, interface: &str) -> Option<Vec<String>> {
        let _ = interface;
        None
    }

    /// Whether a module may import it only once an administrator granted it (the default).
    fn needs_grant(&self) -> bool {
        true
    }

    /// Adds its imports to `linker`. The implementation reaches the call it serves through
    /// the [`Sandbox`] its getter is given.
    fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()>;
}

impl Sandbox {
    /// The rawname of the module making the call.
    pub fn module(&self) -> &str {
        &self.rawname
    }

    /// The value the application passed with the dispatch this call belongs to (hooks
    /// fired from inside it included), if it is a `T`.
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.context.as_deref().and_then(|c| c.downcast_ref::<T>())
    }

    /// The application's capability of type `T`, as it was registered: where its
    /// implementation keeps its state.
    pub fn capability<T: Capability>(&self) -> Option<&T> {
        self.capabilities
            .iter()
            .find_map(|c| (&**c as &dyn Any).downcast_ref::<T>())
    }

    /// When the call's time is up: a capability that waits should not wait past it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the call was cancelled: a capability that waits should stop waiting.
    pub fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(crate::Cancel::is_cancelled)
    }

    /// Fails once the call is cancelled or past its deadline, with the error that ends it
    /// as such (a cancel or a timeout, not the module's trap): what a capability returns
    /// after a wait the caller's hang-up or the deadline cut short.
    pub fn stopped(&self) -> wasmtime::Result<()> {
        if self.is_cancelled() {
            return Err(crate::cancel::Cancelled.into());
        }
        if std::time::Instant::now() >= self.deadline {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        Ok(())
    }
}

/// A capability's own failure, the application's and not the module's: a capability
/// implementation returns it (as a `wasmtime::Error`) for what it cannot do, and the
/// call fails with kind `host`, not as the module's trap.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CapabilityError(pub String);

/// The per-dispatch value an application passes to its capabilities.
pub type CallData = Arc<dyn Any + Send + Sync>;

/// The namespaces that are the host's own: no capability may offer a package in them.
const HOST_NAMESPACES: [&str; 2] = ["modhost", "wasi"];

/// Refuses capabilities modules could not be offered as they are: a package that is not
/// `namespace:package` or is in the host's namespaces, one given twice, no interfaces, an
/// interface that is not named as one or is another package's. Checked when a host is
/// opened, before anything is linked: each refusal names the capability.
pub(crate) fn check(capabilities: &[Arc<dyn Capability>]) -> crate::Result<()> {
    for (n, capability) in capabilities.iter().enumerate() {
        let package = capability.package();
        let refused = |problem: String| crate::Error::Capability {
            package: package.to_owned(),
            problem,
        };
        let Some((namespace, name)) = package.split_once(':') else {
            return Err(refused("a package is named `namespace:package`".into()));
        };
        if namespace.is_empty() || name.is_empty() || name.contains([':', '/', '@']) {
            return Err(refused("a package is named `namespace:package`".into()));
        }
        // As module.xml's <capabilities> names packages: one with a capital letter could
        // never be asked for, nor granted. (Checked after the host's namespaces below
        // would be, in any case.)
        if package.bytes().any(|b| b.is_ascii_uppercase())
            && !HOST_NAMESPACES
                .iter()
                .any(|own| own.eq_ignore_ascii_case(namespace))
        {
            return Err(refused(
                "module.xml's <capabilities> names packages in lower-case words joined by \
                 `-`: no module could ask for this one"
                    .into(),
            ));
        }
        // Compared as the component model compares names: without regard to case.
        if HOST_NAMESPACES
            .iter()
            .any(|own| own.eq_ignore_ascii_case(namespace))
        {
            return Err(refused(format!(
                "the `{namespace}` namespace is the host's own"
            )));
        }
        if capabilities[..n]
            .iter()
            .any(|c| c.package().eq_ignore_ascii_case(package))
        {
            return Err(refused(
                "it is given twice: one capability per package".into(),
            ));
        }
        let interfaces = capability.interfaces();
        if interfaces.is_empty() {
            return Err(refused("it provides no interface".into()));
        }
        for text in &interfaces {
            match crate::imports::Interface::parse(text) {
                None => {
                    return Err(refused(format!(
                        "`{text}` is not an interface name (namespace:package/interface@version)"
                    )));
                }
                Some(interface) if interface.package() != package => {
                    return Err(refused(format!("interface `{text}` is another package's")));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
