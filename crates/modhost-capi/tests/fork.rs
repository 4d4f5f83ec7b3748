//! A C application that forks (a PHP-FPM or Apache master making a worker) while another
//! thread is inside a call: in the child, a change on the inherited host is refused at
//! once, never left waiting for the parent's root lock, and `modhost_close` returns at
//! once, never waiting for the parent's call, which never ends there. A child forked
//! while another thread declares a hook point is refused its declarations and
//! dispatches, never left waiting for a lock the parent's thread held, and opening a
//! host of its own fails at once, before any database is touched; one forked while a
//! thread is inside the log callback takes the callback away at once. Its own test
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
    wait_until("never called back", waiting);

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
    let ended = ended_within(pid, Duration::from_secs(20));
    let result = dispatching
        .join()
        .unwrap_or_else(|_| panic!("dispatch panicked"));
    let Some(status) = ended else {
        panic!("the child never returned from a change or from closing")
    };
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

    // A child forked while another thread declares a hook point: the host's table of
    // hook points may be locked for ever in the child, so its calls are refused before
    // anything of the host is touched.
    let declaring = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let declarer = {
        let declaring = std::sync::Arc::clone(&declaring);
        std::thread::spawn(move || {
            while declaring.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = declare(address as *const Host, "call.route");
            }
        })
    };
    for _ in 0..20 {
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let declared = declare(host, "call.route");
            let dispatched = dispatch(host, "call.route", "{}", None, null());
            let status = match (&declared, &dispatched) {
                (Err(d), Err(r)) if d.contains("fork") && r.contains("fork") => FINE,
                _ => {
                    eprintln!("child: {declared:?} {dispatched:?}");
                    CHANGED_ACROSS_THE_FORK
                }
            };
            // SAFETY: ends the child at once, as a forked child must.
            unsafe { libc::_exit(status) };
        }
        let Some(status) = ended_within(pid, Duration::from_secs(20)) else {
            panic!("a child forked during a declaration never returned")
        };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == FINE,
            "see the child's message above: {status}"
        );
    }
    declaring.store(false, std::sync::atomic::Ordering::Relaxed);
    declarer
        .join()
        .unwrap_or_else(|_| panic!("declaring panicked"));

    // A child forked while other threads read the state database (SQLite's own locks
    // may be held at the fork) opens a host of its own: refused at once, before the
    // database is touched, never left waiting for a lock no thread there will release.
    let listing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listers: Vec<_> = (0..2)
        .map(|_| {
            let listing = std::sync::Arc::clone(&listing);
            std::thread::spawn(move || {
                while listing.load(std::sync::atomic::Ordering::Relaxed) {
                    let (mut modules, mut error) = (std::ptr::null_mut(), std::ptr::null_mut());
                    // SAFETY: the live host, out-pointers of this call.
                    let status =
                        unsafe { modhost_list(address as *const Host, &mut modules, &mut error) };
                    let _ = (common::take(modules), common::check(status, error));
                }
            })
        })
        .collect();
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..40 {
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let status = match common::open(other.path()) {
                Err(e) if e.contains("fork") => FINE,
                other => {
                    eprintln!("child: opened across the fork: {other:?}");
                    CHANGED_ACROSS_THE_FORK
                }
            };
            // SAFETY: ends the child at once, as a forked child must.
            unsafe { libc::_exit(status) };
        }
        let Some(status) = ended_within(pid, Duration::from_secs(20)) else {
            panic!("a child forked while the state was read never returned from opening")
        };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == FINE,
            "see the child's message above: {status}"
        );
    }
    listing.store(false, std::sync::atomic::Ordering::Relaxed);
    for lister in listers {
        lister.join().unwrap_or_else(|_| panic!("listing panicked"));
    }
    // Refused before anything was made: no database, no directory of a root.
    let made = std::fs::read_dir(other.path()).map_or(usize::MAX, Iterator::count);
    assert_eq!(made, 0, "opening in a forked child made part of a root");

    // A child forked while another thread is inside the log callback: taking the callback
    // away there returns at once, never waiting for a call no thread there will end.
    set_log(Some(held), MODHOST_LOG_TRACE).unwrap_or_else(|e| panic!("{e}"));
    let logging = std::thread::spawn(move || {
        dispatch(address as *const Host, "call.route", "{}", None, null())
    });
    wait_until("no record reached the callback", || {
        HELD.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    // SAFETY: as above.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let status = match set_log(None, 0) {
            Ok(()) => FINE,
            Err(e) => {
                eprintln!("child: {e}");
                CHANGED_ACROSS_THE_FORK
            }
        };
        // SAFETY: ends the child at once, as a forked child must.
        unsafe { libc::_exit(status) };
    }
    let ended = ended_within(pid, Duration::from_secs(20));
    RELEASED.store(true, std::sync::atomic::Ordering::SeqCst);
    let Some(status) = ended else {
        panic!("a child forked during a log callback never returned from unsetting it")
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == FINE,
        "see the child's message above: {status}"
    );
    let _ = logging.join();
    set_log(None, 0).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
}

/// Waits for `done`, failing the test with `never` after a minute.
fn wait_until(never: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "{never}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How many calls of [`held`] have begun.
static HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Whether [`held`] may return.
static RELEASED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A log callback that holds its first caller until released, as a slow log sink does.
unsafe extern "C" fn held(
    _: *mut std::ffi::c_void,
    _: std::ffi::c_int,
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
) {
    HELD.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    while !RELEASED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sets the process's log callback.
fn set_log(callback: LogCallback, level: std::ffi::c_int) -> Result<(), String> {
    let mut error = std::ptr::null_mut();
    // SAFETY: a callback as the header describes it; no user data.
    let status = unsafe { modhost_set_log(callback, std::ptr::null_mut(), level, &mut error) };
    common::check(status, error)
}

/// Declares `hook` a fail-closed pipeline on `host`.
fn declare(host: *const Host, hook: &str) -> Result<(), String> {
    let mut error = std::ptr::null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_declare(
            host,
            common::c(hook).as_ptr(),
            MODHOST_SHAPE_PIPELINE,
            MODHOST_ON_ERROR_STOP,
            0,
            &mut error,
        )
    };
    common::check(status, error)
}

/// The status of child `pid` once it ends, or `None` (and the child killed) if it is
/// still running after `bound`: it ends at once, or it waits for ever.
fn ended_within(pid: libc::pid_t, bound: Duration) -> Option<i32> {
    let forked = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: polls the child just made.
        let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if waited == pid {
            return Some(status);
        }
        if forked.elapsed() > bound {
            // SAFETY: the child just made, stuck.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
