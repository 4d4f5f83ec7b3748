//! Cancellation of a running dispatch from another thread (the caller hung up).

use super::*;

/// Runs `hook` of the hostile module in a dispatch that another thread cancels after
/// 200 ms; returns the dispatch and how long it ran on after the cancellation.
fn cancelled(host: &Host, hook: &str) -> (modhost::Dispatch, Duration) {
    let cancel = host.cancel_handle();
    let options = DispatchOptions {
        data: None,
        cancel: Some(cancel.clone()),
    };
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cancel.cancel();
        Instant::now()
    });
    let dispatch = host
        .dispatch_with(hook, "kept?", &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let ended = Instant::now();
    let at = canceller
        .join()
        .unwrap_or_else(|_| panic!("canceller panicked"));
    (dispatch, ended.saturating_duration_since(at))
}

#[test]
fn a_dispatch_cancelled_from_another_thread_stops_at_once_and_keeps_no_writes() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("hostile")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // Spinning in wasm, blocked in a WASI call, and inside one endless SQL statement.
    for hook in ["note_then_spin", "sleep", "race", "spin"] {
        let (dispatch, after) = cancelled(&host, hook);
        assert!(dispatch.cancelled, "{hook}: {dispatch:?}");
        let call = &dispatch.calls[0];
        assert_eq!(call.kind, Some(FailureKind::Cancelled), "{hook}: {call:?}");
        assert!(
            call.error
                .as_deref()
                .is_some_and(|e| e.contains("was cancelled by the application")),
            "{hook}: {call:?}"
        );
        // Its deadline is 10 s away: only the cancellation stopped it.
        assert!(after < Duration::from_secs(2), "{hook}: {after:?}");
        // What it wrote to stderr before it was stopped ends the error, as at a deadline.
        if hook == "spin" {
            assert!(
                call.error.as_deref().is_some_and(
                    |e| e.contains("guest stderr") && e.contains("spinning on \"kept?\"")
                ),
                "{call:?}"
            );
        }
    }
    let kv = host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        kv.iter().all(|(key, _)| key != "noted" && key != "runaway"),
        "{kv:?}"
    );

    // A cancelled handle stops a dispatch before its handlers run.
    let cancel = host.cancel_handle();
    cancel.cancel();
    let options = DispatchOptions {
        data: None,
        cancel: Some(cancel),
    };
    let dispatch = host
        .dispatch_with("echo", "x", &options)
        .unwrap_or_else(|e| panic!("{e}"));
    // Its handler never ran: left out as cancelled, not reported as a call.
    assert!(
        dispatch.cancelled
            && dispatch.calls.is_empty()
            && dispatch.left_out.len() == 1
            && dispatch.left_out[0].cause == modhost::LeftOutCause::Cancelled,
        "{dispatch:?}"
    );
    // And so does a dispatch of a point no module handles: it says it was cancelled,
    // and a pipeline gives no output.
    host.declare(modhost::HookPoint::pipeline("unheard"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dispatch = host
        .dispatch_with("unheard", "x", &options)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        dispatch.cancelled && dispatch.calls.is_empty(),
        "{dispatch:?}"
    );
    assert_eq!(dispatch.output, None, "{dispatch:?}");
    // Other dispatches are untouched.
    let echo = host.dispatch("echo", "x").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(echo.calls[0].output.as_deref(), Some("x"));
}

