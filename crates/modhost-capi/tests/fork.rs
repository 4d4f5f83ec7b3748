//! A C application that forks (a PHP-FPM or Apache master making a worker) while another
//! thread is inside a call: in the child, a change on the inherited host is refused at
//! once, never left waiting for the parent's root lock, and `modhost_close` returns at
//! once, never waiting for the parent's call, which never ends there. Its own test
//! binary: a fork from a test binary running other tests on other threads could copy a
//! lock one of them holds.

// Calling the C API is calling `unsafe extern "C"` functions with raw pointers.
#![allow(unsafe_code)]

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "capi/telephony.rs"]
mod telephony;

use std::ptr::null;
use std::time::{Duration, Instant};

use modhost_capi::*;
use telephony::{Seen, dispatch, install, open_with_telephony_within};

/// What the child found, as its exit status.
const FINE: i32 = 0;
const CHANGED_ACROSS_THE_FORK: i32 = 10;

#[test]
fn a_child_forked_during_a_call_is_refused_changes_and_closes_at_once() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Read by the dispatching thread as long as the process lives.
    let seen: &'static Seen = Box::leak(Box::default());
    let host =
        open_with_telephony_within(root.path(), seen, 3_000).unwrap_or_else(|e| panic!("{e}"));
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)
        .unwrap_or_else(|e| panic!("{e}"));
    let address = host as usize;
    let dispatching = std::thread::spawn(move || {
        let left = r#"{"mailbox":"101","from":"wait"}"#;
        dispatch(address as *const Host, "voicemail.left", left, None, null())
    });
    let waiting = || {
        seen.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(function, _, _)| function == "waiting")
    };
    let started = Instant::now();
    while !waiting() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never called back"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    // SAFETY: the child runs only this test's code, then leaves with `_exit`, running no
    // destructor and no test harness; this binary runs no other test.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let status = match install(host, &["phonebook"], 0) {
            Err(e) if e.contains("fork") => FINE,
            other => {
                eprintln!("child: a change across the fork: {other:?}");
                CHANGED_ACROSS_THE_FORK
            }
        };
        // SAFETY: the inherited host, closed once; the parent's dispatch on it never ends
        // here.
        unsafe { modhost_close(host) };
        // SAFETY: ends the child at once, as a forked child must.
        unsafe { libc::_exit(status) };
    }
    // The child ends at once, or it waits for ever: a bound tells which.
    let forked = Instant::now();
    let mut status = 0;
    let ended = loop {
        // SAFETY: polls the child just made.
        let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if waited == pid {
            break true;
        }
        if forked.elapsed() > Duration::from_secs(20) {
            // SAFETY: the child just made, stuck.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let result = dispatching
        .join()
        .unwrap_or_else(|_| panic!("dispatch panicked"));
    assert!(
        ended,
        "the child never returned from a change or from closing"
    );
    assert!(libc::WIFEXITED(status), "child did not exit: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        FINE,
        "see the child's message above"
    );
    // The parent's host is untouched by what the child did.
    let result = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result["calls"][0]["kind"], "timeout", "{result}");
    install(host, &["phonebook"], 0).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
}
