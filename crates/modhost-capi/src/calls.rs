//! The calls under way on a host, so that `modhost_close` waits for them: an application
//! unloading (an Asterisk module, say) may close a host while another thread's dispatch
//! is still in a capability callback, and the host is then dropped only once that
//! dispatch has returned, rather than under it. A call begun once the host is closing,
//! or closed, is refused: the handle outlives its host (see [`Host`]), so a thread racing
//! the close reads a live handle, never freed memory.
//!
//! Entering a call takes no lock, only atomics: in a process forked from one that used
//! the host, a lock a parent's thread held at the fork would be held for ever.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::ffi::Failure;
use crate::host::Host;

/// A host's calls under way, and whether it is being closed.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    running: AtomicUsize,
    closing: AtomicBool,
    /// What the closer waits on until `running` is 0.
    wait: Mutex<()>,
    ended: Condvar,
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
        let calls = host.calls();
        // Refused uncounted once the host is closing: counted in, even for the moment
        // before the refusal, threads calling in a loop would keep the count above 0 and
        // the closer waiting for ever.
        if calls.closing.load(Ordering::SeqCst) {
            return Err(Failure::argument("the host is closed, or being closed"));
        }
        // Counted before `closing` is read again, and the closer sets `closing` before it
        // reads the count: one of the two always sees the other.
        calls.running.fetch_add(1, Ordering::SeqCst);
        INSIDE.with(|inside| inside.borrow_mut().push(address(calls)));
        let entered = Entered { host };
        if calls.closing.load(Ordering::SeqCst) {
            return Err(Failure::argument("the host is closed, or being closed"));
        }
        Ok(entered)
    }

    /// Marks the host closing and waits until no call on it is under way, running `stop`
    /// (which stops what those calls run) before each wait: a call that had entered just
    /// before the host was marked closing may begin its work after a first `stop`. True
    /// only for the one caller that is then to drop the host: false, and nothing waited
    /// for, when it was closing already (closed twice, or by two threads at once) or this
    /// thread is itself inside a call on it.
    pub(crate) fn close(&self, stop: impl Fn()) -> bool {
        let mine = INSIDE.with(|inside| inside.borrow().contains(&address(self)));
        if self.closing.swap(true, Ordering::SeqCst) || mine {
            return false;
        }
        let mut waiting = self.wait.lock().unwrap_or_else(PoisonError::into_inner);
        while self.running.load(Ordering::SeqCst) > 0 {
            stop();
            // Woken by the last call to leave; the timeout only bounds a wake-up missed.
            waiting = self
                .ended
                .wait_timeout(waiting, Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
        }
        true
    }

    /// Whether the host is closing or closed.
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

/// `calls`, as the thread-local list knows it.
fn address(calls: &Calls) -> usize {
    std::ptr::from_ref(calls) as usize
}

/// A call under way on a host, which reads as the open host.
pub(crate) struct Entered<'a> {
    host: &'a Host,
}

impl Deref for Entered<'_> {
    type Target = modhost::Host;

    fn deref(&self) -> &modhost::Host {
        // SAFETY: a call is counted in while this lives, so the host is not dropped
        // (`Calls::close` waits for the count to reach 0 first); `Calls::enter` hands
        // out an `Entered` only while the host is not closing.
        unsafe { self.host.open() }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let calls = self.host.calls();
        INSIDE.with(|inside| {
            let mut inside = inside.borrow_mut();
            if let Some(at) = inside.iter().rposition(|&a| a == address(calls)) {
                inside.remove(at);
            }
        });
        if calls.running.fetch_sub(1, Ordering::SeqCst) == 1 && calls.closing() {
            // Under the closer's lock: between its reading the count and its waiting, a
            // wake-up would be lost.
            let _waiting = calls.wait.lock().unwrap_or_else(PoisonError::into_inner);
            calls.ended.notify_all();
        }
    }
}
