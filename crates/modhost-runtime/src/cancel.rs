//! Stopping a call from another thread: the caller hung up, so the handler serving it
//! stops at once, as at its deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use wasmtime::{Engine, EngineWeak};

/// A handle that cancels the calls it is passed to, from any thread. Cloning it gives
/// another handle to the same cancellation.
#[derive(Clone)]
pub struct Cancel {
    cancelled: Arc<AtomicBool>,
    /// Wakes the calls waiting in WASI (a sleep, a poll) the moment it is cancelled.
    woken: Arc<Notify>,
    /// The engines of the calls it was passed to, whose epoch it advances so that they
    /// stop now rather than at the next tick. Weak: a handle kept by the application
    /// does not keep a closed host's engine alive.
    engines: Arc<Mutex<Vec<EngineWeak>>>,
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
            engines: Arc::new(Mutex::new(vec![engine.weak()])),
        }
    }

    /// Notes that a call on `engine` was passed this handle: a handle made by one
    /// runtime may be passed to another's calls, which it must stop as promptly.
    pub(crate) fn watch(&self, engine: &Engine) {
        let mut engines = self.engines.lock().unwrap_or_else(PoisonError::into_inner);
        engines.retain(|weak| weak.upgrade().is_some());
        if !engines
            .iter()
            .filter_map(EngineWeak::upgrade)
            .any(|known| Engine::same(&known, engine))
        {
            engines.push(engine.weak());
        }
    }

    /// Cancels: a running call stops at its next loop iteration or function entry (the
    /// engine's epoch is advanced now, not at the next tick), one waiting in WASI is woken
    /// now, one waiting for the state database within a millisecond, and calls not yet
    /// started do not run.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.woken.notify_waiters();
        let engines = self.engines.lock().unwrap_or_else(PoisonError::into_inner);
        for engine in engines.iter().filter_map(EngineWeak::upgrade) {
            engine.increment_epoch();
        }
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

thread_local! {
    /// The module call running on this thread, innermost first: its deadline and its
    /// cancellation.
    static CURRENT: std::cell::RefCell<Vec<(std::time::Instant, Option<Cancel>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// While alive, a module's call runs on this thread: a dispatch an application's
/// capability starts from inside it (on this thread) ends with it, at its deadline or
/// its cancellation.
pub(crate) struct Running;

impl Running {
    /// Notes that a call with `deadline` and `cancel` runs on this thread.
    pub(crate) fn enter(deadline: std::time::Instant, cancel: Option<Cancel>) -> Self {
        CURRENT.with(|c| c.borrow_mut().push((deadline, cancel)));
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().pop());
    }
}

/// The deadline and cancellation of the module call running on this thread, if one is:
/// what a dispatch started from inside it inherits.
pub fn running_call() -> Option<(std::time::Instant, Option<Cancel>)> {
    CURRENT.with(|c| c.borrow().last().cloned())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use wasmtime::{Config, Engine};

    use super::Cancel;

    /// `loop { br 0 }`: spins until stopped.
    const SPIN: &[u8] = &[0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b];

    fn engine() -> Engine {
        let mut config = Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_handle_stops_a_call_on_another_engine_it_was_passed_to() {
        // No thread ticks either engine: only the handle advances the epoch.
        let made_by = engine();
        let runs_on = engine();
        let cancel = Cancel::new(&made_by);
        cancel.watch(&runs_on);
        let (mut store, spin) = crate::core_wasm::function(&runs_on, SPIN);
        store.set_epoch_deadline(1);
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            cancel.cancel();
            Instant::now()
        });
        let spun = spin.call(&mut store, ());
        let ended = Instant::now();
        let at = canceller
            .join()
            .unwrap_or_else(|_| panic!("canceller panicked"));
        assert!(spun.is_err(), "the spin ended by itself");
        assert!(ended.saturating_duration_since(at) < Duration::from_secs(5));
    }

    #[test]
    fn a_handle_kept_after_its_runtime_does_not_keep_its_engine() {
        let engine = engine();
        let weak = engine.weak();
        let cancel = Cancel::new(&engine);
        let other = self::engine();
        cancel.watch(&other);
        // Watching the same engine twice keeps one entry.
        cancel.watch(&other);
        let watched = cancel.engines.lock().map(|e| e.len()).unwrap_or(0);
        assert_eq!(watched, 2);
        drop(engine);
        drop(other);
        assert!(weak.upgrade().is_none(), "the handle kept the engine alive");
        // Cancelling with every engine gone still marks the handle.
        cancel.cancel();
        assert!(cancel.is_cancelled());
    }
}
