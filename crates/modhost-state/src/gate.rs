//! Turns for this process's writers at the state database's write lock.
//!
//! A dispatch's transaction takes SQLite's write lock when it opens (a deferred one that
//! read first could not take it later once another writer had committed: SQLite refuses
//! to upgrade a stale snapshot). This process's writers wait for each other here, woken
//! the moment the lock is free, instead of in SQLite's busy handler, which polls with
//! sleeps of up to 100 ms; writers of other processes are still waited for there.
//!
//! A change (an install, an upgrade…) goes first: while one waits, no dispatch takes a new
//! turn. Otherwise dispatches handing the lock to each other the moment it is free would
//! keep a change, which polls, waiting until it gave up — on a busy PBX, for ever.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::Stop;

/// How often a cancellable wait looks at its cancellation, which cannot wake it: often
/// enough that a cancelled call stops within a millisecond, what it then does to stop
/// included (looking every millisecond, half of them took longer), and a wakeup costs a
/// few microseconds.
const CANCEL_LOOK: Duration = Duration::from_micros(200);

/// Who holds the write lock among this process's writers, and which changes wait for it.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<Held>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Held {
    /// `Some` while taken: the module whose call took it, if a module's.
    taken: Option<Option<String>>,
    /// Changes waiting for a turn, which dispatches let go first.
    changes_waiting: usize,
}

/// A turn at the gate, given back when dropped.
#[derive(Debug)]
pub(crate) struct Turn(Arc<Gate>);

impl Gate {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a dispatch's turn until `stop`'s deadline or cancellation, taking it for
    /// `holder`'s call; past it, `Err` with the module whose call held it then, if a
    /// module's did (`None` when a change did, or was waiting for it).
    pub(crate) fn enter(
        gate: &Arc<Gate>,
        stop: &Stop,
        holder: Option<&str>,
    ) -> Result<Turn, Option<String>> {
        let mut held = gate.held();
        while held.taken.is_some() || held.changes_waiting > 0 {
            let left = stop.deadline().checked_duration_since(Instant::now());
            let Some(left) = left.filter(|_| !stop.is_cancelled()) else {
                return Err(held.taken.clone().flatten());
            };
            let left = if stop.cancellable() {
                left.min(CANCEL_LOOK)
            } else {
                left
            };
            held = gate
                .freed
                .wait_timeout(held, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        held.taken = Some(holder.map(str::to_owned));
        Ok(Turn(Arc::clone(gate)))
    }

    /// Waits for a change's turn, ahead of every dispatch not yet holding one, until
    /// `deadline`; `None` past it.
    pub(crate) fn enter_change(gate: &Arc<Gate>, deadline: Instant) -> Option<Turn> {
        let mut held = gate.held();
        held.changes_waiting += 1;
        while held.taken.is_some() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                held.changes_waiting -= 1;
                drop(held);
                // The dispatches this change held back may go now.
                gate.freed.notify_all();
                return None;
            };
            held = gate
                .freed
                .wait_timeout(held, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        held.changes_waiting -= 1;
        held.taken = Some(None);
        Some(Turn(Arc::clone(gate)))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.held().taken = None;
        // Every waiter looks again: a change among them goes first.
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::Gate;
    use crate::Stop;

    #[test]
    fn a_waiting_change_goes_before_dispatches_that_keep_coming() {
        let gate = Arc::new(Gate::default());
        let stop = || Stop::from(Instant::now() + Duration::from_secs(30));
        let first = Gate::enter(&gate, &stop(), Some("a"));
        assert!(first.is_ok());
        // Dispatches take turns without a pause, as a busy PBX's do, until the test is done.
        let dispatched = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        // Stops the dispatchers however the test ends, a failed assertion included.
        struct Done(Arc<AtomicBool>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _done = Done(Arc::clone(&done));
        let dispatchers: Vec<_> = (0..4)
            .map(|_| {
                let (gate, dispatched) = (Arc::clone(&gate), Arc::clone(&dispatched));
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    while !done.load(Ordering::SeqCst) {
                        let stop = Stop::from(Instant::now() + Duration::from_secs(30));
                        if let Ok(turn) = Gate::enter(&gate, &stop, Some("b")) {
                            dispatched.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(1));
                            drop(turn);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        std::thread::sleep(Duration::from_millis(20));
        let waited = Instant::now();
        let change = Gate::enter_change(&gate, Instant::now() + Duration::from_secs(5));
        assert!(change.is_some(), "the change got no turn");
        // Within its 5 s wait: the dispatches did not keep it out.
        assert!(waited.elapsed() < Duration::from_secs(4));
        // While the change holds its turn, no dispatch takes one.
        let before = dispatched.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(dispatched.load(Ordering::SeqCst), before);
        drop(change);
        let after = Instant::now();
        while dispatched.load(Ordering::SeqCst) == before {
            assert!(
                after.elapsed() < Duration::from_secs(10),
                "dispatches went on"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, Ordering::SeqCst);
        for dispatcher in dispatchers {
            assert!(dispatcher.join().is_ok());
        }
    }

    #[test]
    fn a_change_past_its_deadline_lets_the_dispatches_go() {
        let gate = Arc::new(Gate::default());
        let stop = Stop::from(Instant::now() + Duration::from_secs(30));
        let held = Gate::enter(&gate, &stop, Some("a"));
        assert!(held.is_ok());
        assert!(Gate::enter_change(&gate, Instant::now() + Duration::from_millis(20)).is_none());
        drop(held);
        assert!(Gate::enter(&gate, &stop, Some("b")).is_ok());
    }
}
