//! The calls under way on a host, so that `modhost_close` waits for them: an application
//! unloading (an Asterisk module, say) may close a host while another thread's dispatch
//! is still in a capability callback, and the host is then freed only once that dispatch
//! has returned, rather than under it. A call made from inside one under way once the
//! host is closing is refused. The count lives in an `Arc` each call holds, so that the
//! last call's unlock and wake-up never touch a host already freed.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::ffi::Failure;
use crate::host::Host;

/// A host's calls under way, and whether it is being closed.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    state: Mutex<State>,
    ended: Condvar,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    closing: bool,
}

thread_local! {
    /// The hosts this thread is inside a call of (a callback runs inside its dispatch):
    /// closing one of them from here would wait for itself.
    static INSIDE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Calls {
    /// Counts a call on `host` in until the returned guard is dropped; refused once the
    /// host is being closed.
    pub(crate) fn enter(host: &Host) -> Result<Entered<'_>, Failure> {
        let calls = Arc::clone(&host.calls);
        {
            let mut state = calls.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.closing {
                return Err(Failure::argument("the host is being closed"));
            }
            state.running += 1;
        }
        INSIDE.with(|inside| inside.borrow_mut().push(address(&calls)));
        Ok(Entered { host, calls })
    }

    /// Marks the host closing and waits until no call on it is under way. False, and
    /// nothing waited for, when this thread is itself inside a call on it.
    pub(crate) fn close(&self) -> bool {
        let mine = INSIDE.with(|inside| inside.borrow().contains(&address(self)));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closing = true;
        if mine {
            return false;
        }
        while state.running > 0 {
            state = self
                .ended
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        true
    }
}

/// `calls`, as the thread-local list knows it.
fn address(calls: &Calls) -> usize {
    std::ptr::from_ref(calls) as usize
}

/// A call under way on a host, which reads as the host.
pub(crate) struct Entered<'a> {
    host: &'a Host,
    /// The host's count, held apart from the host: the closer may free the host as soon
    /// as the count reaches zero.
    calls: Arc<Calls>,
}

impl Deref for Entered<'_> {
    type Target = Host;

    fn deref(&self) -> &Host {
        self.host
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let calls = &self.calls;
        INSIDE.with(|inside| {
            let mut inside = inside.borrow_mut();
            if let Some(at) = inside.iter().rposition(|&a| a == address(calls)) {
                inside.remove(at);
            }
        });
        let mut state = calls.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.running -= 1;
        if state.running == 0 {
            calls.ended.notify_all();
        }
    }
}
