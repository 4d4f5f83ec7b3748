//! Calling into a module: what is called, with what, and the path every call takes.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modhost_state::Session;
use wasmtime::{PoolConcurrencyLimitError, Store};

use crate::bindings::Instance;
use crate::cancel::Cancelled;
use crate::host::Sandbox;
use crate::runtime::MAX_WASM_STACK;
use crate::trap::{HostPanicked, trapped};
use crate::warm::WARM_RESOURCES;
use crate::{
    DiskQuota, Error, Failure, Fire, Limits, LoadedComponent, Mount, Result, Runtime, Warm,
};
use wasmtime_wasi::filesystem::Descriptor;

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
    /// What the module may keep in `/data` and the granted directories it may write.
    pub disk_quota: DiskQuota,
    /// The application's value for this dispatch, which its capabilities receive.
    pub data: Option<crate::CallData>,
    /// Cancels the call from another thread.
    pub cancel: Option<crate::Cancel>,
    /// What each module logged in the dispatch this call belongs to; `None` starts a count
    /// of its own.
    pub logs: Option<Arc<crate::LogLedger>>,
}

impl Runtime {
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

    /// Runs the call on a stack with room for it: the application's thread may have too
    /// little left (see [`CALL_STACK_NEEDED`]).
    fn call_in(
        &self,
        component: &LoadedComponent,
        warm: Option<&Warm>,
        context: CallContext,
        call: &Call,
    ) -> (Result<Option<String>>, Session) {
        if let Err(e) = self.same_process() {
            return (Err(e), context.session);
        }
        with_stack(|| self.call_on_stack(component, warm, context, call))
    }

    fn call_on_stack(
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
            disk_quota,
            data,
            cancel,
            logs,
        } = context;
        if let Err(e) = limits.check() {
            return (Err(e), session);
        }
        // A call fired from one already past its deadline starts nothing: were it given
        // an instance and a tick, every handler a fan of hooks reaches would run one, and
        // a call ten seconds long would take minutes.
        if deadline.is_some_and(|inherited| Instant::now() >= inherited) {
            let timeout = Error::Trapped {
                module: rawname.to_owned(),
                version: version.to_owned(),
                call: call.to_string(),
                failure: Failure::Timeout {
                    limit: limits.call_timeout,
                    stderr: String::new(),
                },
            };
            return (Err(timeout), session);
        }
        let reused = warm.and_then(|w| w.take(limits.max_memory));
        let mut hot = match reused {
            Some(hot) => hot,
            None => match self.sandbox(rawname, data_dir, mounts, limits) {
                Ok(sandbox) => sandbox,
                Err(e) => return (Err(e), session),
            },
        };
        let refused = hot.store.data().limiter.refused();
        refused.clear();
        let trapped = trapped(rawname, version, call, limits, hot.stderr.clone(), refused);
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
        let _turn = state.budget.begin(disk_quota);
        state.context = data;
        if let Some(cancel) = &cancel {
            cancel.watch(&self.engine);
        }
        state.cancel = cancel;
        state.logs = logs.unwrap_or_default();
        state.log_dropped = 0;
        // Checked at every tick (and at once when a call is cancelled) by the store's
        // epoch callback, which stops the call at its deadline or its cancellation.
        hot.store.set_epoch_deadline(1);

        let _running = crate::cancel::Running::enter(deadline, hot.store.data().cancel.clone());
        let instance = if hot.store.data().is_cancelled() {
            Err(trapped(Cancelled.into()))
        } else {
            Ok(())
        };
        let instance = instance.and_then(|()| match hot.instance.take() {
            Some(instance) => Ok(instance),
            None => self
                .instantiate(component, &mut hot.store, deadline)
                .map_err(&trapped),
        });
        let result = instance.and_then(|instance| {
            let result = invoke(&instance, &mut hot.store, call, rawname, version, &trapped);
            hot.instance = Some(instance);
            result
        });
        hot.stdout.log(rawname);
        let (stderr, _) = hot.stderr.contents();
        for line in String::from_utf8_lossy(&stderr)
            .lines()
            .filter(|line| !crate::trap::is_mark(line))
        {
            tracing::debug!(target: "modhost::module", module = %rawname, stderr = true, "{line}");
        }
        let state = hot.store.data_mut();
        state.fire = None;
        state.context = None;
        state.cancel = None;
        if state.log_dropped > 0 {
            tracing::warn!(target: "modhost::module", module = %rawname, "{} log records over the limit of {} were dropped", state.log_dropped, limits.max_log_records);
        }
        let session = match state.session.take() {
            Some(session) => session,
            None => unreachable!("the session is returned by every fire before the call ends"),
        };
        // An instance that leaves a file open may hold one it deleted, whose bytes no
        // count of its directories sees: its descriptors close with it rather than outlive
        // the call. (Directories and stdio stay open in every instance.)
        let (resources, files_open) =
            state
                .table
                .iter_mut()
                .fold((0, 0), |(resources, files), entry| {
                    let file = matches!(
                        entry.downcast_ref::<Descriptor>(),
                        Some(Descriptor::File(_))
                    );
                    (resources + 1, files + usize::from(file))
                });
        let healthy = !matches!(result, Err(Error::Trapped { .. }))
            && hot.stderr.is_empty()
            && resources <= WARM_RESOURCES
            && files_open == 0;
        if let Some(warm) = warm.filter(|_| healthy) {
            warm.keep(hot, &self.idle);
        }
        (result, session)
    }
}

