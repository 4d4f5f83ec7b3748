//! One host on many threads, with one closing it under them, and on a thread with a
//! small stack.

use std::ptr::null;

use modhost_capi::*;

use crate::TestResult;
use crate::telephony::*;

/// A host, shared with the threads that dispatch on it.
#[derive(Clone, Copy)]
struct Shared(*mut Host);
// SAFETY: a host may be used from several threads at once (modhost.h).
unsafe impl Send for Shared {}

/// A host on `root` with the telephony capability (telling `seen`), core and caller
/// installed.
fn telephony_host(root: &std::path::Path, seen: &Seen) -> Result<*mut Host, String> {
    let host = open_with_telephony(root, seen)?;
    install(host, &["core", "caller"], MODHOST_GRANT)?;
    Ok(host)
}

#[test]
fn one_host_dispatches_from_many_threads_each_with_its_own_context() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = telephony_host(root.path(), &seen)?;
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let shared = Shared(host);
            std::thread::spawn(move || {
                let shared = shared;
                let mut wrong = Vec::new();
                for call in 0..40 {
                    let channel = format!("PJSIP/{thread}-{call:08}");
                    match dispatch(shared.0, "whoami", "", Some(&channel), null()) {
                        Ok(result) if result["calls"][0]["output"] == channel.as_str() => {}
                        other => wrong.push(format!("{channel}: {other:?}")),
                    }
                }
                wrong
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for thread in threads {
        wrong.extend(thread.join().map_err(|_| "a dispatching thread panicked")?);
    }
    assert!(
        wrong.is_empty(),
        "{} wrong: {:?}",
        wrong.len(),
        wrong.first()
    );
    assert_eq!(seen.0.lock().map_err(|e| e.to_string())?.len(), 8 * 40);
    // SAFETY: every thread is joined; the host is not used again.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn threads_racing_a_close_are_refused_and_closing_again_does_nothing() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = telephony_host(root.path(), &seen)?;
    // Channels dispatching as the application shuts down: each goes on until refused,
    // and once more after, as a late thread would.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let shared = Shared(host);
            std::thread::spawn(move || {
                let shared = shared;
                let mut served = 0;
                loop {
                    match dispatch(shared.0, "whoami", "", Some("PJSIP/1"), null()) {
                        Ok(_) => served += 1,
                        Err(error) => {
                            let again = dispatch(shared.0, "whoami", "", None, null());
                            return (served, error, again.err());
                        }
                    }
                }
            })
        })
        .collect();
    let refused = format!(
        "status {MODHOST_ERROR_ARGUMENT}: {:?}",
        Some("the host is closed, or being closed")
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: the host, closed while other threads call it (which modhost.h allows).
    unsafe { modhost_close(host) };
    for thread in threads {
        let (served, error, again) = thread.join().map_err(|_| "a dispatching thread panicked")?;
        assert!(served > 0, "no dispatch ran before the close");
        for error in [Some(error), again] {
            assert_eq!(error.as_deref(), Some(refused.as_str()), "after {served}");
        }
    }
    // Closed, every call is refused the same way, and closing it again does nothing.
    assert_eq!(
        dispatch(host, "whoami", "", None, null()).err().as_deref(),
        Some(refused.as_str())
    );
    // SAFETY: a closed host, which stays valid memory.
    unsafe {
        assert!(modhost_cancel_handle_new(host).is_null());
        modhost_close(host);
        modhost_close(host);
    }
    Ok(())
}

#[test]
fn threads_calling_on_after_refusals_never_hold_a_close_up() -> TestResult {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = telephony_host(root.path(), &seen)?;
    // Workers that stop only once the close returned, as an application's shutdown may
    // have them: a refused call in a tight loop, on more threads than cores.
    static STOP: AtomicBool = AtomicBool::new(false);
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let shared = Shared(host);
            std::thread::spawn(move || {
                let shared = shared;
                let mut refused = 0u64;
                while !STOP.load(Ordering::SeqCst) {
                    let (mut list, mut error) = (std::ptr::null_mut(), std::ptr::null_mut());
                    // SAFETY: a host that may be closing, which modhost.h allows.
                    let status = unsafe { modhost_list(shared.0, &mut list, &mut error) };
                    refused += u64::from(status != MODHOST_OK);
                    // SAFETY: strings this call returned, or NULL.
                    unsafe {
                        modhost_string_free(list);
                        modhost_string_free(error);
                    }
                }
                refused
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (closed, done) = mpsc::channel();
    let shared = Shared(host);
    let closer = std::thread::spawn(move || {
        let shared = shared;
        // SAFETY: the host, closed while other threads call it (which modhost.h allows).
        unsafe { modhost_close(shared.0) };
        let _ = closed.send(());
    });
    let returned = done.recv_timeout(Duration::from_secs(30)).is_ok();
    // Stopped either way, so that a close held up ends the test rather than hangs it.
    STOP.store(true, Ordering::SeqCst);
    closer.join().map_err(|_| "the closing thread panicked")?;
    let mut refused = 0;
    for worker in workers {
        refused += worker.join().map_err(|_| "a worker panicked")?;
    }
    assert!(
        returned,
        "the close waited for 30 s on threads whose calls it refused"
    );
    assert!(refused > 0, "no call came while it closed");
    Ok(())
}

#[test]
fn a_thread_with_a_small_stack_installs_and_dispatches() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    /// The host, sent to the thread with the small stack.
    struct Shared(*mut Host);
    // SAFETY: a host may be used from several threads at once (modhost.h).
    unsafe impl Send for Shared {}
    let shared = Shared(host);
    // 64 KiB, far less than loading a component or calling a module takes: modhost runs
    // its work on a stack segment of its own.
    let result = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || {
            let shared = shared;
            install(shared.0, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
            dispatch(
                shared.0,
                "voicemail.left",
                r#"{"mailbox":"101","from":"2025550101"}"#,
                None,
                null(),
            )
        })?
        .join()
        .map_err(|_| "the small thread panicked")??;
    assert_eq!(result["calls"][0]["ok"], true, "{result}");
    // SAFETY: the host, closed once, nothing using it.
    unsafe { modhost_close(host) };
    Ok(())
}
