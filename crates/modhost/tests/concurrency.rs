//! Dispatches running while the root changes, more handlers running at once than the
//! host has sandboxes for, and an application thread with a small stack: each dispatch
//! sees a module whole or not at all, queues for a sandbox rather than failing, and never
//! takes the process down.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use modhost::{Dispatch, FailureKind, HookPoint, Host, Limits, OnError, Options};
use modhost_test_support::package;

/// A host in a fresh root with core, phonebook 1.0.0 and hostile installed.
fn host() -> (tempfile::TempDir, Arc<Host>) {
    let limits = Limits {
        call_timeout: Duration::from_secs(5),
        max_memory: 16 << 20,
        ..Limits::default()
    };
    let (root, host) = common::with_hostile(limits);
    // Fail-closed: were hostile's handler counted as failing, it would stop the chain.
    host.declare(HookPoint {
        on_error: OnError::Stop,
        ..HookPoint::broadcast("nap")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (root, Arc::new(host))
}

/// Dispatches `nap` (hostile sleeps `millis`, then writes) on another thread, and runs
/// `change` while it sleeps.
fn nap_during(host: &Arc<Host>, millis: u64, change: impl FnOnce(&Host)) -> Dispatch {
    hook_during(host, "nap", millis, change)
}

/// [`nap_during`] for hook point `hook`, whose handler takes `millis` as `nap`'s does.
fn hook_during(
    host: &Arc<Host>,
    hook: &'static str,
    millis: u64,
    change: impl FnOnce(&Host),
) -> Dispatch {
    let napping = Arc::clone(host);
    let dispatch = thread::spawn(move || napping.dispatch(hook, &millis.to_string()));
    thread::sleep(Duration::from_millis(millis / 4));
    change(host);
    dispatch
        .join()
        .unwrap_or_else(|_| panic!("the dispatch panicked"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_module_uninstalled_during_a_dispatch_is_left_out_of_it() {
    let (_root, host) = host();
    let dispatch = nap_during(&host, 2000, |host| {
        host.uninstall("hostile", false)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    // Not a failure of the fail-closed hook point: hostile is simply not there any more.
    assert_eq!(dispatch.stopped_by, None, "{dispatch:?}");
    assert!(
        dispatch.calls.iter().all(|c| c.rawname != "hostile"),
        "{dispatch:?}"
    );
    // Its late writes went nowhere: no store is left behind for a module that is gone.
    assert!(host.kv_entries("hostile").is_err());
    host.install(&[package("hostile")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}")),
        []
    );
}

#[test]
fn a_module_disabled_during_a_dispatch_writes_nothing_and_counts_as_absent() {
    let (_root, host) = host();
    let dispatch = nap_during(&host, 2000, |host| {
        host.disable("hostile", false)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    left_out_as_changed(&dispatch);
    host.enable("hostile", false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}")),
        []
    );
    // A change to another module changes nothing for hostile: it runs and writes.
    let dispatch = nap_during(&host, 1000, |host| {
        host.disable("phonebook", false)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    assert_eq!(
        dispatch.calls.iter().map(|c| c.ok).collect::<Vec<_>>(),
        [true],
        "{dispatch:?}"
    );
    assert_eq!(
        host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}")),
        [("napped".to_owned(), "1000".to_owned())]
    );
}

/// Hostile's `nap_file` (writing /data, then napping 2 s) fired fail-closed, with
/// `change` made while it naps.
fn nap_file_during(host: &Arc<Host>, change: impl FnOnce(&Host)) -> Dispatch {
    host.declare(HookPoint {
        on_error: OnError::Stop,
        ..HookPoint::broadcast("nap_file")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    hook_during(host, "nap_file", 2000, change)
}

#[test]
fn a_module_disabled_while_its_handler_writes_only_files_is_left_out_not_failed() {
    let (_root, host) = host();
    let dispatch = nap_file_during(&host, |host| {
        host.disable("hostile", false)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    // Its write found its /data moved away by the disable: the module's own error, but
    // the module was no longer there to fail, and a fail-closed chain is not stopped.
    left_out_as_changed(&dispatch);
}

#[test]
fn a_module_disabled_and_enabled_again_while_its_handler_writes_answers_from_its_new_data() {
    let (_root, host) = host();
    let dispatch = nap_file_during(&host, |host| {
        host.disable("hostile", false)
            .unwrap_or_else(|e| panic!("{e}"));
        host.enable("hostile", false)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    // Running again at the same version, from a new /data: its write into the one the
    // disable swept away is no failure of its own, nor the host's (a path it never saw),
    // and its handler answers again from the new one.
    assert_eq!(dispatch.stopped_by, None, "{dispatch:?}");
    let calls: Vec<_> = dispatch
        .calls
        .iter()
        .map(|c| (c.rawname.as_str(), c.ok))
        .collect();
    assert_eq!(calls, [("hostile", true)], "{dispatch:?}");
    assert!(dispatch.left_out.is_empty(), "{dispatch:?}");
}

/// Fails the test unless hostile, changed while its handler ran, was left out of
/// `dispatch` (and said to be, with why) rather than answering or stopping it.
fn left_out_as_changed(dispatch: &Dispatch) {
    assert_eq!(dispatch.stopped_by, None, "{dispatch:?}");
    assert!(dispatch.calls.is_empty(), "{dispatch:?}");
    let left: Vec<_> = dispatch
        .left_out
        .iter()
        .map(|l| (l.rawname.as_str(), l.cause))
        .collect();
    assert_eq!(
        left,
        [("hostile", modhost::LeftOutCause::Changed)],
        "{dispatch:?}"
    );
}

/// Hostile at `version`, answering `nap` first with a quick `echo`, then its nap.
fn hostile_echoing_then_napping(root: &tempfile::TempDir, version: &str) -> std::path::PathBuf {
    modhost_test_support::repackage(
        &package("hostile"),
        |xml| {
            let old = xml
                .split("<version>")
                .nth(1)
                .and_then(|v| v.split("</version>").next());
            xml.replace(
                &format!("<version>{}</version>", old.unwrap_or_default()),
                &format!("<version>{version}</version>"),
            )
            .replace(
                "<nap>nap</nap>",
                "<nap pri=\"100\">echo</nap><nap pri=\"200\">nap</nap>",
            )
        },
        &root.path().join(format!("hostile-{version}.tgz")),
    )
}

#[test]
fn a_module_upgraded_during_a_dispatch_answers_it_as_its_new_version() {
    let (root, host) = host();
    host.upgrade(
        &[hostile_echoing_then_napping(&root, "98.0")],
        Options::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let newer = hostile_echoing_then_napping(&root, "99.0");
    let dispatch = nap_during(&host, 2000, |host| {
        host.upgrade(&[newer], Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
    });
    // Not left out, as an uninstalled module is: the old version's nap is set aside and
    // the new one's answers in its place, once; the echo that answered before the
    // upgrade is not run again.
    let calls: Vec<(&str, &str, bool, Option<&str>)> = dispatch
        .calls
        .iter()
        .map(|c| {
            (
                c.rawname.as_str(),
                c.handler.as_str(),
                c.ok,
                c.output.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("hostile", "echo", true, Some("2000")),
            ("hostile", "nap", true, Some("napped"))
        ],
        "{dispatch:?}"
    );
    assert_eq!(
        host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}")),
        [("napped".to_owned(), "2000".to_owned())]
    );
    let version = host
        .list()
        .ok()
        .and_then(|l| l.into_iter().find(|m| m.rawname == "hostile"))
        .map(|m| m.version);
    assert_eq!(version.as_deref(), Some("99.0"));
}

#[test]
fn a_module_whose_files_an_uninstall_removed_before_its_turn_is_left_out_too() {
    let (root, host) = host();
    // A second hostile, whose `nap` handler comes first and sleeps to its deadline:
    // hostile's own turn comes after its uninstall removed its files.
    let edited = modhost_test_support::repackage(
        &package("hostile"),
        |xml| {
            xml.replace("<rawname>hostile</rawname>", "<rawname>sleeper</rawname>")
                .replace("hostile_notes", "sleeper_notes")
                .replace("<nap>nap</nap>", "<nap pri=\"100\">sleep</nap>")
        },
        &root.path().join("edited.tgz"),
    );
    // Its files at the archive's root, where no directory name has to match the rawname.
    let copy = modhost_test_support::zipped(&edited, true, &root.path().join("sleeper.zip"));
    host.install(&[copy], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    host.declare(HookPoint {
        limits: Some(Limits {
            call_timeout: Duration::from_millis(2000),
            ..host.limits()
        }),
        ..HookPoint::broadcast("nap")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let dispatch = nap_during(&host, 2000, |host| {
        host.uninstall("hostile", false)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let calls: Vec<(&str, Option<FailureKind>)> = dispatch
        .calls
        .iter()
        .map(|c| (c.rawname.as_str(), c.kind))
        .collect();
    assert_eq!(
        calls,
        [("sleeper", Some(FailureKind::Timeout))],
        "{dispatch:?}"
    );
}

#[test]
fn handlers_beyond_the_sandbox_pool_wait_for_a_slot_and_then_say_the_host_is_busy() {
    let (_root, host) = host();
    // Sleepers hold every sandbox for ten seconds; then each is stopped at its deadline.
    // Filling a pool of 256 takes seconds on a loaded two-core machine, so the deadline
    // leaves room for the pool to be full well before the first sleeper is stopped.
    let limits = host.limits();
    host.declare(HookPoint {
        limits: Some(Limits {
            call_timeout: Duration::from_secs(10),
            ..limits
        }),
        ..HookPoint::broadcast("sleep")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    host.declare(HookPoint {
        limits: Some(Limits {
            call_timeout: Duration::from_millis(300),
            ..limits
        }),
        ..HookPoint::broadcast("echo")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    const SLEEPERS: usize = 300;
    let start = Arc::new(Barrier::new(SLEEPERS + 1));
    let sleepers: Vec<_> = (0..SLEEPERS)
        .map(|_| {
            let host = Arc::clone(&host);
            let start = Arc::clone(&start);
            thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    start.wait();
                    host.dispatch("sleep", "")
                })
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    start.wait();
    // Once every sandbox is taken (the sleepers start at their own pace on a loaded
    // machine), a handler waits its whole (short) deadline, then is told why it never
    // ran, and it is not the module's fault.
    let asked = Instant::now();
    let (echo, waited) = loop {
        let began = Instant::now();
        let echo = host
            .dispatch("echo", "hello")
            .unwrap_or_else(|e| panic!("{e}"));
        let waited = began.elapsed();
        if echo.calls[0].kind.is_some() || asked.elapsed() > Duration::from_secs(9) {
            break (echo, waited);
        }
        thread::sleep(Duration::from_millis(100));
    };
    let call = &echo.calls[0];
    assert_eq!(call.kind, Some(FailureKind::Busy), "{echo:?}");
    assert!(
        call.error
            .as_deref()
            .is_some_and(|e| e.contains("as many calls at once as it has room for")),
        "{echo:?}"
    );
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    // The sleepers beyond the pool waited for a slot instead of failing at once: every one
    // ends at a deadline or finds no slot in time, none traps.
    for sleeper in sleepers {
        let dispatch = sleeper
            .join()
            .unwrap_or_else(|_| panic!("a sleeper panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
        let kind = dispatch.calls[0].kind;
        assert!(
            matches!(kind, Some(FailureKind::Timeout | FailureKind::Busy)),
            "{dispatch:?}"
        );
    }
    // The pool is whole again.
    let echo = host
        .dispatch("echo", "again")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(echo.calls[0].output.as_deref(), Some("again"), "{echo:?}");
}

#[test]
fn a_thread_with_a_small_stack_runs_a_recursing_module_and_lives() {
    let (_root, host) = host();
    // 64 KiB: an eighth of what a guest may use; its component is loaded on it, too.
    let on_small_stack = Arc::clone(&host);
    let dispatch = thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || {
            let recursed = on_small_stack.dispatch("recurse", "");
            let echoed = on_small_stack.dispatch("echo", "small");
            (recursed, echoed)
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .join();
    let (recursed, echoed) = dispatch.unwrap_or_else(|_| panic!("the dispatch panicked"));
    let recursed = recursed.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        recursed.calls[0].kind,
        Some(FailureKind::StackOverflow),
        "{recursed:?}"
    );
    let echoed = echoed.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        echoed.calls[0].output.as_deref(),
        Some("small"),
        "{echoed:?}"
    );
}

#[test]
fn changes_are_not_starved_by_dispatches_that_keep_writing() {
    let (_root, host) = host();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A busy PBX: dispatches that write, back to back, on several threads.
    let dispatchers: Vec<_> = (0..6)
        .map(|i| {
            let (host, stop) = (Arc::clone(&host), Arc::clone(&stop));
            thread::spawn(move || {
                let mut done = 0_u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if host.dispatch("remember", &format!("{i}:{done}")).is_ok() {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let changed = (0..3).try_for_each(|_| {
        host.disable("phonebook", false)?;
        host.enable("phonebook", false).map(drop)
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let dispatched: u32 = dispatchers
        .into_iter()
        .map(|d| d.join().unwrap_or_else(|_| panic!("a dispatcher panicked")))
        .sum();
    // Each change had its turn: none gave up waiting for the write lock.
    assert!(changed.is_ok(), "{changed:?}");
    assert!(dispatched > 0);
}

/// What a change's reporter saw of the root's lock at one event: the lock file's text,
/// and the holder and message a second host that does not wait was refused with.
type LockSeen = (String, Option<u32>, String);

/// Reads, at every event of a change, the root's lock file, and asks a second host that
/// does not wait to change the root.
struct LockWatcher {
    root: std::path::PathBuf,
    seen: Arc<std::sync::Mutex<Vec<LockSeen>>>,
}

impl modhost::Reporter for LockWatcher {
    fn report(&self, _: modhost::Event) {
        let written = std::fs::read_to_string(self.root.join("lock")).unwrap_or_default();
        let other = Host::open(&self.root).map(|host| host.wait_for_lock(false));
        let seen = match other.and_then(|other| other.recover()) {
            Err(error @ modhost::Error::Locked { holder, .. }) => {
                (written, holder, error.to_string())
            }
            other => (written, None, format!("not refused as locked: {other:?}")),
        };
        if let Ok(mut all) = self.seen.lock() {
            all.push(seen);
        }
    }
}

#[test]
fn the_process_changing_a_root_is_named_to_others_and_only_while_it_holds_the_lock() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let host = Host::open(root.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_reporter(Box::new(LockWatcher {
            root: root.path().to_owned(),
            seen: Arc::clone(&seen),
        }));
    host.install(&[package("core")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));

    let me = std::process::id();
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(!seen.is_empty(), "the install reported its steps");
    for (written, holder, message) in &seen {
        assert_eq!(written.trim(), me.to_string());
        assert_eq!(*holder, Some(me), "{message}");
        assert!(
            message.contains(&format!("process {me} holds lock `")),
            "{message}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.path().join("lock"))
            .ok()
            .as_deref(),
        Some(""),
        "a lock let go of no longer names its last holder"
    );
}

/// Removes the root's lock file when a change is about to run a module's code, as an
/// administrator who took a waiting message for a stale lock would.
struct LockRemover(std::path::PathBuf);

impl modhost::Reporter for LockRemover {
    fn report(&self, event: modhost::Event) {
        if matches!(event, modhost::Event::Running { .. }) {
            let _ = std::fs::remove_file(self.0.join("lock"));
        }
    }
}

#[test]
fn a_change_whose_lock_file_is_removed_while_it_runs_commits_nothing() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_reporter(Box::new(LockRemover(root.path().to_owned())));
    let refused = host.install(&[package("core")], Options::default());
    assert!(
        matches!(&refused, Err(modhost::Error::LockLost { lock }) if *lock == root.path().join("lock")),
        "{refused:?}"
    );
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(host.list().unwrap_or_else(|e| panic!("{e}")).is_empty());
    let modules = std::fs::read_dir(root.path().join("modules"))
        .map(|d| d.count())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(modules, 0, "what the change made is gone");
    // The lock is a new file now, and the next change takes it.
    drop(host);
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("core")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
}