impl Runtime {
    /// Instantiates `component` in `store`. When every pooled slot is taken, it first takes
    /// back the slots of idle warm instances, then waits for a live call to end, until
    /// the call's deadline or its cancellation: a burst of calls beyond the pool queues
    /// instead of failing.
    fn instantiate(
        &self,
        component: &LoadedComponent,
        store: &mut Store<Sandbox>,
        deadline: Instant,
    ) -> wasmtime::Result<Instance> {
        let mut drained = false;
        let mut pause = Duration::from_millis(1);
        loop {
            match component.pre.instantiate(&mut *store) {
                Err(e) if e.is::<PoolConcurrencyLimitError>() => {
                    if !drained {
                        self.idle.drain();
                        drained = true;
                        continue;
                    }
                    if store.data().is_cancelled() {
                        return Err(Cancelled.into());
                    }
                    if Instant::now() + pause >= deadline {
                        return Err(e);
                    }
                    // Slept a slice at a time, so that a cancellation is seen within one.
                    let until = Instant::now() + pause;
                    while Instant::now() < until {
                        if store.data().is_cancelled() {
                            return Err(Cancelled.into());
                        }
                        std::thread::sleep(SLICE);
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Ok(instance) => {
                    // From here on a memory growing from nothing is a `memory.grow`, which
                    // past the cap fails as the guest expects, not a new memory.
                    store.data_mut().limiter.instantiated();
                    return Ok(instance);
                }
                other => return other,
            }
        }
    }
}

/// Runs `f` on the calling thread's stack when it has [`CALL_STACK_NEEDED`] left, else
/// on a stack segment of [`CALL_STACK_GROWN`] bytes the thread keeps for its next calls
/// (`stack.rs`): what a module call, or loading
/// a compiled component (deserialising it recurses), needs on an application's thread
/// whose stack is small (Asterisk's are under 512 KiB; a C application may make them
/// far smaller).
pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    crate::stack::run_with(CALL_STACK_NEEDED, CALL_STACK_GROWN, f)
}

/// The stack a call needs left on its thread: the guest's own (`max_wasm_stack`, which
/// wasmtime takes from the thread it runs on) and room for the host functions it calls
/// (SQLite, WASI, capabilities). With less, the call runs on a new stack segment of
/// [`CALL_STACK_GROWN`] bytes.
const CALL_STACK_NEEDED: usize = MAX_WASM_STACK + (1 << 20);

/// The stack segment a call gets on a thread with less than [`CALL_STACK_NEEDED`] left.
const CALL_STACK_GROWN: usize = CALL_STACK_NEEDED + (2 << 20);

/// The longest a call short of a pooled slot sleeps before trying again.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// How often a call short of a pooled slot looks whether it was cancelled.
const SLICE: Duration = Duration::from_millis(1);

/// Calls `call`'s export on `instance`.
fn invoke(
    instance: &Instance,
    store: &mut Store<Sandbox>,
    call: &Call,
    rawname: &str,
    version: &str,
    trapped: &impl Fn(wasmtime::Error) -> Error,
) -> Result<Option<String>> {
    let failed = |message: String, at_memory_cap: bool| Error::Failed {
        module: rawname.to_owned(),
        version: version.to_owned(),
        call: call.to_string(),
        message,
        at_memory_cap,
    };
    let limit = store.data().limits.max_output;
    // The result is already copied out of the guest (bounded by its memory cap); refusing it
    // here keeps a dispatch from holding one such copy per handler.
    let bounded = |text: &str, failed: bool| {
        if text.len() > limit {
            Err(Error::OutputTooLarge {
                module: rawname.to_owned(),
                version: version.to_owned(),
                call: call.to_string(),
                size: text.len(),
                limit,
                failed,
            })
        } else {
            Ok(())
        }
    };
    // An application's capability is code modhost did not write: its panic fails this
    // call (and the instance is not kept), never the dispatch or the host.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| instance.call(store, call)))
            .unwrap_or_else(|panic| Err(HostPanicked::from_payload(panic.as_ref()).into()));
    match outcome.map_err(trapped)? {
        Ok(output) => {
            bounded(output.as_deref().unwrap_or_default(), false)?;
            Ok(output)
        }
        Err(message) => {
            bounded(&message, true)?;
            // A guest whose allocation failed at the cap may report it as an error of
            // its own (a Python MemoryError, a JS "out of memory"), which says nothing of
            // the cap: said here, as a trap at the cap says it. One that handled the
            // refusal (caught the MemoryError) and then failed of something else is not
            // blamed on the cap: its report speaks of no memory.
            let lower = message.to_ascii_lowercase();
            let of_memory = lower.contains("memory") || lower.contains("alloc");
            let cap = store.data().limiter.refused().cap().filter(|_| of_memory);
            // A write refused for the quota (or a full disk) reaches the guest as an
            // I/O error (wasi-libc's for a failed stream write), which says neither.
            let of_writing = ["i/o error", "errno 29", "os error 29", "quota", "no space"]
                .iter()
                .any(|words| lower.contains(words));
            let disk = store
                .data()
                .budget
                .refusal()
                .filter(|_| of_writing && cap.is_none());
            let message = match (cap, disk) {
                (Some(cap), _) => format!(
                    "{message} (its memory reached its cap of {}: more was refused during the call)",
                    crate::error::bytes(cap)
                ),
                (None, Some(disk)) => format!("{message} ({disk})"),
                (None, None) => message,
            };
            Err(failed(message, cap.is_some()))
        }
    }
}
