//! The dispatches under way on a host, each with its cancellation, so that one call stops
//! them all: an application shutting down does not wait out their deadlines.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use modhost_runtime::Cancel;

/// The cancellations of the dispatches running now.
#[derive(Default)]
pub(crate) struct UnderWay {
    next: AtomicU64,
    running: Mutex<BTreeMap<u64, Cancel>>,
}

impl UnderWay {
    /// Counts in a dispatch cancelled by `cancel`, until the guard is dropped.
    pub(crate) fn enter(&self, cancel: Cancel) -> Entered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, cancel);
        Entered {
            under_way: self,
            id,
        }
    }

    /// Cancels every dispatch running now; returns how many there were.
    pub(crate) fn cancel_all(&self) -> usize {
        let running = self.lock();
        for cancel in running.values() {
            cancel.cancel();
        }
        running.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Cancel>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A dispatch counted in [`UnderWay`] while it lives.
pub(crate) struct Entered<'a> {
    under_way: &'a UnderWay,
    id: u64,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.under_way.lock().remove(&self.id);
    }
}
