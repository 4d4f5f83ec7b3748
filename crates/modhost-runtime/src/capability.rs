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
/// ```ignore
/// wasmtime::component::bindgen!({ path: "wit/telephony", world: "telephony" });
///
/// struct Telephony { /* the PBX's channels */ }
/// impl pbx::telephony::calls::Host for Sandbox {
///     fn originate(&mut self, from: String, to: String) -> Result<String, String> {
///         let telephony = self.capability::<Telephony>().ok_or("not linked")?;
///         /* … */
///     }
/// }
///
/// impl modhost_runtime::Capability for Telephony {
///     fn package(&self) -> &str { "pbx:telephony" }
///     fn interfaces(&self) -> Vec<String> { vec!["pbx:telephony/calls@1.0.0".into()] }
///     fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
///         pbx::telephony::calls::add_to_linker::<_, HasSelf<Sandbox>>(linker, |s| s)
///     }
/// }
/// ```
pub trait Capability: Any + Send + Sync {
    /// The WIT package, `namespace:package`: how a module asks for it in `<capabilities>`
    /// and how an administrator's grant names it.
    fn package(&self) -> &str;

    /// The interfaces it provides, with their versions: `pbx:telephony/calls@1.0.0`.
    fn interfaces(&self) -> Vec<String>;

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
}

/// The per-dispatch value an application passes to its capabilities.
pub type CallData = Arc<dyn Any + Send + Sync>;
