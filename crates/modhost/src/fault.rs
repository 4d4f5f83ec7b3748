//! Crash points for fault-injection tests.
//!
//! Built with the `fault-injection` feature (only the test suite enables it), the process
//! aborts — no destructors, no cleanup, like `kill -9` — when it reaches the step that
//! `MODHOST_FAULT=OPERATION:STEP` names. Without the feature, [`point`] is empty.

/// Marks step `step` of operation `operation`.
#[cfg(feature = "fault-injection")]
pub(crate) fn point(operation: &str, step: &str) {
    if std::env::var("MODHOST_FAULT").is_ok_and(|target| target == format!("{operation}:{step}")) {
        eprintln!("fault injection: aborting at {operation}:{step}");
        std::process::abort();
    }
}

/// Marks step `step` of operation `operation`.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_operation: &str, _step: &str) {}
