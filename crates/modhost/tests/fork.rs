//! A host used in a process forked from the one that opened it (a PHP-FPM or Apache
//! worker forked after the master used modhost) refuses, and so does opening one there:
//! the child has none of the threads modhost started in the parent (the one deadlines
//! count on, the compiler's, WASI's), whose shared state says they are there, and
//! SQLite's connections are not to be used across a fork. Refused at once, never a hang.
//! Its own test binary: a fork from a test binary running other tests on other threads
//! could copy a lock one of them holds.

use modhost::{Host, Options};
use modhost_test_support::package;

/// What the child found, as its exit status.
const FINE: i32 = 0;
const USED_ACROSS_THE_FORK: i32 = 10;
const QUERY_ACROSS_THE_FORK: i32 = 11;
const OPENED_AGAIN: i32 = 12;

fn echo(host: &Host) -> Result<Option<String>, String> {
    let dispatch = host.dispatch("echo", "x").map_err(|e| e.to_string())?;
    match dispatch.calls.first() {
        Some(call) if call.ok => Ok(call.output.clone()),
        Some(call) => Err(call.error.clone().unwrap_or_default()),
        None => Err("no handler ran".into()),
    }
}

/// The child's checks; returns its exit status.
fn in_child(root: &std::path::Path, host: &Host) -> i32 {
    // The dispatch itself fails, not each handler in it: a caller that checks only
    // whether the dispatch ran must not read it as one that did.
    match host.dispatch("echo", "x") {
        Err(e) if e.to_string().contains("fork") => {}
        other => {
            eprintln!("child: dispatch across the fork: {other:?}");
            return USED_ACROSS_THE_FORK;
        }
    }
    match host.module("hostile") {
        Err(e) if e.to_string().contains("fork") => {}
        other => {
            eprintln!("child: query across the fork: {other:?}");
            return QUERY_ACROSS_THE_FORK;
        }
    }
    match Host::open(root) {
        Err(e)
            if e.to_string()
                .contains("which forked this one, used modhost") =>
        {
            FINE
        }
        other => {
            eprintln!("child: opened again: {:?}", other.map(|_| "opened"));
            OPENED_AGAIN
        }
    }
}

#[test]
fn a_forked_process_is_refused_modhost_at_once_naming_the_fork() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("hostile")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(echo(&host), Ok(Some("x".into())));

    // SAFETY: the child runs only this test's code, then leaves with `_exit`, running no
    // destructor and no test harness; this binary runs no other test.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let status = in_child(root.path(), &host);
        // SAFETY: ends the child at once, as a forked child must.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(status)
        };
    }
    let mut status = 0;
    // SAFETY: waits for the child just made.
    #[allow(unsafe_code)]
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit: {status}");
    assert_eq!(libc::WEXITSTATUS(status), FINE);
    // The parent's host is untouched by what the child did.
    assert_eq!(echo(&host), Ok(Some("x".into())));
}
