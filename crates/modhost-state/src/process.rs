//! Which process an object was made in, checked on every use without a system call: a
//! handler that `fork` runs in the child counts the forks, so an object made before one
//! is told from one made after, for the price of an atomic load (`getpid` is a system
//! call on every use since glibc 2.25, about 150 ns here, several per dispatch).

use std::sync::Once;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How many times this process's ancestors, since the first that made a [`Process`],
/// forked on the way to it; copied into every child, which then counts one more.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Registers the counting once: only what is made after can be told apart.
static WATCH: Once = Once::new();

/// The process that registered it: the first to make a [`Process`].
static FIRST: AtomicU32 = AtomicU32::new(0);

extern "C" fn forked() {
    // Async-signal-safe, as a child handler of `fork` must be.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The process something was made in.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    forks: u64,
    /// For messages only: the process id when it was made.
    pub id: u32,
}

impl Process {
    /// This process.
    pub fn current() -> Self {
        WATCH.call_once(|| {
            FIRST.store(std::process::id(), Ordering::Relaxed);
            // It fails only when memory runs out; forks then go uncounted, which leaves
            // a forked child as unguarded as it was before this module.
            // SAFETY: registers a child handler that only does an atomic add.
            #[allow(unsafe_code)]
            let _ = unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        });
        Process {
            forks: FORKS.load(Ordering::Relaxed),
            id: std::process::id(),
        }
    }

    /// Whether this is still the process it was made in, not a child forked since.
    pub fn is_current(&self) -> bool {
        FORKS.load(Ordering::Relaxed) == self.forks
    }

    /// The process this one was forked from (at some remove) that made a [`Process`]
    /// before, if it was: one whose threads this process lacks.
    pub fn forked_from() -> Option<u32> {
        (FORKS.load(Ordering::Relaxed) > 0).then(|| FIRST.load(Ordering::Relaxed))
    }
}
