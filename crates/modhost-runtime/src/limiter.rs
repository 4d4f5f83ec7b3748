//! The memory cap of one store, across all its linear memories.
//!
//! wasmtime's `StoreLimits` caps each memory on its own, so a component with several
//! memories could use that many times the cap; this limiter counts them together.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::ResourceLimiter;

/// Instances, tables and memories one store may create: a component built by the SDK needs
/// a handful; the rest would only take pooled slots from other calls.
const STORE_ITEMS: usize = 16;

/// A call's memories together would have grown past its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryCapReached {
    /// The cap, in bytes.
    pub(crate) cap: usize,
}

impl fmt::Display for MemoryCapReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its memory cap of {} was reached",
            crate::error::bytes(self.cap)
        )
    }
}

impl std::error::Error for MemoryCapReached {}

/// Caps the bytes of all of a store's linear memories together.
#[derive(Debug)]
pub(crate) struct Limiter {
    cap: usize,
    /// Bytes held by the store's memories; they never shrink while the store lives.
    used: usize,
    /// The cap, once a `memory.grow` past it was refused; else 0.
    refused: Refused,
    /// Whether the store's instance is made: until then a memory growing from nothing is
    /// a new one (its initial size); after, a `memory.grow` of one declared empty.
    instantiated: bool,
}

/// Whether a store's limiter refused a `memory.grow` at its cap since the call began:
/// a trap that follows (the guest's allocator aborting) is the cap's doing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Refused(Arc<AtomicUsize>);

impl Refused {
    /// The cap a grow was refused at, if one was.
    pub(crate) fn cap(&self) -> Option<usize> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&cap| cap > 0)
    }

    /// Forgets a refusal, as a new call begins.
    pub(crate) fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

impl Limiter {
    /// A limiter for a new store, whose memories may hold `cap` bytes in all.
    pub(crate) fn new(cap: usize) -> Self {
        Limiter {
            cap,
            used: 0,
            refused: Refused::default(),
            instantiated: false,
        }
    }

    /// Notes that the store's instance is made: its memories exist.
    pub(crate) fn instantiated(&mut self) {
        self.instantiated = true;
    }

    /// What says whether a grow was refused during the current call.
    pub(crate) fn refused(&self) -> Refused {
        self.refused.clone()
    }

    /// What the cap leaves: the bytes the store's memories may still grow by.
    pub(crate) fn left(&self) -> usize {
        self.cap.saturating_sub(self.used)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A new memory arrives with `current` 0, so its initial size is counted too.
        let total = (self.used - current.min(self.used)).checked_add(desired);
        match total {
            Some(total) if total <= self.cap => {
                self.used = total;
                Ok(true)
            }
            // A new memory too large for the cap fails the instantiation, naming the cap.
            _ if current == 0 && !self.instantiated => {
                Err(MemoryCapReached { cap: self.cap }.into())
            }
            // A `memory.grow` past it fails as the guest's allocator expects (-1): Python
            // raises MemoryError, which a module may catch; an allocator that aborts
            // instead traps, and the trap is reported as the cap's.
            _ => {
                self.refused.0.store(self.cap, Ordering::Relaxed);
                Ok(false)
            }
        }
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a linear memory failed"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's slots.
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a table failed"))
    }

    fn instances(&self) -> usize {
        STORE_ITEMS
    }

    fn tables(&self) -> usize {
        STORE_ITEMS
    }

    fn memories(&self) -> usize {
        STORE_ITEMS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_share_one_cap() {
        let mut limiter = Limiter::new(32 * MIB);
        assert!(matches!(
            limiter.memory_growing(0, 16 * MIB, None),
            Ok(true)
        ));
        assert!(matches!(limiter.memory_growing(0, 8 * MIB, None), Ok(true)));
        assert!(matches!(
            limiter.memory_growing(16 * MIB, 24 * MIB, None),
            Ok(true)
        ));
        let refused = limiter.memory_growing(0, 1 << 16, None);
        assert!(
            refused.is_err_and(|e| e.downcast_ref() == Some(&MemoryCapReached { cap: 32 * MIB })),
            "a third memory would take the two past the cap"
        );
        assert!(matches!(
            limiter.memory_growing(8 * MIB, 8 * MIB, None),
            Ok(true)
        ));
        // A grow of a memory it has past the cap fails as `memory.grow` fails, and is
        // remembered for the call's report; a new call forgets it.
        assert_eq!(limiter.refused().cap(), None);
        assert!(matches!(
            limiter.memory_growing(24 * MIB, 25 * MIB, None),
            Ok(false)
        ));
        assert_eq!(limiter.refused().cap(), Some(32 * MIB));
        limiter.refused().clear();
        assert_eq!(limiter.refused().cap(), None);
    }

    #[test]
    fn a_memory_declared_empty_grows_past_the_cap_as_memory_grow_fails() {
        let mut limiter = Limiter::new(32 * MIB);
        // Instantiating: an empty memory, then one too large, which fails instantiation.
        assert!(matches!(limiter.memory_growing(0, 0, None), Ok(true)));
        assert!(limiter.memory_growing(0, 33 * MIB, None).is_err());
        limiter.instantiated();
        // Its first `memory.grow` past the cap: -1 in the guest, not a trap.
        assert!(matches!(
            limiter.memory_growing(0, 33 * MIB, None),
            Ok(false)
        ));
        assert_eq!(limiter.refused().cap(), Some(32 * MIB));
        assert!(matches!(limiter.memory_growing(0, MIB, None), Ok(true)));
    }

    #[test]
    fn the_cap_is_named_in_mebibytes() {
        assert_eq!(
            MemoryCapReached { cap: 32 * MIB }.to_string(),
            "its memory cap of 32 MiB was reached"
        );
    }
}
