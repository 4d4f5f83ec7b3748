//! Instances kept between a module's hook calls, so a dispatch across many modules costs
//! function calls rather than instantiations.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::runtime::POOL_INSTANCES;
use crate::sandbox::Hot;

/// Idle instances kept per module, and in all: the rest of the pool stays free for live
/// calls.
const WARM_PER_MODULE: usize = 2;
const WARM_TOTAL: usize = POOL_INSTANCES as usize / 2;

/// Host resources (open files, streams, pollables) an idle instance may keep between calls.
/// An SDK module keeps a few (its preopened directories and stdio); one that keeps more is
/// holding on to open files, which are the process's, so it is not kept warm.
pub(crate) const WARM_RESOURCES: usize = 16;

/// Instances of one module kept between its hook calls. Dropping it (when the module is
/// upgraded, disabled or removed) drops them.
#[derive(Default)]
pub struct Warm {
    idle: Arc<Mutex<Vec<Hot>>>,
    /// The runtime-wide count of idle instances, shared with every `Warm`.
    counter: std::sync::OnceLock<Arc<AtomicUsize>>,
}

/// Every [`Warm`] of a runtime, so that live calls short of pooled slots can take the idle
/// instances' slots back.
#[derive(Default)]
pub(crate) struct Kept {
    warms: Mutex<Vec<Weak<Mutex<Vec<Hot>>>>>,
    /// How many instances are idle in all of them.
    pub(crate) count: Arc<AtomicUsize>,
}

impl Kept {
    /// Drops every idle instance, giving their pooled slots back.
    pub(crate) fn drain(&self) {
        let mut warms = lock(&self.warms);
        warms.retain(|idle| match idle.upgrade() {
            Some(idle) => {
                let mut idle = lock(&idle);
                self.count.fetch_sub(idle.len(), Ordering::Relaxed);
                idle.clear();
                true
            }
            None => false,
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for Warm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Warm")
    }
}

impl Warm {
    fn idle(&self) -> MutexGuard<'_, Vec<Hot>> {
        lock(&self.idle)
    }

    /// An idle instance built for calls capped at `max_memory`, if one is kept: its store's
    /// limiter holds the cap it was built with.
    pub(crate) fn take(&self, max_memory: usize) -> Option<Hot> {
        let mut idle = self.idle();
        let at = idle.iter().position(|h| h.max_memory == max_memory)?;
        if let Some(counter) = self.counter.get() {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
        Some(idle.swap_remove(at))
    }

    /// Keeps `hot` unless this module or the runtime already keeps enough: idle instances
    /// hold pooled slots that live calls need.
    pub(crate) fn keep(&self, hot: Hot, kept: &Kept) {
        let counter = self.counter.get_or_init(|| {
            lock(&kept.warms).push(Arc::downgrade(&self.idle));
            Arc::clone(&kept.count)
        });
        let mut idle = self.idle();
        if idle.len() >= WARM_PER_MODULE {
            return;
        }
        if counter.fetch_add(1, Ordering::Relaxed) < WARM_TOTAL {
            idle.push(hot);
        } else {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        if let Some(counter) = self.counter.get() {
            counter.fetch_sub(self.idle().len(), Ordering::Relaxed);
        }
    }
}
