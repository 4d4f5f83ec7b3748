//! Crash points for fault-injection tests.
//!
//! Built with the `fault-injection` feature (only the test suite enables it), the process
//! aborts — no destructors, no cleanup, like `kill -9` — when it reaches the step that
//! `MODHOST_FAULT=OPERATION:STEP` names, the first time it does; `OPERATION:STEP:N` aborts
//! the `N`-th time instead (the second module of a batch: `install:begin:2`). Without the
//! feature, [`point`] is empty.

/// Marks step `step` of operation `operation`.
#[cfg(feature = "fault-injection")]
pub(crate) fn point(operation: &str, step: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// How often the named step has been reached in this process.
    static REACHED: AtomicU64 = AtomicU64::new(0);

    let Ok(target) = std::env::var("MODHOST_FAULT") else {
        return;
    };
    let Some((named, nth)) = parse(&target) else {
        return;
    };
    if named != format!("{operation}:{step}") {
        return;
    }
    if REACHED.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("fault injection: aborting at {target}");
        std::process::abort();
    }
}

/// `OPERATION:STEP` and the count to abort at (1 unless `:N` follows, N ≥ 1), or `None`
/// for a value that names no step.
#[cfg(any(feature = "fault-injection", test))]
fn parse(target: &str) -> Option<(&str, u64)> {
    let mut parts = target.splitn(3, ':');
    let (operation, step) = (parts.next()?, parts.next()?);
    let nth = match parts.next() {
        None => 1,
        Some(count) => count.parse().ok().filter(|n| *n >= 1)?,
    };
    let named = &target[..operation.len() + 1 + step.len()];
    Some((named, nth))
}

/// Marks step `step` of operation `operation`.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_operation: &str, _step: &str) {}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_fault_names_a_step_and_optionally_which_time_it_is_reached() {
        assert_eq!(parse("install:begin"), Some(("install:begin", 1)));
        assert_eq!(parse("install:begin:2"), Some(("install:begin", 2)));
        assert_eq!(parse("apply:committed:1"), Some(("apply:committed", 1)));
        assert_eq!(parse("install:begin:0"), None, "counts start at 1");
        assert_eq!(parse("install:begin:x"), None);
        assert_eq!(parse("install"), None);
    }
}
