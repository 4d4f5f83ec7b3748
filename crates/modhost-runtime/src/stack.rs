//! Enough stack for a call on any thread: a call runs where it is when the thread has
//! enough left, else on a stack segment the thread keeps for its next calls. A thread
//! with little stack (Asterisk's are under 512 KiB, a Rust thread's is 2 MiB) so pays for
//! mapping a segment once, not at every call: a fresh segment each time costs a mapping
//! and the page faults of every page the call touches, several times a warm dispatch.
//!
//! `stacker` tells how much stack a thread has left; on a kept segment this module does,
//! since stacker knows only the thread's own stack.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

/// The unmapped bottom of a segment, which a frame running past the segment faults on
/// rather than writing over whatever lies below: a multiple of every page size.
const GUARD: usize = 64 << 10;

/// A stack segment: `len` bytes mapped at `base`, the lowest [`GUARD`] bytes of them
/// inaccessible.
struct Segment {
    base: *mut c_void,
    len: usize,
}

impl Segment {
    /// Maps a segment with `usable` bytes above its guard, or `None` when the mapping
    /// fails.
    fn map(usable: usize) -> Option<Segment> {
        let len = usable.checked_add(GUARD)?;
        // SAFETY: a new anonymous mapping, which nothing else refers to.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .ok()?;
        let segment = Segment { base, len };
        // SAFETY: the guard is the first bytes of the mapping just made, page-aligned.
        unsafe { rustix::mm::mprotect(base, GUARD, MprotectFlags::empty()) }.ok()?;
        Some(segment)
    }

    /// The lowest usable address and how many bytes are usable above it.
    fn usable(&self) -> (*mut u8, usize) {
        (self.base.cast::<u8>().wrapping_add(GUARD), self.len - GUARD)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping is this segment's alone, and no frame runs on it once it
        // is dropped (it is taken off the thread while a call runs on it).
        let _ = unsafe { rustix::mm::munmap(self.base, self.len) };
    }
}

thread_local! {
    /// The segment this thread keeps while no call runs on it.
    static KEPT: Cell<Option<Segment>> = const { Cell::new(None) };
    /// The lowest usable address of the segment the thread runs on now, if it runs on
    /// one of this module's.
    static ON: Cell<Option<usize>> = const { Cell::new(None) };
}

/// How many bytes of stack the thread has left where it runs now, when that is known.
fn remaining() -> Option<usize> {
    match ON.get() {
        Some(low) => Some((psm::stack_pointer() as usize).saturating_sub(low)),
        None => stacker::remaining_stack(),
    }
}

/// Runs `f` where the thread runs when it has `needed` bytes of stack left, else on a
/// segment of `size` bytes (at least `needed`): the one the thread keeps, or a new one
/// when that one is in use by a call further out (or none could be mapped, stacker's).
/// A panic in `f` continues from here, past the segment.
pub(crate) fn run_with<R>(needed: usize, size: usize, f: impl FnOnce() -> R) -> R {
    if remaining().is_some_and(|left| left >= needed) {
        return f();
    }
    let Some(segment) = KEPT.take().or_else(|| Segment::map(size)) else {
        return stacker::grow(size, f);
    };
    let (low, len) = segment.usable();
    let outer = ON.replace(Some(low as usize));
    // SAFETY: `low` starts `len` bytes of a mapping of this segment's, which this thread
    // alone uses while the callback runs (it is off `KEPT` until then); both are
    // multiples of 64 KiB, aligned for any target; the callback never unwinds, a panic
    // being caught inside and resumed outside.
    let outcome = unsafe { psm::on_stack(low, len, move || catch_unwind(AssertUnwindSafe(f))) };
    ON.set(outer);
    // A segment mapped for a call further in was dropped there; this one is kept.
    KEPT.set(Some(segment));
    match outcome {
        Ok(result) => result,
        Err(panic) => resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uses about `bytes` of stack, then says where the stack pointer was at its deepest.
    #[inline(never)]
    fn deep(bytes: usize) -> usize {
        let frame = [1u8; 16 << 10];
        std::hint::black_box(&frame);
        if bytes <= frame.len() {
            psm::stack_pointer() as usize
        } else {
            deep(bytes - frame.len())
        }
    }

    /// Uses about `bytes` of stack, then runs `f` there.
    #[inline(never)]
    fn beneath<R>(bytes: usize, f: impl FnOnce() -> R) -> R {
        let frame = [1u8; 16 << 10];
        std::hint::black_box(&frame);
        if bytes <= frame.len() {
            f()
        } else {
            beneath(bytes - frame.len(), f)
        }
    }

    fn on_small_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(f)
            .unwrap_or_else(|e| panic!("{e}"))
            .join()
            .unwrap_or_else(|_| panic!("the thread panicked"))
    }

    #[test]
    fn a_small_thread_keeps_one_segment_for_its_calls() {
        let segments = on_small_thread(|| {
            (0..50)
                .map(|_| run_with(1 << 20, 4 << 20, || (ON.get(), deep(1 << 20))))
                .collect::<Vec<_>>()
        });
        let (first, _) = segments[0];
        assert!(first.is_some(), "the call ran on the thread's own stack");
        assert!(
            segments.iter().all(|(on, _)| *on == first),
            "a segment per call"
        );
        // A megabyte deep, on a thread of 256 KiB: within the segment, above its guard.
        let low = first.unwrap_or_default();
        assert!(
            segments
                .iter()
                .all(|(_, sp)| *sp > low && *sp < low + (4 << 20))
        );
    }

    #[test]
    fn a_thread_with_enough_stack_runs_the_call_where_it_is() {
        let on = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(|| run_with(1 << 20, 4 << 20, || ON.get()))
            .unwrap_or_else(|e| panic!("{e}"))
            .join()
            .unwrap_or_else(|_| panic!("the thread panicked"));
        assert_eq!(on, None);
    }

    #[test]
    fn a_call_further_in_gets_its_own_segment_and_a_panic_comes_out() {
        let (outer, inner, after) = on_small_thread(|| {
            let (outer, inner) = run_with(1 << 20, 2 << 20, || {
                let outer = ON.get();
                // Most of the segment used: the call further in needs one of its own.
                let inner = beneath(1536 << 10, || run_with(1 << 20, 2 << 20, || ON.get()));
                (outer, inner)
            });
            let panicked =
                catch_unwind(|| run_with(1 << 20, 2 << 20, || -> u8 { panic!("inside") }));
            assert!(panicked.is_err());
            (outer, inner, run_with(1 << 20, 2 << 20, || ON.get()))
        });
        assert!(outer.is_some() && inner.is_some() && inner != outer);
        assert_eq!(after, outer, "the kept segment survives a panic");
    }
}
