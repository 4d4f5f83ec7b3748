//! Stopping a call from another thread: the caller hung up, so the handler serving it
//! stops at once, as at its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use wasmtime::Engine;

/// A handle that cancels the calls it is passed to, from any thread. Cloning it gives
/// another handle to the same cancellation.
#[derive(Clone)]
pub struct Cancel {
    cancelled: Arc<AtomicBool>,
    /// Wakes the calls waiting in WASI (a sleep, a poll) the moment it is cancelled.
    woken: Arc<Notify>,
    engine: Engine,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Cancel {
    pub(crate) fn new(engine: &Engine) -> Self {
        Cancel {
            cancelled: Arc::default(),
            woken: Arc::default(),
            engine: engine.clone(),
        }
    }

    /// Cancels: a running call stops at its next loop iteration or function entry (the
    /// engine's epoch is advanced now, not at the next tick), one waiting in WASI is woken
    /// now, one waiting for the state database within a millisecond, and calls not yet
    /// started do not run.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.woken.notify_waiters();
        self.engine.increment_epoch();
    }

    /// A `wasi:io/poll` pollable that is ready once this is cancelled.
    pub(crate) fn pollable(&self) -> Waiting {
        Waiting {
            cancelled: Arc::clone(&self.cancelled),
            woken: Arc::clone(&self.woken),
        }
    }

    /// The flag [`Cancel::cancel`] sets, for waits and statements outside the engine
    /// (the state database's) to look at.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancelled)
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// A call stopped because it was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("the call was cancelled")]
pub(crate) struct Cancelled;

/// A `wasi:io/poll` pollable that is ready once its cancellation is.
pub(crate) struct Waiting {
    cancelled: Arc<AtomicBool>,
    woken: Arc<Notify>,
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for Waiting {
    async fn ready(&mut self) {
        loop {
            // Made before the flag is read: a cancellation in between still wakes it.
            let notified = self.woken.notified();
            if self.cancelled.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}
