//! Dispatches cancelled from another thread.

use std::ptr::null;
use std::time::{Duration, Instant};

use modhost_capi::*;
use modhost_test_support::package;
use serde_json::Value;

use crate::TestResult;
use crate::common;
use crate::telephony::*;

#[test]
fn a_dispatch_is_cancelled_from_another_thread() -> TestResult {
    let root = tempfile::tempdir()?;
    let host = common::open(root.path())?;
    let hostile = package("hostile");
    install(host, &[&hostile.to_string_lossy()], 0)?;
    let (result, went_on) =
        dispatch_cancelled(host, "spin", "", || true, Duration::from_millis(200))?;
    assert_eq!(result["cancelled"], true, "{result}");
    assert_eq!(result["calls"][0]["kind"], "cancelled", "{result}");
    // Its deadline is 10 s away: only the cancellation stopped it.
    assert!(went_on < Duration::from_secs(2), "{result}");
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_waiting_callback_sees_its_call_cancelled_and_its_deadline_pass() -> TestResult {
    assert!(!modhost_call_stopped() && modhost_call_ms_left() == -1);
    let root = tempfile::tempdir()?;
    // Read by the cancelling thread too, as long as the process lives.
    let seen: &'static Seen = Box::leak(Box::default());
    let host = open_with_telephony_within(root.path(), seen, 1_000)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    let left = r#"{"mailbox":"101","from":"wait"}"#;
    let waits_begun = || {
        seen.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(function, _, _)| function == "waiting")
            .count()
    };

    // The deadline: the callback stops waiting when it passes, and so does the call.
    let started = Instant::now();
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    let took = started.elapsed();
    assert_eq!(result["calls"][0]["kind"], "timeout", "{result}");
    // Without the callback's wait ending, the call would have lasted its 5 s.
    assert!(took < Duration::from_millis(3_000), "{took:?}: {result}");
    let waits = |seen: &Seen| -> Vec<Value> {
        let seen = seen
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter()
            .filter(|(function, _, _)| function == "wait")
            .map(|(_, left, _)| left.clone())
            .collect()
    };
    let waited = waits(seen);
    let at_start = waited
        .first()
        .map_or(-1, |w| w["at_start"].as_i64().unwrap_or(-1));
    assert!(
        waited.len() == 1
            && (1..=1_000).contains(&at_start)
            && waited[0]["after"] == 0
            && waited[0]["none_left_running"] == false,
        "the callback waits once, and sees the deadline pass, 0 ms left only once \
         stopped: {waited:?}"
    );

    // A cancellation: the callback sees it at once, long before the deadline.
    let waits_before = waits_begun();
    let waiting = move || waits_begun() > waits_before;
    let (result, went_on) = dispatch_cancelled(
        host,
        "voicemail.left",
        left,
        waiting,
        Duration::from_millis(20),
    )?;
    assert_eq!(result["cancelled"], true, "{result}");
    assert_eq!(result["calls"][0]["kind"], "cancelled", "{result}");
    // Its deadline was at most 1 s away.
    assert!(went_on < Duration::from_millis(600), "{result}");
    assert_eq!(
        waits(seen).get(1).map(|w| w["after"].clone()),
        Some(0.into())
    );
    // SAFETY: closed once, nothing using it.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn closing_a_host_waits_for_a_dispatch_in_a_callback_on_another_thread() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony_within(root.path(), &seen, 1_000)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    let address = host as usize;
    let dispatching = std::thread::spawn(move || {
        let left = r#"{"mailbox":"101","from":"wait"}"#;
        dispatch(address as *const Host, "voicemail.left", left, None, null())
    });
    let called = |function: &str| {
        seen.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(f, _, _)| f == function)
    };
    let started = Instant::now();
    while !called("waiting") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never called back"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: the host, closed once, while the other thread's dispatch is in a callback.
    unsafe { modhost_close(host) };
    // It returned once the dispatch had: the callback had finished, with its call.
    assert!(called("wait"), "closed under the dispatch");
    let result = dispatching
        .join()
        .map_err(|_| "the dispatching thread panicked")??;
    // Closing cancelled it: the callback, polling `modhost_call_stopped`, stopped waiting.
    assert_eq!(result["calls"][0]["kind"], "cancelled", "{result}");
    Ok(())
}

/// A host, shared with the thread dispatching on it.
#[derive(Clone, Copy)]
struct Shared(*mut Host);
// SAFETY: a host may be used from several threads at once (modhost.h).
unsafe impl Send for Shared {}

#[test]
fn closing_a_host_cancels_its_dispatches_rather_than_wait_for_their_deadlines() -> TestResult {
    let root = tempfile::tempdir()?;
    let host = common::open(root.path())?;
    let hostile = package("hostile");
    install(host, &[&hostile.to_string_lossy()], 0)?;
    let shared = Shared(host);
    // Spinning until its deadline, 10 s away, with no cancel handle of its own.
    let spinning = std::thread::spawn(move || {
        let shared = shared;
        dispatch(shared.0, "spin", "", None, null())
    });
    std::thread::sleep(Duration::from_millis(300));
    let closing = Instant::now();
    // SAFETY: the host, closed while another thread dispatches (which modhost.h allows).
    unsafe { modhost_close(host) };
    let took = closing.elapsed();
    let result = spinning
        .join()
        .map_err(|_| "the dispatching thread panicked")??;
    assert_eq!(result["cancelled"], true, "{result}");
    assert_eq!(result["calls"][0]["kind"], "cancelled", "{result}");
    assert!(
        took < Duration::from_secs(3),
        "the close took {took:?}: {result}"
    );
    Ok(())
}
