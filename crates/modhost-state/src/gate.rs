//! Turns for this process's hook dispatches at the state database's write lock.
//!
//! A dispatch's transaction takes SQLite's write lock when it opens (a deferred one that
//! read first could not take it later once another writer had committed: SQLite refuses
//! to upgrade a stale snapshot). Dispatches of one process wait for each other here,
//! woken the moment the lock is free, instead of in SQLite's busy handler, which polls
//! with sleeps of up to 100 ms; writers of other processes are still waited for there.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::Stop;

/// How often a cancellable wait looks at its cancellation, which cannot wake it.
const CANCEL_LOOK: Duration = Duration::from_millis(10);

/// Whether a dispatch of this process holds the write lock, and for which module.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// `Some` while taken: the module whose call took it, if a module's.
    taken: Mutex<Option<Option<String>>>,
    freed: Condvar,
}

/// A turn at the gate, given back when dropped.
#[derive(Debug)]
pub(crate) struct Turn(Arc<Gate>);

impl Gate {
    /// Waits for the turn until `stop`'s deadline or cancellation, taking it for
    /// `holder`'s call; past it, `Err` with the module whose call held it then, if a
    /// module's did.
    pub(crate) fn enter(
        gate: &Arc<Gate>,
        stop: &Stop,
        holder: Option<&str>,
    ) -> Result<Turn, Option<String>> {
        let mut taken = gate.taken.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(held) = &*taken {
            let left = stop.deadline().checked_duration_since(Instant::now());
            let Some(left) = left.filter(|_| !stop.is_cancelled()) else {
                return Err(held.clone());
            };
            let left = if stop.cancellable() {
                left.min(CANCEL_LOOK)
            } else {
                left
            };
            taken = gate
                .freed
                .wait_timeout(taken, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *taken = Some(holder.map(str::to_owned));
        Ok(Turn(Arc::clone(gate)))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *self.0.taken.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.0.freed.notify_one();
    }
}
