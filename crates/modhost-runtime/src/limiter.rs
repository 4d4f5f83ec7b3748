//! The memory cap of one store, across all its linear memories.
//!
//! wasmtime's `StoreLimits` caps each memory on its own, so a component with several
//! memories could use that many times the cap; this limiter counts them together.

use std::fmt;

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
}

impl Limiter {
    /// A limiter for a new store, whose memories may hold `cap` bytes in all.
    pub(crate) fn new(cap: usize) -> Self {
        Limiter { cap, used: 0 }
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
            // A trap rather than a failed `memory.grow`: the guest's allocator would abort
            // anyway, and the trap carries the backtrace of what asked for the memory.
            _ => Err(MemoryCapReached { cap: self.cap }.into()),
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
    }

    #[test]
    fn the_cap_is_named_in_mebibytes() {
        assert_eq!(
            MemoryCapReached { cap: 32 * MIB }.to_string(),
            "its memory cap of 32 MiB was reached"
        );
    }
}
