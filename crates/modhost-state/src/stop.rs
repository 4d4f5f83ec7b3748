//! When a module's work in the state database must stop: at its call's deadline, or as
//! soon as the call is cancelled from another thread (the caller hung up).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A deadline, and the flag of a cancellation that ends the work sooner.
#[derive(Debug, Clone)]
pub struct Stop {
    deadline: Instant,
    cancelled: Option<Arc<AtomicBool>>,
}

impl Stop {
    /// Stops at `deadline`, and also once `cancelled` is set.
    pub fn new(deadline: Instant, cancelled: Option<Arc<AtomicBool>>) -> Self {
        Stop {
            deadline,
            cancelled,
        }
    }

    /// When the work must end at the latest.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the work must end now: the deadline has passed or the call was cancelled.
    pub fn reached(&self) -> bool {
        self.is_cancelled() || Instant::now() > self.deadline
    }

    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// Whether waiting must look at the cancellation now and then: a wait cannot be woken
    /// by it.
    pub(crate) fn cancellable(&self) -> bool {
        self.cancelled.is_some()
    }
}

impl From<Instant> for Stop {
    fn from(deadline: Instant) -> Self {
        Stop::new(deadline, None)
    }
}
