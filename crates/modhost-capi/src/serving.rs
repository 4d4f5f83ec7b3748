//! Which call a capability callback serves, so that the callback can ask whether that
//! call is to stop (`modhost_call_stopped`) and how long it has left
//! (`modhost_call_ms_left`).

use std::cell::Cell;
use std::time::Instant;

use modhost::embed::Sandbox;

use crate::ffi::quietly;

thread_local! {
    /// The sandbox of the call whose capability callback runs on this thread; NULL when
    /// none does.
    static SERVING: Cell<*const Sandbox> = const { Cell::new(std::ptr::null()) };
}

/// Marks a sandbox as the one this thread's callback serves, until dropped; then the one
/// it nested in (a callback may dispatch, whose calls call back) is served again.
pub(crate) struct Serving(*const Sandbox);

impl Serving {
    pub(crate) fn enter(sandbox: &Sandbox) -> Self {
        Serving(SERVING.replace(sandbox))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        SERVING.set(self.0);
    }
}

/// `f` of the sandbox of the call the running callback serves, if one runs on this thread.
fn serving<T>(f: impl FnOnce(&Sandbox) -> T) -> Option<T> {
    // SAFETY: the pointer is set only by a `Serving` that lives inside `Interface::call` (capability.rs),
    // while the sandbox it points to is borrowed there, and is restored when it is dropped.
    unsafe { SERVING.get().as_ref() }.map(f)
}

/// Whether the call the capability callback running on this thread serves is to stop:
/// its dispatch was cancelled or its deadline passed. The module's code is stopped as
/// soon as the callback returns, so a callback that waits polls this and returns an
/// error once it is true. `false` outside a callback.
#[unsafe(no_mangle)]
pub extern "C" fn modhost_call_stopped() -> bool {
    quietly(false, || {
        serving(|sandbox| sandbox.is_cancelled() || Instant::now() >= sandbox.deadline())
            .unwrap_or(false)
    })
}

/// The milliseconds left before the deadline of the call the capability callback running
/// on this thread serves: what a wait inside it may take at most, rounded up, so that 0
/// means stopped. 0 once the deadline passed or the dispatch was cancelled; -1 outside a
/// callback.
#[unsafe(no_mangle)]
pub extern "C" fn modhost_call_ms_left() -> i64 {
    quietly(-1, || {
        serving(|sandbox| {
            if sandbox.is_cancelled() {
                return 0;
            }
            let left = sandbox.deadline().saturating_duration_since(Instant::now());
            // Rounded up: a call with half a millisecond left is not stopped yet.
            i64::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
        })
        .unwrap_or(-1)
    })
}
