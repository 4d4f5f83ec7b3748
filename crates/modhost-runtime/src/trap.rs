//! How a call that trapped is reported: which limit stopped it, when one did, and the tail
//! of what the guest wrote to stderr.

use wasmtime::Trap;
use wasmtime::component::ResourceTableError;

use crate::cancel::Cancelled;
use crate::deadline::DeadlinePassed;
use crate::limiter::MemoryCapReached;
use crate::{Call, Error, Failure, Limits};

/// Maps a wasmtime error of a call to [`Error::Trapped`], naming the module, its version
/// and the call, and telling which limit stopped it from other traps.
pub(crate) fn trapped<'a>(
    rawname: &'a str,
    version: &'a str,
    call: &'a Call,
    limits: Limits,
) -> impl Fn(wasmtime::Error) -> Error + 'a {
    move |e| {
        let failure = if e.is::<Cancelled>() {
            Failure::Cancelled
        } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
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
        } else if let Some(panicked) = e.downcast_ref::<HostPanicked>() {
            Failure::Host(panicked.to_string())
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

/// A host function (an application's capability, most likely) panicked during a call.
#[derive(Debug, thiserror::Error)]
#[error("a host function panicked: {0}")]
pub(crate) struct HostPanicked(String);

impl HostPanicked {
    /// The panic's message, when it has one.
    pub(crate) fn from_payload(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        HostPanicked(message)
    }
}

/// The most guest frames a trap's backtrace keeps.
pub(crate) const BACKTRACE_FRAMES: usize = 32;

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

/// Adds the tail of what the guest wrote to stderr (a Rust panic message, say) to a trap.
pub(crate) fn with_stderr(error: Error, stderr: &[u8]) -> Error {
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