#[test]
fn a_dispatch_cancelled_while_it_waits_for_the_database_says_it_was_cancelled() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let written = std::fs::write(
        root.path().join("modhost.toml"),
        "[hooks.note_then_spin]\ncall_timeout_ms = 10000\n\
         [hooks.remember]\ncall_timeout_ms = 100\n",
    );
    assert!(written.is_ok(), "{written:?}");
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("hostile")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::scope(|scope| {
        // Writes, then spins to its deadline, holding the write lock.
        let holder = scope.spawn(|| host.dispatch("note_then_spin", "held"));
        // Held once a quick write is told the holder kept the lock to its deadline.
        let asked = Instant::now();
        loop {
            let probe = host
                .dispatch("remember", "probe")
                .unwrap_or_else(|e| panic!("{e}"));
            let call = &probe.calls[0];
            if call.error.as_deref().is_some_and(|e| {
                e.contains("stayed locked by module `hostile`'s call until the call's deadline")
            }) {
                // The host was busy, as with every sandbox taken: not its fault either.
                assert_eq!(call.kind, Some(modhost::FailureKind::Busy), "{call:?}");
                break;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(3),
                "never held: {call:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Writes at once, so waits for the lock, until cancelled.
        let (dispatch, after) = cancelled(&host, "nap");
        let call = &dispatch.calls[0];
        assert!(dispatch.cancelled, "{dispatch:?}");
        assert_eq!(call.kind, Some(FailureKind::Cancelled), "{call:?}");
        assert!(
            call.error
                .as_deref()
                .is_some_and(|e| e.contains("was cancelled by the application")),
            "{call:?}"
        );
        // Were the cancellation ignored, nap would wait for the lock, held 10 s from the
        // holder's start: at most 3.2 s before the cancellation.
        assert!(after < Duration::from_secs(2), "{after:?}");
        let held = holder.join().map(|d| d.map(|d| d.calls[0].kind));
        assert!(
            matches!(held, Ok(Ok(Some(FailureKind::Timeout)))),
            "{held:?}"
        );
    });
}

thread_local! {
    /// The host and the cancel handle of the dispatch RELOADING's `originate` serves.
    static RELOADED: std::cell::RefCell<Option<(Arc<Host>, modhost::embed::Cancel)>> =
        const { std::cell::RefCell::new(None) };
}

/// `pbx:telephony` whose `originate` cancels the dispatch it serves (as the caller's
/// hang-up would, from another thread, at that moment) and then reloads.
const RELOADING: Scripted = Scripted {
    needs_grant: true,
    link: |linker| {
        calls::add_to_linker::<_, Calls>(linker, |_| {
            Calls(|| {
                let (host, cancel) = RELOADED.with_borrow(Clone::clone).ok_or("no host")?;
                cancel.cancel();
                Err(host
                    .reload()
                    .map_or_else(|e| e.to_string(), |r| format!("wrote {} bytes", r.bytes)))
            })
        })
    },
};

#[test]
fn a_dispatch_started_inside_a_cancelled_call_ends_with_it_and_reload_writes_nothing() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = granted_host(&root, RELOADING, &[]);
    host.reload().unwrap_or_else(|e| panic!("{e}"));
    let config = root.path().join("etc/extensions_modhost.conf");
    let before = std::fs::read_to_string(&config).unwrap_or_default();
    assert!(before.contains("voicemail"), "{before}");
    let cancel = host.cancel_handle();
    RELOADED.set(Some((Arc::clone(&host), cancel.clone())));
    let options = DispatchOptions {
        data: None,
        cancel: Some(cancel),
    };
    let dispatch = host
        .dispatch_with(
            "voicemail.left",
            r#"{"mailbox":"101","from":"2025550101"}"#,
            &options,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    RELOADED.set(None);
    assert!(dispatch.cancelled, "{dispatch:?}");
    // The reload inside it was cancelled with it: it wrote nothing, and said so.
    assert_eq!(std::fs::read_to_string(&config).unwrap_or_default(), before);
    let seen = format!("{dispatch:?}");
    assert!(!seen.contains("wrote "), "{seen}");
}

thread_local! {
    /// The host whose dispatch REMEMBERING's `originate` serves.
    static REMEMBERED: std::cell::RefCell<Option<Arc<Host>>> =
        const { std::cell::RefCell::new(None) };
}

/// `pbx:telephony` whose `originate` dispatches `remember` (hostile's handler writes
/// what it is given) and then fails, as an application that acted and then refused.
const REMEMBERING: Scripted = Scripted {
    needs_grant: true,
    link: |linker| {
        calls::add_to_linker::<_, Calls>(linker, |_| {
            Calls(|| {
                let host = REMEMBERED.with_borrow(Clone::clone).ok_or("no host")?;
                let remembered = host
                    .dispatch("remember", "asked by the application")
                    .map_err(|e| e.to_string())?;
                Err(format!("refused after {} call", remembered.calls.len()))
            })
        })
    },
};

#[test]
fn a_dispatch_the_application_makes_inside_a_call_keeps_its_writes_when_that_call_fails() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = granted_host(&root, REMEMBERING, &[package("hostile")]);
    REMEMBERED.set(Some(Arc::clone(&host)));
    let dispatch = host
        .dispatch("voicemail.left", r#"{"mailbox":"101","from":"2025550101"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    REMEMBERED.set(None);
    let call = &dispatch.calls[0];
    assert!(
        call.kind.is_some()
            && call
                .error
                .as_deref()
                .is_some_and(|e| e.contains("refused after 1 call")),
        "{dispatch:?}"
    );
    // What the application's own dispatch wrote is the application's: kept.
    let entries = host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        entries.contains(&(
            "remembered".to_owned(),
            "asked by the application".to_owned()
        )),
        "{entries:?}"
    );
}

#[test]
fn an_application_shutting_down_cancels_every_dispatch_under_way_at_once() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("hostile")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::scope(|scope| {
        // Three dispatches given no cancel handle, spinning, blocked in WASI, and inside
        // an endless statement; their deadlines are 10 s away.
        let running: Vec<_> = ["spin", "sleep", "race"]
            .into_iter()
            .map(|hook| {
                let host = &host;
                scope.spawn(move || {
                    let dispatch = host.dispatch(hook, "x").unwrap_or_else(|e| panic!("{e}"));
                    (hook, dispatch, Instant::now())
                })
            })
            .collect();
        let mut counted = 0;
        let started = Instant::now();
        while counted < 3 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(300));
            counted = host.cancel_dispatches();
        }
        let at = Instant::now();
        assert_eq!(counted, 3, "the three dispatches under way");
        for thread in running {
            let (hook, dispatch, ended) = thread.join().unwrap_or_else(|_| panic!("panicked"));
            assert!(dispatch.cancelled, "{hook}: {dispatch:?}");
            assert_eq!(
                dispatch.calls[0].kind,
                Some(FailureKind::Cancelled),
                "{hook}"
            );
            let after = ended.saturating_duration_since(at);
            assert!(after < Duration::from_secs(2), "{hook}: {after:?}");
        }
    });
    // Dispatches begun after it run as usual.
    assert_eq!(host.cancel_dispatches(), 0);
    let echo = host
        .dispatch("echo", "still here")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        echo.calls[0].output.as_deref(),
        Some("still here"),
        "{echo:?}"
    );
}
